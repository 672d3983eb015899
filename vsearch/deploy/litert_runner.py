"""Runs a TFLite model with LiteRT in a process of its own: no TensorFlow here.

``vsearch.deploy.latency`` starts ``python -m vsearch.deploy.litert_runner REQUEST.json``
and reads one JSON line from its stdout. This module imports only the
standard library, numpy and ``vsearch.deploy.profile_tflite`` (which imports only
those and ``ai_edge_litert``): TensorFlow's own runtime and threads would
share the process and distort the timing, and a crash in a kernel must not
take the search down with it. The interpreter set-up, (de)quantization and
timing live in ``vsearch.deploy.profile_tflite``, the single-file profiler a target
device runs without vsearch, so the search and the device time models the
same way; this module adds the request protocol around them.

Request keys: ``task`` ('latency' or 'logits'), ``model`` (path of the
.tflite file), ``threads``, ``use_xnnpack``, and for 'latency' ``warmup`` and
``runs``, for 'logits' ``clips`` (a .npy of float32 clips [N, T, H, W, 3]) or,
for a model of several inputs, ``inputs`` (input name -> .npy of that input's
float32 [N, ...]; matched to the model's inputs by name, not position), and
``output`` (where the float32 logits [N, classes] go).

Exit status: 0 with a JSON result as the last stdout line; 3 when the request
does not fit the model (message on stderr); anything else is a crash.
"""

import json
import sys

import numpy as np

from vsearch.deploy.profile_tflite import (
  BadRequest,
  delegate_partitions,
  dequantize_output,
  fill_inputs,
  host_description,
  make_interpreter,
  quantize_input,
  time_invokes,
)

BAD_REQUEST_EXIT = 3


def _single_output(interpreter):
  outputs = interpreter.get_output_details()
  if len(outputs) != 1:
    raise BadRequest(f"expected a model with one output, got {len(outputs)}")
  return outputs[0]


def _single_io(interpreter):
  inputs = interpreter.get_input_details()
  if len(inputs) > 1:
    names = ", ".join(_tensor_input_name(d["name"]) for d in inputs)
    raise BadRequest(f"the model has {len(inputs)} inputs ({names}): give each one's clips by name")
  if len(inputs) != 1 or len(interpreter.get_output_details()) != 1:
    raise BadRequest(
      f"expected a model with one input and one output, got "
      f"{len(inputs)} and "
      f"{len(interpreter.get_output_details())}"
    )
  return inputs[0], _single_output(interpreter)


def _tensor_input_name(tensor_name: str) -> str:
  # The converter names an input placeholder 'serving_default_<name>:0'.
  return tensor_name.split(":")[0].removeprefix("serving_default_")


def inputs_by_name(interpreter, names) -> dict:
  """The model's input details keyed by ``names``, the Keras input names.

  Matched by the names of the model's only signature (what the converter
  keeps of the Keras names), else by tensor name; never by position, since
  the TFLite input order need not be the Keras order. A model of one input
  takes a single name whatever it is.

  Raises:
    BadRequest: a name the model lacks, or a model input left without one.
  """
  details = interpreter.get_input_details()
  names = list(names)
  if len(details) == 1 and len(names) == 1:
    return {names[0]: details[0]}
  by_index = {d["index"]: d for d in details}
  known = {}
  signatures = interpreter.get_signature_list()
  if len(signatures) == 1:
    runner = interpreter.get_signature_runner(next(iter(signatures)))
    for name, detail in runner.get_input_details().items():
      if detail["index"] in by_index:
        known[name] = by_index[detail["index"]]
  for detail in details:
    known.setdefault(_tensor_input_name(detail["name"]), detail)
  missing = [name for name in names if name not in known]
  if missing:
    raise BadRequest(
      f"the model has no input named {', '.join(missing)}; its "
      f"inputs are {', '.join(sorted(known))}"
    )
  chosen = {name: known[name] for name in names}
  fed = {d["index"] for d in chosen.values()}
  unfed = [_tensor_input_name(d["name"]) for d in details if d["index"] not in fed]
  if unfed or len(fed) != len(names):
    raise BadRequest(
      f"the request must give each model input once; "
      f"inputs {', '.join(unfed) or '(repeated names)'} get "
      "no clips"
    )
  return chosen


def _dtype_name(details) -> str:
  names = sorted({np.dtype(d["dtype"]).name for d in details})
  return ",".join(names)


def measure(request: dict) -> dict:
  """Times ``runs`` invokes after ``warmup`` ones; returns the samples (ms).

  Every input gets uniform [-1, 1] values (quantized where int8).
  """
  interpreter = make_interpreter(request["model"], request["threads"], request["use_xnnpack"])
  _single_output(interpreter)
  details = fill_inputs(interpreter)
  samples = time_invokes(interpreter, request["warmup"], request["runs"])
  return {
    "samples_ms": samples,
    "input_dtype": _dtype_name(details),
    "delegate_partitions": delegate_partitions(interpreter),
    "host": host_description(),
  }


def logits(request: dict) -> dict:
  """Runs every clip through the model; writes float logits [N, classes]."""
  interpreter = make_interpreter(request["model"], request["threads"], request["use_xnnpack"])
  if "inputs" in request:
    out_detail = _single_output(interpreter)
    arrays = {name: np.load(path, mmap_mode="r") for name, path in request["inputs"].items()}
    in_details = inputs_by_name(interpreter, arrays)
  else:
    in_detail, out_detail = _single_io(interpreter)
    arrays = {"clips": np.load(request["clips"], mmap_mode="r")}
    in_details = {"clips": in_detail}
  counts = {len(array) for array in arrays.values()}
  if len(counts) != 1:
    raise BadRequest(
      f"inputs hold different numbers of clips: { {name: len(a) for name, a in arrays.items()} }"
    )
  for name, array in arrays.items():
    expected = tuple(int(d) for d in in_details[name]["shape"])
    if expected[0] != 1 or array.shape[1:] != expected[1:]:
      what = "clips" if len(arrays) == 1 else f"input {name!r}"
      raise BadRequest(
        f"{what} of shape {tuple(array.shape[1:])} do not fit "
        f"the model input {expected} (batch 1 expected)"
      )
  outputs = []
  for i in range(counts.pop()):
    for name, array in arrays.items():
      detail = in_details[name]
      interpreter.set_tensor(detail["index"], quantize_input(np.asarray(array[i])[None], detail))
    interpreter.invoke()
    outputs.append(dequantize_output(interpreter.get_tensor(out_detail["index"]), out_detail)[0])
  np.save(request["output"], np.stack(outputs).astype(np.float32))
  return {
    "num_clips": len(outputs),
    "input_dtype": _dtype_name(in_details.values()),
    "host": host_description(),
  }


def main(argv: list[str]) -> int:
  if len(argv) != 2:
    print("usage: python -m vsearch.deploy.litert_runner REQUEST.json", file=sys.stderr)
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
