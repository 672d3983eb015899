r"""Regularized evolution against random search at equal budgets.

The central claim of the evolutionary video searches is that evolution finds
better architectures than random sampling for the same number of trained
candidates. This runs both on the synthetic smoke data, with the same search
seeds (so each pair starts from the same random genomes), then compares the
best fitness found against candidates evaluated:

  nice -n 10 python benchmarks/evolution_vs_random.py            # run + table + plot
  python benchmarks/evolution_vs_random.py --analyze_only        # table + plot of what exists
  python benchmarks/evolution_vs_random.py --variants=latency    # TVN under a runtime limit

Runs live in ``--root/<variant>/<selection>/seed<n>`` and resume like any
search; rerunning the command finishes what is missing. Two searches run at a
time (``--parallel``): the models are small, so two processes use two cores
better than one, and a pair (evolution and random, same seed) shares the load.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# variant -> its gin file.
VARIANTS = {
    "accuracy": "gin/bench/evolution_vs_random.gin",
    "latency": "gin/bench/evolution_vs_random_latency.gin",
}
# selection -> the bindings that choose it.
SELECTIONS = {
    "evolution": [],
    "random": ["Search.evolution = @RandomSearch()"],
}


def _workdir(root: str, variant: str, selection: str, seed: int) -> str:
  return os.path.join(root, variant, selection, f"seed{seed}")


def _prepare_data(gin_file: str, data_dir: str) -> None:
  """Generates the dataset once, before parallel searches would race to."""
  code = ("from launch import common; common.quiet_tensorflow(False); "
          f"common.parse_gin([{gin_file!r}], [\"load_dataset.data_dir = {data_dir!r}\"]); "
          "from vsearch.data import datasets; datasets.load_dataset()")
  subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def run_searches(root: str, variants, seeds, parallel: int) -> None:
  """Runs (or resumes) every search, ``parallel`` at a time; logs beside each workdir."""
  data_dir = os.path.join(root, "tensorflow_datasets")
  jobs = []
  for variant in variants:
    _prepare_data(VARIANTS[variant], data_dir)
    for seed in seeds:
      for selection, bindings in SELECTIONS.items():
        workdir = _workdir(root, variant, selection, seed)
        os.makedirs(workdir, exist_ok=True)
        command = [sys.executable, "-m", "launch.search", f"--workdir={workdir}",
                   f"--gin_file={VARIANTS[variant]}",
                   f"--gin_bindings=load_dataset.data_dir = '{data_dir}'",
                   f"--gin_bindings=Search.seed = {seed}"]
        command += [f"--gin_bindings={b}" for b in bindings]
        jobs.append((workdir, command))
  running = []
  while jobs or running:
    while jobs and len(running) < parallel:
      workdir, command = jobs.pop(0)
      log = open(workdir + ".log", "a")  # pylint: disable=consider-using-with
      print(f"start {workdir}", flush=True)
      running.append((workdir, subprocess.Popen(command, cwd=REPO, stdout=log,
                                                stderr=subprocess.STDOUT), log))
    time.sleep(2)
    for job in list(running):
      workdir, process, log = job
      if process.poll() is not None:
        log.close()
        running.remove(job)
        print(f"done  {workdir} (exit {process.returncode})", flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--root", default=os.path.join(REPO, "workdirs", "evolution_vs_random"))
  parser.add_argument("--variants", default="accuracy",
                      help=f"comma-separated, of {sorted(VARIANTS)}")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--parallel", type=int, default=2)
  parser.add_argument("--analyze_only", action="store_true")
  parser.add_argument("--plot", default=None, help="PNG path; default ROOT/<variant>.png")
  args = parser.parse_args()
  variants = args.variants.split(",")
  unknown = set(variants) - VARIANTS.keys()
  if unknown:
    parser.error(f"unknown variants {sorted(unknown)}; choose from {sorted(VARIANTS)}")
  seeds = [int(s) for s in args.seeds.split(",")]
  start = time.monotonic()
  if not args.analyze_only:
    run_searches(args.root, variants, seeds, args.parallel)
    print(f"searches took {time.monotonic() - start:.0f} s", flush=True)


if __name__ == "__main__":
  main()
