r"""CPU latency of the zoo TVNs: TFLite float and int8 through LiteRT, and Keras.

For each published TVN at its published input size: parameters, FLOPs (2 ×
multiply-adds, ``vsearch.nn.cost``), whether the int8 model is fully int8, the
median batch-1 latency of the float and the int8 TFLite model through LiteRT
(XNNPACK on) at 1 and 2 threads, and of the Keras model (``model(x,
training=False)`` in a warm ``tf.function``, TensorFlow's default thread
pools). Prints a markdown table beside the TVN paper's CPU figures, which
were measured on another CPU.

  python benchmarks/latency.py                       # tvn1..tvn4, mobile 1/2
  python benchmarks/latency.py --names=tvn1,tvn2 --runs=50 --json=out.json

Conversions of the larger models take minutes (tvn2: about 2 min for int8).
"""

import argparse
import json
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf

from vsearch.data import synthetic_motion
from vsearch.deploy import latency, quantize
from vsearch.methods import zoo
from vsearch.nn import cost

PAPER_CPU_MS = {"tvn1": "37", "tvn2": "65"}
THREADS = (1, 2)


def _calibration_clips(genome, count: int) -> np.ndarray:
  """Synthetic-motion clips at the model's input size, in [-1, 1]."""
  rng = np.random.default_rng(0)
  clips = [
    synthetic_motion.render_clip(
      rng, rng.uniform(0, 2 * np.pi), genome.num_frames, genome.resolution
    )
    for _ in range(count)
  ]
  return np.stack(clips).astype(np.float32) / 127.5 - 1.0


def _keras_latency_ms(model, clip: np.ndarray, warmup: int, runs: int) -> tuple[float, float]:
  """Median and minimum of warm batch-1 calls, in ms."""
  infer = tf.function(lambda x: model(x, training=False))
  x = tf.constant(clip[None])
  for _ in range(warmup):
    infer(x).numpy()
  samples = []
  for _ in range(runs):
    start = time.perf_counter()
    infer(x).numpy()
    samples.append((time.perf_counter() - start) * 1e3)
  return statistics.median(samples), min(samples)


def measure(name: str, args) -> dict:
  """Every number of one table row for zoo model ``name``."""
  tf.keras.backend.clear_session()
  genome = zoo.genome(name)
  model = zoo.build(name, args.num_classes)
  clips = _calibration_clips(genome, args.calibration_clips)
  row = {
    "name": name,
    "frames": genome.num_frames,
    "resolution": genome.resolution,
    "params": model.count_params(),
    "flops": cost.count_flops(model),
  }
  for fmt in quantize.FORMATS:
    start = time.perf_counter()
    converted = quantize.to_tflite(model, fmt, clips)
    row[f"{fmt}_convert_s"] = time.perf_counter() - start
    if fmt == quantize.INT8:
      row["fully_int8"] = converted.fully_int8
      row["float_ops"] = converted.summary()["float_ops"]
    for threads in THREADS:
      settings = latency.LatencySettings(
        threads=threads, use_xnnpack=True, warmup=args.warmup, runs=args.runs
      )
      measured = latency.measure_latency(converted, settings)
      row[f"{fmt}_{threads}t"] = measured.to_dict()
      print(
        f"  {name} {fmt} {threads} thread(s): {measured.median_ms:.1f} ms "
        f"(p10 {measured.p10_ms:.1f}, p90 {measured.p90_ms:.1f})",
        flush=True,
      )
  row["keras_ms"] = _keras_latency_ms(model, clips[0], args.warmup, args.runs)
  print(f"  {name} keras: {row['keras_ms'][0]:.1f} ms", flush=True)
  return row


def table(rows: list[dict]) -> str:
  """The markdown table of ``rows``."""
  lines = [
    "| model | input T×H² | params | GFLOPs | fully int8 | float 1T | "
    "float 2T | int8 1T | int8 2T | Keras TF | paper CPU |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ]
  for r in rows:
    cells = [
      r["name"],
      f"{r['frames']}×{r['resolution']}²",
      f"{r['params'] / 1e6:.1f} M",
      f"{r['flops'] / 1e9:.2f}",
      "yes" if r["fully_int8"] else "no: " + ", ".join(r["float_ops"]),
    ]
    cells += [
      f"{r[f'{fmt}_{t}t']['median_ms']:.0f} ({r[f'{fmt}_{t}t']['min_ms']:.0f})"
      for fmt in (quantize.FLOAT, quantize.INT8)
      for t in THREADS
    ]
    cells += [f"{r['keras_ms'][0]:.0f} ({r['keras_ms'][1]:.0f})", PAPER_CPU_MS.get(r["name"], "–")]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--names", default="tvn1,tvn2,tvn3,tvn4,tvn_mobile1,tvn_mobile2")
  parser.add_argument(
    "--num_classes", type=int, default=400, help="width of the head (Kinetics-400 by default)"
  )
  parser.add_argument("--calibration_clips", type=int, default=8)
  parser.add_argument("--warmup", type=int, default=5)
  parser.add_argument("--runs", type=int, default=30)
  parser.add_argument("--json", default=None, help="also write every number here")
  args = parser.parse_args()

  rows, load_start = [], os.getloadavg()[0]
  for name in args.names.split(","):
    print(f"{name}: converting and measuring ...", flush=True)
    rows.append(measure(name, args))
  host = rows[0]["int8_1t"]["host"]
  print(
    f"\nms per clip, median (min) of {args.runs} runs after {args.warmup} "
    f"warm-up, batch 1, {args.num_classes} classes, XNNPACK on; LiteRT "
    f"{host['litert']}, {host['cpu']}, {host['cpu_count']} usable cores, "
    f"AVX2 {host['avx2']}, AVX-512 VNNI {host['avx512_vnni']}, AVX-VNNI "
    f"{host['avx_vnni']}; 1-min load average {load_start:.1f} at the start, "
    f"{os.getloadavg()[0]:.1f} at the end\n"
  )
  print(table(rows))
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump(rows, f, indent=1)


if __name__ == "__main__":
  main()
