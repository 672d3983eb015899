"""AssembleNet genome: validation, JSON, sampling, guided mutation, one-shot."""

import dataclasses
import json

import gin
import numpy as np
import pytest

from vsearch import configurables  # noqa: F401  (registers every gin configurable)
from vsearch.errors import InvalidGenomeError, UserError
from vsearch.methods import assemblenet as an
from vsearch.methods import zoo
from vsearch.methods.assemblenet import Block, Genome, Stem


def _nodes():
  return [
    Stem("rgb", 1),
    Stem("flow", 1),
    Block(0, (0, 1), 4, 1, 1),
    Block(0, (0,), 4, 2, 1),
    Block(1, (0, 2, 3), 8, 4, 2),
    Block(2, (2, 4), 8, 1, 2),
    Block(3, (4, 5), 8, 2, 2),
  ]


def _genome(nodes=None, **changes):
  fields = dict(
    nodes=tuple(_nodes() if nodes is None else nodes),
    num_frames=4,
    resolution=32,
    depth=26,
    level_widths=(8, 8, 8, 8),
    stem_width=8,
  )
  fields.update(changes)
  return Genome(**fields)


def _tiny_space(**changes):
  fields = dict(
    resolutions=(32,),
    frame_counts=(4,),
    frame_strides=(1, 2),
    stems=("rgb", "rgb", "flow"),
    nodes_per_level=((1, 3), (1, 3), (1, 2), (1, 1)),
    filters=((4,), (4, 8), (8,), (8, 16)),
    depth=26,
    level_widths=(8, 8, 8, 8),
    stem_width=8,
  )
  fields.update(changes)
  return an.AssembleNetSearchSpace(**fields)


def _replace_node(index, **changes):
  nodes = _nodes()
  nodes[index] = dataclasses.replace(nodes[index], **changes)
  return nodes


@pytest.mark.parametrize(
  "nodes,message",
  [
    (
      _replace_node(4, inputs=(0, 2, 5)),
      r"nodes\[4\].inputs: node 5 is not "
      r"earlier than node 4.*cycle",
    ),
    (
      _replace_node(4, inputs=(0, 9)),
      r"nodes\[4\].inputs: node 9 does not "
      "exist",
    ),
    (
      _replace_node(5, inputs=(2, 4), level=1),
      r"nodes\[5\].inputs: node 4 is "
      "at level 1, not below this level-1 node",
    ),
    (
      [Stem("object")]
      + [Block(0, (0,), 4, 1, 1), Block(1, (1,), 4), Block(2, (2,), 4), Block(3, (3,), 4)],
      "no RGB or flow stem",
    ),
    (_nodes()[:6], "no level-3 node"),
    (
      _nodes() + [Block(3, (5,), 16)],
      r"nodes \[6, 7\]: level-3 nodes have "
      "different filters",
    ),
    (
      _nodes()[:2] + [Block(0, (0,), 4, 1, 1), Stem("rgb")] + _nodes()[3:],
      r"nodes\[3\]: a stem after a block",
    ),
  ],
)
def test_bad_graphs_name_the_node(nodes, message):
  with pytest.raises(InvalidGenomeError, match=message):
    _genome(nodes)


@pytest.mark.parametrize(
  "changes,message",
  [
    (dict(weights=(0.5,)), r"nodes\[4\].weights.*one weight per input: 3"),
    (dict(weights=(0.5, 1.0, 0.2)), r"nodes\[4\].weights.*\(0, 1\)"),
    (dict(inputs=(0, 0, 2)), r"nodes\[4\].inputs.*at most once"),
    (dict(dilation=3), r"nodes\[4\].dilation.*1, 2, 4, 8"),
    (dict(level=4), r"nodes\[4\].level"),
    (dict(inputs=()), r"nodes\[4\].inputs.*non-empty"),
  ],
)
def test_bad_node_fields_are_named_when_read(changes, message):
  data = _genome().to_dict()
  data["nodes"][4].update(changes)
  data["nodes"][4]["inputs"] = list(data["nodes"][4]["inputs"])
  with pytest.raises(InvalidGenomeError, match=message):
    Genome.from_dict(data)


def test_unknown_keys_are_explained():
  data = _genome().to_dict()
  data["nodes"][0]["colour"] = "red"
  with pytest.raises(InvalidGenomeError, match=r"nodes\[0\]: unknown keys"):
    Genome.from_dict(data)


def test_json_round_trip_of_zoo_and_samples():
  method = an.AssembleNetMethod(space=_tiny_space())
  genomes = [zoo.genome(n) for n in zoo.names("assemblenet")]
  genomes += [method.sample(np.random.default_rng(s)) for s in range(20)]
  for genome in genomes:
    text = json.dumps(genome.to_dict())
    assert method.genome_from_dict(json.loads(text)) == genome


def test_zoo_graphs_are_the_published_ones():
  asn50 = zoo.genome("assemblenet50")
  # Stems/L0 56, L1 28, L2 14, L3 7 at 224 px (reference §2.4).
  assert asn50.node_sizes() == [56] * 8 + [28] * 4 + [14] * 2 + [7]
  assert [asn50.nodes[i].channels for i in asn50.blocks] == (
    [128] * 4 + [256] * 4 + [1024] * 2 + [2048]
  )
  asn101 = zoo.genome("assemblenet101")
  assert asn101.units == (3, 4, 23, 3)
  assert [asn101.nodes[i].filters for i in (12, 13, 14)] == [192, 192, 256]
  assert asn101.nodes[:12] == asn50.nodes[:12]
  plus = zoo.genome("assemblenet_plus50")
  assert plus.attention == "peer" and plus.nodes[4] == Stem("object", 4)
  assert plus.nodes[13].weights[2] == 0.97  # The object edge of node 13.
  assert 9 not in an.live_nodes(plus)  # Published dead node.


def test_sampled_genomes_stay_in_the_space():
  space = _tiny_space()
  method = an.AssembleNetMethod(space=space)
  for seed in range(30):
    genome = method.sample(np.random.default_rng(seed))
    assert genome.resolution in space.resolutions
    assert all(n.weights is None for n in genome.nodes if isinstance(n, Block))
    assert an.live_nodes(genome) == set(range(len(genome.nodes)))
    for i in genome.blocks:
      node = genome.nodes[i]
      assert node.filters in space.filters[node.level]
      assert node.stride == space.level_strides[node.level]


def test_bad_search_space_is_a_user_error():
  with pytest.raises(UserError, match="nodes_per_level"):
    _tiny_space(nodes_per_level=((1, 2),))
  with pytest.raises(UserError, match="invalid choice.*dilation"):
    _tiny_space(dilations=(3,))
  with pytest.raises(UserError, match="drop_threshold"):
    an.AssembleNetMethod(drop_threshold=1.5)


@pytest.mark.parametrize("guided", [True, False])
def test_mutation_gives_valid_different_children_over_many_seeds(guided):
  method = an.AssembleNetMethod(space=_tiny_space(), guided=guided)
  kinds = set()
  for seed in range(40):
    rng = np.random.default_rng(seed)
    genome = method.sample(rng)
    for _ in range(5):  # Chains of mutations stay valid.
      weights = {
        str(i): list(rng.uniform(0.01, 0.99, len(genome.nodes[i].inputs))) for i in genome.blocks
      }
      child, change = method.mutate(genome, rng, learned={"connection_weights": weights})
      assert child != genome.with_learned_weights() and change
      assert Genome.from_dict(child.to_dict()) == child
      assert an.live_nodes(child) == set(range(len(child.nodes)))
      levels = [n.level for n in child.nodes]
      assert levels == sorted(levels)
      kinds.add(change.split(";")[-1].split()[0])
      genome = child
  assert {"add", "split", "merge", "node"} <= kinds
  assert ("drop" in kinds) != guided  # Random drops only when unguided.


def test_guided_mutation_drops_the_weak_edges_of_the_parent_record():
  method = an.AssembleNetMethod(space=_tiny_space(), drop_threshold=0.3)
  parent = _genome()
  # Node 4 reads 0, 2, 3; node 5 reads 2, 4; node 6 reads 4, 5.
  learned = {
    "connection_weights": {
      "2": [0.9, 0.8],
      "4": [0.1, 0.7, 0.2],
      "5": [0.6, 0.9],
      "6": [0.25, 0.05],
    }
  }
  assert method.weak_edges(parent, learned["connection_weights"]) == [
    (0, 4, 0.1),
    (3, 4, 0.2),
    (5, 6, 0.05),
  ]
  for seed in range(20):
    child, change = method.mutate(parent, np.random.default_rng(seed), learned=learned)
    # 5->6 is weak too, but node 5 is level 2's only node: dropping it would
    # prune the level away, so it stays.
    assert change.startswith("dropped 0->4 (0.10), 3->4 (0.20); "), change
    for edge in ("0->4", "3->4"):
      assert f"add edge {edge}" not in change  # Dropped edges stay dropped.
    assert any(child.nodes[i].level == 2 for i in child.blocks)
    # Node 3 fed only node 4, which dropped it: it is pruned, unless the
    # random change added an edge back or split a node.
    if "add edge" not in change and "split" not in change:
      assert len(child.nodes) <= len(parent.nodes) - 1
      assert all(n.weights is None for n in child.nodes if isinstance(n, Block))
  # Unguided, the same record changes nothing about which edges go.
  unguided = an.AssembleNetMethod(space=_tiny_space(), guided=False)
  _, change = unguided.mutate(parent, np.random.default_rng(0), learned=learned)
  assert "dropped" not in change


def test_guided_mutation_keeps_a_weak_edge_the_graph_cannot_lose():
  # The head's strongest edge comes from a node that reads only the object
  # stem; dropping the weak edge from the RGB path would leave a graph that
  # sees no frames, so the child keeps it and drops what it can.
  method = an.AssembleNetMethod(space=_tiny_space(stems=("rgb", "object")), drop_threshold=0.5)
  parent = _genome(
    [
      Stem("rgb"),
      Stem("object"),
      Block(0, (0,), 4, 1, 1),
      Block(0, (1,), 4, 1, 1),
      Block(0, (0, 1), 4, 1, 1),
      Block(1, (2, 3, 4), 8, 1, 2),
      Block(2, (5,), 8, 1, 2),
      Block(3, (6,), 8, 1, 2),
    ]
  )
  learned = {"connection_weights": {"5": [0.1, 0.9, 0.2], "4": [0.3, 0.7]}}
  for seed in range(5):
    child, change = method.mutate(parent, np.random.default_rng(seed), learned=learned)
    # 2->5 and 0->4 are weaker, but without one of them no RGB reaches the
    # head: only the weakest (2->5) goes, since 0->4 must then stay.
    assert change.startswith("dropped 2->5 (0.10); "), change
    assert "4->5" not in change and "0->4" not in change.split(";")[0]
    assert any(child.nodes[i].kind == "rgb" for i in an.live_nodes(child) if i in child.stems)


def test_levels_keep_their_minimum_of_nodes_through_sampling_and_mutation():
  space = _tiny_space(nodes_per_level=((2, 3), (1, 3), (1, 2), (1, 1)), connection_prob=0.3)
  method = an.AssembleNetMethod(space=space)
  counts = lambda g: [sum(1 for i in g.blocks if g.nodes[i].level == level) for level in range(4)]
  for seed in range(20):
    rng = np.random.default_rng(seed)
    genome = method.sample(rng)
    for _ in range(5):
      assert all(n >= low for n, (low, _) in zip(counts(genome), space.nodes_per_level)), (
        genome.describe()
      )
      weights = {
        str(i): list(rng.uniform(0, 1, len(genome.nodes[i].inputs))) for i in genome.blocks
      }
      genome, _ = method.mutate(genome, rng, learned={"connection_weights": weights})


def test_mutation_is_deterministic_given_the_generator():
  method = an.AssembleNetMethod(space=_tiny_space())
  parent = method.sample(np.random.default_rng(3))
  first = method.mutate(parent, np.random.default_rng(5))
  assert method.mutate(parent, np.random.default_rng(5)) == first


def test_zoo_genomes_mutate():
  method = an.AssembleNetMethod()
  for name in zoo.names("assemblenet"):
    child, _ = method.mutate(zoo.genome(name), np.random.default_rng(0))
    assert all(n.weights is None for n in child.nodes if isinstance(n, Block))


def test_one_shot_keeps_strong_edges_with_fixed_weights():
  dense = an.over_connected(_genome())
  assert dense.nodes[4].inputs == (0, 1, 2, 3)
  assert dense.nodes[6].inputs == (0, 1, 2, 3, 4, 5)
  weights = {str(i): [0.1] * len(dense.nodes[i].inputs) for i in dense.blocks}
  weights["6"] = [0.1, 0.1, 0.1, 0.1, 0.8, 0.1]
  weights["4"] = [0.6, 0.7, 0.1, 0.1]
  kept = an.one_shot_genome(dense, weights, keep_threshold=0.5)
  # Node 6 keeps only 4 (one input: no weight); node 5 is dead and removed.
  top = kept.nodes[kept.outputs[0]]
  assert top.weights is None and len(top.inputs) == 1
  level1 = kept.nodes[top.inputs[0]]
  assert level1.inputs == (0, 1) and level1.weights == (0.6, 0.7)
  with pytest.raises(UserError, match="No learned weights for the 2 inputs of node 2"):
    an.one_shot_genome(dense, {}, keep_threshold=0.5)


@pytest.mark.parametrize(
  "path",
  [
    "gin/assemblenet/smoke.gin",
    "gin/assemblenet/kinetics_tpu.gin",
    "gin/assemblenet/one_shot_smoke.gin",
  ],
)
def test_configs_parse_and_give_valid_genomes(path):
  gin.parse_config_file(path)
  method = an.AssembleNetMethod()
  genome = method.sample(np.random.default_rng(0))
  child, _ = method.mutate(genome, np.random.default_rng(1))
  assert Genome.from_dict(child.to_dict()) == child


def _lite_nodes():
  """``_nodes()`` with inverted bottleneck widths (2f, 2f, f)."""
  return [
    dataclasses.replace(n, filters=(2 * n.filters, 2 * n.filters, n.filters))
    if isinstance(n, Block)
    else n
    for n in _nodes()
  ]


def test_lite_zoo_entry_is_the_published_graph():
  lite = zoo.genome("assemblenet_plus_lite")
  assert (lite.unit, lite.attention, lite.num_frames, lite.resolution) == (
    "inverted_bottleneck",
    "peer",
    32,
    224,
  )
  assert [lite.nodes[i] for i in lite.stems] == [Stem("rgb", 1), Stem("flow", 1)]
  assert lite.stem_channels == 24 and lite.units == (3, 5, 11, 7)
  blocks = [lite.nodes[i] for i in lite.blocks]
  assert [b.level for b in blocks] == [0, 0, 1, 1, 1, 1, 2, 2, 3]
  assert [b.filters for b in blocks] == (
    [(27, 27, 12)] * 2 + [(54, 54, 24)] * 4 + [(152, 152, 68)] * 2 + [(432, 432, 192)]
  )
  assert [b.dilation for b in blocks] == [1, 4, 2, 1, 4, 1, 1, 4, 2]
  assert {b.stride for b in blocks} == {2}
  # L1 and L2 read every earlier node, L3 every block.
  assert [b.inputs for b in blocks] == (
    [(0, 1)] * 2 + [(0, 1, 2, 3)] * 4 + [tuple(range(8))] * 2 + [tuple(range(2, 10))]
  )
  assert blocks[1].weights == (0.011, 0.889) and blocks[-1].weights[-1] == 0.999
  # Stems /2 without a pool, then every node /2: 112, 56, 28, 14, 7.
  assert lite.node_sizes() == [112] * 2 + [56] * 2 + [28] * 4 + [14] * 2 + [7]
  assert [lite.channels(i, 0) for i in range(11)] == [24, 24, 12, 12] + [24] * 4 + [68, 68, 192]


def test_unit_is_written_only_for_lite_and_older_genomes_still_read():
  old = _genome().to_dict()
  assert "unit" not in old  # Genomes written before the field read and write as before.
  assert Genome.from_dict(old) == _genome() and _genome().unit == "bottleneck"
  lite = zoo.genome("assemblenet_plus_lite")
  data = json.loads(json.dumps(lite.to_dict()))
  assert data["unit"] == "inverted_bottleneck"
  assert data["nodes"][2]["filters"] == [27, 27, 12]
  assert Genome.from_dict(data) == lite
  small = _genome(_lite_nodes(), unit="inverted_bottleneck")
  assert Genome.from_dict(json.loads(json.dumps(small.to_dict()))) == small
  assert small.nodes[2].divided(3) == dataclasses.replace(small.nodes[2], filters=(2, 2, 1))
  assert _genome().nodes[4].divided(16).filters == 1


@pytest.mark.parametrize(
  "nodes,unit,message",
  [
    (_nodes(), "inverted_bottleneck", r"nodes\[2\]\.filters: got 4; .*\[expand, middle, out\]"),
    (_lite_nodes(), "bottleneck", r"nodes\[2\]\.filters: got \(8, 8, 4\); .* one int"),
    (_lite_nodes()[:6] + _nodes()[6:], "inverted_bottleneck", r"nodes\[6\]\.filters: got 8"),
    (
      [Stem("object", 1)] + _lite_nodes(),
      "inverted_bottleneck",
      "object stem in an inverted-bottleneck",
    ),
    (_nodes(), "lite", r"unit: got 'lite'"),
  ],
)
def test_bad_lite_genomes_are_named(nodes, unit, message):
  if nodes[0].kind == "object":  # Shift the inputs past the extra stem.
    nodes = [nodes[0]] + [
      dataclasses.replace(n, inputs=tuple(j + 1 for j in n.inputs)) if isinstance(n, Block) else n
      for n in nodes[1:]
    ]
  with pytest.raises(InvalidGenomeError, match=message):
    _genome(nodes, unit=unit)
  with pytest.raises(InvalidGenomeError, match=r"filters: got \[4, 2\]; allowed: an int >= 1, or"):
    Block(0, (0,), (4, 2))


def test_lite_mutations_keep_its_widths_and_unit():
  method = an.AssembleNetMethod()
  genome, kinds = zoo.genome("assemblenet_plus_lite"), set()
  rng = np.random.default_rng(0)
  for _ in range(20):
    child, change = method.mutate(genome, rng)
    assert child.unit == "inverted_bottleneck"
    assert all(child.nodes[i].inverted for i in child.blocks)
    assert Genome.from_dict(json.loads(json.dumps(child.to_dict()))) == child
    kinds.add(change.split(";")[-1].split()[0])
    genome = child
  assert "filters" not in kinds and {"add", "node"} <= kinds
