"""The Keras builder of EvaNet's I3D-like meta-architecture (``inception``).

I3D's skeleton in Conv3D layout (B, T, H, W, C), every 3-D op built from
2-D ones (DESIGN decision 5) so that a model converts to a fully int8 TFLite
model, with the branch builders of ``model`` inside the modules:

==============  ===============================================  ==========
layer           what                                             stride
==============  ===============================================  ==========
``stem``        ``stem_conv_type`` (stem_time, 7, 7) conv, BN,   (2, 2, 2)
                ReLU → ``stem_filters``
``pool1``       (1, 3, 3) max-pool                               (1, 2, 2)
``stem_1x1``    1×1×1 conv, BN, ReLU → ``stem_filters``
``stem_3x3``    ``stem_conv_type`` (3, 3, 3) conv, BN, ReLU →
                ``stem_out_filters``
``pool2``       (1, 3, 3) max-pool                               (1, 2, 2)
``mixed_3b``,   evolved modules
``mixed_3c``
``pool3``       (3, 3, 3) max-pool                               (2, 2, 2)
``mixed_4b``    evolved modules
.. ``4f``
``pool4``       (2, 2, 2) max-pool                               (2, 2, 2)
``mixed_5b``,   evolved modules
``mixed_5c``
head            as the ResNet-like one (``model.head``): average
                pool over (min(T, 2), H, W), dropout, 1×1×1
                conv to the classes, mean over what is left
==============  ===============================================  ==========

So a clip's frames shrink 8-fold and its pixels 32-fold (64 × 224² → 8 × 7²
in I3D). A module runs every branch on its input (``model.build_branch``,
each ending in BN), concatenates them on channels and applies ReLU (the
layer ``mixed_<name>``): the same function as I3D's BN-ReLU on each branch
before the concatenation. No residual units, so every conv keeps its
temporal length (the ResNet-like builder's alternation does not apply).
"""

import tensorflow as tf

from vsearch.methods.evanet import conv3d
from vsearch.methods.evanet.inception import MODULE_NAMES, POOL_AFTER, InceptionGenome, Module
from vsearch.methods.evanet.model import bn, build_branch, conv_3d, head, space_time_conv

# I3D's two pools between module groups: (pool size, strides).
_GROUP_POOLS = {"pool3": ((3, 3, 3), (2, 2, 2)), "pool4": ((2, 2, 2), (2, 2, 2))}


def _module(x, module: Module, name: str):
  outputs = [
    build_branch(x, b, module.branch_width, True, f"{name}_b{j}")
    for j, b in enumerate(module.branches)
  ]
  if len(outputs) > 1:
    x = tf.keras.layers.Concatenate(name=f"{name}_concat")(outputs)
  else:
    x = outputs[0]
  return tf.keras.layers.ReLU(name=name)(x)


def build_inception_model(
  genome: InceptionGenome,
  num_classes: int,
  input_shape,
  dropout_rate: float = 0.5,
  name: str = "evanet",
) -> tf.keras.Model:
  """Builds the Keras model of ``genome``.

  Layers are named as the table of this module says, with a module's
  branches ``mixed_<m>_b{j}_*`` (j 0-based) and its output ``mixed_<m>``.

  Args:
    genome: the architecture.
    num_classes: width of the logits.
    input_shape: (T, H, W, C) of one clip; C is 3 for RGB, 2 for flow.
    dropout_rate: dropout before the classifier.
    name: the model's name.

  Returns:
    A model from float32 clips (B, T, H, W, C) to logits (B, num_classes).
  """
  clips = tf.keras.Input(shape=tuple(input_shape), name="clips")
  conv_type = genome.stem_conv_type
  x = space_time_conv(
    clips, conv_type, genome.stem_filters, genome.stem_time, 7, (2, 2, 2), name="stem"
  )
  x = bn(x, True, "stem")
  x = conv3d.max_pool3d(x, (1, 3, 3), (1, 2, 2), name="pool1")
  x = bn(conv_3d(x, genome.stem_filters, 1, name="stem_1x1"), True, "stem_1x1")
  x = space_time_conv(x, conv_type, genome.stem_out_filters, 3, 3, name="stem_3x3")
  x = bn(x, True, "stem_3x3")
  x = conv3d.max_pool3d(x, (1, 3, 3), (1, 2, 2), name="pool2")
  for i, module in enumerate(genome.modules):
    x = _module(x, module, genome.block_label(i))
    pool = POOL_AFTER.get(MODULE_NAMES[i])
    if pool:
      size, strides = _GROUP_POOLS[pool]
      x = conv3d.max_pool3d(x, size, strides, name=pool)
  return tf.keras.Model(clips, head(x, num_classes, dropout_rate), name=name)
