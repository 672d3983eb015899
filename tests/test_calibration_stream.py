"""calibration_samples streams single clips: one dataset batch in memory at a
time, checked as representative_clips checks them, bad clips caught up front."""

import numpy as np
import pytest
import tensorflow as tf

from vsearch.deploy import calibration
from vsearch.errors import UserError

SHAPE = (4, 8, 8, 3)


def _counted_batches(batches):
  """A dataset of (clips, labels) batches and a list counting the batches read."""
  read = []

  def generate():
    for batch in batches:
      read.append(1)
      yield batch, np.zeros(len(batch), np.int32)

  spec = (tf.TensorSpec((None, *SHAPE), tf.float32), tf.TensorSpec((None,), tf.int32))
  return tf.data.Dataset.from_generator(generate, output_signature=spec), read


def test_clips_come_one_at_a_time_reading_only_the_batches_needed():
  rng = np.random.default_rng(0)
  batches = [rng.uniform(-1, 1, (2, *SHAPE)).astype(np.float32) for _ in range(4)]
  data, read = _counted_batches(batches)
  samples = calibration.calibration_samples(data, SHAPE, num_clips=5)
  assert len(read) == 1  # The first batch, checked before conversion starts.
  stream = samples()
  first, second = next(stream), next(stream)
  assert len(read) == 1
  rest = list(stream)
  assert len(read) == 3  # Three batches hold five clips; the fourth is never read.
  clips = [first, second, *rest]
  assert [c.shape for c in clips] == [(1, *SHAPE)] * 5
  np.testing.assert_array_equal(np.concatenate(clips), np.concatenate(batches)[:5])
  # A second pass (a converter that reads twice) reads the dataset again.
  assert len(list(samples())) == 5


def test_a_bad_first_batch_fails_before_the_converter_runs():
  data, _ = _counted_batches([np.full((2, *SHAPE), 255.0, np.float32)])
  with pytest.raises(UserError, match=r"\[-1, 1\]"):
    calibration.calibration_samples(data, SHAPE)
  data = tf.data.Dataset.from_tensor_slices(np.zeros((2, 4, 16, 16, 3), np.float32)).batch(2)
  with pytest.raises(UserError, match="shape"):
    calibration.calibration_samples(data, SHAPE)


def test_named_inputs_come_as_dicts_of_single_clips():
  clips = {"clips": np.zeros((3, *SHAPE), np.float32), "flow": np.ones((3, 4, 8, 8, 2), np.float32)}
  data = tf.data.Dataset.from_tensor_slices((clips, np.zeros(3, np.int32))).batch(2)
  shapes = {"clips": SHAPE, "flow": (4, 8, 8, 2)}
  got = list(calibration.calibration_samples(data, shapes, num_clips=3)())
  assert len(got) == 3
  assert all(set(g) == {"clips", "flow"} and g["flow"].shape == (1, 4, 8, 8, 2) for g in got)
