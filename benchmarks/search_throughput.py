r"""Candidates per hour of a search, and where a candidate's wall time goes.

Runs the README's smoke search from scratch (dataset generation included) in a
fresh workdir and data directory, then reads its records:

  python benchmarks/search_throughput.py            # gin/tvn/smoke.gin
  python benchmarks/search_throughput.py --gin_file=gin/tvn/smoke.gin \
      --gin_bindings='Search.num_candidates=8'
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

PHASES = ("build_s", "train_s", "evaluate_s")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--gin_file", default="gin/tvn/smoke.gin")
  parser.add_argument("--gin_bindings", action="append", default=[])
  parser.add_argument("--workdir", default=None, help="default: a new temporary folder")
  args = parser.parse_args()

  workdir = args.workdir or tempfile.mkdtemp(prefix="vsearch_bench_")
  data_dir = os.path.join(workdir, "tensorflow_datasets")
  command = [
    sys.executable,
    "-m",
    "launch.search",
    f"--workdir={workdir}",
    f"--gin_file={args.gin_file}",
    f"--gin_bindings=load_dataset.data_dir='{data_dir}'",
  ]
  command += [f"--gin_bindings={b}" for b in args.gin_bindings]
  start = time.monotonic()
  subprocess.run(command, cwd=REPO, check=True)
  wall = time.monotonic() - start

  from vsearch.search.store import RecordStore

  records = RecordStore(workdir).read_all()
  total = sum(r.timings["total_s"] for r in records)
  print(f"\n{args.gin_file}: {len(records)} candidates, {sum(not r.ok for r in records)} failed")
  print(
    f"wall time, dataset generation and start-up included: {wall:.0f} s "
    f"({len(records) / wall * 3600:.0f} candidates/hour)"
  )
  print(
    f"candidate time only: {total:.0f} s ({len(records) / total * 3600:.0f} candidates/hour), "
    f"so start-up and data generation took {wall - total:.0f} s"
  )
  print("\n| phase | median s per candidate | share of candidate time |\n|---|---|---|")
  ok = [r for r in records if r.ok]
  for phase in PHASES:
    print(
      f"| {phase[:-2]} | {statistics.median(r.timings[phase] for r in ok):.2f} | "
      f"{sum(r.timings[phase] for r in ok) / sum(r.timings['total_s'] for r in ok):.0%} |"
    )
  other = [r.timings["total_s"] - sum(r.timings[p] for p in PHASES) for r in ok]
  print(
    f"| other (selection, mutation, pipeline, record) | {statistics.median(other):.2f} | "
    f"{sum(other) / sum(r.timings['total_s'] for r in ok):.0%} |"
  )
  initial = [r.fitness for r in ok if r.parent is None]
  print(
    f"\nbest of the initial random population: {max(initial):.3f}; "
    f"best overall: {max(r.fitness for r in ok):.3f}"
  )


if __name__ == "__main__":
  main()
