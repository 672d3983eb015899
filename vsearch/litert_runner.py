"""Runs a TFLite model with LiteRT in a process of its own: no TensorFlow here.

``vsearch.latency`` starts ``python -m vsearch.litert_runner REQUEST.json``
and reads one JSON line from its stdout. This module imports only the
standard library, numpy and ``ai_edge_litert``: TensorFlow's own runtime and
threads would share the process and distort the timing, and a crash in a
kernel must not take the search down with it.

Request keys: ``task`` ('latency' or 'logits'), ``model`` (path of the
.tflite file), ``threads``, ``use_xnnpack``, and for 'latency' ``warmup`` and
``runs``, for 'logits' ``clips`` (a .npy of float32 clips [N, T, H, W, 3]) and
``output`` (where the float32 logits [N, classes] go).

Exit status: 0 with a JSON result as the last stdout line; 3 when the request
does not fit the model (message on stderr); anything else is a crash.
"""

import json
import os
import platform
import sys
import time

import ai_edge_litert
from ai_edge_litert import interpreter as litert
import numpy as np

BAD_REQUEST_EXIT = 3


class BadRequest(Exception):
  """The request does not fit the model (e.g. clips of another shape)."""


def make_interpreter(model_path: str, threads: int,
                     use_xnnpack: bool) -> litert.Interpreter:
  """An allocated interpreter with a fixed thread count and delegate choice.

  XNNPACK is LiteRT's default CPU delegate, applied by the AUTO/BUILTIN op
  resolver; BUILTIN_WITHOUT_DEFAULT_DELEGATES keeps the plain builtin kernels.
  ``num_threads`` reaches both XNNPACK's thread pool and the builtin kernels.
  """
  resolver = (litert.OpResolverType.AUTO if use_xnnpack else
              litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
  interpreter = litert.Interpreter(model_path=model_path,
                                   num_threads=threads,
                                   experimental_op_resolver_type=resolver)
  interpreter.allocate_tensors()
  return interpreter


def delegate_partitions(interpreter: litert.Interpreter):
  """How many parts of the graph a delegate runs (0 without one), or None.

  A delegate replaces each part it takes with one DELEGATE node. This reads
  the interpreter's experimental node list; None if that API is gone.
  """
  try:
    nodes = interpreter._get_ops_details()  # pylint: disable=protected-access
  except (AttributeError, RuntimeError, ValueError):
    return None
  return sum(node["op_name"] == "DELEGATE" for node in nodes)


def _single_io(interpreter: litert.Interpreter):
  inputs, outputs = (interpreter.get_input_details(),
                     interpreter.get_output_details())
  if len(inputs) != 1 or len(outputs) != 1:
    raise BadRequest(f"expected a model with one input and one output, got "
                     f"{len(inputs)} and {len(outputs)}")
  return inputs[0], outputs[0]


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


def measure(request: dict) -> dict:
  """Times ``runs`` invokes after ``warmup`` ones; returns the samples (ms)."""
  interpreter = make_interpreter(request["model"], request["threads"],
                                 request["use_xnnpack"])
  detail, _ = _single_io(interpreter)
  rng = np.random.default_rng(0)
  clip = rng.uniform(-1.0, 1.0, detail["shape"]).astype(np.float32)
  interpreter.set_tensor(detail["index"], quantize_input(clip, detail))
  for _ in range(request["warmup"]):
    interpreter.invoke()
  samples = []
  for _ in range(request["runs"]):
    start = time.perf_counter_ns()
    interpreter.invoke()
    samples.append((time.perf_counter_ns() - start) / 1e6)
  return {
      "samples_ms": samples,
      "input_dtype": np.dtype(detail["dtype"]).name,
      "delegate_partitions": delegate_partitions(interpreter),
      "host": host_description(),
  }


def logits(request: dict) -> dict:
  """Runs every clip through the model; writes float logits [N, classes]."""
  interpreter = make_interpreter(request["model"], request["threads"],
                                 request["use_xnnpack"])
  in_detail, out_detail = _single_io(interpreter)
  clips = np.load(request["clips"], mmap_mode="r")
  expected = tuple(int(d) for d in in_detail["shape"])
  if expected[0] != 1 or clips.shape[1:] != expected[1:]:
    raise BadRequest(f"clips of shape {tuple(clips.shape[1:])} do not fit the "
                     f"model input {expected} (batch 1 expected)")
  outputs = []
  for clip in clips:
    interpreter.set_tensor(in_detail["index"],
                           quantize_input(np.asarray(clip)[None], in_detail))
    interpreter.invoke()
    outputs.append(dequantize_output(
        interpreter.get_tensor(out_detail["index"]), out_detail)[0])
  np.save(request["output"], np.stack(outputs).astype(np.float32))
  return {"num_clips": len(outputs),
          "input_dtype": np.dtype(in_detail["dtype"]).name,
          "host": host_description()}


def main(argv: list[str]) -> int:
  if len(argv) != 2:
    print("usage: python -m vsearch.litert_runner REQUEST.json", file=sys.stderr)
    return 2
  with open(argv[1], encoding="utf-8") as f:
    request = json.load(f)
  tasks = {"latency": measure, "logits": logits}
  try:
    result = tasks[request["task"]](request)
  except BadRequest as e:
    print(f"bad request: {e}", file=sys.stderr)
    return BAD_REQUEST_EXIT
  sys.stdout.flush()
  print(json.dumps({"ok": True, **result}), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
