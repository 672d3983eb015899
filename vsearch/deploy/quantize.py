"""Converts Keras models to TFLite, int8 or float, and says what runs in int8.

The runtime that counts for a Tiny Video Network is the one of the deployed
model: full-integer int8 at batch 1 with fixed shapes. ``to_tflite`` converts
the model's frozen batch-1 graph (``vsearch.nn.cost.frozen_function``) with
``tf.lite.TFLiteConverter``:

* ``'int8'``: int8 weights and activations (``TFLITE_BUILTINS_INT8``),
  calibrated on real clips, with **int8 input and output**. The input and
  output scales and zero points stay in the flatbuffer; callers quantize clips
  and dequantize logits with them (``vsearch.deploy.litert_runner`` does). That is
  the model a device would run, with no float QUANTIZE / DEQUANTIZE ops around
  it, so its measured latency is the deployed one. A tensor that was zero on
  every calibration clip is quantized for the range [0, 1]: the range
  calibration gives it has scale 0, which XNNPACK refuses.
* ``'float'``: plain float32.

TFLite has no int8 kernel for some ops: the converter then leaves them in
float between DEQUANTIZE and QUANTIZE ops (CONV_3D does this silently). Every
op of the result is inspected from the flatbuffer, so such a model is reported
as not fully int8 with the names of its float ops. Ops with no TFLite kernel at
all (3-D pooling) fail the conversion with a ``CandidateError``.

Some layers must stay float: an unrolled optical-flow solver (divisions,
square roots, 20-40 iterations) is meaningless in int8, and LiteRT's int8 DIV
refuses to run it. A layer whose class sets ``tflite_float_island = True``
(AssembleNet's representation flow, the flow of an EvaNet ensemble) is such
a *float island*: ``to_tflite`` calibrates the whole model, then quantizes
every op except the island's, so the file runs int8 everywhere else with one
DEQUANTIZE into the island and one QUANTIZE out of it. The result names the
island (``float_layers``) and its ops (``float_ops``), and
``int8_outside_float_layers`` says whether everything else is int8.

A model with several named inputs (AssembleNet++: 'clips', 'flow',
'objects') converts to a TFLite model with one input per Keras input. Its
calibration samples are dicts keyed by those names, fed through the
``serving_default`` signature: the TFLite input order need not be the Keras
order, so callers match inputs by name (``vsearch.deploy.litert_runner`` does).
"""

import contextlib
import ctypes
import dataclasses
import re
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Optional, Union

import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema

# Not exported under tf.lite: the quantizer that keeps named nodes in float
# (what tf.lite.experimental.QuantizationDebugger uses), the calibrator the
# converter runs, and the class the converter raises.
from tensorflow.lite.python import convert as tflite_convert
from tensorflow.lite.python.convert_phase import ConverterError
from tensorflow.lite.python.optimize import calibrator as tflite_calibrator

from vsearch import quiet
from vsearch.deploy.calibration import (  # noqa: F401  (part of this module's API)
  DEFAULT_CALIBRATION_CLIPS,
  Clips,
  calibration_samples,
  representative_clips,
)
from vsearch.errors import CandidateError, UserError
from vsearch.nn import cost, export_form

INT8 = "int8"
FLOAT = "float"
FORMATS = (INT8, FLOAT)

# They only move values between int8 and float: not computation, and a model
# that falls back to float shows them around its float ops.
_TYPE_CONVERSIONS = frozenset({"QUANTIZE", "DEQUANTIZE"})
_FLOAT_TYPES = frozenset({"float32", "float16", "float64", "bfloat16"})

_OP_NAMES = {
  code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}
_TYPE_NAMES = {
  code: name.lower() for name, code in vars(schema.TensorType).items() if not name.startswith("_")
}


@dataclasses.dataclass(frozen=True)
class OpInfo:
  """One op of a TFLite model.

  Attributes:
    subgraph: index of its subgraph (0 is the main graph).
    index: its index in that subgraph, in execution order.
    name: the builtin op name, e.g. 'CONV_2D' ('CUSTOM:<code>' for custom ops).
    input_dtype: dtype of its first input (the activation), e.g. 'int8';
      'none' for an op without inputs.
    output: the name of its first output tensor (it carries the TF name
      scope of the layer the op came from, e.g. 'model/stem/convolution').
  """

  subgraph: int
  index: int
  name: str
  input_dtype: str
  output: str = ""

  @property
  def runs_in_float(self) -> bool:
    """Whether this is a compute op whose input is floating point."""
    return self.name not in _TYPE_CONVERSIONS and self.input_dtype in _FLOAT_TYPES

  def in_layers(self, layer_names: Sequence[str]) -> bool:
    """Whether the op comes from one of these Keras layers (by name scope)."""
    return _in_layers(self.output, layer_names)


def _in_layers(tensor_name: str, layer_names: Sequence[str]) -> bool:
  # Keras may suffix a scope ('representation_flow_1'); fused ops join names with ';'.
  return any(
    re.search(rf"(^|/){re.escape(layer)}(_\d+)?/", part)
    for part in tensor_name.split(";")
    for layer in layer_names
  )


@dataclasses.dataclass(frozen=True)
class TfliteModel:
  """A converted model and what its ops run in.

  Attributes:
    content: the flatbuffer.
    format: 'int8' or 'float', as requested from ``to_tflite``.
    ops: every op of every subgraph.
    input_dtype: dtype of the model's (first) input, e.g. 'int8'.
    output_dtype: dtype of the model's output.
    float_layers: the Keras layers an int8 model keeps in float on purpose
      (its float islands); empty for most models.
  """

  content: bytes = dataclasses.field(repr=False)
  format: str
  ops: tuple[OpInfo, ...] = dataclasses.field(repr=False)
  input_dtype: str
  output_dtype: str
  float_layers: tuple[str, ...] = ()

  @property
  def float_ops(self) -> tuple[OpInfo, ...]:
    """Compute ops that run in float (all of them in a float model)."""
    return tuple(op for op in self.ops if op.runs_in_float)

  @property
  def fully_int8(self) -> bool:
    """Whether every compute op has int8 (or other integer) inputs."""
    return not self.float_ops

  @property
  def int8_outside_float_layers(self) -> bool:
    """Whether every compute op outside ``float_layers`` runs in int8."""
    return not any(not op.in_layers(self.float_layers) for op in self.float_ops)

  def summary(self) -> dict[str, Any]:
    """A JSON-compatible description for a candidate's record."""
    counts: dict[str, int] = {}
    for op in self.ops:
      counts[op.name] = counts.get(op.name, 0) + 1
    summary = {
      "format": self.format,
      "size_bytes": len(self.content),
      "fully_int8": self.fully_int8,
      "float_ops": sorted({op.name for op in self.float_ops}),
      "input_dtype": self.input_dtype,
      "output_dtype": self.output_dtype,
      "op_counts": dict(sorted(counts.items())),
    }
    if self.float_layers:
      summary["float_layers"] = list(self.float_layers)
      summary["int8_outside_float_layers"] = self.int8_outside_float_layers
    return summary

  def require_fully_int8(self) -> None:
    """Raises CandidateError naming the float ops unless fully int8."""
    if not self.fully_int8:
      where = ", ".join(f"{op.name} (op {op.index})" for op in self.float_ops)
      raise CandidateError(
        f"TFLite model is not fully int8: {where} run in float (TFLite has no int8 kernel for them)"
      )

  def save(self, path: str) -> None:
    """Writes the flatbuffer to ``path`` (local or gs://)."""
    with tf.io.gfile.GFile(path, "wb") as f:
      f.write(self.content)


def inspect_ops(content: bytes) -> tuple[OpInfo, ...]:
  """Every op of a TFLite flatbuffer with the dtype of its first input.

  Reads the flatbuffer itself rather than an interpreter, so no delegate has
  replaced any op yet and nothing is allocated.
  """
  model = schema.Model.GetRootAs(content, 0)
  ops = []
  for s in range(model.SubgraphsLength()):
    subgraph = model.Subgraphs(s)
    for i in range(subgraph.OperatorsLength()):
      op = subgraph.Operators(i)
      code = model.OperatorCodes(op.OpcodeIndex())
      # Codes past 127 live only in builtin_code; older ones in the
      # deprecated byte (builtin_code may then be 0).
      builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
      name = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
      if name == "CUSTOM":
        name = f"CUSTOM:{code.CustomCode().decode()}"
      inputs = [t for t in op.InputsAsNumpy() if t >= 0] if op.InputsLength() else []
      dtype = _TYPE_NAMES[subgraph.Tensors(inputs[0]).Type()] if inputs else "none"
      outputs = [t for t in op.OutputsAsNumpy() if t >= 0] if op.OutputsLength() else []
      output = subgraph.Tensors(outputs[0]).Name().decode() if outputs else ""
      ops.append(OpInfo(subgraph=s, index=i, name=name, input_dtype=dtype, output=output))
  return tuple(ops)


def float_island_layers(model: tf.keras.Model) -> tuple[str, ...]:
  """Names of ``model``'s layers (nested models' too) whose class sets
  ``tflite_float_island = True``: the layers int8 conversion keeps float."""
  found = []
  for layer in model.layers:
    if getattr(layer, "tflite_float_island", False):
      found.append(layer.name)
    elif isinstance(layer, tf.keras.Model):
      found.extend(float_island_layers(layer))
  return tuple(found)


def _io_dtypes(content: bytes) -> tuple[str, str]:
  subgraph = schema.Model.GetRootAs(content, 0).Subgraphs(0)
  first_input = subgraph.Tensors(subgraph.Inputs(0))
  first_output = subgraph.Tensors(subgraph.Outputs(0))
  return _TYPE_NAMES[first_input.Type()], _TYPE_NAMES[first_output.Type()]


@contextlib.contextmanager
def _quiet(enabled: bool) -> Iterator[None]:
  """Keeps the converter's C++ logs and Python warnings off the console."""
  with quiet.silenced_stderr(enabled), warnings.catch_warnings():
    if enabled:
      warnings.simplefilter("ignore")
    yield


def _conversion_failure(error: Exception, fmt: str) -> str:
  """One line saying why the converter failed, without its MLIR dump."""
  names = sorted({e.operator.name for e in getattr(error, "errors", []) if e.operator.name})
  if names:
    ops = ", ".join(n.removeprefix("tf.") for n in names)
    return (
      f"TFLite {fmt} conversion failed: no TFLite builtin kernel for "
      f"{ops} (3-D pooling and other TF-only ops do not convert)"
    )
  lines = [line for line in str(error).splitlines() if line.strip()]
  first = lines[0] if lines else type(error).__name__
  return f"TFLite {fmt} conversion failed: {first[:200]}"


# pylint: disable-next=redefined-builtin
def to_tflite(
  model: tf.keras.Model,
  format: str = INT8,
  calibration: Union[tf.data.Dataset, np.ndarray, None] = None,
  *,
  num_calibration_clips: int = DEFAULT_CALIBRATION_CLIPS,
  quiet: bool = True,
  float_layers: Optional[Sequence[str]] = None,
  frozen=None,
) -> TfliteModel:
  """Converts ``model`` at batch 1 to a TFLite model and inspects its ops.

  Args:
    model: a Keras model, trained or not, of one input (clips [B, T, H, W,
      3]) or of several named inputs ('clips', 'flow', 'objects'); the
      TFLite model then has one input per Keras input, named after it in its
      ``serving_default`` signature (its input order may differ). Converted
      in its export form (``vsearch.nn.export_form``).
    format: 'int8' (full-integer, int8 input and output) or 'float'.
    calibration: clips for the int8 calibration, as ``representative_clips``
      takes them (dicts keyed by input name for a model of several inputs),
      streamed one at a time by ``calibration_samples`` (a dataset of batches
      of 1 keeps one clip in memory); required for 'int8', ignored for
      'float'.
    num_calibration_clips: how many clips calibrate. Latency does not depend
      on them, accuracy does.
    quiet: keep the converter's logs off the console.
    float_layers: names of layers an int8 model keeps in float (float
      islands); None: the model's ``float_island_layers``. Ignored for
      'float'.
    frozen: ``cost.frozen_function(export_form.export_form(model))`` when the caller has it already
      (freezing a large model takes longer than converting it, so a caller
      converting to both formats freezes once).

  Returns:
    The model; check ``fully_int8`` / ``float_ops`` (or call
    ``require_fully_int8``) before scoring an int8 runtime.

  Raises:
    UserError: an unknown format, or missing or ill-shaped calibration clips.
    CandidateError: the converter cannot convert the model (e.g. an op with
      no TFLite kernel) or calibration fails.
  """
  if format not in FORMATS:
    raise UserError(f"TFLite format must be one of {FORMATS}, got {format!r}")
  model = export_form.export_form(model)  # Same names, so float islands are found.
  frozen = frozen if frozen is not None else cost.frozen_function(model)
  # The frozen function holds no variables, so an empty module is enough to
  # take the current (saved-model) conversion path.
  converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], tf.Module())
  islands = ()
  if format == INT8:
    if calibration is None:
      raise UserError("int8 conversion needs calibration clips.")
    shapes = cost.input_shapes(model)
    # Streamed: one dataset batch in memory at a time (a published
    # AssembleNet++ clip is 1 GB), checked before the converter starts.
    samples = calibration_samples(
      calibration, shapes if len(shapes) > 1 else next(iter(shapes.values())), num_calibration_clips
    )

    # A list sample would go to the TFLite inputs in the converted model's
    # order, which need not be the Keras order; a dict goes by the names of
    # the serving_default signature, which are the Keras input names.
    def calibration_inputs():
      return (clip if isinstance(clip, dict) else [clip] for clip in samples())

    islands = tuple(float_island_layers(model) if float_layers is None else float_layers)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration_inputs
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8] + (
      [tf.lite.OpsSet.TFLITE_BUILTINS] if islands else []  # The islands' float kernels.
    )
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
  try:
    with _quiet(quiet):
      content = _prepared_for_calibration(converter) if format == INT8 else converter.convert()
      # The converter and the frozen graph hold gigabytes for a published
      # model (4 GB of AssembleNet++-50's 8.3 GB); calibration needs neither.
      del converter, frozen
      if format == INT8:
        release_freed_memory()
        content = _quantize_int8(content, calibration_inputs, islands)
  except (ConverterError, RuntimeError) as e:
    # RuntimeError: calibration failed (e.g. a kernel refused a shape).
    raise CandidateError(_conversion_failure(e, format)) from e
  finally:
    release_freed_memory()
  input_dtype, output_dtype = _io_dtypes(content)
  return TfliteModel(
    content=content,
    format=format,
    ops=inspect_ops(content),
    input_dtype=input_dtype,
    output_dtype=output_dtype,
    float_layers=islands,
  )


def release_freed_memory() -> None:
  """Hands the heap that conversion freed back to the system (glibc's ``malloc_trim``).

  Converting and calibrating a published model frees gigabytes that glibc
  keeps for reuse (3.6 GB after AssembleNet++-50's float conversion), so the
  next conversion in the same process would start that much higher. Elsewhere
  than glibc there is nothing to trim. No ``gc.collect()``: it costs 0.2 s in
  a search process and would run on every child the runtime gate converts;
  the converter is freed by reference counting (``del`` in ``to_tflite``).
  """
  try:
    ctypes.CDLL("libc.so.6").malloc_trim(0)
  except (OSError, AttributeError):
    pass


def _prepared_for_calibration(converter) -> bytes:
  """The float model ``converter.convert()`` would calibrate for int8.

  The converter converts the graph with its int8 settings, then calibrates
  and quantizes the result in the same call, holding its own state (and the
  caller the frozen graph) all the while: 8.3 GB for AssembleNet++-50 before
  calibration adds 5.6 GB. Stopping it at its quantization step
  (``_quantize``, which receives the converted float model) lets the caller
  free both before calibrating (``_quantize_int8``). The model is the one the
  converter's own int8 path calibrates (its int8 settings shape the
  conversion), not the plain float conversion.
  """
  prepared = []

  def keep(model, *unused_args, **unused_kwargs):
    prepared.append(model)
    return model

  converter._quantize = keep  # pylint: disable=protected-access
  converter.convert()
  if not prepared:  # A converter that no longer quantizes through _quantize.
    raise RuntimeError("the TFLite converter did not reach its int8 quantization step")
  return prepared[0]


def _quantize_int8(prepared: bytes, samples, islands: Sequence[str]) -> bytes:
  """``prepared`` calibrated on ``samples`` and quantized to int8, except the
  ops of the layers ``islands``, kept float.

  What the converter's int8 path does after converting, with one repair
  between calibration and quantization. Calibration records each tensor's
  range; a tensor that was zero on every calibration clip (a ReLU no clip
  switched on) gets a range of width 0 or ``FLT_MIN`` and, from the
  quantizer, a scale of 0 or about 1e-8, which XNNPACK cannot load (LiteRT
  aborted the process). ``_widen_unseen_ranges`` gives such a tensor the
  range [0, 1] before quantization, so its consumers' bias scales follow from
  it. Islands' nodes (ops whose output carries a layer's name scope) are
  deny-listed: the quantizer puts a DEQUANTIZE before and a QUANTIZE after
  each island.
  """
  calibrator = tflite_calibrator.Calibrator(tflite_calibrator.add_intermediate_tensors(prepared))
  calibrated = _widen_unseen_ranges(calibrator.calibrate(samples))
  del calibrator
  release_freed_memory()  # The calibrator's copy of every tensor.
  if not islands:
    return tflite_convert.mlir_quantize(
      calibrated, input_data_type=tf.int8, output_data_type=tf.int8
    )
  nodes = [op.output for op in inspect_ops(calibrated) if op.in_layers(islands)]
  if not nodes:
    raise CandidateError(
      f"No op of the float layers {', '.join(islands)} found in the converted model."
    )
  return tflite_convert.mlir_quantize(
    calibrated,
    fully_quantize=True,
    input_data_type=tf.int8,
    output_data_type=tf.int8,
    denylisted_nodes=nodes,
  )


# The range a tensor that calibration saw only at zero is quantized for, and
# the width below which a calibrated range (with zero in it, as the quantizer
# takes it) counts as only zero.
UNSEEN_RANGE = (0.0, 1.0)
UNSEEN_WIDTH = 1e-6


def _widen_unseen_ranges(calibrated: bytes) -> bytes:
  """``calibrated`` with every range narrower than ``UNSEEN_WIDTH`` set to
  ``UNSEEN_RANGE``.

  Edits the min/max vectors in place in a copy of the flatbuffer (numpy views
  into its bytes), so a large model is not rebuilt.
  """
  content = bytearray(calibrated)
  model = schema.Model.GetRootAs(content, 0)
  for s in range(model.SubgraphsLength()):
    subgraph = model.Subgraphs(s)
    for t in range(subgraph.TensorsLength()):
      quantization = subgraph.Tensors(t).Quantization()
      if quantization is None or quantization.MinLength() == 0 or quantization.MaxLength() == 0:
        continue
      minima, maxima = quantization.MinAsNumpy(), quantization.MaxAsNumpy()
      unseen = np.maximum(maxima, 0) - np.minimum(minima, 0) < UNSEEN_WIDTH
      minima[unseen], maxima[unseen] = UNSEEN_RANGE
  return bytes(content)
