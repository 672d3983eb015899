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
``spec.resolution``. There is no flip or other geometric augmentation on
purpose: mirroring a clip changes its direction of motion, which is the class
in synthetic_motion.
"""

import dataclasses

import tensorflow as tf

from vsearch import flow
from vsearch.errors import UserError

_AUTOTUNE = tf.data.AUTOTUNE


STREAM_CHANNELS = {"rgb": 3, "flow": 2}
STREAMS = tuple(STREAM_CHANNELS)


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """What a model reads from a video: how many frames, how far apart, how big.

  Attributes:
    num_frames: frames per clip.
    frame_stride: distance between sampled frames, in source frames.
    resolution: side of the square frames, in pixels.
    stream: 'rgb' (the frames) or 'flow' (their optical flow, 2 channels,
      ``vsearch.flow.clip_flow``), for two-stream models such as EvaNet's.
  """

  num_frames: int
  frame_stride: int
  resolution: int
  stream: str = "rgb"

  @property
  def input_shape(self) -> tuple[int, int, int, int]:
    """Shape of one clip as the model receives it: (T, H, W, 3 or 2)."""
    return (self.num_frames, self.resolution, self.resolution,
            STREAM_CHANNELS[self.stream])


def frame_indices(num_video_frames: tf.Tensor, spec: ClipSpec,
                  offset: tf.Tensor) -> tf.Tensor:
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


def clip_offset(num_video_frames: tf.Tensor, spec: ClipSpec,
                seed: tf.Tensor | None = None) -> tf.Tensor:
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
  return tf.random.stateless_uniform(
      [], seed=seed, minval=0, maxval=room + 1, dtype=tf.int32)


def _square_resize(frames: tf.Tensor, resolution: int) -> tf.Tensor:
  """Centre-crops frames [T, H, W, 3] to a square and resizes it, as uint8."""
  height, width = tf.shape(frames)[1], tf.shape(frames)[2]
  side = tf.minimum(height, width)
  top, left = (height - side) // 2, (width - side) // 2
  frames = frames[:, top:top + side, left:left + side, :]
  frames = tf.image.resize(frames, [resolution, resolution],
                           method="bilinear", antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(frames), 0.0, 255.0), tf.uint8)


def _sample_clip(example: dict[str, tf.Tensor], spec: ClipSpec,
                 seed: tf.Tensor | None) -> tuple[tf.Tensor, tf.Tensor]:
  """One clip (uint8 [T, R, R, 3]) and its label (int32) from one example."""
  video = example["video"]
  num_video_frames = tf.shape(video)[0]
  offset = clip_offset(num_video_frames, spec, seed)
  frames = tf.gather(video, frame_indices(num_video_frames, spec, offset))
  frames = _square_resize(frames, spec.resolution)
  frames = tf.ensure_shape(
      frames, (spec.num_frames, spec.resolution, spec.resolution, 3))
  return frames, tf.cast(example["label"], tf.int32)


def _normalise(clips: tf.Tensor, labels: tf.Tensor):
  return tf.cast(clips, tf.float32) / 127.5 - 1.0, labels


def make_clips(examples: tf.data.Dataset, spec: ClipSpec, *, batch_size: int,
               training: bool, seed: int = 0,
               shuffle_buffer: int = 256) -> tf.data.Dataset:
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

  Returns:
    A dataset of ``(clips float32 [B, T, R, R, 3] in [-1, 1], labels int32
    [B])``; B is static in training and may be smaller in the last
    evaluation batch. A 'flow' spec gives ``vsearch.flow.clip_flow`` of
    those clips instead, [B, T, R, R, 2].

  Raises:
    UserError: the spec, batch size or buffer size is not positive, or the
      stream is unknown.
  """
  if spec.stream not in STREAMS:
    raise UserError(f"The clip pipeline got stream={spec.stream!r}; it must "
                    f"be one of {STREAMS}.")
  for name, value in (("num_frames", spec.num_frames),
                      ("frame_stride", spec.frame_stride),
                      ("resolution", spec.resolution),
                      ("batch_size", batch_size),
                      ("shuffle_buffer", shuffle_buffer)):
    if value < 1:
      raise UserError(f"The clip pipeline got {name}={value}; it must be a "
                      "positive integer.")
  if training:
    seed_base = tf.constant(seed, tf.int64)
    clips = examples.repeat().enumerate().map(
        lambda i, ex: _sample_clip(ex, spec, tf.stack([seed_base, i])),
        num_parallel_calls=_AUTOTUNE)
    clips = clips.shuffle(shuffle_buffer, seed=seed)
    clips = clips.batch(batch_size, drop_remainder=True)
  else:
    clips = examples.map(lambda ex: _sample_clip(ex, spec, None),
                         num_parallel_calls=_AUTOTUNE)
    clips = clips.batch(batch_size)
  clips = clips.map(_normalise, num_parallel_calls=_AUTOTUNE)
  if spec.stream == "flow":
    clips = clips.map(lambda c, labels: (flow.clip_flow(c), labels),
                      num_parallel_calls=_AUTOTUNE)
  return clips.prefetch(_AUTOTUNE)
