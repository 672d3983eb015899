"""Video layers shared by the methods, in the (B·T, H, W, C) layout.

TVN and AssembleNet keep video as a batch of frames: time is folded into the
batch axis, so every spatial op is a plain 2-D op. A temporal op folds H·W
instead, giving (B, T, H·W, C), and runs a (k, 1) 2-D conv or pool over the
T axis. Nothing here is 3-D: a model made of these layers converts to a fully
int8 TFLite model (CONV_2D, DEPTHWISE_CONV_2D, MAX/AVERAGE_POOL_2D, RESHAPE,
MEAN, MUL, ADD, LOGISTIC, HARD_SWISH, FULLY_CONNECTED), which TFLite lacks for
CONV_3D and 3-D pooling.

Two custom layers hold the only raw TF ops (``FreeReshape``, ``HardSwish``);
the functions below compose standard Keras layers with them in the functional
API, so quantization tools see ordinary Conv2D / BatchNormalization / Multiply
layers. Keras is reached through ``tf.keras`` so the same code builds under
legacy Keras (``TF_USE_LEGACY_KERAS=1``), which quantization-aware training
needs.

The functions take a ``name`` and name every layer they create after it
(``<name>``, ``<name>_bn``, ``<name>_relu`` ...), so a model summary reads
like the architecture.
"""

import math
from collections.abc import Sequence
from typing import Optional

import tensorflow as tf

RELU = "relu"
HSWISH = "hswish"
ACTIVATIONS = (RELU, HSWISH)

# He-normal as the TVN release initialises every conv (fan-in, scale 2).
_KERNEL_INIT = "he_normal"
# The last conv of a squeeze-excite or context gate starts near zero, so every
# gate starts at sigmoid(0) = 0.5 for every clip: a constant scale the next BN
# removes, rather than the random clip-dependent gain per channel He-normal
# gives (in 300-step budgets that noise cost squeeze-excite genomes 0.1-0.7
# accuracy in one seed of three; benchmarks/README.md).
_GATE_INIT = tf.keras.initializers.VarianceScaling(
  scale=0.02, mode="fan_in", distribution="truncated_normal"
)
_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5


@tf.keras.utils.register_keras_serializable(package="vsearch")
class FreeReshape(tf.keras.layers.Layer):
  """Reshapes to ``(-1, *target_shape)``: the leading axis absorbs the rest.

  ``tf.keras.layers.Reshape`` keeps the batch axis fixed, so it cannot fold
  time into the batch or back. Here the leading axis is free: (B, T, H, W, C)
  with target (H, W, C) gives (B·T, H, W, C); (B·T, H, W, C) with target
  (T, H·W, C) gives (B, T, H·W, C).

  Args:
    target_shape: the shape of one element of the leading axis.
  """

  def __init__(self, target_shape: Sequence[int], **kwargs):
    super().__init__(**kwargs)
    self.target_shape = tuple(int(d) for d in target_shape)

  def call(self, inputs):
    return tf.reshape(inputs, (-1,) + self.target_shape)

  def compute_output_shape(self, input_shape):
    return (None,) + self.target_shape

  def get_config(self):
    config = super().get_config()
    config["target_shape"] = list(self.target_shape)
    return config


@tf.keras.utils.register_keras_serializable(package="vsearch")
class HardSwish(tf.keras.layers.Layer):
  """Hard-swish, x · ReLU6(x + 3) / 6 (MobileNetV3).

  Written in the form the TFLite converter fuses into one HARD_SWISH op.
  """

  def call(self, inputs):
    return inputs * tf.nn.relu6(inputs + 3.0) * (1.0 / 6.0)

  def compute_output_shape(self, input_shape):
    return input_shape


def activation(x, kind: str, name: str):
  """Applies ``kind`` ('relu' or 'hswish') as a layer called ``name``."""
  if kind == RELU:
    return tf.keras.layers.ReLU(name=name)(x)
  if kind == HSWISH:
    return HardSwish(name=name)(x)
  raise ValueError(f"activation must be one of {ACTIVATIONS}, got {kind!r}")


def batch_norm(x, name: str, zero_gamma: bool = False, momentum: float = _BN_MOMENTUM):
  """Batch normalisation with the TVN momentum (0.9) and epsilon.

  ``zero_gamma`` starts the scale at 0, so a residual branch ending here
  starts as the identity (AssembleNet's bottleneck units). ``momentum`` is
  the moving statistics' decay (the AssembleNet release uses 0.99).
  """
  return tf.keras.layers.BatchNormalization(
    momentum=momentum,
    epsilon=_BN_EPSILON,
    gamma_initializer="zeros" if zero_gamma else "ones",
    name=name,
  )(x)


def conv_bn(
  x,
  filters: int,
  kernel: int | tuple[int, int],
  stride: int | tuple[int, int] = 1,
  act: str | None = RELU,
  *,
  name: str,
  dilation: int | tuple[int, int] = 1,
  zero_gamma: bool = False,
  bn_momentum: float = _BN_MOMENTUM,
):
  """Conv2D (SAME, no bias) → BN → optional activation ``act``."""
  x = tf.keras.layers.Conv2D(
    filters,
    kernel,
    strides=stride,
    padding="same",
    use_bias=False,
    dilation_rate=dilation,
    kernel_initializer=_KERNEL_INIT,
    name=name,
  )(x)
  x = batch_norm(x, name=f"{name}_bn", zero_gamma=zero_gamma, momentum=bn_momentum)
  if act is not None:
    x = activation(x, act, name=f"{name}_{act}")
  return x


def depthwise_bn(x, kernel: int, stride: int = 1, act: str | None = RELU, *, name: str):
  """DepthwiseConv2D (multiplier 1, SAME, no bias) → BN → optional act."""
  x = tf.keras.layers.DepthwiseConv2D(
    kernel,
    strides=stride,
    padding="same",
    use_bias=False,
    depthwise_initializer=_KERNEL_INIT,
    name=name,
  )(x)
  x = batch_norm(x, name=f"{name}_bn")
  if act is not None:
    x = activation(x, act, name=f"{name}_{act}")
  return x


def pool2d(
  x, kind: str, kernel: int | tuple[int, int], stride: int | tuple[int, int], *, name: str
):
  """A 'maxpool' or 'avgpool' 2-D pool with SAME padding."""
  if kind == "maxpool":
    layer = tf.keras.layers.MaxPooling2D
  elif kind == "avgpool":
    layer = tf.keras.layers.AveragePooling2D
  else:
    raise ValueError(f"pool must be 'maxpool' or 'avgpool', got {kind!r}")
  return layer(kernel, strides=stride, padding="same", name=name)(x)


def fold_time(clips, name: str = "fold_time"):
  """(B, T, H, W, C) clips → (B·T, H, W, C) frames."""
  _, _, height, width, channels = clips.shape
  return FreeReshape((height, width, channels), name=name)(clips)


def temporal_frames(num_frames: int, stride: int) -> int:
  """Frames after a temporal op of this stride (SAME padding)."""
  return math.ceil(num_frames / stride)


def temporal_conv(
  x,
  num_frames: int,
  filters: int,
  kernel: int,
  stride: int = 1,
  act: str | None = RELU,
  *,
  name: str,
  dilation: int = 1,
  bn_momentum: float = _BN_MOMENTUM,
):
  """A (kernel × 1) conv over time of (B·T, H, W, C) frames.

  ``dilation`` spaces the taps ``dilation`` frames apart (AssembleNet's
  temporal resolutions); it needs stride 1.

  Folds to (B, T, H·W, C), runs Conv2D → BN → act there (so the converter can
  fold BN into the conv), and unfolds to (B·T', H, W, filters) with
  T' = ceil(T / stride).

  Returns:
    The output frames and T'.
  """
  _, height, width, _ = x.shape
  x = FreeReshape((num_frames, height * width, x.shape[-1]), name=f"{name}_fold")(x)
  x = conv_bn(
    x,
    filters,
    (kernel, 1),
    (stride, 1),
    act,
    name=name,
    dilation=(dilation, 1),
    bn_momentum=bn_momentum,
  )
  frames = temporal_frames(num_frames, stride)
  x = FreeReshape((height, width, filters), name=f"{name}_unfold")(x)
  return x, frames


def temporal_pool(x, num_frames: int, kind: str, kernel: int, stride: int = 1, *, name: str):
  """A (kernel × 1) 'maxpool' or 'avgpool' over time of (B·T, H, W, C).

  Returns:
    The output frames (B·T', H, W, C) and T' = ceil(T / stride).
  """
  _, height, width, channels = x.shape
  x = FreeReshape((num_frames, height * width, channels), name=f"{name}_fold")(x)
  x = pool2d(x, kind, (kernel, 1), (stride, 1), name=name)
  frames = temporal_frames(num_frames, stride)
  x = FreeReshape((height, width, channels), name=f"{name}_unfold")(x)
  return x, frames


def _fold_clip(x, num_frames: int, name: str):
  """(B·T, H, W, C) → (B, T·H, W, C): one 2-D map per clip."""
  _, height, width, channels = x.shape
  return FreeReshape((num_frames * height, width, channels), name=name)(x)


def clip_mean(x, num_frames: int, keepdims: bool = False, *, name: str):
  """Mean over (T, H, W) per clip: (B·T, H, W, C) → (B, C) or (B, 1, 1, C)."""
  return tf.keras.layers.GlobalAveragePooling2D(keepdims=keepdims, name=name)(
    _fold_clip(x, num_frames, name=f"{name}_fold")
  )


class SoftMaxOverTime(tf.keras.layers.Layer):
  """Soft max-pool over time of per-frame logits: (B, T, K) -> (B, K).

  Each class's score is the softmax-weighted mean of its per-frame logits,
  weighted by softmax over time of ``logits / temperature``: the frames
  where the class scores highest count most. The released AssembleNet and
  TVN Charades heads use temperature √T (the default). As the temperature
  goes to 0 this is the max over time, as it grows the mean.

  The softmax runs on the last axis (classes and time transposed), which is
  the one TFLite's int8 SOFTMAX takes.

  Args:
    temperature: the softmax temperature; None is √T.
  """

  def __init__(self, temperature: Optional[float] = None, **kwargs):
    super().__init__(**kwargs)
    self.temperature = temperature

  def call(self, logits):
    frames = logits.shape[1]
    temperature = self.temperature if self.temperature is not None else math.sqrt(frames)
    per_class = tf.transpose(logits, (0, 2, 1))  # (B, K, T)
    weights = tf.nn.softmax(per_class * (1.0 / temperature), axis=-1)
    return tf.reduce_sum(weights * per_class, axis=-1)

  def compute_output_shape(self, input_shape):
    return (input_shape[0], input_shape[2])

  def get_config(self):
    config = super().get_config()
    config["temperature"] = self.temperature
    return config


def frame_means(x, num_frames: int, *, name: str):
  """Mean over (H, W) per frame: (B·T, H, W, C) -> (B, T, C)."""
  x = tf.keras.layers.GlobalAveragePooling2D(name=name)(x)
  return FreeReshape((num_frames, x.shape[-1]), name=f"{name}_fold")(x)


def soft_max_time_logits(
  frames, num_classes: int, dropout_rate: float, temperature: Optional[float] = None
):
  """Per-frame logits of frame features (B, T, C), soft max-pooled over time.

  The head for long clips (Charades): dropout, one dense classifier shared
  by every frame (init N(0, 0.01)), then ``SoftMaxOverTime``. Layers:
  ``head_dropout``, ``frame_logits``, ``logits``.
  """
  x = tf.keras.layers.Dropout(dropout_rate, name="head_dropout")(frames)
  x = tf.keras.layers.Dense(
    num_classes,
    name="frame_logits",
    kernel_initializer=tf.keras.initializers.RandomNormal(stddev=0.01),
  )(x)
  return SoftMaxOverTime(temperature, name="logits")(x)


def space_max_time_mean(x, num_frames: int, *, name: str):
  """Max over (H, W) per frame, then mean over T: (B·T, H, W, C) -> (B, C).

  A head for motion: a direction-selective unit fires only where something
  moves (the edges of small objects), and the spatial max keeps that peak
  where a mean over the whole clip dilutes it with the static background.
  """
  channels = x.shape[-1]
  x = tf.keras.layers.GlobalMaxPooling2D(keepdims=True, name=f"{name}_space_max")(x)
  x = FreeReshape((num_frames, 1, channels), name=f"{name}_fold")(x)
  return tf.keras.layers.GlobalAveragePooling2D(name=name)(x)


def _apply_clip_gate(x, folded, gate, name: str):
  """Multiplies every frame of each clip by that clip's (B, 1, 1, C) gate."""
  _, height, width, channels = x.shape
  y = tf.keras.layers.Multiply(name=name)([folded, gate])
  return FreeReshape((height, width, channels), name=f"{name}_unfold")(y)


def squeeze_excite(x, num_frames: int, ratio: float, *, name: str):
  """Squeeze-and-excitation (arXiv:1709.01507) per clip.

  The squeeze averages over the whole clip (T, H, W), so one gate vector per
  clip scales all of its frames. Bottleneck width max(int(C·ratio), 8), as in
  the TVN release.
  """
  channels = x.shape[-1]
  folded = _fold_clip(x, num_frames, name=f"{name}_fold")
  s = tf.keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(folded)
  s = tf.keras.layers.Conv2D(
    max(int(channels * ratio), 8), 1, kernel_initializer=_KERNEL_INIT, name=f"{name}_reduce"
  )(s)
  s = tf.keras.layers.ReLU(name=f"{name}_relu")(s)
  s = tf.keras.layers.Conv2D(channels, 1, kernel_initializer=_GATE_INIT, name=f"{name}_expand")(s)
  s = tf.keras.layers.Activation("sigmoid", name=f"{name}_sigmoid")(s)
  return _apply_clip_gate(x, folded, s, name=f"{name}_gate")


def context_gate(x, num_frames: int, *, name: str):
  """Context gating (arXiv:1706.06905, as S3D-G uses it) per clip.

  One C→C fully connected layer (a 1×1 conv with bias) on the clip mean, a
  sigmoid, and the gate scales every frame of the clip.
  """
  channels = x.shape[-1]
  folded = _fold_clip(x, num_frames, name=f"{name}_fold")
  g = tf.keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(folded)
  g = tf.keras.layers.Conv2D(channels, 1, kernel_initializer=_GATE_INIT, name=f"{name}_fc")(g)
  g = tf.keras.layers.Activation("sigmoid", name=f"{name}_sigmoid")(g)
  return _apply_clip_gate(x, folded, g, name=f"{name}_gate")
