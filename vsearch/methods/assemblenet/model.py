"""The Keras builder of AssembleNet and AssembleNet++ graphs.

Follows the node semantics of the public release (reference/methods.md
§2.3, §2.6) in the (B·T, H, W, C) layout of ``vsearch.nn.layers``: every
temporal op is a reshape to (B, T, H·W, C) and a (k, 1) 2-D conv, so nothing
here is 3-D.

* RGB stem: 7x7 conv /2 + BN-ReLU, temporal conv k=5 at the stem's dilation
  + BN-ReLU, 3x3 max-pool /2. Flow stem: the representation-flow layer
  computes optical flow from the RGB frames inside the network (once, shared
  by every flow stem), or the model reads it as an input ``flow`` from the
  data pipeline; then 7x7 conv /2 + BN-ReLU, 2x2 max-pool /2. Object stem:
  the per-frame segmentation maps (a model input ``objects``), 4x4 max-pool
  /4. The RGB and flow stems share ``genome.stem_width`` channels.
* Fusion of a block's inputs ('sigmoid'): each input is max-pooled to the
  smallest input's size, scaled by its connection weight σ(w) (fixed from
  the genome, or learned from N(0, 0.01) logits), gated by peer- or
  self-attention (AssembleNet++), summed within groups of equal channel
  count, and groups narrower or wider than the widest non-object input are
  lifted by a 1x1 conv (no bias, no BN) before the final sum. A single input
  passes through unweighted. 'concat' concatenates the pooled inputs.
* Block group: ``DEPTHS[depth][level]`` bottleneck units. Unit u enters with
  a 1x1 conv (even u) or a temporal conv k=3 at the node's dilation (odd
  u), then a 3x3 conv at ``level_widths[level]`` (stride in unit 0), then a
  1x1 conv to 4·filters whose BN scale starts at 0; unit 0 has a 1x1 + BN
  projection shortcut (strided). Add, ReLU.
* Head: per level-3 node the mean over (T, H, W); the mean over level-3
  nodes; dropout; dense logits (init N(0, 0.01)). With head='soft_max_time'
  (the release's ``max_pool_predictions``, for long clips) the means are
  per frame, each frame gets logits, and those are soft max-pooled over time
  (``layers.SoftMaxOverTime``, temperature √T).
* AssembleNet++lite (``genome.unit`` 'inverted_bottleneck'): its own stems,
  3-D inverted bottleneck units and two 1x1 convs before the head's pooling
  (``lite``); the fusion and the rest of the head are the ones above.

Nodes that no level-3 node depends on are not built.
"""

import math

import tensorflow as tf

from vsearch.errors import UserError
from vsearch.methods.assemblenet import lite
from vsearch.methods.assemblenet.genome import Block, Genome, Stem, pooled_size
from vsearch.methods.assemblenet.layers import (
  ConnectionWeights,
  RepresentationFlow,
  SoftmaxMix,
  weights_layer_name,
)
from vsearch.nn import layers

# Channels of the published object input: one per ADE-20K class.
PUBLISHED_OBJECT_CLASSES = 151
# Where flow stems get optical flow: computed inside the network, or read
# from the data pipeline (a model input).
FLOW_SOURCES = ("layer", "pipeline")
# How the head pools clips before (mean) or after (soft max over time) the classifier.
HEADS = ("mean", "soft_max_time")


def live_nodes(genome: Genome) -> set[int]:
  """Nodes a level-3 node depends on (the rest are not built)."""
  live, todo = set(), list(genome.outputs)
  while todo:
    i = todo.pop()
    if i in live:
      continue
    live.add(i)
    node = genome.nodes[i]
    if isinstance(node, Block):
      todo.extend(node.inputs)
  return live


def _live_stem_kinds(genome: Genome) -> set[str]:
  live = live_nodes(genome)
  return {genome.nodes[i].kind for i in genome.stems if i in live}


def _stem(
  x_frames,
  flow_frames,
  objects,
  stem: Stem,
  genome: Genome,
  frames: int,
  prefix: str,
  bn_momentum: float,
):
  width = genome.stem_channels
  if genome.inverted:
    frames_in = x_frames if stem.kind == "rgb" else flow_frames
    return lite.stem(frames_in, stem, genome, frames, prefix, bn_momentum)
  if stem.kind == "rgb":
    x = layers.conv_bn(x_frames, width, 7, 2, name=f"{prefix}_conv", bn_momentum=bn_momentum)
    if frames > 1:
      x, _ = layers.temporal_conv(
        x,
        frames,
        width,
        5,
        name=f"{prefix}_temporal",
        dilation=stem.dilation,
        bn_momentum=bn_momentum,
      )
    return layers.pool2d(x, "maxpool", 3, 2, name=f"{prefix}_pool")
  if stem.kind == "flow":
    x = layers.conv_bn(flow_frames, width, 7, 2, name=f"{prefix}_conv", bn_momentum=bn_momentum)
    return layers.pool2d(x, "maxpool", 2, 2, name=f"{prefix}_pool")
  return layers.pool2d(objects, "maxpool", 4, 4, name=f"{prefix}_pool")


def _attention_gates(xs, node_index: int, genome: Genome, tensors, live: set[int]):
  """Multiplies each connection by its peer- or self-attention gate."""
  node = genome.nodes[node_index]
  prefix = f"node{node_index}_attention"
  pool = lambda x, name: tf.keras.layers.GlobalAveragePooling2D(name=name)(x)
  if genome.attention == "peer":
    peers = [j for j in sorted(live) if j < node_index and genome.nodes[j].level < node.level]
    width = max(tensors[j].shape[-1] for j in peers)
    candidates = [
      tf.keras.layers.Dense(width, name=f"{prefix}_peer{j}")(
        pool(tensors[j], f"{prefix}_peer{j}_pool")
      )
      for j in peers
    ]
  gated = []
  for j, x in zip(node.inputs, xs):
    name = f"{prefix}_in{j}"
    if genome.attention == "peer":
      context = (
        candidates[0]
        if len(candidates) == 1
        else SoftmaxMix(len(candidates), name=f"{name}_mix")(candidates)
      )
    else:
      context = pool(x, f"{name}_pool")
    gate = tf.keras.layers.Dense(x.shape[-1], activation="sigmoid", name=f"{name}_gate")(context)
    gate = tf.keras.layers.Reshape((1, 1, x.shape[-1]), name=f"{name}_gate_reshape")(gate)
    gated.append(tf.keras.layers.Multiply(name=f"{name}_apply")([x, gate]))
  return gated


def _fuse(node_index: int, genome: Genome, tensors, live: set[int]):
  """The fused input of block ``node_index`` (see the module docstring)."""
  node = genome.nodes[node_index]
  prefix = f"node{node_index}_fuse"
  xs = [tensors[j] for j in node.inputs]
  if len(xs) == 1:
    return xs[0]
  smallest = min(x.shape[1] for x in xs)
  pooled = []
  for j, x in zip(node.inputs, xs):
    if x.shape[1] != smallest:
      factor = math.ceil(x.shape[1] / smallest)
      x = layers.pool2d(x, "maxpool", factor, factor, name=f"{prefix}_pool{j}")
      assert x.shape[1] == pooled_size(tensors[j].shape[1], smallest)
    pooled.append(x)
  if genome.combine == "concat":
    return tf.keras.layers.Concatenate(name=f"{prefix}_concat")(pooled)
  xs = ConnectionWeights(len(pooled), node.weights, name=weights_layer_name(node_index))(pooled)
  if genome.attention != "none":
    xs = _attention_gates(xs, node_index, genome, tensors, live)
  is_object = [
    isinstance(genome.nodes[j], Stem) and genome.nodes[j].kind == "object" for j in node.inputs
  ]
  widths = [x.shape[-1] for x, obj in zip(xs, is_object) if not obj]
  target = max(widths) if widths else max(x.shape[-1] for x in xs)
  groups: dict[int, list] = {}
  for x in xs:
    groups.setdefault(x.shape[-1], []).append(x)
  summed = []
  for channels, group in groups.items():
    x = group[0] if len(group) == 1 else tf.keras.layers.Add(name=f"{prefix}_sum{channels}")(group)
    if channels != target:
      x = tf.keras.layers.Conv2D(
        target, 1, use_bias=False, kernel_initializer="he_normal", name=f"{prefix}_lift{channels}"
      )(x)
    summed.append(x)
  if len(summed) == 1:
    return summed[0]
  return tf.keras.layers.Add(name=f"{prefix}_sum")(summed)


def _bottleneck_unit(
  x, node: Block, genome: Genome, frames: int, unit: int, prefix: str, bn_momentum: float
):
  out_channels = node.channels
  stride = node.stride if unit == 0 else 1
  shortcut = x
  if unit == 0:
    shortcut = layers.conv_bn(
      x, out_channels, 1, stride, None, name=f"{prefix}_shortcut", bn_momentum=bn_momentum
    )
  if unit % 2 == 1 and frames > 1:
    x, _ = layers.temporal_conv(
      x,
      frames,
      node.filters,
      3,
      name=f"{prefix}_temporal",
      dilation=node.dilation,
      bn_momentum=bn_momentum,
    )
  else:
    x = layers.conv_bn(x, node.filters, 1, name=f"{prefix}_entry", bn_momentum=bn_momentum)
  x = layers.conv_bn(
    x, genome.level_widths[node.level], 3, stride, name=f"{prefix}_spatial", bn_momentum=bn_momentum
  )
  x = layers.conv_bn(
    x, out_channels, 1, 1, None, name=f"{prefix}_expand", zero_gamma=True, bn_momentum=bn_momentum
  )
  x = tf.keras.layers.Add(name=f"{prefix}_add")([x, shortcut])
  return tf.keras.layers.ReLU(name=f"{prefix}_out")(x)


def build_model(
  genome: Genome,
  num_classes: int,
  dropout_rate: float = 0.5,
  flow_iterations: int = 40,
  train_flow_params: bool = False,
  object_classes: int = PUBLISHED_OBJECT_CLASSES,
  flow_source: str = "layer",
  bn_momentum: float = 0.99,
  head: str = "mean",
  name: str = "assemblenet",
) -> tf.keras.Model:
  """Builds the Keras model of ``genome``.

  Layers are named after the node they belong to: ``node{i}_stem_*``,
  ``node{i}_fuse_*``, ``node{i}_weights`` (its connection weights),
  ``node{i}_unit{u}_*``; ``node{i}_unit{last}_out`` is the node's output
  (and the lite head's convs ``head{i}_conv1``, ``head{i}_conv2``).

  Args:
    genome: the architecture.
    num_classes: width of the logits.
    dropout_rate: dropout before the classifier.
    flow_iterations: unrolled TV-L1 iterations of the representation-flow
      layer (published 40; 20 in AssembleNet++lite's release).
    train_flow_params: train the flow layer's τ, λ, θ.
    object_classes: channels of the segmentation maps an object stem reads.
    flow_source: where flow stems read optical flow: 'layer' computes it
      from the clips inside the network (RepresentationFlow); 'pipeline'
      makes it a model input, computed by the data pipeline.
    bn_momentum: decay of the batch-norm moving statistics (the release
      uses 0.99; short trainings need less, their statistics lag behind).
    head: 'mean' or 'soft_max_time' (see the module docstring).
    name: the model's name.

  Returns:
    A model from float32 clips (B, T, H, W, 3) in [-1, 1] to logits (B,
    num_classes). A genome with an object stem, or flow stems with flow from
    the pipeline, gives a model of several named inputs, called with a dict:
    ``clips``, ``objects`` (B, T, H, W, object_classes) one-hot maps and
    ``flow`` (B, T, H, W, 2), as ``vsearch.data.clips.make_clips`` makes
    them for ``ClipSpec.extra_inputs``.

  Raises:
    UserError: a flow stem on clips of one frame (flow needs two), or an
      unknown ``flow_source``.
  """
  if flow_source not in FLOW_SOURCES:
    raise UserError(f"flow_source is {flow_source!r}; set it to one of {FLOW_SOURCES}.")
  frames, size = genome.num_frames, genome.resolution
  live = live_nodes(genome)
  kinds = _live_stem_kinds(genome)
  if "flow" in kinds and frames < 2:
    raise UserError(
      "A flow stem needs clips of at least 2 frames; this "
      f"genome reads {frames}. Raise num_frames or drop the "
      "flow stem."
    )
  clips = tf.keras.Input(shape=(frames, size, size, 3), name="clips")
  inputs = {"clips": clips}
  x_frames = layers.fold_time(clips)
  flow_frames = objects = None
  if "flow" in kinds:
    if flow_source == "pipeline":
      flow = inputs["flow"] = tf.keras.Input(shape=(frames, size, size, 2), name="flow")
    else:
      flow = RepresentationFlow(flow_iterations, train_flow_params, name="representation_flow")(
        clips
      )
    flow_frames = layers.fold_time(flow, name="fold_flow")
  if "object" in kinds:
    object_maps = inputs["objects"] = tf.keras.Input(
      shape=(frames, size, size, object_classes), name="objects"
    )
    objects = layers.fold_time(object_maps, name="fold_objects")

  tensors = {}
  for i, node in enumerate(genome.nodes):
    if i not in live:
      continue
    if isinstance(node, Stem):
      tensors[i] = _stem(
        x_frames,
        flow_frames,
        objects,
        node,
        genome,
        frames,
        prefix=f"node{i}_stem",
        bn_momentum=bn_momentum,
      )
      continue
    x = _fuse(i, genome, tensors, live)
    unit_fn = lite.inverted_bottleneck_unit if genome.inverted else _bottleneck_unit
    for unit in range(genome.units[node.level]):
      x = unit_fn(
        x, node, genome, frames, unit, prefix=f"node{i}_unit{unit}", bn_momentum=bn_momentum
      )
    tensors[i] = x

  features = {i: tensors[i] for i in genome.outputs}
  if genome.inverted:
    features = {i: lite.head_convs(x, f"head{i}", bn_momentum) for i, x in features.items()}
  pool = layers.frame_means if head == "soft_max_time" else layers.clip_mean
  pooled = [pool(x, frames, name=f"head_pool{i}") for i, x in features.items()]
  x = pooled[0] if len(pooled) == 1 else tf.keras.layers.Average(name="head_average")(pooled)
  if head == "soft_max_time":
    logits = layers.soft_max_time_logits(x, num_classes, dropout_rate)
  else:
    x = tf.keras.layers.Dropout(dropout_rate, name="head_dropout")(x)
    logits = tf.keras.layers.Dense(
      num_classes,
      name="logits",
      kernel_initializer=tf.keras.initializers.RandomNormal(stddev=0.01),
    )(x)
  return tf.keras.Model(inputs if len(inputs) > 1 else clips, logits, name=name)


def model_inputs(genome: Genome, flow_source: str = "layer") -> tuple[str, ...]:
  """The inputs ``build_model`` gives ``genome``'s model besides "clips"."""
  kinds = _live_stem_kinds(genome)
  extra = []
  if "flow" in kinds and flow_source == "pipeline":
    extra.append("flow")
  if "object" in kinds:
    extra.append("objects")
  return tuple(extra)


def learned_connection_weights(genome: Genome, model: tf.keras.Model) -> dict[str, list[float]]:
  """Node index (as a string) -> σ(w) of each of its inputs, from ``model``.

  Covers every built node that weighs its inputs (sigmoid fusion of two or
  more inputs); fixed weights are read back as given.
  """
  found = {}
  for i in genome.blocks:
    try:
      layer = model.get_layer(weights_layer_name(i))
    except ValueError:
      continue  # Not built: a dead node, one input, or concat fusion.
    weights = tf.sigmoid(layer.logits).numpy()
    found[str(i)] = [round(float(w), 6) for w in weights]
  return found
