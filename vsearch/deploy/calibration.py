"""Calibration clips for int8 conversion, from the clip pipeline or arrays.

``vsearch.deploy.quantize.to_tflite`` calibrates an int8 model on a few real
clips; this module takes them from a dataset of batches or from arrays, and
checks their shapes, inputs and value range before the converter sees them.

A clip of a published model is large (AssembleNet++'s 32 frames of 224 px
with 151 one-hot object maps are 1 GB in float32), so ``calibration_samples``
streams them: one batch of the dataset is in memory at a time, never the
whole calibration set.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Optional, Union

import numpy as np
import tensorflow as tf

from vsearch.data.clips import CLIPS  # The input the clips go to.
from vsearch.errors import UserError

DEFAULT_CALIBRATION_CLIPS = 16

# Clips from the clip pipeline lie in [-1, 1]; allow rounding.
_CLIP_RANGE = 1.0 + 1e-3


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


def _single_clips(clips: Clips) -> Iterator[Clips]:
  """The clips of a checked batch one at a time, each with a batch axis of 1."""
  if isinstance(clips, dict):
    count = len(next(iter(clips.values())))
    for i in range(count):
      yield {name: value[i : i + 1] for name, value in clips.items()}
  else:
    for i in range(len(clips)):
      yield clips[i : i + 1]


def _iter_samples(
  data: tf.data.Dataset,
  clip_shape: Union[Sequence[int], Mapping[str, Sequence[int]], None],
  num_clips: int,
) -> Iterator[Clips]:
  # No autotuned prefetching: it would hold several clips of a large model.
  options = tf.data.Options()
  options.autotune.enabled = False
  count = 0
  for element in data.with_options(options):
    batch = element[0] if isinstance(element, (tuple, list)) else element
    if isinstance(batch, Mapping):
      batch = {name: np.asarray(value) for name, value in batch.items()}
    else:
      batch = np.asarray(batch)
    checked = representative_clips(batch, clip_shape, num_clips - count)
    del batch
    for clip in _single_clips(checked):
      yield clip
      count += 1
    del checked
    if count >= num_clips:
      return
  if not count:
    representative_clips(np.zeros((0,)), clip_shape)  # Raises: no clips.


def calibration_samples(
  data: Union[tf.data.Dataset, np.ndarray, Mapping[str, np.ndarray]],
  clip_shape: Union[Sequence[int], Mapping[str, Sequence[int]], None] = None,
  num_clips: int = DEFAULT_CALIBRATION_CLIPS,
) -> Callable[[], Iterator[Clips]]:
  """A representative dataset for the converter: single clips, streamed.

  Takes the same data as ``representative_clips`` and checks it the same
  way, but a dataset is read one batch at a time while the converter
  calibrates, so memory holds one batch (make it a batch of 1 for a large
  model), not ``num_clips`` clips. The first batch is read and checked
  before this returns, so bad clips fail here rather than inside the
  converter.

  Args:
    data: as for ``representative_clips``.
    clip_shape: as for ``representative_clips``.
    num_clips: at most this many clips are yielded.

  Returns:
    A callable returning an iterator of clips with a batch axis of 1
    ([1, T, H, W, C], or a dict of such per input). Called again, it reads
    the dataset again.

  Raises:
    UserError: as ``representative_clips``, for the first batch (later
      batches raise it while the converter reads them).
  """
  if num_clips < 1:
    raise UserError(f"num_clips must be positive, got {num_clips}")
  if not isinstance(data, tf.data.Dataset):
    clips = representative_clips(data, clip_shape, num_clips)
    return lambda: _single_clips(clips)
  state = {"fresh": _iter_samples(data, clip_shape, num_clips)}
  state["first"] = next(state["fresh"])

  def samples() -> Iterator[Clips]:
    fresh = state.pop("fresh", None)
    if fresh is None:  # A second pass reads the dataset again.
      yield from _iter_samples(data, clip_shape, num_clips)
      return
    yield state.pop("first")  # Not kept once the converter has it.
    yield from fresh

  return samples
