"""AssembleNet builder: shapes of random and zoo graphs, fusion weights,
peer-attention gates, the representation-flow layer."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from vsearch.errors import UserError
from vsearch.methods import assemblenet as an
from vsearch.methods import zoo
from vsearch.methods.assemblenet import Block, Genome, Stem
from vsearch.methods.assemblenet import layers as assemblenet_layers
from vsearch.methods.assemblenet import model as assemblenet_model

CLASSES = 3


def _tiny(genome: Genome, **changes) -> Genome:
  """``genome``'s graph at 4 frames x 32 px, 26-layer units, narrow."""
  nodes = tuple(
    dataclasses.replace(n, filters=min(n.filters, 8)) if isinstance(n, Block) else n
    for n in genome.nodes
  )
  fields = dict(
    nodes=nodes, num_frames=4, resolution=32, depth=26, level_widths=(8, 8, 8, 8), stem_width=16
  )
  fields.update(changes)
  return dataclasses.replace(genome, **fields)


def _check_node_shapes(genome: Genome, model):
  sizes = genome.node_sizes()
  last_unit = {level: n - 1 for level, n in enumerate(genome.units)}
  for i in assemblenet_model.live_nodes(genome):
    node = genome.nodes[i]
    if isinstance(node, Stem):
      name, channels = f"node{i}_stem_pool", genome.channels(i, 5)
    else:
      name, channels = f"node{i}_unit{last_unit[node.level]}_out", node.channels
    assert model.get_layer(name).output.shape == (None, sizes[i], sizes[i], channels), name


@pytest.mark.parametrize("seed", [0, 1])
def test_random_graphs_build_with_the_genome_shapes(seed):
  tf.keras.backend.clear_session()
  space = an.AssembleNetSearchSpace(
    resolutions=(32,),
    frame_counts=(4,),
    stems=("rgb", "flow"),
    nodes_per_level=((1, 2), (1, 2), (1, 1), (1, 1)),
    filters=((2, 4), (4,), (4, 8), (8,)),
    depth=26,
    level_widths=(8, 8, 8, 8),
    stem_width=8,
    connection_prob=0.7,
    combine="concat" if seed else "sigmoid",
  )
  method = an.AssembleNetMethod(space=space, flow_iterations=3)
  genome = method.sample(np.random.default_rng(seed))
  model = method.build(genome, CLASSES)
  _check_node_shapes(genome, model)
  clips = np.random.default_rng(0).uniform(-1, 1, (2, 4, 32, 32, 3))
  logits = model(clips.astype(np.float32), training=False)
  assert logits.shape == (2, CLASSES) and np.all(np.isfinite(logits))
  weights = method.learned_state(genome, model)["connection_weights"]
  multi = {str(i) for i in genome.blocks if len(genome.nodes[i].inputs) > 1}
  assert set(weights) == (set() if seed else multi)
  tf.keras.backend.clear_session()


def test_learned_weights_train_and_fixed_ones_stay():
  tf.keras.backend.clear_session()
  nodes = (
    Stem("rgb", 1),
    Stem("rgb", 2),
    Block(0, (0, 1), 2, 1, 1),
    Block(0, (0, 1), 2, 2, 1, (0.2, 0.9)),
    Block(1, (2, 3), 4),
    Block(2, (4,), 4),
    Block(3, (0, 5), 4),
  )
  genome = Genome(
    nodes=nodes, num_frames=2, resolution=32, depth=26, level_widths=(4, 4, 4, 4), stem_width=8
  )
  method = an.AssembleNetMethod(dropout_rate=0.0)
  model = method.build(genome, CLASSES)
  # 2, 4 and 6 weigh their inputs with learned sigmoids; 3 has fixed ones.
  assert model.get_layer("node2_weights").trainable_weights
  assert not model.get_layer("node3_weights").trainable_weights
  before = method.learned_state(genome, model)["connection_weights"]
  assert all(abs(w - 0.5) < 0.02 for w in before["2"] + before["6"])
  assert before["3"] == pytest.approx([0.2, 0.9])
  rng = np.random.default_rng(0)
  clips = rng.uniform(-1, 1, (4, 2, 32, 32, 3)).astype(np.float32)
  labels = rng.integers(0, CLASSES, 4)
  loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  optimizer = tf.keras.optimizers.SGD(1.0)
  for _ in range(2):  # Eager steps: cheaper than tracing a fit loop.
    with tf.GradientTape() as tape:
      loss = loss_fn(labels, model(clips, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
  after = method.learned_state(genome, model)["connection_weights"]
  assert after["3"] == pytest.approx([0.2, 0.9])
  assert after["2"] != pytest.approx(before["2"], abs=1e-6)
  assert set(after) == {"2", "3", "4", "6"}  # Node 5 has one input.
  tf.keras.backend.clear_session()


def test_zoo_graphs_build_and_peer_attention_gates_have_their_shapes():
  tf.keras.backend.clear_session()
  # AssembleNet++-50's graph (object stem, peer-attention) at a tiny size.
  genome = _tiny(zoo.genome("assemblenet_plus50"))
  model = assemblenet_model.build_model(genome, CLASSES, flow_iterations=2, object_classes=5)
  assert {x.name: tuple(x.shape) for x in model.inputs} == {
    "clips": (None, 4, 32, 32, 3),
    "objects": (None, 4, 32, 32, 5),
  }
  _check_node_shapes(genome, model)
  for i in assemblenet_model.live_nodes(genome):
    node = genome.nodes[i]
    if not isinstance(node, Block) or len(node.inputs) < 2:
      continue
    peers = [
      j
      for j in assemblenet_model.live_nodes(genome)
      if j < i and genome.nodes[j].level < node.level
    ]
    for j in node.inputs:
      channels = genome.channels(j, 5)
      gate = model.get_layer(f"node{i}_attention_in{j}_gate_reshape")
      # One gate per frame (B*T) and channel of the connection.
      assert gate.output.shape == (None, 1, 1, channels)
      mix = model.get_layer(f"node{i}_attention_in{j}_mix")
      assert mix.logits.shape == (len(peers),)
  rng = np.random.default_rng(0)
  logits = model(
    {
      "clips": rng.uniform(-1, 1, (1, 4, 32, 32, 3)).astype(np.float32),
      "objects": rng.uniform(0, 1, (1, 4, 32, 32, 5)).astype(np.float32),
    }
  )
  assert logits.shape == (1, CLASSES)
  tf.keras.backend.clear_session()
  # AssembleNet-50/-101's graph: published fixed weights in the model.
  genome = _tiny(zoo.genome("assemblenet50"), attention="self")
  model = assemblenet_model.build_model(genome, CLASSES, flow_iterations=2)
  _check_node_shapes(genome, model)
  weights = assemblenet_model.learned_connection_weights(genome, model)
  assert weights["8"] == pytest.approx([0.16, 0.89, 0.40, 0.68, 0.53])
  assert model.get_layer("node8_attention_in0_gate_reshape").output.shape == (None, 1, 1, 4)
  tf.keras.backend.clear_session()


def _moving_square(dx: int, dy: int, frames: int = 3, size: int = 32):
  """A smooth bright square moving (dx, dy) pixels a frame, in [-1, 1]."""
  yy, xx = np.mgrid[:size, :size].astype(np.float32)
  clip = []
  for t in range(frames):
    cx, cy = 12 + dx * t, 12 + dy * t
    blob = np.exp(-((((xx - cx) / 4.0) ** 2 + ((yy - cy) / 4.0) ** 2) ** 2))
    clip.append(np.repeat(blob[..., None], 3, axis=-1) * 2 - 1)
  return np.stack(clip)[None].astype(np.float32)


@pytest.mark.parametrize("dx,dy", [(1, 0), (-1, 0), (0, 1), (0, -1)])
def test_representation_flow_recovers_the_direction_of_a_translation(dx, dy):
  layer = assemblenet_layers.RepresentationFlow(num_iterations=20)
  flow = layer(_moving_square(dx, dy)).numpy()[0]
  assert flow.shape == (3, 32, 32, 2)
  np.testing.assert_array_equal(flow[2], flow[1])  # Last pair repeated.
  mean = flow[:2].mean(axis=(0, 1, 2))
  # Flow points the way the square moves, mostly along that axis.
  assert np.sign(mean[0]) == np.sign(dx) if dx else abs(mean[0]) < abs(mean[1])
  assert np.sign(mean[1]) == np.sign(dy) if dy else abs(mean[1]) < abs(mean[0])
  assert not layer.trainable_weights
  assert assemblenet_layers.RepresentationFlow(2, trainable_params=True).trainable_weights


def test_flow_stem_needs_two_frames_and_its_cost_is_reported():
  genome = Genome(
    nodes=(
      Stem("flow"),
      Block(0, (0,), 2, 1, 1),
      Block(1, (1,), 2),
      Block(2, (2,), 2),
      Block(3, (3,), 2),
    ),
    num_frames=1,
    resolution=32,
    depth=26,
    level_widths=(4, 4, 4, 4),
    stem_width=4,
  )
  with pytest.raises(UserError, match="at least 2 frames"):
    assemblenet_model.build_model(genome, CLASSES)
  cost = an.flow_cost(dataclasses.replace(genome, num_frames=8), 40)
  assert cost["flow_elementwise_ops"] == 60 * 32 * 32 * 7 * 40


# AssembleNet++lite as the release writes it (model_structures.asnp_lite_structure):
# [level, inputs, [expand, middle, out], temporal dilation, spatial stride]; stems [-1 | -2, d].
LITE_STRUCTURE = [
  [-1, 1],
  [-2, 1],
  [0, [0, 1], [27, 27, 12], 1, 2],
  [0, [0, 1], [27, 27, 12], 4, 2],
  [1, [0, 1, 2, 3], [54, 54, 24], 2, 2],
  [1, [0, 1, 2, 3], [54, 54, 24], 1, 2],
  [1, [0, 1, 2, 3], [54, 54, 24], 4, 2],
  [1, [0, 1, 2, 3], [54, 54, 24], 1, 2],
  [2, list(range(8)), [152, 152, 68], 1, 2],
  [2, list(range(8)), [152, 152, 68], 4, 2],
  [3, list(range(2, 10)), [432, 432, 192], 2, 2],
]


def _lite_parameters(structure, units, num_classes):
  """Parameters of the lite model by hand from the release's semantics: 24-channel
  stems (3x3 conv, temporal k=3), fusion (a logit per input; per peer a dense to the
  widest peer; per input a softmax over peers and a sigmoid dense gate; a 1x1 lift of
  each narrower channel group), inverted bottleneck units, the 432/2048 head.
  Every BN holds 4 numbers per channel; the flow layer holds 3."""
  bn = lambda c: 4 * c
  total, channels, levels = 3, {}, {}
  for i, node in enumerate(structure):
    if node[0] < 0:
      total += 9 * (3 if node[0] == -1 else 2) * 24 + bn(24) + 3 * 24 * 24 + bn(24)
      channels[i], levels[i] = 24, -1
      continue
    level, inputs, (e, m, o), _, stride = node
    widths = [channels[j] for j in inputs]
    width = max(widths)
    peers = [channels[j] for j in channels if levels[j] < level]
    p = max(peers)
    total += len(inputs) + sum(c * p + p for c in peers)
    total += sum(len(peers) + p * c + c for c in widths)
    total += sum(c * width for c in set(widths) if c != width)
    for u in range(units[level]):
      total += width * e + bn(e) + m * o + bn(o)
      if u == 0:
        total += width * o + bn(o)
      if u == 0 and stride > 1:
        total += 9 * e * m + bn(m) + 3 * m * m + bn(m)
      else:
        total += 27 * e * m + bn(m)
      width = o
    channels[i], levels[i] = o, level
  return total + width * 432 + bn(432) + 432 * 2048 + bn(2048) + 2048 * num_classes + num_classes


def test_lite_model_has_the_published_parameters_and_runs_a_clip():
  tf.keras.backend.clear_session()
  # Published widths and graph on a small clip, two units a level (parameters do
  # not depend on the clip; the units' count only repeats them).
  genome = dataclasses.replace(
    zoo.genome("assemblenet_plus_lite"), num_frames=4, resolution=32, depth=26
  )
  model = assemblenet_model.build_model(genome, CLASSES, flow_iterations=2)
  assert model.count_params() == _lite_parameters(LITE_STRUCTURE, (2, 2, 2, 2), CLASSES)
  sizes = genome.node_sizes()
  assert sizes == [16, 16, 8, 8, 4, 4, 4, 4, 2, 2, 1]
  for i in range(len(genome.nodes)):
    name = f"node{i}_stem_temporal_unfold" if i < 2 else f"node{i}_unit1_out"
    assert model.get_layer(name).output.shape == (None, sizes[i], sizes[i], genome.channels(i, 0))
  # Unit 0 strides: 3x3 conv and a temporal conv at the node's dilation; unit 1
  # is a 3x3x3 conv over the node's dilated taps.
  assert model.get_layer("node3_unit0_spatial").kernel.shape == (3, 3, 27, 27)
  assert model.get_layer("node3_unit0_temporal").dilation_rate == (4, 1)
  assert model.get_layer("node3_unit1_conv3d").kernel.shape == (3, 3, 3 * 27, 27)
  assert model.get_layer("node3_unit1_conv3d_taps_tap2").cropping == ((8, 0), (0, 0))
  assert model.get_layer("head10_conv2").kernel.shape == (1, 1, 432, 2048)
  assert not any(isinstance(layer, tf.keras.layers.Conv3D) for layer in model.layers)
  weights = assemblenet_model.learned_connection_weights(genome, model)
  assert weights["10"] == pytest.approx([0.618, 0.119, 0.061, 0.045, 0.056, 0.052, 0.997, 0.999])
  clips = np.random.default_rng(0).uniform(-1, 1, (2, 4, 32, 32, 3)).astype(np.float32)
  logits = model(clips, training=False)
  assert logits.shape == (2, CLASSES) and np.all(np.isfinite(logits))
  tf.keras.backend.clear_session()
