"""The Keras builder of Tiny Video Networks.

Follows the public TVN release (``tiny_video_net.py``) op for op, so the
published architectures keep their shapes and parameter counts, in the
(B·T, H, W, C) layout of ``vsearch.layers``: no 3-D op anywhere, which keeps
every model fully int8-convertible for TFLite.

One repeat of a block, in order:

1. inverted bottleneck only: 1×1 conv to ``filters·expand`` + BN-ReLU (the
   release hard-codes ReLU here, whatever the activation fields say);
2. spatial op, skipped when the kernel is 1: 'conv' = 1×1 conv + BN-act then
   k×k conv (stride s) + BN-act; 'depthwise' = 1×1 conv + BN-act then k×k
   depthwise (stride s) + BN-act; pools = k×k pool (stride s). Convs run at
   ``filters`` channels, or at the expanded width in an inverted bottleneck
   (which therefore has two 1×1 convs in a row, as published);
3. temporal op, skipped when the kernel is 1, when one frame is left, and in
   odd repeats: 'conv' = (k, 1) conv (stride t) + BN-act at the same width as
   the spatial convs; pools = (k, 1) pool;
4. not inverted: 1×1 conv to ``filters·expand`` + BN, no activation;
5. squeeze-excitation, then context gating, each over the whole clip;
6. inverted bottleneck only: 1×1 projection to ``filters`` + BN;
7. ``skip`` and the frame count unchanged: add a 1×1 conv + BN shortcut of
   the repeat's input (strided like the spatial op if the size changed);
8. the output activation.

Repeat 0 uses the block's strides; later repeats use stride 1.
Head: mean over (T, H, W) → dropout → dense logits (no softmax).
"""

import tensorflow as tf

from vsearch import layers
from vsearch.methods.tvn_genome import Block, Genome


def _spatial_op(x, block: Block, width: int, stride: int, prefix: str):
  kind, kernel = block.spatial_type, block.spatial_kernel
  if kind in ("conv", "depthwise"):
    act = block.spatial_activation
    x = layers.conv_bn(x, width, 1, 1, act, name=f"{prefix}_spatial_pointwise")
    if kind == "conv":
      return layers.conv_bn(x, width, kernel, stride, act,
                            name=f"{prefix}_spatial_conv")
    return layers.depthwise_bn(x, kernel, stride, act,
                               name=f"{prefix}_spatial_depthwise")
  return layers.pool2d(x, kind, kernel, stride, name=f"{prefix}_spatial_{kind}")


def _temporal_op(x, block: Block, frames: int, width: int, stride: int,
                 prefix: str):
  kind, kernel = block.temporal_type, block.temporal_kernel
  name = f"{prefix}_temporal_{kind}"
  if kind == "conv":
    return layers.temporal_conv(x, frames, width, kernel, stride,
                                block.temporal_activation, name=name)
  return layers.temporal_pool(x, frames, kind, kernel, stride, name=name)


def _repeat(x, block: Block, frames: int, repeat: int, prefix: str):
  """One repeat of ``block`` on (B·frames, H, W, C); returns (y, frames)."""
  shortcut, frames_in, size_in = x, frames, x.shape[1]
  first = repeat == 0
  if block.inverted_bottleneck:
    x = layers.conv_bn(x, block.expanded_width, 1, 1, layers.RELU,
                       name=f"{prefix}_expand")
    width = block.expanded_width
  else:
    width = block.filters

  stride = block.spatial_stride if first else 1
  if block.spatial_kernel > 1:
    x = _spatial_op(x, block, width, stride, prefix)
  if repeat % 2 == 0 and frames > 1 and block.temporal_kernel > 1:
    t_stride = block.temporal_stride if first else 1
    x, frames = _temporal_op(x, block, frames, width, t_stride, prefix)

  if not block.inverted_bottleneck:
    x = layers.conv_bn(x, block.expanded_width, 1, 1, None,
                       name=f"{prefix}_expand")
  if block.squeeze > 0:
    x = layers.squeeze_excite(x, frames, block.squeeze, name=f"{prefix}_se")
  if block.context_gate:
    x = layers.context_gate(x, frames, name=f"{prefix}_cg")
  if block.inverted_bottleneck:
    x = layers.conv_bn(x, block.filters, 1, 1, None, name=f"{prefix}_project")

  if block.skip and frames == frames_in:
    shortcut_stride = stride if x.shape[1] != size_in else 1
    shortcut = layers.conv_bn(shortcut, x.shape[-1], 1, shortcut_stride, None,
                              name=f"{prefix}_shortcut")
    x = tf.keras.layers.Add(name=f"{prefix}_add")([x, shortcut])
  x = layers.activation(x, block.output_activation, name=f"{prefix}_out")
  return x, frames


def build_model(genome: Genome, num_classes: int, dropout_rate: float = 0.5,
                name: str = "tvn") -> tf.keras.Model:
  """Builds the Keras model of ``genome``.

  Layers are named ``block{i}_rep{r}_<op>`` with ``i`` the index in
  ``genome.blocks`` (0-based, like the genome paths ``blocks[i]``) and ``r``
  the repeat; ``block{i}_rep{r}_out`` ends each repeat.

  Args:
    genome: the architecture.
    num_classes: width of the logits.
    dropout_rate: dropout before the classifier (the release keeps 0.5).
    name: the model's name.

  Returns:
    A model from float32 clips (B, T, H, W, 3) to logits (B, num_classes).
  """
  size = genome.resolution
  clips = tf.keras.Input(shape=(genome.num_frames, size, size, 3),
                         name="clips")
  x = layers.fold_time(clips)
  frames = genome.num_frames
  for i, block in enumerate(genome.blocks):
    for r in range(block.repeats):
      x, frames = _repeat(x, block, frames, r, prefix=f"block{i}_rep{r}")
  x = layers.clip_mean(x, frames, name="head_pool")
  x = tf.keras.layers.Dropout(dropout_rate, name="head_dropout")(x)
  logits = tf.keras.layers.Dense(
      num_classes, name="logits",
      kernel_initializer=tf.keras.initializers.RandomNormal(stddev=0.01))(x)
  return tf.keras.Model(clips, logits, name=name)
