"""Times TFLite files on a target device: one file, LiteRT and numpy only.

The device a TVN ships to (a phone, a laptop, an edge box) cannot join a
search on a TPU pod, so it is profiled once: ``python -m launch.profile_device
prepare`` writes small TFLite models of every op the search space can build
into a folder with a ``manifest.json`` and a copy of this file; on the device,

  python profile_tflite.py DIR [--threads=1] [--no_xnnpack] [--rounds=3]

times every file and writes ``DIR/latency_table.json``: the device, the
settings, and per entry the median and spread of its invokes (ms).
``vsearch.methods.tvn.latency_table`` predicts whole models from it.

This file imports only the standard library, numpy and ``ai_edge_litert``, and
no vsearch module, so it runs where neither TensorFlow nor vsearch is
installed. ``vsearch.deploy.litert_runner`` (the search's own timing subprocess)
imports its helpers from here, so both time models the same way.
"""

import argparse
import hashlib
import json
import os
import platform
import sys
import time

import ai_edge_litert
import numpy as np
from ai_edge_litert import interpreter as litert

MANIFEST = "manifest.json"
TABLE = "latency_table.json"
TABLE_VERSION = 1


class BadRequest(Exception):
  """The request does not fit the model (e.g. clips of another shape)."""


def make_interpreter(model_path: str, threads: int, use_xnnpack: bool) -> litert.Interpreter:
  """An allocated interpreter with a fixed thread count and delegate choice.

  XNNPACK is LiteRT's default CPU delegate, applied by the AUTO/BUILTIN op
  resolver; BUILTIN_WITHOUT_DEFAULT_DELEGATES keeps the plain builtin kernels.
  ``num_threads`` reaches both XNNPACK's thread pool and the builtin kernels.
  """
  resolver = (
    litert.OpResolverType.AUTO
    if use_xnnpack
    else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
  )
  interpreter = litert.Interpreter(
    model_path=model_path, num_threads=threads, experimental_op_resolver_type=resolver
  )
  interpreter.allocate_tensors()
  return interpreter


def delegate_partitions(interpreter: litert.Interpreter):
  """How many parts of the graph a delegate runs (0 without one), or None.

  A delegate replaces each part it takes with one DELEGATE node. This reads
  the interpreter's experimental node list; None if that API is gone.
  """
  try:
    nodes = interpreter._get_ops_details()
  except (AttributeError, RuntimeError, ValueError):
    return None
  return sum(node["op_name"] == "DELEGATE" for node in nodes)


def _quantization(detail: dict) -> tuple[float, int]:
  scales = detail["quantization_parameters"]["scales"]
  zero_points = detail["quantization_parameters"]["zero_points"]
  if len(scales) != 1:
    raise BadRequest(f"tensor {detail['name']} is not quantized per tensor")
  return float(scales[0]), int(zero_points[0])


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
  """Float values in the dtype the input tensor wants, with its parameters."""
  dtype = np.dtype(detail["dtype"])
  if not np.issubdtype(dtype, np.integer):
    return x.astype(dtype)
  scale, zero_point = _quantization(detail)
  info = np.iinfo(dtype)
  q = np.round(x / scale) + zero_point
  return np.clip(q, info.min, info.max).astype(dtype)


def dequantize_output(y: np.ndarray, detail: dict) -> np.ndarray:
  """An output tensor as float32, dequantized if it is an integer tensor."""
  if not np.issubdtype(np.dtype(detail["dtype"]), np.integer):
    return y.astype(np.float32)
  scale, zero_point = _quantization(detail)
  return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)


def host_description() -> dict:
  """The machine and runtime a latency was measured with."""
  cpu, flags = platform.processor() or platform.machine(), set()
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
          cpu = value.strip()
        elif key.strip() == "flags":
          flags = set(value.split())
          break
  except OSError:
    pass
  try:
    usable = len(os.sched_getaffinity(0))
  except AttributeError:
    usable = os.cpu_count()
  return {
    "cpu": cpu,
    "machine": platform.machine(),
    "system": platform.system(),
    "cpu_count": usable,
    "avx2": "avx2" in flags,
    "avx512_vnni": "avx512_vnni" in flags,
    "avx_vnni": "avx_vnni" in flags,
    "python": platform.python_version(),
    "litert": ai_edge_litert.__version__,
  }


def fill_inputs(interpreter: litert.Interpreter, seed: int = 0) -> list[dict]:
  """Sets every input to uniform [-1, 1] values (quantized where int8)."""
  rng = np.random.default_rng(seed)
  details = interpreter.get_input_details()
  for detail in details:
    x = rng.uniform(-1.0, 1.0, detail["shape"]).astype(np.float32)
    interpreter.set_tensor(detail["index"], quantize_input(x, detail))
  return details


# Warm-up lasts at least this long, whatever ``warmup`` says: in a fresh
# process, after 5 warm-up invokes, a 0.58 ms int8 model timed up to 2.2x
# slow (Xeon with AVX-512 VNNI, 2 cores), so a fixed count of warm-up invokes
# under-warms small models. Each timed file pays it once per round.
MIN_WARMUP_S = 0.2


def time_invokes(interpreter: litert.Interpreter, warmup: int, runs: int) -> list[float]:
  """``runs`` invoke times in ms, after ``warmup`` untimed invokes and at
  least ``MIN_WARMUP_S`` of them."""
  deadline = time.perf_counter() + MIN_WARMUP_S
  done = 0
  while done < warmup or time.perf_counter() < deadline:
    interpreter.invoke()
    done += 1
  samples = []
  for _ in range(runs):
    start = time.perf_counter_ns()
    interpreter.invoke()
    samples.append((time.perf_counter_ns() - start) / 1e6)
  return samples


def _stats(samples: list[float]) -> dict:
  p10, median, p90 = np.percentile(np.asarray(samples, np.float64), [10, 50, 90])
  return {
    "median_ms": float(median),
    "p10_ms": float(p10),
    "p90_ms": float(p90),
    "min_ms": float(min(samples)),
    "runs": len(samples),
  }


def file_sha256(path: str) -> str:
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def profile(
  directory: str,
  threads: int = 1,
  use_xnnpack: bool = True,
  warmup: int = 3,
  runs: int = 10,
  rounds: int = 3,
  log=print,
) -> dict:
  """Times every file the manifest of ``directory`` lists; returns the table.

  Each round loads every model once, warms it up and times ``runs`` invokes;
  the rounds go through the files in turn, so a burst of load on the device
  touches every entry a little instead of a few entries a lot. An entry's
  median is over all its ``rounds * runs`` samples. A file LiteRT cannot
  prepare or run (XNNPACK refuses some degenerate shapes) is named in the
  table's ``failed`` with LiteRT's message instead of timed; the rest go on.
  """
  with open(os.path.join(directory, MANIFEST), encoding="utf-8") as f:
    manifest = json.load(f)
  files = {}  # (format, section, key) -> path
  for fmt, section in manifest["files"].items():
    for name, item in section.items():
      for key, relative in item.items():
        files[(fmt, name, key)] = os.path.join(directory, relative)
  samples = {ident: [] for ident in files}
  partitions, failed = {}, {}
  start = time.monotonic()
  for r in range(rounds):
    for ident, path in files.items():
      if ident in failed:
        continue
      try:
        interpreter = make_interpreter(path, threads, use_xnnpack)
        fill_inputs(interpreter)
        samples[ident].extend(time_invokes(interpreter, warmup, runs))
      except (RuntimeError, ValueError, BadRequest) as e:
        failed[ident] = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        log(
          f"cannot run {os.path.relpath(path, directory)} ({ident[1]} {ident[2]}): {failed[ident]}"
        )
        continue
      partitions[ident] = delegate_partitions(interpreter)
    log(f"round {r + 1}/{rounds}: {len(files)} files, {time.monotonic() - start:.0f} s")
  timings: dict = {}
  not_run: dict = {}  # format -> 'entries' / 'genomes' -> key -> LiteRT's message
  for (fmt, name, key), message in failed.items():
    samples.pop((fmt, name, key))
    not_run.setdefault(fmt, {}).setdefault(name, {})[key] = message
  for (fmt, name, key), values in samples.items():
    entry = _stats(values)
    entry["delegate_partitions"] = partitions[(fmt, name, key)]
    timings.setdefault(fmt, {}).setdefault(name, {})[key] = entry
  return {
    "version": TABLE_VERSION,
    "device": host_description(),
    "settings": {
      "threads": threads,
      "use_xnnpack": use_xnnpack,
      "warmup": warmup,
      "runs": runs,
      "rounds": rounds,
    },
    "manifest_sha256": file_sha256(os.path.join(directory, MANIFEST)),
    "space": manifest["space"],
    "entries": manifest["entries"],
    "genomes": manifest["genomes"],
    "timings": timings,
    "failed": not_run,
    "profile_s": round(time.monotonic() - start, 1),
  }


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(
    description="Times the TFLite files of a vsearch latency-table folder "
    "and writes latency_table.json there."
  )
  parser.add_argument(
    "directory",
    help="the folder `launch.profile_device prepare` wrote (manifest.json and the .tflite files)",
  )
  parser.add_argument("--threads", type=int, default=1)
  parser.add_argument(
    "--no_xnnpack", action="store_true", help="plain builtin kernels instead of XNNPACK"
  )
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--runs", type=int, default=10, help="timed invokes per file and round")
  parser.add_argument(
    "--rounds", type=int, default=3, help="passes over all files (spreads load bursts)"
  )
  parser.add_argument(
    "--out", default=None, help=f"where the table goes (default DIRECTORY/{TABLE})"
  )
  args = parser.parse_args(argv[1:])
  for name in ("threads", "runs", "rounds"):
    if getattr(args, name) < 1:
      parser.error(f"--{name} must be at least 1")
  if not os.path.isfile(os.path.join(args.directory, MANIFEST)):
    parser.error(
      f"{args.directory} has no {MANIFEST}: pass the folder "
      "`python -m launch.profile_device prepare` wrote"
    )
  table = profile(
    args.directory,
    threads=args.threads,
    use_xnnpack=not args.no_xnnpack,
    warmup=args.warmup,
    runs=args.runs,
    rounds=args.rounds,
    log=lambda line: print(line, file=sys.stderr, flush=True),
  )
  out = args.out or os.path.join(args.directory, TABLE)
  with open(out, "w", encoding="utf-8") as f:
    json.dump(table, f, indent=1, sort_keys=True)
  print(out)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
