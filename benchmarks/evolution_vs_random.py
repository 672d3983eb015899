r"""Regularized evolution against random search at equal budgets.

The central claim of the evolutionary video searches is that evolution finds
better architectures than random sampling for the same number of trained
candidates. This runs both on the synthetic smoke data, with the same search
seeds (so each pair starts from the same random genomes), then compares the
best fitness found against candidates evaluated:

  python benchmarks/evolution_vs_random.py --variants=latency --seeds=0,1,2,3,4 \
      --early_stopping --baselines=benchmarks/baselines/hand_2plus1d_32px.json
  python benchmarks/evolution_vs_random.py --variants=accuracy --seeds=0,1,2
  python benchmarks/evolution_vs_random.py --variants=latency --analyze_only

For each variant it prints the best fitness after n candidates per seed and
its median, how many candidates evolution needs to reach random search's
final median best, one-sided permutation tests (the final bests paired by
seed; the fitness of every candidate after the shared initial population),
and, with ``--early_stopping``, what early stopping saved and cost. Hand-made
baselines (``--baselines``: genome files) are trained at the same budget,
through the same gate, one run per ``--baseline_seeds``.

Runs live in ``--root/<variant>/<selection>/seed<n>`` and resume like any
search; rerunning the command finishes what is missing. Two searches run at a
time (``--parallel``): the models are small, so two processes use two cores
better than one, and a pair (evolution and random, same seed) shares the load.
Run one invocation per root at a time: two searches on one workdir compute
the same candidates and the slower one stops at the first record the other
wrote (records are never overwritten, so the results stay correct).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Candidates before this index are the random initial population of both
# selections (Evolution.population_size in the benchmark's gin files).
INITIAL = 8

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
# Evolution with early stopping, run with --early_stopping.
EARLY_STOPPING = {"evolution_stop": ["Search.early_stopping = @EarlyStopping()"]}


def _workdir(root: str, variant: str, selection: str, seed: int) -> str:
  return os.path.join(root, variant, selection, f"seed{seed}")


def _prepare_data(gin_file: str, data_dir: str) -> None:
  """Generates the dataset once, before parallel searches would race to."""
  code = (
    "from launch import common; common.quiet_tensorflow(False); "
    f'common.parse_gin([{gin_file!r}], ["load_dataset.data_dir = {data_dir!r}"]); '
    "from vsearch.data import datasets; datasets.load_dataset()"
  )
  subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def _baseline_runs(baselines) -> dict[str, list[str]]:
  """A one-candidate search per baseline genome file and seed, gate measuring only."""
  runs = {}
  for path in baselines:
    name = "baseline_" + os.path.splitext(os.path.basename(path))[0]
    runs[name] = [
      "Search.num_candidates = 1",
      f"Search.initial_genomes = [{os.path.abspath(path)!r}]",
      "RuntimeGate.max_latency_ms = None",
    ]
  return runs


def run_searches(
  root: str, variants, seeds, parallel: int, selections, baselines, baseline_seeds
) -> None:
  """Runs (or resumes) every search, ``parallel`` at a time; logs beside each workdir."""
  data_dir = os.path.join(root, "tensorflow_datasets")
  jobs = []
  for variant in variants:
    _prepare_data(VARIANTS[variant], data_dir)
    runs = [
      (seed, selection, bindings) for seed in seeds for selection, bindings in selections.items()
    ]
    runs += [
      (seed, name, bindings)
      for name, bindings in _baseline_runs(baselines).items()
      for seed in baseline_seeds
    ]
    for seed, selection, bindings in runs:
      workdir = _workdir(root, variant, selection, seed)
      os.makedirs(workdir, exist_ok=True)
      command = [
        sys.executable,
        "-m",
        "launch.search",
        f"--workdir={workdir}",
        f"--gin_file={VARIANTS[variant]}",
        f"--gin_bindings=load_dataset.data_dir = '{data_dir}'",
        f"--gin_bindings=Search.seed = {seed}",
      ]
      command += [f"--gin_bindings={b}" for b in bindings]
      jobs.append((workdir, command))
  running = []
  while jobs or running:
    while jobs and len(running) < parallel:
      workdir, command = jobs.pop(0)
      log = open(workdir + ".log", "a")
      print(f"start {workdir}", flush=True)
      running.append(
        (workdir, subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT), log)
      )
    time.sleep(2)
    for job in list(running):
      workdir, process, log = job
      if process.poll() is not None:
        log.close()
        running.remove(job)
        print(f"done  {workdir} (exit {process.returncode})", flush=True)


def _curves(root: str, variant: str, seeds, selections) -> tuple[dict, dict]:
  """Per selection and seed: best fitness so far after each candidate, and the records."""
  from vsearch.report import analysis, load

  curves, records = {}, {}
  for selection in selections:
    for seed in seeds:
      workdir = _workdir(root, variant, selection, seed)
      if os.path.isdir(os.path.join(workdir, "candidates")):
        records.setdefault(selection, {})[seed] = load.load_search(workdir).records
        curves.setdefault(selection, {})[seed] = analysis.best_so_far(records[selection][seed])
  return curves, records


def later_candidates(records: dict) -> str:
  """Markdown: the candidates after the shared initial population, per seed.

  The best-so-far is a maximum of noisy accuracies; the mean fitness of all
  later candidates and how many of them beat the initial population's best
  say whether selection sent the search to a better region.
  """
  lines = [
    "| selection | seed | later candidates | failed or over limit | mean fitness | "
    "beat the initial best |",
    "|---|---|---|---|---|---|",
  ]
  for selection, by_seed in records.items():
    for seed, recs in sorted(by_seed.items()):
      initial = [r.fitness for r in recs if r.index < INITIAL and r.ok]
      later = [r for r in recs if r.index >= INITIAL]
      fitnesses = [r.fitness for r in later if r.ok]
      if not later or not initial:
        continue
      mean = statistics.mean(fitnesses) if fitnesses else None
      lines.append(
        f"| {selection} | {seed} | {len(later)} | {sum(not r.ok for r in later)} | "
        f"{_fmt(mean)} | {sum(f > max(initial) for f in fitnesses)} |"
      )
  return "\n".join(lines)


def _at(curve: list, n: int):
  """Best fitness after ``n`` candidates, or None when the run has not got there."""
  return curve[n - 1] if len(curve) >= n else None


def _fmt(value) -> str:
  return "–" if value is None else f"{value:.3f}"


def table(curves: dict[str, dict[int, list]], checkpoints) -> str:
  """Markdown: best fitness after n candidates, per seed and the median over seeds."""
  lines = [
    "| selection | seed | " + " | ".join(f"best after {n}" for n in checkpoints) + " |",
    "|---|---|" + "---|" * len(checkpoints),
  ]
  for selection, by_seed in curves.items():
    for seed, curve in sorted(by_seed.items()):
      lines.append(
        f"| {selection} | {seed} | " + " | ".join(_fmt(_at(curve, n)) for n in checkpoints) + " |"
      )
    medians = []
    for n in checkpoints:
      values = [_at(c, n) for c in by_seed.values()]
      medians.append(statistics.median(values) if values and None not in values else None)
    lines.append(f"| {selection} | **median** | " + " | ".join(_fmt(m) for m in medians) + " |")
  if {"evolution", "random"} <= curves.keys():
    seeds = sorted(curves["evolution"].keys() & curves["random"].keys())
    gaps = []
    for seed in seeds:
      ends = [_at(curves[s][seed], checkpoints[-1]) for s in ("evolution", "random")]
      if None not in ends:
        gaps.append(ends[0] - ends[1])
        lines.append(
          f"| evolution − random | {seed} | "
          + " | ".join(_fmt(_diff(curves, seed, n)) for n in checkpoints)
          + " |"
        )
    if gaps:
      lines.append(
        f"\nEvolution minus random after {checkpoints[-1]} candidates: "
        f"{', '.join(f'{g:+.3f}' for g in gaps)} (seeds {seeds}); median "
        f"{statistics.median(gaps):+.3f}; evolution ahead on "
        f"{sum(g > 0 for g in gaps)} of {len(gaps)} seeds, tied on "
        f"{sum(g == 0 for g in gaps)}."
      )
  return "\n".join(lines)


def _diff(curves, seed, n):
  a, b = _at(curves["evolution"][seed], n), _at(curves["random"][seed], n)
  return None if a is None or b is None else a - b


def plot(curves: dict[str, dict[int, list]], path: str, title: str) -> None:
  """Best fitness so far against candidates: thin lines per seed, thick the median."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  colors = {"evolution": "#d62728", "random": "#1f77b4"}
  # Evolution dashed and on top: where the medians coincide both stay visible.
  styles = {"evolution": "--", "random": "-"}
  fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
  for selection, by_seed in sorted(curves.items(), key=lambda item: item[0] == "evolution"):
    for curve in by_seed.values():
      xs = [i + 1 for i, y in enumerate(curve) if y is not None]
      ax.step(
        xs,
        [y for y in curve if y is not None],
        where="post",
        color=colors.get(selection),
        alpha=0.35,
        linewidth=1,
      )
    length = min(len(c) for c in by_seed.values())
    median = [
      statistics.median(c[i] for c in by_seed.values())
      if all(c[i] is not None for c in by_seed.values())
      else None
      for i in range(length)
    ]
    xs = [i + 1 for i, y in enumerate(median) if y is not None]
    ax.step(
      xs,
      [y for y in median if y is not None],
      where="post",
      color=colors.get(selection),
      linewidth=2.5,
      linestyle=styles.get(selection, "-"),
      label=f"{selection} (median of {len(by_seed)} seeds)",
    )
  ax.plot([], [], color="#999999", linewidth=1, label="one seed (thin)")
  ax.set_xlabel("candidates evaluated")
  ax.set_ylabel("best fitness so far")
  ax.set_title(title)
  ax.grid(True, alpha=0.3)
  ax.legend(loc="lower right")
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def permutation_p(a, b, rounds: int = 100_000, seed: int = 0) -> float:
  """One-sided p that mean(a) - mean(b) is this large when the labels are exchangeable."""
  import numpy as np

  pooled = np.asarray(list(a) + list(b), dtype=float)
  observed = np.mean(a) - np.mean(b)
  rng = np.random.default_rng(seed)
  hits = 0
  for _ in range(rounds):
    rng.shuffle(pooled)
    hits += pooled[: len(a)].mean() - pooled[len(a) :].mean() >= observed - 1e-12
  return (hits + 1) / (rounds + 1)


def sign_flip_p(differences) -> float:
  """Exact one-sided p of the mean paired difference, over every sign flip."""
  import itertools

  observed = statistics.mean(differences)
  flips = list(itertools.product((1, -1), repeat=len(differences)))
  hits = sum(
    statistics.mean(f * d for f, d in zip(signs, differences)) >= observed - 1e-12
    for signs in flips
  )
  return hits / len(flips)


def evidence(curves: dict, records: dict) -> str:
  """How many candidates evolution needs, and whether its lead is more than chance."""
  if not {"evolution", "random"} <= curves.keys():
    return ""
  seeds = sorted(curves["evolution"].keys() & curves["random"].keys())
  length = min(len(curves[s][seed]) for s in ("evolution", "random") for seed in seeds)
  median = {
    s: [statistics.median(curves[s][seed][i] or 0.0 for seed in seeds) for i in range(length)]
    for s in ("evolution", "random")
  }
  target = median["random"][-1]
  reach = next((i + 1 for i, v in enumerate(median["evolution"]) if v >= target), None)
  lines = [
    f"Random search's median best after {length} candidates: {target:.3f}; evolution's median "
    f"best reaches it after {reach if reach else 'more than ' + str(length)} candidates "
    f"(median best: evolution {median['evolution'][-1]:.3f}, random {target:.3f})."
  ]
  differences = [
    curves["evolution"][s][length - 1] - curves["random"][s][length - 1] for s in seeds
  ]
  lines.append(
    f"Final bests, evolution minus random, paired by seed: mean {statistics.mean(differences):+.3f};"
    f" exact sign-flip test, one-sided p = {sign_flip_p(differences):.3f} ({len(seeds)} seeds; "
    f"the smallest p {len(seeds)} seeds can give is {0.5 ** len(seeds):.3f})."
  )
  later = {
    s: [r.fitness for seed in seeds for r in records[s][seed] if r.index >= INITIAL and r.ok]
    for s in ("evolution", "random")
  }
  if later["evolution"] and later["random"]:
    lines.append(
      f"Fitness of every trained candidate after the initial population: evolution mean "
      f"{statistics.mean(later['evolution']):.3f} (n = {len(later['evolution'])}), random "
      f"{statistics.mean(later['random']):.3f} (n = {len(later['random'])}); permutation test, "
      f"one-sided p = {permutation_p(later['evolution'], later['random']):.4f}."
    )
  return "\n\n".join(lines)


def early_stopping_table(records: dict) -> str:
  """Markdown: time and best fitness with and without early stopping, per seed."""
  if not {"evolution", "evolution_stop"} <= records.keys():
    return ""
  lines = [
    "| seed | candidate time without | with | saved | stopped | best without | best with |",
    "|---|---|---|---|---|---|---|",
  ]
  for seed in sorted(records["evolution"].keys() & records["evolution_stop"].keys()):
    plain, stop = records["evolution"][seed], records["evolution_stop"][seed]
    time_plain = sum(r.timings.get("total_s", 0.0) for r in plain)
    time_stop = sum(r.timings.get("total_s", 0.0) for r in stop)
    best = lambda recs: max((r.fitness for r in recs if r.ok), default=None)
    lines.append(
      f"| {seed} | {time_plain:.0f} s | {time_stop:.0f} s | {1 - time_stop / time_plain:.0%} | "
      f"{sum(r.status == 'stopped' for r in stop)} | {_fmt(best(plain))} | {_fmt(best(stop))} |"
    )
  return "\n".join(lines)


def baseline_table(records: dict, searches: dict) -> str:
  """Markdown: each hand-made baseline and each search's best, with accuracy and latency."""
  from vsearch.report import analysis

  rows = []
  for name, by_seed in records.items():
    if not name.startswith("baseline_"):
      continue
    for seed, recs in sorted(by_seed.items()):
      for r in recs:
        rows.append((name[len("baseline_") :], seed, r))
  for selection in ("evolution", "random", "evolution_stop"):
    for seed, recs in sorted(searches.get(selection, {}).items()):
      best = max((r for r in recs if r.ok), key=lambda r: r.fitness, default=None)
      if best:
        rows.append((f"{selection} best ({best.id})", seed, best))
  if not rows:
    return ""
  key = analysis.accuracy_key([r for *_, r in rows])
  lines = [
    f"| model | seed | {key} ± s.e. | float accuracy | latency ms | parameters |",
    "|---|---|---|---|---|---|",
  ]
  for name, seed, r in rows:
    se = r.standard_error(key)
    lines.append(
      f"| {name} | {seed} | {_fmt(analysis.metric(r, key))} ± {_fmt(se)} | "
      f"{_fmt(analysis.metric(r, 'accuracy'))} | {_fmt(analysis.metric(r, 'latency_ms'))} | "
      f"{r.metrics.get('num_params', '–')} |"
    )
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--root", default=os.path.join(REPO, "workdirs", "evolution_vs_random"))
  parser.add_argument(
    "--variants", default="accuracy", help=f"comma-separated, of {sorted(VARIANTS)}"
  )
  parser.add_argument("--seeds", default="0,1,2,3,4")
  parser.add_argument(
    "--early_stopping", action="store_true", help="also run evolution with early stopping"
  )
  parser.add_argument("--baselines", default="", help="comma-separated genome files")
  parser.add_argument("--baseline_seeds", default="0,1,2")
  parser.add_argument("--parallel", type=int, default=2)
  parser.add_argument("--analyze_only", action="store_true")
  parser.add_argument("--plot", default=None, help="PNG path; default ROOT/<variant>.png")
  args = parser.parse_args()
  variants = args.variants.split(",")
  unknown = set(variants) - VARIANTS.keys()
  if unknown:
    parser.error(f"unknown variants {sorted(unknown)}; choose from {sorted(VARIANTS)}")
  seeds = [int(s) for s in args.seeds.split(",")]
  selections = {**SELECTIONS, **(EARLY_STOPPING if args.early_stopping else {})}
  baselines = [b for b in args.baselines.split(",") if b]
  baseline_seeds = [int(s) for s in args.baseline_seeds.split(",")]
  start = time.monotonic()
  if not args.analyze_only:
    run_searches(args.root, variants, seeds, args.parallel, selections, baselines, baseline_seeds)
    print(f"searches took {time.monotonic() - start:.0f} s", flush=True)
  for variant in variants:
    curves, records = _curves(args.root, variant, seeds, selections)
    _, baseline_records = _curves(args.root, variant, baseline_seeds, _baseline_runs(baselines))
    if not curves:
      print(f"{variant}: no runs in {args.root}")
      continue
    longest = max(len(c) for by_seed in curves.values() for c in by_seed.values())
    checkpoints = [n for n in (8, 12, 16, 20, 24, 32, 48) if n < longest] + [longest]
    search_curves = {k: v for k, v in curves.items() if k in SELECTIONS}
    print(
      f"\n## {variant} ({VARIANTS[variant]})\n\n{table(search_curves, checkpoints)}\n\n"
      f"{later_candidates(records)}\n\n{evidence(curves, records)}\n\n"
      f"{early_stopping_table(records)}\n\n{baseline_table(baseline_records, records)}"
    )
    path = args.plot or os.path.join(args.root, f"{variant}.png")
    plot(search_curves, path, f"Evolution vs random search ({variant})")
    print(f"\nplot: {path}")


if __name__ == "__main__":
  main()
