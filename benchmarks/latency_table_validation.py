r"""Predicted (latency table) against measured latency of whole TVNs.

For each suite, random genomes are drawn from a search space (seeded); a
table covering their stages is prepared (``vsearch.methods.tvn.latency_table.prepare``,
int8, plus 8 fit genomes for the fixed cost and scale), the validation genomes are
converted whole into the same folder, and the standalone device script
(``profile_tflite.py``, a TensorFlow-free subprocess) times the table entries
and the whole models in one run, rounds interleaved, so load on a shared
machine hits both alike. Then each whole model's predicted latency is
compared with its measured median.

  nice -n 10 python benchmarks/latency_table_validation.py \
      --out=/tmp/lt_validation --json=/tmp/lt_validation.json

Suites: 'smoke' (gin/tvn/smoke.gin's space, 4 classes), 'real' (a
real-scale space, below, 101 classes) and 'zoo' (the published TVNs, 101
classes).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from launch import common

common.quiet_tensorflow(False)
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import gin

from vsearch import configurables  # noqa: F401  (registers every gin configurable)
from vsearch.methods import zoo
from vsearch.methods.tvn import TvnMethod, TvnSearchSpace, latency_table

# Real-scale clips (128-224 px, 2-8 frames) and TVN-like block choices, with
# widths capped at 128 x 4 and every spatial op striding, so 50 genomes
# convert and run in minutes on 2 CPU cores. The zoo TVNs add the full widths.
REAL_SCALE = dict(
  resolutions=(128, 160, 224),
  frame_counts=(2, 4, 8),
  min_blocks=2,
  max_blocks=5,
  spatial_kernels=(1, 2, 3, 4, 5),
  spatial_strides=(2, 3, 4),
  temporal_kernels=(1, 2, 3),
  temporal_strides=(1, 2),
  repeats=(1, 2, 3),
  filters=(16, 32, 64, 128),
  expands=(1, 2, 4),
  squeeze_ratios=(0.0, 0.25, 0.5),
  inverted_bottlenecks=(False, True),
  activations=("relu", "hswish"),
)


def smoke_space() -> TvnSearchSpace:
  gin.clear_config()
  gin.add_config_file_search_path(ROOT)
  gin.parse_config_files_and_bindings([os.path.join(ROOT, "gin", "tvn", "smoke.gin")], [])
  space = TvnSearchSpace()
  gin.clear_config()
  return space


def load_average() -> str:
  return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_suite(
  name: str,
  space: TvnSearchSpace,
  num_classes: int,
  num_genomes: int,
  seed: int,
  with_zoo: bool,
  out: str,
  rounds: int,
  runs: int,
  num_fit_genomes: int = 8,
) -> dict:
  rng = np.random.default_rng(seed)
  method = TvnMethod(space=space)
  whole = {f"val{i:03d}": method.sample(rng) for i in range(num_genomes)}
  if with_zoo:
    whole.update({n: zoo.genome(n) for n in zoo.names() if n.startswith("tvn")})
  directory = os.path.join(out, name)
  start = time.monotonic()
  latency_table.prepare(
    directory,
    space,
    num_classes,
    formats=("int8",),
    genomes=list(whole.values()),
    whole_genomes=whole,
    num_fit_genomes=num_fit_genomes,
    seed=seed + 1,
  )
  prepare_s = time.monotonic() - start
  load_before = load_average()
  start = time.monotonic()
  subprocess.run(
    [
      sys.executable,
      os.path.join(directory, "profile_tflite.py"),
      directory,
      f"--rounds={rounds}",
      f"--runs={runs}",
    ],
    check=True,
  )
  profile_s = time.monotonic() - start
  table = latency_table.LatencyTable(os.path.join(directory, latency_table.TABLE))
  rows = []
  for genome_name, (genome, measured) in table.measured_genomes("int8").items():
    if genome_name.startswith("fit"):
      continue
    predicted = table.predict(genome, "int8").latency_ms
    rows.append(
      {
        "genome": genome_name,
        "measured_ms": measured,
        "predicted_ms": predicted,
        "error": (predicted - measured) / measured,
      }
    )
  random_rows = [r for r in rows if r["genome"].startswith("val")]
  zoo_rows = [r for r in rows if not r["genome"].startswith("val")]
  result = {
    "suite": name,
    "num_classes": num_classes,
    "seed": seed,
    "num_entries": len(table._data["entries"]),
    "fixed_ms": table.fixed_ms("int8"),
    "scale": table.calibration("int8")[1],
    "null_ms": table._data["timings"]["int8"]["entries"]["null"]["median_ms"],
    "device": table.device,
    "settings": table.settings,
    "prepare_s": prepare_s,
    "profile_s": profile_s,
    "load_average_before": load_before,
    "load_average_after": load_average(),
    "table_sha256": table.sha256,
    # Files LiteRT could not run on this machine (not timed, not in the rows).
    "failed": table._data.get("failed", {}),
    "random": summarize(random_rows),
    "zoo": summarize(zoo_rows),
    "rows": rows,
  }
  print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))
  for row in rows:
    print(
      f"{row['genome']:>12}  measured {row['measured_ms']:9.3f} ms  "
      f"predicted {row['predicted_ms']:9.3f} ms  "
      f"error {100 * row['error']:+6.1f} %"
    )
  return result


def summarize(rows: list[dict]) -> dict:
  if not rows:
    return {}
  errors = [abs(r["error"]) for r in rows]
  worst = max(rows, key=lambda r: abs(r["error"]))
  return {
    "count": len(rows),
    "median_abs_error": statistics.median(errors),
    "p90_abs_error": float(np.percentile(errors, 90)),
    "worst": worst,
    "measured_ms_range": [min(r["measured_ms"] for r in rows), max(r["measured_ms"] for r in rows)],
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=True, help="folder for the tables")
  parser.add_argument("--json", default=None, help="write the results here")
  parser.add_argument("--suites", default="smoke,real,zoo")
  parser.add_argument("--num_genomes", type=int, default=50)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--runs", type=int, default=10)
  parser.add_argument(
    "--num_fit_genomes", type=int, default=8, help="whole genomes (seed + 1) that fit the table"
  )
  args = parser.parse_args()
  results = []
  for suite in args.suites.split(","):
    if suite == "smoke":
      results.append(
        run_suite(
          "smoke",
          smoke_space(),
          4,
          args.num_genomes,
          args.seed,
          False,
          args.out,
          args.rounds,
          args.runs,
          args.num_fit_genomes,
        )
      )
    elif suite == "real":
      results.append(
        run_suite(
          "real",
          TvnSearchSpace(**REAL_SCALE),
          101,
          args.num_genomes,
          args.seed,
          False,
          args.out,
          args.rounds,
          args.runs,
          args.num_fit_genomes,
        )
      )
    elif suite == "zoo":
      # The published TVNs alone; at 100-1000 ms the fixed cost does not
      # matter, so no fit genomes (it is the invoke overhead).
      results.append(
        run_suite(
          "zoo",
          TvnSearchSpace(**REAL_SCALE),
          101,
          0,
          args.seed,
          True,
          args.out,
          args.rounds,
          args.runs,
          num_fit_genomes=0,
        )
      )
    else:
      parser.error(f"unknown suite {suite!r}")
    if args.json:
      with open(args.json, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
  main()
