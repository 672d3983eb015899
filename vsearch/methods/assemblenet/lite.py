"""AssembleNet++lite's stems, residual unit and head (reference/methods.md §2.6).

The release (``assemblenet_plus_lite.py``) runs 5-D tensors through Conv3D.
Here video stays (B·T, H, W, C) frames, as in the rest of the builder: a
temporal conv is a (k, 1) 2-D conv over (B, T, H·W, C), and the one full 3-D
conv (3x3x3) is a 2-D conv over stacked temporal taps
(``vsearch.nn.space_time``), with the 3-D conv's weights and arithmetic.
Nothing strides over time. So the model converts to int8 TFLite, which has
no int8 CONV_3D.

* Stem, RGB or flow (the flow comes from the representation-flow layer, as
  in the other genomes): 3x3 conv /2 to ``genome.stem_channels`` + BN-ReLU,
  then a temporal conv k=3 at the stem's dilation + BN-ReLU. No pooling.
* Unit, with the block's widths (expand, middle, out): 1x1 conv to expand +
  BN-ReLU; then, in a unit that strides (unit 0 of a block of stride 2), a
  3x3 conv /2 to middle + BN-ReLU and a temporal conv k=3 at the node's
  dilation + BN-ReLU, and in every other unit a 3x3x3 conv to middle at the
  node's temporal dilation + BN-ReLU; then a 1x1 conv to out + BN whose
  scale starts at 0. Unit 0 has a 1x1 (strided) conv + BN projection
  shortcut, the others add their input. Add, ReLU.
* Head, on each level-3 node: 1x1 conv to 432 + BN-ReLU, 1x1 conv to 2048 +
  BN-ReLU; ``model.build_model`` then pools and classifies as for the other
  genomes.
"""

import tensorflow as tf

from vsearch.methods.assemblenet.genome import Block, Genome, Stem
from vsearch.nn import layers, space_time

# Widths of the head's two 1x1 convs, as released.
HEAD_WIDTHS = (432, 2048)


def stem(x, stem_node: Stem, genome: Genome, frames: int, prefix: str, bn_momentum: float):
  """A lite RGB or flow stem on frames ``x`` (RGB clips or their flow).

  Its last layer is ``<prefix>_temporal_unfold``.
  """
  width = genome.stem_channels
  x = layers.conv_bn(x, width, 3, 2, name=f"{prefix}_conv", bn_momentum=bn_momentum)
  x, _ = layers.temporal_conv(
    x,
    frames,
    width,
    3,
    name=f"{prefix}_temporal",
    dilation=stem_node.dilation,
    bn_momentum=bn_momentum,
  )
  return x


def inverted_bottleneck_unit(
  x, node: Block, genome: Genome, frames: int, unit: int, prefix: str, bn_momentum: float
):
  """Unit ``unit`` of block ``node``'s group (see the module docstring)."""
  del genome  # The widths are the node's own.
  expand, middle, out = node.filters
  stride = node.stride if unit == 0 else 1
  shortcut = x
  if unit == 0:
    shortcut = layers.conv_bn(
      x, out, 1, stride, None, name=f"{prefix}_shortcut", bn_momentum=bn_momentum
    )
  x = layers.conv_bn(x, expand, 1, name=f"{prefix}_expand", bn_momentum=bn_momentum)
  if stride > 1:
    x = layers.conv_bn(x, middle, 3, stride, name=f"{prefix}_spatial", bn_momentum=bn_momentum)
    x, _ = layers.temporal_conv(
      x,
      frames,
      middle,
      3,
      name=f"{prefix}_temporal",
      dilation=node.dilation,
      bn_momentum=bn_momentum,
    )
  else:
    x = space_time.conv3d_bn(
      x,
      frames,
      middle,
      (3, 3),
      name=f"{prefix}_conv3d",
      dilation=node.dilation,
      bn_momentum=bn_momentum,
    )
  x = layers.conv_bn(
    x, out, 1, 1, None, name=f"{prefix}_project", zero_gamma=True, bn_momentum=bn_momentum
  )
  x = tf.keras.layers.Add(name=f"{prefix}_add")([x, shortcut])
  return tf.keras.layers.ReLU(name=f"{prefix}_out")(x)


def head_convs(x, prefix: str, bn_momentum: float):
  """The head's 1x1 convs on a level-3 node's output."""
  for k, width in enumerate(HEAD_WIDTHS, start=1):
    x = layers.conv_bn(x, width, 1, name=f"{prefix}_conv{k}", bn_momentum=bn_momentum)
  return x
