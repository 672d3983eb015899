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
  it, so its measured latency is the deployed one.
* ``'float'``: plain float32.

TFLite has no int8 kernel for some ops: the converter then leaves them in
float between DEQUANTIZE and QUANTIZE ops (CONV_3D does this silently). Every
op of the result is inspected from the flatbuffer, so such a model is reported
as not fully int8 with the names of its float ops. Ops with no TFLite kernel at
all (3-D pooling) fail the conversion with a ``CandidateError``.

A model with several named inputs (AssembleNet++: 'clips', 'flow',
'objects') converts to a TFLite model with one input per Keras input. Its
calibration samples are dicts keyed by those names, fed through the
``serving_default`` signature: the TFLite input order need not be the Keras
order, so callers match inputs by name (``vsearch.deploy.litert_runner`` does).
"""

import contextlib
import dataclasses
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Optional, Union

import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema

# Not exported under tf.lite; the class the converter raises.
from tensorflow.lite.python.convert_phase import ConverterError

from vsearch import quiet
from vsearch.data.clips import CLIPS  # The input the clips go to.
from vsearch.errors import CandidateError, UserError
from vsearch.nn import cost

INT8 = "int8"
FLOAT = "float"
FORMATS = (INT8, FLOAT)

DEFAULT_CALIBRATION_CLIPS = 16

# They only move values between int8 and float: not computation, and a model
# that falls back to float shows them around its float ops.
_TYPE_CONVERSIONS = frozenset({"QUANTIZE", "DEQUANTIZE"})
_FLOAT_TYPES = frozenset({"float32", "float16", "float64", "bfloat16"})
# Clips from the clip pipeline lie in [-1, 1]; allow rounding.
_CLIP_RANGE = 1.0 + 1e-3

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
  """

  subgraph: int
  index: int
  name: str
  input_dtype: str

  @property
  def runs_in_float(self) -> bool:
    """Whether this is a compute op whose input is floating point."""
    return self.name not in _TYPE_CONVERSIONS and self.input_dtype in _FLOAT_TYPES


@dataclasses.dataclass(frozen=True)
class TfliteModel:
  """A converted model and what its ops run in.

  Attributes:
    content: the flatbuffer.
    format: 'int8' or 'float', as requested from ``to_tflite``.
    ops: every op of every subgraph.
    input_dtype: dtype of the model's (first) input, e.g. 'int8'.
    output_dtype: dtype of the model's output.
  """

  content: bytes = dataclasses.field(repr=False)
  format: str
  ops: tuple[OpInfo, ...] = dataclasses.field(repr=False)
  input_dtype: str
  output_dtype: str

  @property
  def float_ops(self) -> tuple[OpInfo, ...]:
    """Compute ops that run in float (all of them in a float model)."""
    return tuple(op for op in self.ops if op.runs_in_float)

  @property
  def fully_int8(self) -> bool:
    """Whether every compute op has int8 (or other integer) inputs."""
    return not self.float_ops

  def summary(self) -> dict[str, Any]:
    """A JSON-compatible description for a candidate's record."""
    counts: dict[str, int] = {}
    for op in self.ops:
      counts[op.name] = counts.get(op.name, 0) + 1
    return {
      "format": self.format,
      "size_bytes": len(self.content),
      "fully_int8": self.fully_int8,
      "float_ops": sorted({op.name for op in self.float_ops}),
      "input_dtype": self.input_dtype,
      "output_dtype": self.output_dtype,
      "op_counts": dict(sorted(counts.items())),
    }

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
      ops.append(OpInfo(subgraph=s, index=i, name=name, input_dtype=dtype))
  return tuple(ops)


def _io_dtypes(content: bytes) -> tuple[str, str]:
  subgraph = schema.Model.GetRootAs(content, 0).Subgraphs(0)
  first_input = subgraph.Tensors(subgraph.Inputs(0))
  first_output = subgraph.Tensors(subgraph.Outputs(0))
  return _TYPE_NAMES[first_input.Type()], _TYPE_NAMES[first_output.Type()]


Clips = Union[np.ndarray, dict[str, np.ndarray]]


def _take_batches(data: tf.data.Dataset, num_clips: int) -> Clips:
  """Up to ``num_clips`` clips of a dataset's batches, as arrays."""
  taken, count = [], 0
  for element in data:
    batch = element[0] if isinstance(element, (tuple, list)) else element
    if isinstance(batch, Mapping):
      batch = {name: np.asarray(value) for name, value in batch.items()}
      size = len(next(iter(batch.values()))) if batch else 0
      taken.append({name: value[: num_clips - count] for name, value in batch.items()})
    else:
      batch = np.asarray(batch)
      size = len(batch)
      taken.append(batch[: num_clips - count])
    count += min(size, num_clips - count)
    if count >= num_clips:
      break
  if taken and isinstance(taken[0], dict):
    return {name: np.concatenate([t[name] for t in taken]) for name in taken[0]}
  return np.concatenate(taken) if taken else np.zeros((0,))


def _check_clips(
  clips: np.ndarray, clip_shape: Optional[Sequence[int]], name: Optional[str]
) -> np.ndarray:
  """One input's clips as float32, checked against its shape and range."""
  what = "Calibration clips" if name is None else f"Calibration input {name!r}"
  if clips.size == 0:
    raise UserError(
      f"No calibration clips: the dataset or array is empty"
      f"{'' if name is None else f' (input {name!r})'}."
    )
  if clip_shape is not None and clips.shape[1:] != tuple(clip_shape):
    raise UserError(
      f"{what} has shape {tuple(clips.shape[1:])} but the model reads "
      f"{'clips' if name is None else name} of shape {tuple(clip_shape)} "
      "(frames, height, width, channels): make them with the candidate's "
      "clip spec."
    )
  clips = clips.astype(np.float32, copy=False)
  # Only RGB clips have a known range; flow and object maps have their own.
  if name in (None, CLIPS):
    low, high = float(clips.min()), float(clips.max())
    if low < -_CLIP_RANGE or high > _CLIP_RANGE:
      raise UserError(
        f"Calibration clips range over [{low:g}, {high:g}]; the "
        "models read float clips in [-1, 1] (uint8 / 127.5 - 1)."
      )
  elif not np.all(np.isfinite(clips)):
    raise UserError(f"{what} holds NaN or infinite values.")
  return clips


def representative_clips(
  data: Union[tf.data.Dataset, np.ndarray, Mapping[str, np.ndarray]],
  clip_shape: Union[Sequence[int], Mapping[str, Sequence[int]], None] = None,
  num_clips: int = DEFAULT_CALIBRATION_CLIPS,
) -> Clips:
  """Single clips for calibration, from the clip pipeline or arrays.

  A model with one input reads clips; one with several named inputs
  ('clips', 'flow', 'objects') reads a dict of them, and the data pipeline
  then yields dict batches keyed by those names.

  Args:
    data: a dataset of ``(clips, labels)`` batches (clips float32
      [B, T, H, W, 3] in [-1, 1], as ``vsearch.data.clips.make_clips``
      yields, or a dict ``{input_name: [B, ...]}``) or of such batches alone;
      or an array of clips [N, T, H, W, 3] (one clip [T, H, W, 3] is
      accepted too), or a dict of such arrays.
    clip_shape: the shape of one clip the model reads, (T, H, W, 3), or for a
      model of several inputs a dict ``{input_name: shape}``; None skips the
      shape checks.
    num_clips: at most this many clips are returned (fewer if the data has
      fewer).

  Returns:
    float32 [N, T, H, W, 3], 1 <= N <= num_clips; a dict of such arrays (one
    per input, the same N) when the data or ``clip_shape`` is a dict.

  Raises:
    UserError: no clips, clips of another shape than ``clip_shape``, inputs
      other than the model's, or RGB values outside [-1, 1] (e.g. uint8
      frames not yet normalised).
  """
  if num_clips < 1:
    raise UserError(f"num_clips must be positive, got {num_clips}")
  shapes = dict(clip_shape) if isinstance(clip_shape, Mapping) else None
  if isinstance(data, tf.data.Dataset):
    clips = _take_batches(data, num_clips)
  elif isinstance(data, Mapping):
    clips = {name: np.asarray(value) for name, value in data.items()}
  else:
    clips = np.asarray(data)
  if isinstance(clips, dict) and shapes is None:
    if clip_shape is None:
      shapes = dict.fromkeys(clips)
    elif len(clips) == 1:
      clips = next(iter(clips.values()))  # One named input: the clips.
    else:
      raise UserError(
        f"Calibration data has inputs {sorted(clips)} but the model reads one input (clips)."
      )
  if not isinstance(clips, dict):
    if shapes is not None and clips.size:
      raise UserError(
        f"The model reads inputs {list(shapes)}; calibration "
        "data must be a dict of them (or batches of such "
        "dicts), not one array."
      )
    single_shape = None if shapes is not None else clip_shape
    if single_shape is not None and clips.shape == tuple(single_shape):
      clips = clips[None]
    return _check_clips(clips[:num_clips], single_shape, None)
  if set(clips) != set(shapes):
    raise UserError(
      f"Calibration data has inputs {sorted(clips)} but the model reads {sorted(shapes)}."
    )
  out = {}
  for name, shape in shapes.items():
    value = clips[name]
    if shape is not None and value.shape == tuple(shape):
      value = value[None]
    out[name] = _check_clips(value[:num_clips], shape, name)
  sizes = {name: len(value) for name, value in out.items()}
  if len(set(sizes.values())) != 1:
    raise UserError(f"Calibration inputs differ in number of clips: {sizes}")
  return out


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
) -> TfliteModel:
  """Converts ``model`` at batch 1 to a TFLite model and inspects its ops.

  Args:
    model: a Keras model, trained or not, of one input (clips [B, T, H, W,
      3]) or of several named inputs ('clips', 'flow', 'objects'); the
      TFLite model then has one input per Keras input, named after it in its
      ``serving_default`` signature (its input order may differ).
    format: 'int8' (full-integer, int8 input and output) or 'float'.
    calibration: clips for the int8 calibration, as ``representative_clips``
      takes them (dicts keyed by input name for a model of several inputs);
      required for 'int8', ignored for 'float'.
    num_calibration_clips: how many clips calibrate. Latency does not depend
      on them, accuracy does.
    quiet: keep the converter's logs off the console.

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
  frozen = cost.frozen_function(model)
  # The frozen function holds no variables, so an empty module is enough to
  # take the current (saved-model) conversion path.
  converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], tf.Module())
  if format == INT8:
    if calibration is None:
      raise UserError("int8 conversion needs calibration clips.")
    shapes = cost.input_shapes(model)
    clips = representative_clips(
      calibration, shapes if len(shapes) > 1 else next(iter(shapes.values())), num_calibration_clips
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if isinstance(clips, dict):
      # A list sample would go to the TFLite inputs in the converted model's
      # order, which need not be the Keras order; a dict goes by the names of
      # the serving_default signature, which are the Keras input names.
      count = len(next(iter(clips.values())))
      converter.representative_dataset = lambda: (
        {name: value[i][None] for name, value in clips.items()} for i in range(count)
      )
    else:
      converter.representative_dataset = lambda: ([clip[None]] for clip in clips)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
  try:
    with _quiet(quiet):
      content = converter.convert()
  except (ConverterError, RuntimeError) as e:
    # RuntimeError: calibration failed (e.g. a kernel refused a shape).
    raise CandidateError(_conversion_failure(e, format)) from e
  input_dtype, output_dtype = _io_dtypes(content)
  return TfliteModel(
    content=content,
    format=format,
    ops=inspect_ops(content),
    input_dtype=input_dtype,
    output_dtype=output_dtype,
  )
