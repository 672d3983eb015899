"""Export: a model as a SavedModel and as float and int8 TFLite files, with their numbers.

What a user ships is one of these files, so each is measured as shipped: the
TFLite files are timed through LiteRT with the settings written beside the
latency, and when the weights are trained, each form's validation accuracy is
measured too (the int8 one through LiteRT, after calibration on training
clips).

The SavedModel's serving signature, ``serving_default``, takes
``clips``: float32 [batch, T, H, W, 3] with values in [-1, 1] (uint8 frames
/ 127.5 - 1, as ``vsearch.data.clips.make_clips`` makes them) and returns
``logits`` and ``probabilities``, both float32 [batch, classes]. A model of
several inputs (AssembleNet++) takes one keyword argument per Keras input,
named after it: ``clips``, and ``flow`` (float32 [batch, T, H, W, 2]) and/or
``objects`` (float32 [batch, T, H, W, C]); its TFLite files have the same
named inputs in their ``serving_default`` signature, in an order of the
converter's choosing.

``export.json`` holds ``input_shape`` (of ``clips``, batch 1) and
``serving_signature``: its ``name``, ``inputs`` (the input names, in Keras
order), ``outputs``, and for a single-input model ``input`` ('clips', as
before ``inputs`` existed). A model of several inputs adds ``input_shapes``:
``{name: [1, ...]}`` per input. An int8 file that keeps layers in float on
purpose (an in-network optical flow) names them in ``tflite_int8.float_layers``
and says in ``int8_outside_float_layers`` whether every other op is int8.

Class names: column ``i`` of ``logits`` and ``probabilities`` (and of the
TFLite files' output) is the class on line ``i`` of ``labels.txt`` (one name
per line, UTF-8, in label order), and ``export.json``'s ``labels`` lists the
same names. For one clip::

  labels = open("labels.txt", encoding="utf-8").read().splitlines()
  outputs = tf.saved_model.load("saved_model").signatures["serving_default"](clips=clip)
  name = labels[int(tf.argmax(outputs["logits"][0]))]

A multi-label model (Charades) scores each class on its own: read
``sigmoid(logits)`` per column rather than ``probabilities``.
"""

import json
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from vsearch.data import clips as clips_lib
from vsearch.data.clips import CLIPS
from vsearch.deploy import latency as latency_lib
from vsearch.deploy import quantize
from vsearch.nn import cost

SAVED_MODEL = "saved_model"
TFLITE_FILES = {quantize.FLOAT: "model_float.tflite", quantize.INT8: "model_int8.tflite"}
SUMMARY = "export.json"
LABELS = "labels.txt"


class _Serving(tf.Module):
  """The SavedModel's contents: the model and its serving function."""

  def __init__(self, model: tf.keras.Model):
    super().__init__()
    self.model = model
    shapes = cost.input_shapes(model)
    self.input_names = tuple(shapes)
    signature = [
      tf.TensorSpec([None, *shape], tf.float32, name=name) for name, shape in shapes.items()
    ]
    if len(signature) == 1:  # Served as 'clips' whatever Keras named it.
      signature[0] = tf.TensorSpec(signature[0].shape, tf.float32, name=CLIPS)
    self.serve = tf.function(self._serve, input_signature=signature)

  def _serve(self, *inputs):
    # One positional argument per input, each spec named after its input:
    # the signature's keyword arguments are those names.
    x = inputs[0] if len(inputs) == 1 else dict(zip(self.input_names, inputs))
    logits = tf.cast(self.model(x, training=False), tf.float32)
    return {"logits": logits, "probabilities": tf.nn.softmax(logits)}


def save_model(model: tf.keras.Model, path: str) -> None:
  """Writes a SavedModel whose ``serving_default`` maps inputs to logits."""
  module = _Serving(model)
  tf.saved_model.save(module, path, signatures={"serving_default": module.serve})


def export(
  model: tf.keras.Model,
  out_dir: str,
  calibration: tf.data.Dataset,
  validation: tf.data.Dataset,
  *,
  trained: bool,
  settings: latency_lib.LatencySettings,
  num_calibration_clips: int = 64,
  max_eval_clips: int = 512,
  info: dict[str, Any] | None = None,
  class_names: Sequence[str] = (),
) -> dict[str, Any]:
  """Writes the SavedModel, both TFLite files, ``labels.txt`` and ``export.json``.

  Args:
    model: the model to ship.
    out_dir: where the files go (local or gs://).
    calibration: training batches of (clips, labels) that calibrate int8;
      for a model of several inputs, clips is a dict keyed by input name.
    validation: validation batches of (clips, labels), the same way.
    trained: whether the weights are trained; accuracies are measured only
      then (an untrained model's accuracy means nothing).
    settings: how the TFLite files are timed.
    num_calibration_clips: training clips for int8 calibration.
    max_eval_clips: validation clips each accuracy is measured on.
    info: extra fields for ``export.json`` (the genome, where it came from).
    class_names: the name of each output class, in label order (the
      dataset's ``class_names``); empty names them by index ("0", "1", ...).

  Returns:
    What ``export.json`` holds.

  Raises:
    ValueError: ``class_names`` does not name each output once, one to a line.
  """
  names = _labels(class_names, int(model.outputs[0].shape[-1]))
  tf.io.gfile.makedirs(out_dir)
  shapes = cost.input_shapes(model)
  several = len(shapes) > 1
  signature: dict[str, Any] = {
    "name": "serving_default",
    "inputs": list(shapes) if several else [CLIPS],
    "outputs": ["logits", "probabilities"],
  }
  clip_shape = shapes.get(CLIPS, next(iter(shapes.values())))
  summary: dict[str, Any] = {
    **(info or {}),
    "trained": trained,
    "num_params": int(model.count_params()),
    "input_shape": [1, *clip_shape],
    "serving_signature": signature,
    "labels": names,
  }
  if several:
    summary["input_shapes"] = {name: [1, *shape] for name, shape in shapes.items()}
  else:
    signature["input"] = CLIPS
  start = time.perf_counter()
  save_model(model, os.path.join(out_dir, SAVED_MODEL))
  summary["saved_model"] = {"path": SAVED_MODEL, "export_s": round(time.perf_counter() - start, 2)}
  if trained:
    clips, labels = clips_lib.take_clips(validation, max_eval_clips)
    logits = model.predict(clips, batch_size=32, verbose=0)
    summary["saved_model"]["accuracy"] = float(np.mean(logits.argmax(-1) == labels))
  for fmt, name in TFLITE_FILES.items():
    converted = quantize.to_tflite(
      model, fmt, calibration, num_calibration_clips=num_calibration_clips
    )
    converted.save(os.path.join(out_dir, name))
    measured = latency_lib.measure_latency(converted, settings)
    entry = {
      "path": name,
      "size_bytes": len(converted.content),
      "fully_int8": converted.fully_int8 if fmt == quantize.INT8 else None,
      "float_ops": sorted({op.name for op in converted.float_ops})
      if fmt == quantize.INT8
      else None,
      "latency_ms": measured.median_ms,
      "latency": measured.to_dict(),
    }
    if fmt == quantize.INT8 and converted.float_layers:  # Float islands, named.
      entry["float_layers"] = list(converted.float_layers)
      entry["int8_outside_float_layers"] = converted.int8_outside_float_layers
    if trained:
      entry["accuracy"] = latency_lib.evaluate_tflite(converted, clips, labels, settings)[
        "accuracy"
      ]
    summary[f"tflite_{fmt}"] = entry
  with tf.io.gfile.GFile(os.path.join(out_dir, LABELS), "w") as f:
    f.write("".join(f"{name}\n" for name in names))
  with tf.io.gfile.GFile(os.path.join(out_dir, SUMMARY), "w") as f:
    json.dump(summary, f, indent=2, sort_keys=True)
    f.write("\n")
  return summary


def _labels(class_names: Sequence[str], num_outputs: int) -> list[str]:
  """The name of each output, as ``labels.txt`` lists them."""
  if not class_names:
    return [str(i) for i in range(num_outputs)]
  labels = [str(name) for name in class_names]
  if len(labels) != num_outputs:
    raise ValueError(f"{len(labels)} class names for a model of {num_outputs} outputs")
  if any(not name.strip() or "\n" in name or "\r" in name for name in labels):
    raise ValueError(f"class names must be non-empty single lines: {labels}")
  return labels


def format_summary(summary: dict[str, Any]) -> str:
  """The export as a table a person reads."""
  settings = summary[f"tflite_{quantize.INT8}"]["latency"]["settings"]
  lines = [
    f"| form | file | size | latency ms ({settings['threads']} thread(s), "
    f"XNNPACK {'on' if settings['use_xnnpack'] else 'off'}) | accuracy |",
    "|---|---|---|---|---|",
  ]
  for key in ("saved_model", *(f"tflite_{fmt}" for fmt in TFLITE_FILES)):
    entry = summary[key]
    size = f"{entry['size_bytes'] / 1e6:.2f} MB" if "size_bytes" in entry else ""
    latency = f"{entry['latency_ms']:.2f}" if "latency_ms" in entry else ""
    accuracy = f"{entry['accuracy']:.3f}" if "accuracy" in entry else "untrained"
    lines.append(f"| {key} | {entry['path']} | {size} | {latency} | {accuracy} |")
  return "\n".join(lines)
