"""Runs a TFLite model with LiteRT in a process of its own: no TensorFlow here.

``vsearch.latency`` starts ``python -m vsearch.litert_runner REQUEST.json``
and reads one JSON line from its stdout. This module imports only the
standard library, numpy and ``vsearch.profile_tflite`` (which imports only
those and ``ai_edge_litert``): TensorFlow's own runtime and threads would
share the process and distort the timing, and a crash in a kernel must not
take the search down with it. The interpreter set-up, (de)quantization and
timing live in ``vsearch.profile_tflite``, the single-file profiler a target
device runs without vsearch, so the search and the device time models the
same way; this module adds the request protocol around them.

Request keys: ``task`` ('latency' or 'logits'), ``model`` (path of the
.tflite file), ``threads``, ``use_xnnpack``, and for 'latency' ``warmup`` and
``runs``, for 'logits' ``clips`` (a .npy of float32 clips [N, T, H, W, 3]) and
``output`` (where the float32 logits [N, classes] go).

Exit status: 0 with a JSON result as the last stdout line; 3 when the request
does not fit the model (message on stderr); anything else is a crash.
"""

import json
import sys

import numpy as np

from vsearch.profile_tflite import BadRequest
from vsearch.profile_tflite import delegate_partitions
from vsearch.profile_tflite import dequantize_output
from vsearch.profile_tflite import fill_inputs
from vsearch.profile_tflite import host_description
from vsearch.profile_tflite import make_interpreter
from vsearch.profile_tflite import quantize_input
from vsearch.profile_tflite import time_invokes

BAD_REQUEST_EXIT = 3


def _single_io(interpreter):
  inputs, outputs = (interpreter.get_input_details(),
                     interpreter.get_output_details())
  if len(inputs) != 1 or len(outputs) != 1:
    raise BadRequest(f"expected a model with one input and one output, got "
                     f"{len(inputs)} and {len(outputs)}")
  return inputs[0], outputs[0]


def measure(request: dict) -> dict:
  """Times ``runs`` invokes after ``warmup`` ones; returns the samples (ms)."""
  interpreter = make_interpreter(request["model"], request["threads"],
                                 request["use_xnnpack"])
  detail, _ = _single_io(interpreter)
  fill_inputs(interpreter)
  samples = time_invokes(interpreter, request["warmup"], request["runs"])
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
