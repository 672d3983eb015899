r"""synthetic_motion at a larger scale than the test: frame-only vs temporal.

For each seed, generates a synthetic_motion dataset (timed), then trains the
two small models of ``tests/test_synthetic_motion.py`` for the same number of
steps and reports their validation accuracy: a frame-only model (2-D convs on
each frame, max over space, mean over time) and the same model with one
(3, 1) temporal convolution. The dataset is built so that the first should
stay at chance and the second should learn. Prints a markdown table and the
medians over seeds.

  python benchmarks/synthetic_motion_property.py                # 3 seeds
  python benchmarks/synthetic_motion_property.py --seeds=0 --steps=100
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import gin
import tensorflow as tf

from tests.test_synthetic_motion import train_and_evaluate
from vsearch.data import datasets
from vsearch.data.clips import ClipSpec


def _parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seeds", default="0,1,2", help="comma-separated dataset and training seeds")
  parser.add_argument("--classes", type=int, default=8)
  parser.add_argument("--resolution", type=int, default=64)
  parser.add_argument("--frames", type=int, default=8, help="frames per training clip")
  parser.add_argument(
    "--dataset_frames", type=int, default=12, help="frames per stored video (clips start at random)"
  )
  parser.add_argument("--train_per_class", type=int, default=128)
  parser.add_argument("--validation_per_class", type=int, default=50)
  parser.add_argument("--steps", type=int, default=160, help="training steps of 32 clips per model")
  parser.add_argument(
    "--data_dir", default=None, help="TFDS data dir (default: a fresh temporary one)"
  )
  return parser.parse_args()


def main() -> None:
  args = _parse_args()
  seeds = [int(s) for s in args.seeds.split(",")]
  data_dir = args.data_dir or tempfile.mkdtemp(prefix="synthetic_motion_")
  spec = ClipSpec(args.frames, 1, args.resolution)
  chance = 1.0 / args.classes
  print(f"TF {tf.__version__}, {os.cpu_count()} CPU cores, data in {data_dir}", flush=True)
  rows, generation = [], []
  for seed in seeds:
    gin.clear_config()
    sizes = dict(
      num_frames=args.dataset_frames,
      resolution=args.resolution,
      num_classes=args.classes,
      train_per_class=args.train_per_class,
      validation_per_class=args.validation_per_class,
      seed=seed,
    )
    gin.bind_parameter("load_dataset.data_dir", data_dir)
    for key, value in sizes.items():
      gin.bind_parameter(f"synthetic_motion_config.{key}", value)
    start = time.monotonic()
    data = datasets.load_dataset()
    generation.append(time.monotonic() - start)
    for temporal in (False, True):
      start = time.monotonic()
      accuracy = train_and_evaluate(data, temporal, spec, args.steps, seed)
      name = "temporal (3,1) conv" if temporal else "frame-only"
      rows.append((name, seed, accuracy, time.monotonic() - start))
      print(f"seed {seed}: {name}: {accuracy:.3f} ({rows[-1][3]:.0f} s)", flush=True)

  print(
    f"\n{args.classes} classes, {len(seeds)} seeds; dataset "
    f"{args.dataset_frames} frames x {args.resolution} px, "
    f"{args.train_per_class}/{args.validation_per_class} train/validation "
    f"clips per class; clips {args.frames} frames, stride 1; "
    f"{args.steps} steps of 32 clips\n"
  )
  print("| model | seed | val accuracy | chance | train time |")
  print("|---|---|---|---|---|")
  for name, seed, accuracy, seconds in rows:
    print(f"| {name} | {seed} | {accuracy:.3f} | {chance:.3f} | {seconds:.0f} s |")
  for name in ("frame-only", "temporal (3,1) conv"):
    median = statistics.median(r[2] for r in rows if r[0] == name)
    print(f"| {name} | median | {median:.3f} | {chance:.3f} | |")
  clips = args.classes * (args.train_per_class + args.validation_per_class)
  print(
    f"\nGeneration of {clips} clips: "
    + ", ".join(f"{s:.1f} s" for s in generation)
    + f" (median {statistics.median(generation):.1f} s)"
  )


if __name__ == "__main__":
  main()
