r"""Where a candidate's training time goes, for a fixed seeded set of genomes.

For each of ``--num_genomes`` genomes sampled (seeded) from the search space
of a gin config, in one process, as a search trains them:

* build: the Keras model and optimizer (``Trainer``);
* trace: the first ``steps_per_call`` call (tracing and graph building) less
  a steady call's time;
* step: the median time of one training step over the later calls;
* input: the time the clip pipeline alone takes to make one batch (drawn
  without training; the share of a step it would cost if nothing overlapped);
* GFLOP/s achieved: 3 × forward FLOPs (``vsearch.nn.cost``) × batch / step.

  python benchmarks/train_step.py                          # gin/tvn/smoke.gin
  python benchmarks/train_step.py --cache=none             # decode every epoch
  python benchmarks/train_step.py --jit                    # XLA-compiled steps
  python benchmarks/train_step.py --gin_file=gin/tvn/smoke.gin --num_genomes=12
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import gin
import numpy as np
import tensorflow as tf

from launch import common
from vsearch import configurables  # noqa: F401  (registers every gin configurable)
from vsearch.data import clips as clips_lib
from vsearch.data import datasets
from vsearch.nn import cost
from vsearch.search.runner import Search
from vsearch.train import trainer as trainer_lib


def _time_batches(data: tf.data.Dataset, count: int) -> float:
  """Seconds per batch of the pipeline alone (after one warm-up batch)."""
  iterator = iter(data)
  next(iterator)
  start = time.perf_counter()
  for _ in range(count):
    next(iterator)
  return (time.perf_counter() - start) / count


def measure(genome, method, dataset, config: trainer_lib.TrainConfig) -> dict:
  """Build, trace, step and input times and the achieved GFLOP/s of one genome."""
  spec = method.clip_spec(genome)
  make = lambda seed: clips_lib.make_clips(
    dataset.train, spec, batch_size=config.batch_size, training=True, seed=seed
  )
  input_s = _time_batches(make(1), 2 * config.steps_per_call)
  flops = cost.count_flops(method.build(genome, dataset.num_classes))
  tf.keras.backend.clear_session()
  start = time.perf_counter()
  trainer = trainer_lib.Trainer(
    tf.distribute.get_strategy(), lambda: method.build(genome, dataset.num_classes), config
  )
  built = time.perf_counter()
  calls = []

  def on_progress(done, loss):
    calls.append(time.perf_counter())

  trainer.train(make(0), on_progress)
  durations = np.diff([built, *calls])
  steady = float(np.median(durations[1:])) if len(durations) > 1 else float(durations[0])
  step_s = steady / config.steps_per_call
  return {
    "params": trainer.model.count_params(),
    "mflops": flops / 1e6,
    "build_s": built - start,
    "trace_s": max(float(durations[0]) - steady, 0.0),
    "step_ms": step_s * 1e3,
    "input_ms": input_s * 1e3,
    "gflops_s": 3 * flops * config.batch_size / step_s / 1e9,
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--gin_file", default="gin/tvn/smoke.gin")
  parser.add_argument("--gin_bindings", action="append", default=[])
  parser.add_argument("--num_genomes", type=int, default=10)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--steps", type=int, default=100, help="training steps per genome")
  parser.add_argument("--cache", default="auto", choices=("auto", "memory", "none"))
  parser.add_argument("--jit", action="store_true", help="XLA-compile the training step")
  parser.add_argument("--data_dir", default="/tmp/vsearch_bench_tfds")
  args = parser.parse_args()

  common.parse_gin(
    [args.gin_file],
    [
      *args.gin_bindings,
      f"load_dataset.data_dir = '{args.data_dir}'",
      f"load_dataset.cache = '{args.cache}'",
      f"TrainConfig.steps = {args.steps}",
      f"TrainConfig.jit_compile = {args.jit}",
    ],
  )
  search = Search(workdir=os.path.join(args.data_dir, "unused_workdir"))
  method, config = search.method, search.train_config
  dataset = datasets.load_dataset()
  rng = np.random.default_rng(args.seed)
  genomes = [method.sample(rng) for _ in range(args.num_genomes)]
  print(
    f"{args.gin_file}: {args.num_genomes} genomes (seed {args.seed}), {args.steps} steps of "
    f"{config.batch_size} clips, {config.steps_per_call} steps a call, cache={args.cache}, "
    f"jit={args.jit}\n"
  )
  print("| genome | T×R² | params | MFLOPs | build s | trace s | step ms | input ms | GFLOP/s |")
  print("|---|---|---|---|---|---|---|---|---|")
  rows = []
  for i, genome in enumerate(genomes):
    row = measure(genome, method, dataset, config)
    rows.append(row)
    print(
      f"| {i} | {genome.num_frames}×{genome.resolution}² | {row['params']:,} | "
      f"{row['mflops']:.1f} | {row['build_s']:.2f} | {row['trace_s']:.2f} | "
      f"{row['step_ms']:.1f} | {row['input_ms']:.1f} | {row['gflops_s']:.1f} |",
      flush=True,
    )
  median = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
  print(
    f"| median | | {median['params']:,.0f} | {median['mflops']:.1f} | {median['build_s']:.2f} | "
    f"{median['trace_s']:.2f} | {median['step_ms']:.1f} | {median['input_ms']:.1f} | "
    f"{median['gflops_s']:.1f} |"
  )
  total = sum(r["step_ms"] for r in rows) * args.steps / 1e3
  fixed = sum(r["build_s"] + r["trace_s"] for r in rows)
  print(
    f"\nTraining the {len(rows)} genomes: {total:.0f} s of steps, {fixed:.0f} s of build and "
    f"trace; an input batch costs a median {median['input_ms'] / median['step_ms']:.0%} of a step."
  )


if __name__ == "__main__":
  gin.add_config_file_search_path(REPO)
  main()
