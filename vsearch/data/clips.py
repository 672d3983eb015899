"""The clip pipeline: from a TFDS video dataset to batches of model inputs.

``make_clips`` reads examples ``{"video": uint8 [N, H, W, 3], "label": int}``
(any TFDS video dataset: synthetic_motion, ucf101, ...) and yields
``(clips float32 [B, T, R, R, 3] in [-1, 1], labels int32 [B])``.

Frame sampling: ``T = spec.num_frames`` frames, ``spec.frame_stride`` apart,
starting at a random offset in training and at the centred offset in
evaluation. A video shorter than the span ``(T - 1) * stride + 1`` is clamped:
indices past its end repeat its last frame. A pause keeps every displacement
the model sees true to the video, where looping would insert a jump back to
the first frame, a motion in the wrong direction.

Frames are centre-cropped to a square and resized (bilinear, antialiased) to
``spec.resolution``. There is no flip or other geometric augmentation by
default on purpose: mirroring a clip changes its direction of motion, which
is the class in synthetic_motion. Real videos usually gain from
``Augmentation`` (random square crops at a jittered scale, horizontal flips;
``make_clips.augmentation = @Augmentation()`` in gin), drawn once per clip so
that every frame of a clip gets the same crop and flip.

Models with several inputs (AssembleNet++) ask for more than the frames
(``ClipSpec.extra_inputs``): ``"flow"``, the optical flow of the clip
(``vsearch.nn.flow.clip_flow``), and ``"objects"``, the per-frame segmentation
maps of datasets that carry them (synthetic_motion), one-hot float32 [T, R,
R, object_classes], cropped, flipped and resized (nearest) with the frames.
Their batches are ``({"clips": ..., "flow": ..., "objects": ...}, labels)``,
keyed by the models' input names.

Evaluation can score a video by several clips (``make_clips.num_eval_clips``):
their offsets are spread evenly from the first to the last valid start, so
the same video always gives the same clips, and batches become
``[B, K, T, R, R, 3]``; the trainer averages the clips' class probabilities.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Union

import gin
import numpy as np
import tensorflow as tf

from vsearch.errors import UserError
from vsearch.nn import flow

_AUTOTUNE = tf.data.AUTOTUNE


STREAM_CHANNELS = {"rgb": 3, "flow": 2}
STREAMS = tuple(STREAM_CHANNELS)
# Inputs a model can read beside the clip itself; "clips" names the clip.
CLIPS = "clips"
FLOW = "flow"
OBJECTS = "objects"
EXTRA_INPUTS = (FLOW, OBJECTS)


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """What a model reads from a video: how many frames, how far apart, how big.

  Attributes:
    num_frames: frames per clip.
    frame_stride: distance between sampled frames, in source frames.
    resolution: side of the square frames, in pixels.
    stream: 'rgb' (the frames) or 'flow' (their optical flow, 2 channels,
      ``vsearch.nn.flow.clip_flow``), for two-stream models such as EvaNet's.
    extra_inputs: further model inputs of an 'rgb' clip, from
      ``EXTRA_INPUTS``: 'flow' (its optical flow) and 'objects' (per-frame
      segmentation maps). Non-empty makes batches dicts keyed by input name.
    object_classes: channels of the one-hot 'objects' maps; at least the
      number of segmentation classes of the dataset.
  """

  num_frames: int
  frame_stride: int
  resolution: int
  stream: str = "rgb"
  extra_inputs: tuple[str, ...] = ()
  object_classes: int = 0

  @property
  def input_shape(self) -> tuple[int, int, int, int]:
    """Shape of one clip as the model receives it: (T, H, W, 3 or 2)."""
    return (self.num_frames, self.resolution, self.resolution, STREAM_CHANNELS[self.stream])

  @property
  def input_shapes(self) -> dict[str, tuple[int, int, int, int]]:
    """Shape of each model input by name: "clips" and the extra inputs."""
    frame = (self.num_frames, self.resolution, self.resolution)
    channels = {FLOW: STREAM_CHANNELS["flow"], OBJECTS: self.object_classes}
    return {
      CLIPS: self.input_shape,
      **{name: frame + (channels[name],) for name in self.extra_inputs},
    }


def check_inputs(spec: ClipSpec, object_classes: Sequence[str]) -> None:
  """Raises UserError if a dataset cannot feed the inputs ``spec`` asks for.

  Args:
    spec: what the model reads.
    object_classes: the dataset's segmentation classes
      (``VideoDataset.object_classes``); empty if it has no maps.
  """
  _check_extra_inputs(spec)
  if OBJECTS not in spec.extra_inputs:
    return
  if not object_classes:
    raise _no_objects_error()
  if len(object_classes) > spec.object_classes:
    raise UserError(
      f"The dataset's segmentation maps have {len(object_classes)} classes "
      f"and the model's object input only {spec.object_classes} channels; "
      f"set AssembleNetMethod.object_classes = {len(object_classes)}."
    )


def _check_extra_inputs(spec: ClipSpec) -> None:
  unknown = [name for name in spec.extra_inputs if name not in EXTRA_INPUTS]
  if unknown:
    raise UserError(
      f"The clip pipeline cannot make the inputs {unknown}; "
      f"extra inputs must be among {EXTRA_INPUTS}."
    )
  if spec.extra_inputs and spec.stream != "rgb":
    raise UserError(
      f"A {spec.stream!r} clip cannot have extra inputs "
      f"{spec.extra_inputs}; they go with 'rgb' clips."
    )
  if OBJECTS in spec.extra_inputs and spec.object_classes < 1:
    raise UserError(
      f"ClipSpec.object_classes is {spec.object_classes}; a "
      "spec that reads object maps needs at least 1."
    )


def _no_objects_error() -> UserError:
  return UserError(
    "This model reads per-frame segmentation maps (an AssembleNet++ object "
    "stem), and the dataset has none; use synthetic_motion, which renders "
    "them, or remove 'object' from AssembleNetSearchSpace.stems."
  )


def frame_indices(num_video_frames: tf.Tensor, spec: ClipSpec, offset: tf.Tensor) -> tf.Tensor:
  """Source frame of each clip frame, clamped to the last frame of the video.

  Args:
    num_video_frames: N, frames in the video (scalar int32).
    spec: the clip to sample.
    offset: index of the first sampled frame (scalar int32).

  Returns:
    int32 [spec.num_frames].
  """
  steps = tf.range(spec.num_frames, dtype=tf.int32) * spec.frame_stride
  return tf.minimum(offset + steps, num_video_frames - 1)


def clip_offset(
  num_video_frames: tf.Tensor, spec: ClipSpec, seed: tf.Tensor | None = None
) -> tf.Tensor:
  """First frame of a clip: uniform over the valid starts, or centred.

  Args:
    num_video_frames: N, frames in the video (scalar int32).
    spec: the clip to sample.
    seed: int [2] seed of a stateless draw; None gives the centred offset.

  Returns:
    Scalar int32 in [0, max(N - span, 0)].
  """
  span = (spec.num_frames - 1) * spec.frame_stride + 1
  room = tf.maximum(num_video_frames - span, 0)
  if seed is None:
    return room // 2
  return tf.random.stateless_uniform([], seed=seed, minval=0, maxval=room + 1, dtype=tf.int32)


@gin.configurable
@dataclasses.dataclass(frozen=True)
class Augmentation:
  """Random geometric changes of training clips; evaluation never gets them.

  Attributes:
    random_crop: take the square crop at a uniformly random position instead
      of the centre.
    min_crop_scale: side of the square crop as a fraction of the frame's
      shorter side, drawn uniformly in [min_crop_scale, 1] (scale jitter);
      1 keeps the largest square.
    flip: mirror half of the clips left to right. Leave it off where the
      direction of motion is the class (synthetic_motion).
  """

  random_crop: bool = False
  min_crop_scale: float = 1.0
  flip: bool = False

  @property
  def changes_frames(self) -> bool:
    """Whether any augmentation is on."""
    return self.random_crop or self.flip or self.min_crop_scale < 1.0

  def __post_init__(self):
    if not 0.0 < self.min_crop_scale <= 1.0:
      raise UserError(f"Augmentation.min_crop_scale is {self.min_crop_scale!r}; set it in (0, 1].")


def _augmented_crop(frames: tf.Tensor, augmentation: Augmentation, seed: tf.Tensor) -> tf.Tensor:
  """One random square crop (and maybe a mirror) of all frames [T, H, W, 3]."""
  height, width = tf.shape(frames)[1], tf.shape(frames)[2]
  seeds = tf.random.experimental.stateless_split(seed, 4)
  scale = tf.random.stateless_uniform([], seeds[0], augmentation.min_crop_scale, 1.0)
  side = tf.maximum(tf.cast(tf.cast(tf.minimum(height, width), tf.float32) * scale, tf.int32), 1)
  if augmentation.random_crop:
    top = tf.random.stateless_uniform([], seeds[1], 0, height - side + 1, tf.int32)
    left = tf.random.stateless_uniform([], seeds[2], 0, width - side + 1, tf.int32)
  else:
    top, left = (height - side) // 2, (width - side) // 2
  frames = frames[:, top : top + side, left : left + side, :]
  if augmentation.flip:
    mirror = tf.random.stateless_uniform([], seeds[3]) < 0.5
    frames = tf.cond(mirror, lambda: tf.reverse(frames, axis=[2]), lambda: frames)
  return frames


def _square_resize(frames: tf.Tensor, resolution: int, method: str = "bilinear") -> tf.Tensor:
  """Centre-crops frames [T, H, W, C] to a square and resizes it, as uint8.

  'bilinear' (antialiased) suits pixels; 'nearest' keeps class indices.
  """
  height, width = tf.shape(frames)[1], tf.shape(frames)[2]
  side = tf.minimum(height, width)
  top, left = (height - side) // 2, (width - side) // 2
  frames = frames[:, top : top + side, left : left + side, :]
  frames = tf.image.resize(
    tf.cast(frames, tf.float32),
    [resolution, resolution],
    method=method,
    antialias=method == "bilinear",
  )
  return tf.cast(tf.clip_by_value(tf.round(frames), 0.0, 255.0), tf.uint8)


def _gather_frames(example: dict[str, tf.Tensor], indices: tf.Tensor, spec: ClipSpec) -> tf.Tensor:
  """Frames [N', H, W, 3] at ``indices``, plus their object map as a 4th
  channel when ``spec`` reads objects, so crops and flips move both."""
  frames = tf.gather(example["video"], indices)
  if OBJECTS in spec.extra_inputs:
    objects = tf.cast(tf.gather(example[OBJECTS], indices), frames.dtype)
    frames = tf.concat([frames, objects], axis=-1)
  return frames


def _split_resize(frames: tf.Tensor, spec: ClipSpec):
  """The resized clip of ``_gather_frames``' output, as a dict of inputs
  {"clips": uint8 [N', R, R, 3], "objects": uint8 [N', R, R]} if ``spec``
  reads objects, else the clip alone."""
  clip = _square_resize(frames[..., :3], spec.resolution)
  if OBJECTS not in spec.extra_inputs:
    return clip
  objects = _square_resize(frames[..., 3:], spec.resolution, "nearest")
  return {CLIPS: clip, OBJECTS: objects[..., 0]}


def _sample_clip(
  example: dict[str, tf.Tensor],
  spec: ClipSpec,
  seed: tf.Tensor | None,
  augmentation: Augmentation | None = None,
):
  """One clip (uint8 [T, R, R, 3], or a dict with its object map) and its
  label (int32) from one example."""
  num_video_frames = tf.shape(example["video"])[0]
  offset = clip_offset(num_video_frames, spec, seed)
  frames = _gather_frames(example, frame_indices(num_video_frames, spec, offset), spec)
  if augmentation is not None and augmentation.changes_frames:
    frames = _augmented_crop(
      frames, augmentation, tf.random.experimental.stateless_fold_in(seed, 1)
    )
  inputs = _shaped(_split_resize(frames, spec), (spec.num_frames, spec.resolution, spec.resolution))
  return inputs, tf.cast(example["label"], tf.int32)


def _sample_clips(example: dict[str, tf.Tensor], spec: ClipSpec, num_clips: int):
  """``num_clips`` evenly spread centre-cropped clips [K, T, R, R, 3] (with
  their object maps [K, T, R, R] if ``spec`` reads them), and the label."""
  num_video_frames = tf.shape(example["video"])[0]
  span = (spec.num_frames - 1) * spec.frame_stride + 1
  room = tf.maximum(num_video_frames - span, 0)
  offsets = tf.cast(tf.round(tf.linspace(0.0, tf.cast(room, tf.float32), num_clips)), tf.int32)
  indices = tf.reshape(
    tf.map_fn(lambda offset: frame_indices(num_video_frames, spec, offset), offsets), [-1]
  )
  inputs = _shaped(
    _split_resize(_gather_frames(example, indices, spec), spec),
    (num_clips, spec.num_frames, spec.resolution, spec.resolution),
  )
  return inputs, tf.cast(example["label"], tf.int32)


def _shaped(inputs, frames: tuple[int, ...]):
  """``_split_resize``'s output reshaped to clips ``frames + (3,)`` and
  object maps ``frames``, which gives them static shapes."""
  if isinstance(inputs, dict):
    return {
      CLIPS: tf.reshape(inputs[CLIPS], frames + (3,)),
      OBJECTS: tf.reshape(inputs[OBJECTS], frames),
    }
  return tf.reshape(inputs, frames + (3,))


def _model_inputs(inputs, labels, spec: ClipSpec):
  """uint8 clips to float32 in [-1, 1]; object maps to one-hot float32;
  the flow of the clips if ``spec`` reads it."""
  if not isinstance(inputs, dict):
    inputs = {CLIPS: inputs}
  out = {CLIPS: tf.cast(inputs[CLIPS], tf.float32) / 127.5 - 1.0}
  if spec.stream == "flow":
    out[CLIPS] = flow.clip_flow(out[CLIPS])
  if FLOW in spec.extra_inputs:
    out[FLOW] = flow.clip_flow(out[CLIPS])
  if OBJECTS in spec.extra_inputs:
    out[OBJECTS] = tf.one_hot(inputs[OBJECTS], spec.object_classes, dtype=tf.float32)
  return (out if spec.extra_inputs else out[CLIPS]), labels


@gin.configurable(allowlist=["augmentation", "num_eval_clips"])
def make_clips(
  examples: tf.data.Dataset,
  spec: ClipSpec,
  *,
  batch_size: int,
  training: bool,
  seed: int = 0,
  shuffle_buffer: int = 256,
  augmentation: Augmentation | None = None,
  num_eval_clips: int = 1,
) -> tf.data.Dataset:
  """Batches of clips for training or evaluation.

  Training shuffles, repeats forever and drops the last partial batch (a
  distributed step needs full batches); the clip offsets and the order are
  drawn from ``seed``, so the same seed gives the same stream. Evaluation
  makes one pass in the order of ``examples`` with centred clips and keeps
  every example, so it gives the same batches every time.

  Shuffling happens after sampling and resizing, so the buffer holds small
  uint8 clips rather than whole decoded videos. TFDS already stores examples
  in a hashed order, so a modest buffer mixes well.

  Args:
    examples: elements ``{"video": uint8 [N, H, W, 3], "label": int}``; N, H
      and W may vary between examples.
    spec: frames, stride and resolution of the clips.
    batch_size: clips per batch (the global batch under a strategy).
    training: whether to make the training stream or the evaluation pass.
    seed: seed of the training offsets and order.
    shuffle_buffer: clips in the training shuffle buffer.
    augmentation: random crops, scale jitter and flips of training clips;
      None has none.
    num_eval_clips: clips per video in evaluation; more than 1 gives clips
      ``[B, K, T, R, R, 3]``.

  Returns:
    A dataset of ``(clips float32 [B, T, R, R, 3] in [-1, 1], labels int32
    [B])`` (labels [B, C] for multi-hot labels); B is static in training and
    may be smaller in the last evaluation batch. A 'flow' spec gives
    ``vsearch.nn.flow.clip_flow`` of those clips instead, [B, T, R, R, 2]. A
    spec with ``extra_inputs`` gives a dict ``{"clips": ..., "flow": [B, T,
    R, R, 2], "objects": [B, T, R, R, object_classes]}`` in place of the
    clips.

  Raises:
    UserError: the spec, batch size or buffer size is not positive, the
      stream is unknown, or the examples lack an input the spec asks for.
  """
  if spec.stream not in STREAMS:
    raise UserError(f"The clip pipeline got stream={spec.stream!r}; it must be one of {STREAMS}.")
  _check_extra_inputs(spec)
  if OBJECTS in spec.extra_inputs and OBJECTS not in examples.element_spec:
    raise _no_objects_error()
  for name, value in (
    ("num_frames", spec.num_frames),
    ("frame_stride", spec.frame_stride),
    ("resolution", spec.resolution),
    ("batch_size", batch_size),
    ("shuffle_buffer", shuffle_buffer),
    ("num_eval_clips", num_eval_clips),
  ):
    if value < 1:
      raise UserError(f"The clip pipeline got {name}={value}; it must be a positive integer.")
  if training:
    seed_base = tf.constant(seed, tf.int64)
    clips = (
      examples.repeat()
      .enumerate()
      .map(
        lambda i, ex: _sample_clip(ex, spec, tf.stack([seed_base, i]), augmentation),
        num_parallel_calls=_AUTOTUNE,
      )
    )
    clips = clips.shuffle(shuffle_buffer, seed=seed)
    clips = clips.batch(batch_size, drop_remainder=True)
  elif num_eval_clips > 1:
    clips = examples.map(
      lambda ex: _sample_clips(ex, spec, num_eval_clips), num_parallel_calls=_AUTOTUNE
    )
    clips = clips.batch(batch_size)
  else:
    clips = examples.map(lambda ex: _sample_clip(ex, spec, None), num_parallel_calls=_AUTOTUNE)
    clips = clips.batch(batch_size)
  clips = clips.map(
    lambda inputs, labels: _model_inputs(inputs, labels, spec), num_parallel_calls=_AUTOTUNE
  )
  return clips.prefetch(_AUTOTUNE)


def take_clips(
  dataset: tf.data.Dataset, limit: int
) -> tuple[Union[np.ndarray, dict[str, np.ndarray]], np.ndarray]:
  """Up to ``limit`` clips and labels of a batched dataset, as arrays.

  Batches whose inputs are a dict ``{input_name: tensor}`` (a model of
  several inputs) give a dict of arrays, each cut to the same clips.
  """
  clips, labels, count = [], [], 0
  for batch_clips, batch_labels in dataset:
    if isinstance(batch_clips, Mapping):
      clips.append({name: value.numpy() for name, value in batch_clips.items()})
    else:
      clips.append(batch_clips.numpy())
    labels.append(batch_labels.numpy())
    count += len(labels[-1])
    if count >= limit:
      break
  if clips and isinstance(clips[0], dict):
    joined = {name: np.concatenate([c[name] for c in clips])[:limit] for name in clips[0]}
  else:
    joined = np.concatenate(clips)[:limit]
  return joined, np.concatenate(labels)[:limit]
