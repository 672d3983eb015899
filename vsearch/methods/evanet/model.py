"""The Keras builder of EvaNet (the ResNet-like meta-architecture).

Follows the rules of the public builder (reference §1.2), in Conv3D layout
(B, T, H, W, C), with every 3-D op built from 2-D ones (DESIGN decision 5)
so that a model converts to a fully int8 TFLite model.

* Stem: ``stem_conv_type`` conv (stem_time, 7, 7) → ``stem_filters``, stride
  2 in T, H, W, BN-ReLU; max-pool 1 (pool1_time, 3, 3), stride 2 in T, H, W.
* Four stages, separated by max-pools 2 ((pool1_time, 3, 3)), 3 and 4
  ((pool3_time / pool4_time, 2, 2)), all with stride (1, 2, 2).
* A residual unit runs every branch on its input, concatenates them on
  channels, adds the shortcut (a 1×1×1 conv + BN projection in the first
  unit of a stage, identity after) and applies ReLU.
* In units 1, 3, 5 ... of a stage (0-based) every conv's temporal length is
  forced to 1; max-pool branches keep theirs. This alternation is what the
  published builder does to save compute.
* Conv types: '3d' = Conv3D (t, k, k); '2plus1d' = Conv3D (t, 1, 1) to
  C_out // 2, BN-ReLU, then Conv3D (1, k, k) to C_out (temporal stride on
  the first, spatial on the second); 'itgm' = ``vsearch.methods.evanet.itgm.ITGMConv3D``.
* Head: average pool over (min(T, 2), H, W) (VALID, stride 1), dropout,
  1×1×1 conv to the classes (with bias), mean over what is left of (T, H, W).
  Built as a spatial mean per frame, a (min(T, 2), 1) average pool over
  time, a 1×1 Conv2D and a mean over time: the same function.

BN momentum 0.9, epsilon 1e-5, He-normal init, no conv biases. Every 3-D
conv is a ``vsearch.methods.evanet.conv3d.SpaceTimeConv3D`` (a Conv3D
computed as one Conv2D over stacked temporal taps: fast to train on CPUs and
int8 in TFLite), every 3-D max-pool a spatial then a temporal 2-D max-pool
(``conv3d.max_pool3d``). For export (``vsearch.nn.export_form``, which
TFLite conversion applies) iTGM convs become ``SpaceTimeConv3D`` layers
holding their synthesised kernels, stacked as the 2-D conv takes them.
"""

import tensorflow as tf

from vsearch.methods.evanet import conv3d, itgm
from vsearch.methods.evanet.genome import Branch, Genome, Stage
from vsearch.nn import layers


def conv_3d(x, filters: int, kernel, strides=(1, 1, 1), *, name: str):
  """A Conv3D (SAME, no bias) as a ``SpaceTimeConv3D``: one Conv2D over stacked taps."""
  # Conv3D through one Conv2D: TF's CPU Conv3D gradients are unusably slow.
  return conv3d.SpaceTimeConv3D(filters, kernel, strides, name=name)(x)


def space_time_conv(
  x, conv_type: str, filters: int, time: int, size: int, strides=(1, 1, 1), *, name: str
):
  """A (time, size, size) conv of ``conv_type``, without BN on its output."""
  if conv_type == "3d":
    return conv_3d(x, filters, (time, size, size), strides, name=name)
  if conv_type == "itgm":
    return itgm.ITGMConv3D(filters, (time, size, size), strides, name=name)(x)
  if conv_type == "2plus1d":
    t_stride, h_stride, w_stride = strides
    x = conv_3d(x, max(filters // 2, 1), (time, 1, 1), (t_stride, 1, 1), name=f"{name}_temporal")
    x = layers.batch_norm(x, name=f"{name}_temporal_bn")
    x = tf.keras.layers.ReLU(name=f"{name}_temporal_relu")(x)
    return conv_3d(x, filters, (1, size, size), (1, h_stride, w_stride), name=f"{name}_spatial")
  raise ValueError(f"unknown conv type {conv_type!r}")


def bn(x, relu: bool, name: str):
  """BN (layer ``<name>_bn``), then a ReLU (``<name>_relu``) if ``relu``."""
  x = layers.batch_norm(x, name=f"{name}_bn")
  return tf.keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


def build_branch(x, branch: Branch, width: int, use_time: bool, name: str):
  """One branch at ``width`` output channels, ending in BN without ReLU;
  temporal convs of length 1 where ``use_time`` is False."""
  time = branch.time if use_time else 1
  if branch.type == "1x1":
    return bn(conv_3d(x, width, 1, name=f"{name}_1x1"), False, f"{name}_1x1")
  if branch.type == "maxpool":
    x = conv3d.max_pool3d(x, (branch.time, 3, 3), (1, 1, 1), name=f"{name}_pool")
    return bn(conv_3d(x, width, 1, name=f"{name}_1x1"), False, f"{name}_1x1")
  if branch.type == "conv":
    x = bn(conv_3d(x, width // 2, 1, name=f"{name}_1x1"), True, f"{name}_1x1")
    x = space_time_conv(x, branch.conv_type, width, time, 3, name=f"{name}_conv")
    return bn(x, False, f"{name}_conv")
  # conv2
  time2 = branch.time2 if use_time else 1
  x = bn(conv_3d(x, width // 4, 1, name=f"{name}_1x1"), True, f"{name}_1x1")
  x = space_time_conv(x, branch.conv_type, width // 2, time, 3, name=f"{name}_conv")
  x = bn(x, True, f"{name}_conv")
  x = space_time_conv(x, branch.conv_type2, width, time2, 3, name=f"{name}_conv2")
  return bn(x, False, f"{name}_conv2")


def _unit(x, stage: Stage, repeat: int, name: str):
  """One residual unit of ``stage``."""
  use_time = repeat % 2 == 0
  outputs = [
    build_branch(x, b, stage.branch_width, use_time, f"{name}_b{j}")
    for j, b in enumerate(stage.branches)
  ]
  y = (
    outputs[0] if len(outputs) == 1 else tf.keras.layers.Concatenate(name=f"{name}_concat")(outputs)
  )
  if repeat == 0:
    shortcut = bn(conv_3d(x, stage.width, 1, name=f"{name}_shortcut"), False, f"{name}_shortcut")
  else:
    shortcut = x
  y = tf.keras.layers.Add(name=f"{name}_add")([y, shortcut])
  return tf.keras.layers.ReLU(name=f"{name}_out")(y)


def build_model(
  genome: Genome, num_classes: int, input_shape, dropout_rate: float = 0.5, name: str = "evanet"
) -> tf.keras.Model:
  """Builds the Keras model of ``genome``.

  Layers are named ``stem``, ``pool1``..``pool4``, ``res{s}_u{r}_b{j}_*``
  (stage s = 2..5, unit r, branch j, 0-based) and ``res{s}_u{r}_out`` at the
  end of each unit.

  Args:
    genome: the architecture.
    num_classes: width of the logits.
    input_shape: (T, H, W, C) of one clip; C is 3 for RGB, 2 for flow.
    dropout_rate: dropout before the classifier (the release keeps 0.5).
    name: the model's name.

  Returns:
    A model from float32 clips (B, T, H, W, C) to logits (B, num_classes).
  """
  clips = tf.keras.Input(shape=tuple(input_shape), name="clips")
  x = space_time_conv(
    clips, genome.stem_conv_type, genome.stem_filters, genome.stem_time, 7, (2, 2, 2), name="stem"
  )
  x = bn(x, True, "stem")
  x = conv3d.max_pool3d(x, (genome.pool1_time, 3, 3), (2, 2, 2), name="pool1")
  pools = {1: (genome.pool1_time, 3), 2: (genome.pool3_time, 2), 3: (genome.pool4_time, 2)}
  for s, stage in enumerate(genome.stages):
    if s:
      time, size = pools[s]
      x = conv3d.max_pool3d(x, (time, size, size), (1, 2, 2), name=f"pool{s + 1}")
    for r in range(stage.repeats):
      x = _unit(x, stage, r, name=f"res{s + 2}_u{r}")
  return tf.keras.Model(clips, head(x, num_classes, dropout_rate), name=name)


def head(x, num_classes: int, dropout_rate: float):
  """The released head (I3D's too) on (B, T, H, W, C), from 2-D ops: logits (B, classes).

  The (min(T, 2), H, W) average pool is the spatial mean per frame followed
  by a (min(T, 2), 1) average pool over time; the 1×1×1 conv a 1×1 Conv2D on
  the (B, T', 1, C) map; the final mean over (T', 1, 1) a mean over T'.
  """
  _, frames, height, width, channels = x.shape
  x = layers.FreeReshape((height, width, channels), name="head_fold_time")(x)
  x = tf.keras.layers.GlobalAveragePooling2D(keepdims=True, name="head_space_mean")(x)
  x = layers.FreeReshape((frames, 1, channels), name="head_fold")(x)
  x = tf.keras.layers.AveragePooling2D(
    (min(frames, 2), 1), strides=1, padding="valid", name="head_pool"
  )(x)
  x = tf.keras.layers.Dropout(dropout_rate, name="head_dropout")(x)
  x = tf.keras.layers.Conv2D(
    num_classes,
    1,
    kernel_initializer=tf.keras.initializers.RandomNormal(stddev=0.01),
    name="logits_conv",
  )(x)
  return tf.keras.layers.GlobalAveragePooling2D(name="logits")(x)
