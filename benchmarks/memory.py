r"""Resident memory of one search process over many candidates: does it stay flat?

Runs the real search (``launch.search``) on smoke-sized candidates in one
process and samples its resident memory (RSS) each time a candidate's record
appears, i.e. after the candidate is over and its graphs are freed. Prints the
table, writes a plot, and checks that RSS after candidate 50 is at most 1.1x
RSS after candidate 5:

  python benchmarks/memory.py                      # 50 candidates, plot in memory.png
  python benchmarks/memory.py --candidates=60 --plot=/tmp/memory.png

The candidates are tiny TVNs (gin/tvn/smoke.gin made smaller), so the run
measures what each candidate leaves behind, not the cost of training.
"""

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time

import psutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# gin/tvn/smoke.gin, shrunk: a few seconds of tracing and training per candidate.
TINY = (
  "synthetic_motion_config.num_classes = 2",
  "synthetic_motion_config.num_frames = 4",
  "synthetic_motion_config.resolution = 16",
  "synthetic_motion_config.train_per_class = 4",
  "synthetic_motion_config.validation_per_class = 2",
  "Evolution.population_size = 4",
  "Evolution.tournament_size = 2",
  "TrainConfig.steps = 2",
  "TrainConfig.steps_per_call = 2",
  "TrainConfig.batch_size = 4",
  "TrainConfig.eval_batch_size = 4",
  "TvnSearchSpace.resolutions = (16,)",
  "TvnSearchSpace.frame_counts = (4,)",
  "TvnSearchSpace.min_blocks = 1",
  "TvnSearchSpace.max_blocks = 2",
  "TvnSearchSpace.filters = (8,)",
  "TvnSearchSpace.min_output_size = 1",
)


def sample(
  candidates: int, workdir: str, extra_bindings: list[str]
) -> list[tuple[int, float, float]]:
  """Runs the search; returns (candidates done, seconds, RSS in MiB) after each candidate."""
  data_dir = os.path.join(workdir, "tensorflow_datasets")
  command = [
    sys.executable,
    "-m",
    "launch.search",
    f"--workdir={workdir}",
    "--gin_file=gin/tvn/smoke.gin",
    f"--gin_bindings=load_dataset.data_dir='{data_dir}'",
    f"--gin_bindings=Search.num_candidates={candidates}",
  ]
  command += [f"--gin_bindings={b}" for b in TINY + tuple(extra_bindings)]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  log = open(os.path.join(workdir, "search.log"), "w")
  search = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
  process, start, samples = psutil.Process(search.pid), time.monotonic(), []
  try:
    while True:
      done = len(glob.glob(os.path.join(workdir, "candidates", "*.json")))
      if done > len(samples):
        rss = process.memory_info().rss / 2**20
        samples += [(n, time.monotonic() - start, rss) for n in range(len(samples) + 1, done + 1)]
        print(f"{done:4d} {samples[-1][1]:7.0f} s {rss:8.0f} MiB", flush=True)
      if search.poll() is not None:
        break
      time.sleep(0.05)
  finally:
    if search.poll() is None:
      search.terminate()
    search.wait()
    log.close()
  if search.returncode:
    raise SystemExit(f"the search failed (exit {search.returncode}); see {log.name}")
  return samples


def plot(samples: list[tuple[int, float, float]], path: str, title: str) -> None:
  import matplotlib

  matplotlib.use("Agg")
  from matplotlib import pyplot

  figure, axes = pyplot.subplots(figsize=(6, 3.2), dpi=80)
  axes.plot([n for n, _, _ in samples], [rss for _, _, rss in samples], marker=".")
  rss5 = next(rss for n, _, rss in samples if n == 5)
  axes.axhline(1.1 * rss5, color="grey", linestyle="--", label="1.1x RSS after candidate 5")
  axes.set_xlabel("candidates done")
  axes.set_ylabel("resident memory (MiB)")
  axes.set_ylim(0, max(1.25 * rss5, 1.05 * max(rss for _, _, rss in samples)))
  axes.set_title(title, fontsize=9)
  axes.legend(fontsize=8, loc="lower right")
  figure.tight_layout()
  figure.savefig(path)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--candidates", type=int, default=50)
  parser.add_argument("--plot", default=os.path.join(REPO, "benchmarks", "memory.png"))
  parser.add_argument("--gin_bindings", action="append", default=[])
  parser.add_argument("--workdir", default=None, help="default: a new temporary folder")
  args = parser.parse_args()
  if args.candidates < 5:
    parser.error("--candidates must be at least 5: the check compares with candidate 5")

  workdir = args.workdir or tempfile.mkdtemp(prefix="vsearch_memory_")
  os.makedirs(workdir, exist_ok=True)
  samples = sample(args.candidates, workdir, args.gin_bindings)
  print("\n| candidates done | minutes | RSS (MiB) |\n|---|---|---|")
  for n, seconds, rss in samples:
    if n in (1, 2, 5) or n % 10 == 0 or n == len(samples):
      print(f"| {n} | {seconds / 60:.1f} | {rss:.0f} |")
  last = min(50, len(samples))
  rss5, rss_last = samples[4][2], samples[last - 1][2]
  growth = (samples[-1][2] - rss5) / max(len(samples) - 5, 1)
  verdict = "pass" if rss_last <= 1.1 * rss5 else "FAIL"
  print(
    f"\nRSS after candidate {last}{'' if last == 50 else ' (the last; 50 is the check)'}: "
    f"{rss_last:.0f} MiB = {rss_last / rss5:.2f}x after candidate 5 "
    f"({rss5:.0f} MiB); limit 1.1x: {verdict}. "
    f"Mean change after candidate 5: {growth:+.1f} MiB per candidate."
  )
  plot(samples, args.plot, f"One search process, {len(samples)} smoke candidates: {verdict}")
  print(f"plot: {args.plot}; the search's log and records: {workdir}")
  if verdict != "pass":
    sys.exit(1)


if __name__ == "__main__":
  main()
