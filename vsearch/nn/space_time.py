"""3-D convolutions of (B·T, H, W, C) frames, built from 2-D layers.

A (t, k, k) conv with temporal dilation d is a 2-D (k, k) conv over the t
frames it reads stacked on the channel axis: output frame i reads frames
i - d, i, i + d (for t = 3), zero beyond the clip as SAME padding gives. The
2-D kernel (k, k, t·C_in, C_out) holds the same weights as the 3-D one
(t, k, k, C_in, C_out), tap-major on its input axis, and the arithmetic is
the 3-D conv's; the stacked input is t times as large.

Everything here is a standard Keras layer (ZeroPadding2D, Cropping2D,
Concatenate, Conv2D, BatchNormalization) or ``layers.FreeReshape``, so a model
converts to int8 TFLite without CONV_3D (which TFLite runs only in float) and
quantization-aware training sees only layers it knows.
"""

import tensorflow as tf

from vsearch.nn import layers


def temporal_taps(x, num_frames: int, kernel: int, dilation: int = 1, *, name: str):
  """The ``kernel`` frames each output frame of a temporal conv reads.

  Args:
    x: frames (B·T, H, W, C) of clips of ``num_frames`` frames.
    num_frames: T.
    kernel: taps per output frame (the 3-D kernel's temporal length).
    dilation: frames between taps.
    name: prefix of the layers' names.

  Returns:
    (B·T, H, W, kernel·C): channel block j of frame i is input frame
    i + (j - (kernel - 1) // 2)·dilation, zeros outside the clip. A kernel
    of 1 returns ``x``.
  """
  if kernel == 1:
    return x
  _, height, width, channels = x.shape
  span = dilation * (kernel - 1)
  before = span // 2  # TensorFlow's SAME padding: the odd frame goes after.
  folded = layers.FreeReshape((num_frames, height * width, channels), name=f"{name}_fold")(x)
  padded = tf.keras.layers.ZeroPadding2D(((before, span - before), (0, 0)), name=f"{name}_pad")(
    folded
  )
  taps = [
    tf.keras.layers.Cropping2D(
      ((j * dilation, span - j * dilation), (0, 0)), name=f"{name}_tap{j}"
    )(padded)
    for j in range(kernel)
  ]
  stacked = tf.keras.layers.Concatenate(name=f"{name}_stack")(taps)
  return layers.FreeReshape((height, width, kernel * channels), name=f"{name}_unfold")(stacked)


def conv3d_bn(
  x,
  num_frames: int,
  filters: int,
  kernel: tuple[int, int],
  stride: int = 1,
  act: str | None = layers.RELU,
  *,
  name: str,
  dilation: int = 1,
  zero_gamma: bool = False,
  bn_momentum: float = 0.9,
):
  """A (t, k, k) conv (SAME, no bias) → BN → optional activation, on frames.

  Args:
    x: frames (B·T, H, W, C) of clips of ``num_frames`` frames.
    num_frames: T (kept: the conv has no temporal stride).
    filters: output channels.
    kernel: (t, k): temporal length and spatial size.
    stride: spatial stride.
    act: 'relu', 'hswish' or None.
    name: the conv's name; the taps are ``<name>_taps_*``, the BN ``<name>_bn``.
    dilation: temporal dilation.
    zero_gamma: start the BN scale at 0 (the end of a residual branch).
    bn_momentum: decay of the BN moving statistics.

  Returns:
    (B·T, ceil(H / stride), ceil(W / stride), filters).
  """
  length, size = kernel
  x = temporal_taps(x, num_frames, length, dilation, name=f"{name}_taps")
  return layers.conv_bn(
    x, filters, size, stride, act, name=name, zero_gamma=zero_gamma, bn_momentum=bn_momentum
  )
