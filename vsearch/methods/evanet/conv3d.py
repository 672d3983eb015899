"""3-D convolution computed as one 2-D convolution, fast on CPUs.

TensorFlow's CPU kernels for the gradients of ``Conv3D`` are very slow, and
strided ones pathologically so (measured on this project's 2-core machine:
17 s for one backward pass of a (3, 7, 7) stride-2 stem over 16 clips of
16 × 32², against 0.01 s for a comparable ``Conv2D``), which made even a
smoke-sized EvaNet search impossible on a laptop. ``conv3d`` computes the
same function with one ``Conv2D``: the L temporal taps of each output frame
are stacked on the channel axis (SAME padding and temporal stride applied
when choosing the frames), and the (L, k_h, k_w, C_in, C_out) kernel is
reshaped to (k_h, k_w, L·C_in, C_out). The input grows L-fold in memory; the
arithmetic is that of the 3-D conv.

The same construction is what lets EvaNet ship as a fully int8 TFLite model:
TFLite has no int8 CONV_3D (it runs float) and no 3-D pooling at all, while
PAD, STRIDED_SLICE, CONCATENATION, RESHAPE, CONV_2D and MAX_POOL_2D all run
in int8. ``SpaceTimeConv3D`` is the layer EvaNet builds every 3-D conv with
(the iTGM layer synthesises its kernel and then calls ``conv3d`` too), and
``max_pool3d`` builds a 3-D max-pool as a spatial 2-D max-pool per frame
followed by a (t, 1) max-pool over time: max is separable and TensorFlow's
SAME padding pads each axis on its own, so the two give exactly the 3-D
pool's output.
"""

import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from vsearch.nn import layers


def stack_kernel(kernel):
  """A (L, k_h, k_w, C_in, C_out) kernel as the (k_h, k_w, L·C_in, C_out) one ``conv2d`` takes.

  Works on tensors and numpy arrays alike.
  """
  length, k_h, k_w, c_in, c_out = kernel.shape
  if isinstance(kernel, np.ndarray):
    return kernel.transpose(1, 2, 0, 3, 4).reshape(k_h, k_w, length * c_in, c_out)
  return tf.reshape(tf.transpose(kernel, (1, 2, 0, 3, 4)), (k_h, k_w, length * c_in, c_out))


def conv3d(inputs: tf.Tensor, kernel: tf.Tensor, strides: Sequence[int] = (1, 1, 1)) -> tf.Tensor:
  """``tf.nn.conv3d(inputs, kernel, SAME)`` through one ``tf.nn.conv2d``.

  Args:
    inputs: (B, T, H, W, C_in) with static T, H, W, C_in.
    kernel: (L, k_h, k_w, C_in, C_out).
    strides: (t, h, w).

  Returns:
    (B, ceil(T / t), ceil(H / h), ceil(W / w), C_out).
  """
  return stacked_conv3d(inputs, stack_kernel(kernel), int(kernel.shape[0]), strides)


def stacked_conv3d(
  inputs: tf.Tensor, kernel: tf.Tensor, length: int, strides: Sequence[int] = (1, 1, 1)
) -> tf.Tensor:
  """``conv3d`` of a kernel already stacked by ``stack_kernel``: (k_h, k_w, L·C_in, C_out)."""
  c_out = kernel.shape[-1]
  t_stride, h_stride, w_stride = strides
  frames = inputs.shape[1]
  out_frames = math.ceil(frames / t_stride)
  pad = max((out_frames - 1) * t_stride + length - frames, 0)
  if pad:
    inputs = tf.pad(inputs, [[0, 0], [pad // 2, pad - pad // 2], [0, 0], [0, 0], [0, 0]])
  span = (out_frames - 1) * t_stride + 1
  taps = [inputs[:, tap : tap + span : t_stride] for tap in range(length)]
  stacked = taps[0] if length == 1 else tf.concat(taps, axis=-1)
  _, _, height, width, channels = stacked.shape
  y = tf.nn.conv2d(
    tf.reshape(stacked, (-1, height, width, channels)),
    kernel,
    (1, h_stride, w_stride, 1),
    "SAME",
  )
  return tf.reshape(y, (-1, out_frames, y.shape[1], y.shape[2], c_out))


@tf.keras.utils.register_keras_serializable(package="vsearch")
class SpaceTimeConv3D(tf.keras.layers.Layer):
  """A Conv3D (SAME, no bias, He-normal) computed by ``conv3d``.

  Args:
    filters: output channels.
    kernel_size: (L, k_h, k_w), or one int for all three.
    strides: (t, h, w).
    stacked: hold the kernel as ``stack_kernel`` makes it, (k_h, k_w,
      L·C_in, C_out), instead of (L, k_h, k_w, C_in, C_out): the form the
      layer takes for export (``export_layer``), where the kernel goes into
      the 2-D conv as it is stored. The converter folds the stacking of a
      5-D kernel into a constant only below a size limit; above it (EvaNet-A's
      11-tap iTGM of 1408 stacked channels, 13 MB) the quantizer took the
      stacked kernel for an activation, asymmetric, and LiteRT's int8 conv
      refused it.
  """

  def __init__(self, filters: int, kernel_size, strides=(1, 1, 1), stacked=False, **kwargs):
    super().__init__(**kwargs)
    self.filters = int(filters)
    if isinstance(kernel_size, int):
      kernel_size = (kernel_size,) * 3
    self.kernel_size = tuple(int(k) for k in kernel_size)
    self.strides = tuple(int(s) for s in strides)
    self.stacked = bool(stacked)

  def build(self, input_shape):
    length, k_h, k_w = self.kernel_size
    channels_in = int(input_shape[-1])
    shape = (
      (k_h, k_w, length * channels_in, self.filters)
      if self.stacked
      else (*self.kernel_size, channels_in, self.filters)
    )
    self.kernel = self.add_weight(
      name="kernel", shape=shape, initializer=tf.keras.initializers.HeNormal()
    )

  def call(self, inputs):
    kernel = tf.cast(self.kernel, inputs.dtype)
    if self.stacked:
      return stacked_conv3d(inputs, kernel, self.kernel_size[0], self.strides)
    return conv3d(inputs, kernel, self.strides)

  def compute_output_shape(self, input_shape):
    sizes = [
      None if d is None else math.ceil(d / s) for d, s in zip(input_shape[1:4], self.strides)
    ]
    return (input_shape[0], *sizes, self.filters)

  def get_config(self):
    return {
      **super().get_config(),
      "filters": self.filters,
      "kernel_size": list(self.kernel_size),
      "strides": list(self.strides),
      "stacked": self.stacked,
    }

  def export_layer(self) -> "SpaceTimeConv3D":
    """An unbuilt stacked copy with this layer's name (``vsearch.nn.export_form``)."""
    return stacked_copy(self)

  def export_weights(self) -> list[np.ndarray]:
    """The weights of ``export_layer``'s layer."""
    kernel = self.kernel.numpy()
    return [kernel if self.stacked else stack_kernel(kernel)]


def stacked_copy(layer) -> SpaceTimeConv3D:
  """An unbuilt stacked ``SpaceTimeConv3D`` with ``layer``'s name, filters, kernel size and strides."""
  return SpaceTimeConv3D(
    layer.filters, layer.kernel_size, layer.strides, stacked=True, name=layer.name
  )


def max_pool3d(x, pool_size, strides, *, name: str):
  """``MaxPooling3D(pool_size, strides, 'same')`` of 5-D ``x`` from 2-D pools.

  A (k_h, k_w) max-pool over each frame, then a (t, 1) max-pool over time
  with the frames' pixels folded together, then the 5-D shape back: layers
  ``<name>_space``, ``<name>_time`` and their reshapes, ending in the
  reshape ``<name>``. Pools of size and stride 1 are skipped.

  Args:
    x: (B, T, H, W, C) with static T, H, W, C.
    pool_size: (t, k_h, k_w).
    strides: (t, h, w).
    name: the name of the layers.

  Returns:
    (B, ceil(T / t), ceil(H / h), ceil(W / w), C).
  """
  (p_t, p_h, p_w), (s_t, s_h, s_w) = pool_size, strides
  _, frames, height, width, channels = x.shape
  if (p_h, p_w, s_h, s_w) != (1, 1, 1, 1):
    x = layers.FreeReshape((height, width, channels), name=f"{name}_fold_time")(x)
    x = tf.keras.layers.MaxPooling2D((p_h, p_w), (s_h, s_w), padding="same", name=f"{name}_space")(
      x
    )
    height, width = x.shape[1], x.shape[2]
  if (p_t, s_t) != (1, 1):
    x = layers.FreeReshape((frames, height * width, channels), name=f"{name}_fold_space")(x)
    x = tf.keras.layers.MaxPooling2D((p_t, 1), (s_t, 1), padding="same", name=f"{name}_time")(x)
    frames = x.shape[1]
  return layers.FreeReshape((frames, height, width, channels), name=name)(x)
