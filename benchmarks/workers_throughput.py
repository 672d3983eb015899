r"""Candidates per hour with 1 search worker and with N workers sharing one store.

Prepares the dataset once, then runs the same search twice in fresh workdirs:
one worker on all cores, and N workers each pinned to its share of the cores
(``--cpus``), and prints a table of wall time and candidates per hour:

  python benchmarks/workers_throughput.py                 # smoke, 12 candidates, 2 workers
  python benchmarks/workers_throughput.py --workers=4 --gin_bindings='Search.num_candidates=24'

``--pinned`` compares 1 worker pinned to one core with N workers pinned to
one core each (the per-host situation of a TPU pod, where each host has its
own chips), so what the ratio loses below N is the protocol's own overhead
(markers, heartbeats, reading the records, waiting for a parent):

  python benchmarks/workers_throughput.py --pinned        # 1 worker on core 0 vs 2 on cores 0 and 1

The search's randomness differs between the runs (several workers select
parents from whatever is recorded when they start a child), so the
candidates are not the same ones; with 12+ candidates the mix of sizes is
comparable.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def _search(workdir, args, data_dir, worker_id, cpus):
  command = [
    sys.executable,
    "-m",
    "launch.search",
    f"--workdir={workdir}",
    f"--gin_file={args.gin_file}",
    f"--worker_id={worker_id}",
    f"--gin_bindings=load_dataset.data_dir='{data_dir}'",
    f"--cpus={cpus}",
  ]
  command += [f"--gin_bindings={b}" for b in args.gin_bindings]
  return subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL)


def _run(label, args, data_dir, cpu_sets):
  workdir = tempfile.mkdtemp(prefix=f"vsearch_workers_{label}_")
  start = time.monotonic()
  workers = [_search(workdir, args, data_dir, f"w{i}", cpus) for i, cpus in enumerate(cpu_sets)]
  for worker in workers:
    if worker.wait() != 0:
      raise SystemExit(f"a worker of the {label} run failed")
  wall = time.monotonic() - start
  from vsearch.search.store import RecordStore

  records = RecordStore(workdir).read_all()
  busy = sum(r.timings["total_s"] for r in records)
  best = max((r.fitness for r in records if r.ok), default=float("nan"))
  return dict(
    label=label,
    workers=len(cpu_sets),
    candidates=len(records),
    wall=wall,
    per_hour=len(records) / wall * 3600,
    busy=busy,
    best=best,
  )


def plan(cores: list[int], workers: int, pinned: bool) -> list[tuple[str, list[str]]]:
  """The runs to compare: (label, the --cpus of each worker)."""
  if len(cores) < workers:
    raise SystemExit(f"{workers} workers need {workers} cores; this host has {cores}")
  if pinned:
    return [("one", [str(cores[0])]), ("many", [str(core) for core in cores[:workers]])]
  shares = [cores[i::workers] for i in range(workers)]
  return [("one", [",".join(map(str, cores))]), ("many", [",".join(map(str, s)) for s in shares])]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--gin_file", default="gin/tvn/smoke.gin")
  parser.add_argument("--gin_bindings", action="append", default=["Search.num_candidates=12"])
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument(
    "--pinned", action="store_true", help="1 worker on one core vs N workers on one core each"
  )
  args = parser.parse_args()

  cores = sorted(os.sched_getaffinity(0))
  runs = plan(cores, args.workers, args.pinned)
  data_dir = tempfile.mkdtemp(prefix="vsearch_workers_data_")
  # Generate the dataset once, outside the timings.
  prepare = (
    "import sys; sys.argv=['x']; from launch import common; "
    "common.import_vsearch(False); "
    f"common.parse_gin([{args.gin_file!r}], {args.gin_bindings!r} + "
    f"[\"load_dataset.data_dir='{data_dir}'\"]); "
    "from vsearch.data import datasets; datasets.load_dataset()"
  )
  subprocess.run([sys.executable, "-c", prepare], cwd=REPO, check=True)

  results = [_run(label, args, data_dir, cpu_sets) for label, cpu_sets in runs]
  mode = "pinned, one core per worker" if args.pinned else "the same cores shared out"
  print(f"\n{args.gin_file} {' '.join(args.gin_bindings)}; cores {cores}; {mode}\n")
  print(
    "| workers | cores | candidates | wall s | candidates/hour | "
    "summed candidate s | best fitness |\n|---|---|---|---|---|---|---|"
  )
  for r, (_, cpu_sets) in zip(results, runs):
    print(
      f"| {r['workers']} | {' / '.join(cpu_sets)} | {r['candidates']} | {r['wall']:.0f} | "
      f"{r['per_hour']:.0f} | {r['busy']:.0f} | {r['best']:.3f} |"
    )
  ratio = results[1]["per_hour"] / results[0]["per_hour"]
  print(f"\ncandidates per hour, {args.workers} workers / 1: {ratio:.2f}x")
  if args.pinned:
    target = 0.9 * args.workers
    print(f"target >= {target:.1f}x (90% of linear): {'pass' if ratio >= target else 'FAIL'}")


if __name__ == "__main__":
  main()
