r"""Peak memory and time of `launch.export` for zoo models at their published size.

Runs ``python -m launch.export --zoo=NAME`` once per model in a child process
and polls the resident memory of its whole process tree (the LiteRT runner is
a child of it) every 0.5 s. A watchdog kills the tree when it passes
``--cap_gb``, so a measurement never pushes a shared machine into the
kernel's OOM killer; a killed export is reported as over the cap. Prints a
markdown table: wall time, peak RSS, and the sizes, op checks and latencies
that ``export.json`` holds.

  python benchmarks/export_memory.py --names=assemblenet_plus50,evanet_a
  python benchmarks/export_memory.py --names=tvn2 --calibration_clips=16 --cap_gb=12

Untrained weights, calibrated on synthetic_motion clips (the default dataset,
generated into ``--data_dir`` on first use); latency is timed with few runs
(``--runs``) since the large models take seconds per clip.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIB = 2**30


def _rss(pid: int) -> int:
  try:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
      for line in f:
        if line.startswith("VmRSS:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return 0


def _tree(pid: int) -> list[int]:
  pids = [pid]
  try:
    for task in os.listdir(f"/proc/{pid}/task"):
      with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
        for child in f.read().split():
          pids += _tree(int(child))
  except OSError:
    pass
  return pids


def run_watched(command: list[str], cap_bytes: float, log_path: str) -> dict:
  """Runs ``command``; kills its process tree once its RSS passes the cap."""
  start = time.perf_counter()
  with open(log_path, "w", encoding="utf-8") as log:
    child = subprocess.Popen(
      command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    peak, killed = 0, False
    while child.poll() is None:
      total = sum(_rss(pid) for pid in _tree(child.pid))
      peak = max(peak, total)
      if total > cap_bytes:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        killed = True
        break
      time.sleep(0.5)
  return {
    "returncode": child.returncode,
    "killed_over_cap": killed,
    "peak_rss_gb": round(peak / GIB, 2),
    "wall_s": round(time.perf_counter() - start, 1),
  }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--names", default="assemblenet_plus50,assemblenet101,evanet_a")
  parser.add_argument("--cap_gb", type=float, default=13.0)
  parser.add_argument("--calibration_clips", type=int, default=8)
  parser.add_argument("--runs", type=int, default=3)
  parser.add_argument("--data_dir", default=os.path.join(tempfile.gettempdir(), "vsearch_tfds"))
  parser.add_argument("--out_dir", default=os.path.join(tempfile.gettempdir(), "export_memory"))
  parser.add_argument("--json", default=None, help="Also write the rows here.")
  args = parser.parse_args()
  rows = []
  for name in args.names.split(","):
    out = os.path.join(args.out_dir, name)
    command = [
      sys.executable,
      "-m",
      "launch.export",
      f"--zoo={name}",
      f"--out={out}",
      f"--gin_bindings=load_dataset.data_dir = '{args.data_dir}'",
      f"--gin_bindings=export.num_calibration_clips = {args.calibration_clips}",
      f"--gin_bindings=LatencySettings.runs = {args.runs}",
      "--gin_bindings=LatencySettings.warmup = 1",
      "--gin_bindings=LatencySettings.timeout_s = 1800",
    ]
    os.makedirs(out, exist_ok=True)
    print(f"{name}: exporting ...", flush=True)
    row = {"name": name, **run_watched(command, args.cap_gb * GIB, f"{out}.log")}
    summary_path = os.path.join(out, "export.json")
    if row["returncode"] == 0 and os.path.exists(summary_path):
      with open(summary_path, encoding="utf-8") as f:
        summary = json.load(f)
      row["num_params"] = summary["num_params"]
      for fmt in ("float", "int8"):
        entry = summary[f"tflite_{fmt}"]
        row[f"{fmt}_mb"] = round(entry["size_bytes"] / 1e6, 1)
        row[f"{fmt}_latency_ms"] = round(entry["latency_ms"], 1)
      int8 = summary["tflite_int8"]
      row["int8_float_layers"] = int8.get("float_layers", [])
      row["int8_outside_float_layers"] = int8.get("int8_outside_float_layers", int8["fully_int8"])
    print(json.dumps(row), flush=True)
    rows.append(row)
  print(
    f"\n| model | export s | peak RSS GB (cap {args.cap_gb:g}) | float MB | int8 MB "
    f"| int8 outside float layers | float ms | int8 ms |"
  )
  print("|---|---|---|---|---|---|---|---|")
  for row in rows:
    peak = f"> {args.cap_gb:g} (killed)" if row["killed_over_cap"] else row["peak_rss_gb"]
    if "float_mb" not in row:
      print(f"| {row['name']} | {row['wall_s']} | {peak} | failed (rc {row['returncode']}) |||||")
      continue
    print(
      f"| {row['name']} | {row['wall_s']} | {peak} | {row['float_mb']} | {row['int8_mb']} "
      f"| {row['int8_outside_float_layers']} | {row['float_latency_ms']} "
      f"| {row['int8_latency_ms']} |"
    )
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump(rows, f, indent=2)


if __name__ == "__main__":
  main()
