"""3-D convs from 2-D layers: the stacked temporal taps compute a dilated Conv3D."""

import numpy as np
import pytest
import tensorflow as tf

from vsearch.nn import layers, space_time


def _dilated(kernel: np.ndarray, dilation: int) -> np.ndarray:
  """A (t, k, k, C_in, C_out) kernel with dilation - 1 zero frames between taps."""
  length = (kernel.shape[0] - 1) * dilation + 1
  out = np.zeros((length, *kernel.shape[1:]), kernel.dtype)
  out[::dilation] = kernel
  return out


@pytest.mark.parametrize("frames,dilation", [(5, 1), (5, 2), (3, 4), (1, 1)])
def test_taps_and_a_2d_conv_compute_the_3d_conv(frames, dilation):
  rng = np.random.default_rng(frames + dilation)
  clips = rng.normal(size=(2, frames, 6, 7, 3)).astype(np.float32)
  kernel = rng.normal(size=(3, 3, 3, 3, 4)).astype(np.float32)
  expected = tf.nn.conv3d(clips, _dilated(kernel, dilation), [1] * 5, "SAME").numpy()

  taps = space_time.temporal_taps(
    layers.fold_time(tf.constant(clips)), frames, 3, dilation, name="t"
  )
  assert taps.shape == (2 * frames, 6, 7, 9)
  # The 2-D kernel is the 3-D one with its taps moved next to the input channels.
  flat = np.transpose(kernel, (1, 2, 0, 3, 4)).reshape(3, 3, 9, 4)
  got = tf.nn.conv2d(taps, flat, 1, "SAME").numpy().reshape(expected.shape)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_conv3d_bn_has_the_3d_kernel_parameters_and_strides_space_only():
  inputs = tf.keras.Input((4, 8, 8, 5))
  x = space_time.conv3d_bn(layers.fold_time(inputs), 4, 6, (3, 3), 2, name="c", dilation=2)
  model = tf.keras.Model(inputs, x)
  assert model.get_layer("c").kernel.shape == (3, 3, 3 * 5, 6)
  assert x.shape == (None, 4, 4, 6)  # Frames stay in the batch axis: B*4.
  assert model(np.zeros((2, 4, 8, 8, 5), np.float32)).shape == (8, 4, 4, 6)
  assert space_time.temporal_taps(inputs, 4, 1, name="one") is inputs
