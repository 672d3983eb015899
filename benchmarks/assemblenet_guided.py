r"""Connection-learning-guided vs unguided AssembleNet mutation, equal budget.

Runs the AssembleNet smoke search (gin/assemblenet/smoke.gin) twice per seed:
``AssembleNetMethod.guided = True`` (children drop the edges their parent
learned to weigh below ``drop_threshold``, then one random change) and
``False`` (one random change, which may drop a random edge). Same seed, same
candidates, same training budget; the initial random population is the same
graphs with the same training seeds in both arms, so the arms differ only in
how children are made. That population is trained once, in the guided arm:
the unguided arm's workdir starts with copies of those records (the search
resumes from them), which saves a third of the benchmark's time.

  nice -n 10 python benchmarks/assemblenet_guided.py            # 3 seeds
  python benchmarks/assemblenet_guided.py --seeds=0 \
      --gin_bindings='Search.num_candidates=6'

Prints one markdown row per (arm, seed) and the per-arm means: best
validation accuracy, mean accuracy of the mutated children, and their mean
edge count.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def _edges(genome: dict) -> int:
  return sum(len(n["inputs"]) for n in genome["nodes"] if "inputs" in n)


def _copy_initial_records(source_dir: str, run_dir: str) -> None:
  """Copies the records of the random initial population (no parent)."""
  source = os.path.join(source_dir, "candidates")
  target = os.path.join(run_dir, "candidates")
  os.makedirs(target, exist_ok=True)
  for name in sorted(os.listdir(source)):
    with open(os.path.join(source, name)) as f:
      if json.load(f).get("parent") is None:
        shutil.copy(os.path.join(source, name), os.path.join(target, name))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--gin_file", default="gin/assemblenet/smoke.gin")
  parser.add_argument("--gin_bindings", action="append", default=[])
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--workdir", default=None, help="default: a new temporary folder")
  args = parser.parse_args()

  workdir = args.workdir or tempfile.mkdtemp(prefix="vsearch_asn_guided_")
  data_dir = os.path.join(workdir, "tensorflow_datasets")
  from vsearch.search.store import RecordStore

  rows = {}
  for seed in [int(s) for s in args.seeds.split(",")]:
    for arm, guided in (("guided", True), ("unguided", False)):
      run_dir = os.path.join(workdir, f"{arm}_seed{seed}")
      if not guided:
        _copy_initial_records(os.path.join(workdir, f"guided_seed{seed}"), run_dir)
      command = [
        sys.executable,
        "-m",
        "launch.search",
        f"--workdir={run_dir}",
        f"--gin_file={args.gin_file}",
        f"--gin_bindings=load_dataset.data_dir='{data_dir}'",
        f"--gin_bindings=Search.seed={seed}",
        f"--gin_bindings=AssembleNetMethod.guided={guided}",
      ]
      command += [f"--gin_bindings={b}" for b in args.gin_bindings]
      start = time.monotonic()
      subprocess.run(command, cwd=REPO, check=True)
      wall = time.monotonic() - start
      records = [r for r in RecordStore(run_dir).read_all() if r.ok]
      children = [r for r in records if r.parent]
      rows[(arm, seed)] = dict(
        best=max(r.fitness for r in records),
        best_child=max((r.fitness for r in children), default=float("nan")),
        mean_child=statistics.mean(r.fitness for r in children) if children else float("nan"),
        edges=statistics.mean(_edges(r.genome) for r in children) if children else float("nan"),
        dropped=sum("dropped" in r.mutation for r in children),
        children=len(children),
        wall=wall,
      )
      print(json.dumps({"arm": arm, "seed": seed, **rows[(arm, seed)]}), flush=True)

  print(
    "\n| arm | seed | best acc | best child | mean child acc | child edges "
    "| guided drops | wall |\n|---|---|---|---|---|---|---|---|"
  )
  for (arm, seed), row in rows.items():
    print(
      f"| {arm} | {seed} | {row['best']:.3f} | {row['best_child']:.3f} | "
      f"{row['mean_child']:.3f} | {row['edges']:.1f} | "
      f"{row['dropped']}/{row['children']} | {row['wall']:.0f} s |"
    )
  for arm in ("guided", "unguided"):
    mine = [row for (a, _), row in rows.items() if a == arm]
    print(
      f"| {arm} | mean | {statistics.mean(r['best'] for r in mine):.3f} | "
      f"{statistics.mean(r['best_child'] for r in mine):.3f} | "
      f"{statistics.mean(r['mean_child'] for r in mine):.3f} | "
      f"{statistics.mean(r['edges'] for r in mine):.1f} | | |"
    )


if __name__ == "__main__":
  main()
