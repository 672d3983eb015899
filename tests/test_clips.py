"""Tests of the clip pipeline: shapes, frame sampling, determinism."""

import numpy as np
import pytest
import tensorflow as tf

from vsearch.data.clips import Augmentation, ClipSpec, check_inputs, make_clips
from vsearch.errors import UserError


def _counting_videos(lengths, height=6, width=6):
  """In-memory examples whose frame i has every pixel equal to i."""

  def generator():
    for label, length in enumerate(lengths):
      frames = np.broadcast_to(
        np.arange(length, dtype=np.uint8)[:, None, None, None], (length, height, width, 3)
      )
      yield {"video": np.array(frames), "label": np.int64(label)}

  signature = {
    "video": tf.TensorSpec([None, None, None, 3], tf.uint8),
    "label": tf.TensorSpec([], tf.int64),
  }
  return tf.data.Dataset.from_generator(generator, output_signature=signature)


def _frame_numbers(clips: np.ndarray) -> np.ndarray:
  """Source frame index of each clip frame: [B, T] from [B, T, H, W, 3]."""
  values = np.round((clips + 1.0) * 127.5)
  # Every pixel of a frame carries the same index.
  assert np.all(values == values[:, :, :1, :1, :1])
  return values[:, :, 0, 0, 0].astype(int)


def _take(dataset, num_batches):
  return [(c.numpy(), y.numpy()) for c, y in dataset.take(num_batches)]


def test_shapes_dtypes_and_range_for_videos_of_any_size():
  rng = np.random.default_rng(0)
  sizes = [(12, 20, 30), (9, 40, 24), (16, 32, 32)]

  def generator():
    for label, (n, h, w) in enumerate(sizes * 2):
      video = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
      yield {"video": video, "label": np.int64(label % 3)}

  signature = {
    "video": tf.TensorSpec([None, None, None, 3], tf.uint8),
    "label": tf.TensorSpec([], tf.int64),
  }
  examples = tf.data.Dataset.from_generator(generator, output_signature=signature)
  spec = ClipSpec(num_frames=4, frame_stride=2, resolution=16)

  train = make_clips(examples, spec, batch_size=4, training=True)
  assert train.element_spec[0].shape == (4, 4, 16, 16, 3)
  assert train.element_spec[0].dtype == tf.float32
  assert train.element_spec[1].shape == (4,)
  assert train.element_spec[1].dtype == tf.int32
  for clips, labels in _take(train, 3):
    assert clips.min() >= -1.0 and clips.max() <= 1.0
    assert clips.std() > 0.1  # Random pixels, not a constant image.
    assert set(labels) <= {0, 1, 2}

  evaluation = make_clips(examples, spec, batch_size=4, training=False)
  assert evaluation.element_spec[0].shape.as_list() == [None, 4, 16, 16, 3]
  batches = _take(evaluation, 10)
  # Every example is kept: a full batch of 4 and a last one of 2.
  assert [len(labels) for _, labels in batches] == [4, 2]


def test_training_offsets_follow_the_stride_and_vary_between_clips():
  spec = ClipSpec(num_frames=3, frame_stride=4, resolution=6)
  span = (3 - 1) * 4 + 1
  examples = _counting_videos([30] * 8)
  batches = _take(make_clips(examples, spec, batch_size=8, training=True, seed=3), 4)
  offsets = []
  for clips, _ in batches:
    frames = _frame_numbers(clips)
    np.testing.assert_array_equal(np.diff(frames, axis=1), 4)
    offsets.extend(frames[:, 0])
  assert min(offsets) >= 0 and max(offsets) <= 30 - span
  assert len(set(offsets)) > 5  # Drawn at random, not fixed.


def test_training_stream_is_reproducible_for_a_seed():
  spec = ClipSpec(num_frames=2, frame_stride=3, resolution=6)
  examples = _counting_videos([25, 40, 31, 50, 27, 33])

  def stream(seed):
    batches = _take(
      make_clips(examples, spec, batch_size=3, training=True, seed=seed, shuffle_buffer=6), 6
    )
    return [(_frame_numbers(c).tolist(), y.tolist()) for c, y in batches]

  assert stream(7) == stream(7)
  assert stream(7) != stream(8)


def test_evaluation_is_centred_and_identical_across_passes():
  spec = ClipSpec(num_frames=4, frame_stride=2, resolution=6)
  span = (4 - 1) * 2 + 1
  lengths = [7, 10, 20, 33, 8]
  examples = _counting_videos(lengths)
  evaluation = make_clips(examples, spec, batch_size=2, training=False)

  first = _take(evaluation, 10)
  second = _take(evaluation, 10)
  for (clips_a, labels_a), (clips_b, labels_b) in zip(first, second):
    np.testing.assert_array_equal(clips_a, clips_b)
    np.testing.assert_array_equal(labels_a, labels_b)

  frames = np.concatenate([_frame_numbers(c) for c, _ in first])
  labels = np.concatenate([y for _, y in first])
  np.testing.assert_array_equal(labels, np.arange(len(lengths)))
  for length, got in zip(lengths, frames):
    start = (length - span) // 2
    np.testing.assert_array_equal(got, start + 2 * np.arange(4))


@pytest.mark.parametrize("training", [True, False])
def test_short_videos_repeat_their_last_frame(training):
  spec = ClipSpec(num_frames=5, frame_stride=3, resolution=6)
  examples = _counting_videos([7, 7])
  clips, _ = _take(make_clips(examples, spec, batch_size=2, training=training), 1)[0]
  expected = np.minimum(3 * np.arange(5), 6)  # [0, 3, 6, 6, 6]
  for frames in _frame_numbers(clips):
    np.testing.assert_array_equal(frames, expected)


def test_wide_frames_are_centre_cropped_before_resizing():
  # A 4x8 frame whose middle 4x4 square is 200 and whose side columns are 0.
  frame = np.zeros((4, 8, 3), np.uint8)
  frame[:, 2:6] = 200
  video = np.stack([frame] * 3)
  examples = tf.data.Dataset.from_tensors({"video": video, "label": np.int64(1)})
  spec = ClipSpec(num_frames=2, frame_stride=1, resolution=2)
  clips, labels = _take(make_clips(examples, spec, batch_size=1, training=False), 1)[0]
  np.testing.assert_allclose(clips, 200 / 127.5 - 1.0, atol=1e-6)
  assert labels.tolist() == [1]


def test_non_positive_sizes_are_user_errors():
  examples = _counting_videos([10])
  with pytest.raises(UserError, match="batch_size"):
    make_clips(examples, ClipSpec(2, 1, 6), batch_size=0, training=True)
  with pytest.raises(UserError, match="frame_stride"):
    make_clips(examples, ClipSpec(2, 0, 6), batch_size=2, training=False)


def _videos_with_objects(num_videos=4, frames=6, height=12, width=20):
  """A bright 5-column band on a dark frame, one column further right each
  frame; its object map is class 3 on the band, 0 elsewhere."""

  def generator():
    for label in range(num_videos):
      video = np.zeros((frames, height, width, 3), np.uint8)
      objects = np.zeros((frames, height, width, 1), np.uint8)
      for t in range(frames):
        start = 4 + t + label
        video[t, :, start : start + 5] = 220
        objects[t, :, start : start + 5] = 3
      yield {"video": video, "label": np.int64(label % 2), "objects": objects}

  signature = {
    "video": tf.TensorSpec([None, None, None, 3], tf.uint8),
    "label": tf.TensorSpec([], tf.int64),
    "objects": tf.TensorSpec([None, None, None, 1], tf.uint8),
  }
  return tf.data.Dataset.from_generator(generator, output_signature=signature)


def test_object_maps_and_flow_follow_the_frames_through_crops_and_flips():
  spec = ClipSpec(
    num_frames=3, frame_stride=2, resolution=8, extra_inputs=("flow", "objects"), object_classes=4
  )
  augmentation = Augmentation(random_crop=True, min_crop_scale=0.7, flip=True)
  train = make_clips(
    _videos_with_objects(), spec, batch_size=4, training=True, augmentation=augmentation
  )
  inputs_spec = train.element_spec[0]
  assert {k: v.shape.as_list() for k, v in inputs_spec.items()} == {
    "clips": [4, 3, 8, 8, 3],
    "flow": [4, 3, 8, 8, 2],
    "objects": [4, 3, 8, 8, 4],
  }
  bright = dark = 0
  for inputs, _ in train.take(6):
    clips, objects = inputs["clips"].numpy(), inputs["objects"].numpy()
    np.testing.assert_array_equal(objects.sum(-1), 1.0)  # One-hot.
    classes = objects.argmax(-1)
    assert set(np.unique(classes)) <= {0, 3}
    # Clearly bright pixels are the band's, clearly dark ones are not.
    brightness = clips.mean(-1)
    assert np.all(classes[brightness > 0.5] == 3)
    assert np.all(classes[brightness < -0.5] == 0)
    bright += (brightness > 0.5).sum()
    dark += (brightness < -0.5).sum()
  assert bright > 100 and dark > 100
  evaluation = make_clips(
    _videos_with_objects(), spec, batch_size=3, training=False, num_eval_clips=2
  )
  inputs, labels = next(iter(evaluation))
  assert inputs["objects"].shape == (3, 2, 3, 8, 8, 4)
  assert inputs["flow"].shape == (3, 2, 3, 8, 8, 2)
  assert labels.shape == (3,)


def test_inputs_the_data_cannot_give_are_user_errors():
  spec = ClipSpec(2, 1, 6, extra_inputs=("objects",), object_classes=4)
  with pytest.raises(UserError, match="dataset has none"):
    make_clips(_counting_videos([10]), spec, batch_size=2, training=False)
  with pytest.raises(UserError, match="dataset has none"):
    check_inputs(spec, ())
  with pytest.raises(UserError, match="object_classes = 8"):
    check_inputs(spec, tuple("abcdefgh"))
  check_inputs(spec, tuple("abc"))  # Fewer classes than channels is fine.
  with pytest.raises(UserError, match="extra inputs must be among"):
    check_inputs(ClipSpec(2, 1, 6, extra_inputs=("depth",)), ())
  with pytest.raises(UserError, match="go with 'rgb' clips"):
    check_inputs(ClipSpec(2, 1, 6, stream="flow", extra_inputs=("flow",)), ())
