"""AssembleNet / AssembleNet++ (arXiv:1905.13209, 2008.08072) as a search method.

AssembleNet evolves multi-stream graphs: which (2+1)-D block groups exist at
each of four levels, at which temporal dilation and width, and which lower
nodes (RGB / flow / object stems, earlier blocks) each one fuses. Every child
trains with learnable connection weights σ(w); ``learned_state`` puts them in
the child's record, and the mutation of that child reads them back
(connection-learning-guided mutation, reference/methods.md §2.5): edges whose
learned weight is below ``drop_threshold`` are dropped, then one random change
adds an edge, splits or merges a node, or changes a dilation or a width.

The public release kept only the one-shot alternative: train one
over-connected graph, keep its strong edges and fix their weights
(``one_shot``). The genome is in ``genome``, the builder in ``model``.
"""

import dataclasses
from collections.abc import Collection
from typing import Any, Optional

import gin
import numpy as np

from vsearch.data.clips import ClipSpec
from vsearch.errors import InvalidGenomeError, UserError
from vsearch.methods import base
from vsearch.methods.assemblenet import graph
from vsearch.methods.assemblenet.genome import (
  NUM_LEVELS,
  Block,
  Genome,
  Stem,
)
from vsearch.methods.assemblenet.model import (
  FLOW_SOURCES,
  HEADS,
  build_model,
  learned_connection_weights,
  model_inputs,
)
from vsearch.methods.assemblenet.space import AssembleNetSearchSpace, genome_in_space

# How often each random change is drawn (among those possible).
_CHANGE_WEIGHTS = {
  "add_edge": 0.3,
  "drop_edge": 0.15,
  "split": 0.15,
  "merge": 0.1,
  "dilation": 0.2,
  "filters": 0.1,
}


@gin.configurable
class AssembleNetMethod:
  """AssembleNet: sampling, connection-learning-guided mutation, building.

  Args:
    space: the graphs genomes are drawn from; ``AssembleNetSearchSpace()``
      if None.
    guided: read the parent's learned connection weights when mutating
      (False: the unguided baseline, which drops a random edge instead).
    drop_threshold: a guided mutation drops the parent's edges whose learned
      weight σ(w) is below this (the paper's value was not verifiable; 0.3
      drops an edge that fell clearly below the 0.5 it starts from).
    dropout_rate: dropout before the classifier of every built model.
    flow_iterations: unrolled TV-L1 iterations of the representation-flow
      layer (published 40).
    train_flow_params: train the flow layer's step sizes.
    object_classes: channels of the segmentation maps an object stem reads
      (151 published, for ADE-20K; synthetic_motion's maps have
      ``len(synthetic_motion.OBJECT_CLASSES)`` = 8).
    flow_source: 'layer' computes flow stems' optical flow inside the
      network (representation flow, as published); 'pipeline' reads it from
      the data pipeline (TV-L1 there), which keeps the model free of the
      solver, e.g. for int8 TFLite.
    bn_momentum: decay of the batch-norm moving statistics (0.99 as
      released; short trainings need lower, e.g. 0.9).
    head: 'mean' pools each clip over (T, H, W) before the classifier (the
      default); 'soft_max_time' classifies each frame and soft max-pools
      those logits over time, the release's head for long clips (T > 32)
      and Charades.
    max_attempts: draws before ``mutate`` gives up on finding a valid child.
  """

  name = "assemblenet"

  def __init__(
    self,
    space: Optional[AssembleNetSearchSpace] = None,
    guided: bool = True,
    drop_threshold: float = 0.3,
    dropout_rate: float = 0.5,
    flow_iterations: int = 40,
    train_flow_params: bool = False,
    object_classes: int = 151,
    flow_source: str = "layer",
    bn_momentum: float = 0.99,
    head: str = "mean",
    max_attempts: int = 1000,
  ):
    if not 0.0 < drop_threshold < 1.0:
      raise UserError(f"AssembleNetMethod.drop_threshold must be in (0, 1), got {drop_threshold}")
    self.space = space if space is not None else AssembleNetSearchSpace()
    self.guided = guided
    self.drop_threshold = drop_threshold
    self.dropout_rate = dropout_rate
    self.flow_iterations = flow_iterations
    self.train_flow_params = train_flow_params
    if flow_source not in FLOW_SOURCES:
      raise UserError(
        f"AssembleNetMethod.flow_source is {flow_source!r}; set it to one of {FLOW_SOURCES}."
      )
    if not 0.0 <= bn_momentum < 1.0:
      raise UserError(f"AssembleNetMethod.bn_momentum must be in [0, 1), got {bn_momentum}")
    self.object_classes = object_classes
    self.flow_source = flow_source
    self.bn_momentum = bn_momentum
    if head not in HEADS:
      raise UserError(f"AssembleNetMethod.head is {head!r}; set it to one of {HEADS}.")
    self.head = head
    self.max_attempts = max_attempts

  # Sampling.

  def sample(self, rng: np.random.Generator) -> Genome:
    """A random graph from the space, weights learned.

    Nodes no level-3 node reads are pruned; a draw whose pruning leaves a
    level with fewer nodes than ``nodes_per_level`` allows is drawn again.

    Raises:
      UserError: ``max_attempts`` draws all left a level too thin.
    """
    for _ in range(self.max_attempts):
      genome = self._draw(rng)
      if self._levels_kept(genome):
        return genome
    raise UserError(
      f"{self.max_attempts} random graphs all lost a level to pruning; "
      "raise AssembleNetSearchSpace.connection_prob or lower the minimum "
      "of nodes_per_level."
    )

  def _levels_kept(self, genome: Genome, parent: Optional[Genome] = None) -> bool:
    """Whether every level has the space's minimum of nodes (or, for a
    child, at least as many as its parent if the parent had fewer)."""
    for level, (low, _) in enumerate(self.space.nodes_per_level):
      if parent is not None:
        low = min(low, graph.level_count(parent, level))
      if graph.level_count(genome, level) < low:
        return False
    return True

  def _draw(self, rng: np.random.Generator) -> Genome:
    space = self.space
    nodes = [
      Stem(kind, base.choice(rng, space.dilations) if kind != "flow" else 1) for kind in space.stems
    ]
    for level in range(NUM_LEVELS):
      low, high = space.nodes_per_level[level]
      lower = list(range(len(nodes)))
      for _ in range(int(rng.integers(low, high + 1))):
        inputs = [j for j in lower if rng.random() < space.connection_prob]
        inputs = inputs or [base.choice(rng, lower)]
        nodes.append(
          Block(
            level,
            tuple(inputs),
            base.choice(rng, space.filters[level]),
            base.choice(rng, space.dilations),
            space.level_strides[level],
          )
        )
      if level == NUM_LEVELS - 1:  # One width at the top (the head averages).
        top = nodes[-1].filters
        nodes = [
          dataclasses.replace(n, filters=top) if isinstance(n, Block) and n.level == level else n
          for n in nodes
        ]
    return graph.prune(
      genome_in_space(
        space,
        nodes,
        base.choice(rng, space.resolutions),
        base.choice(rng, space.frame_counts),
        base.choice(rng, space.frame_strides),
      )
    )

  # Mutation.

  def mutate(
    self,
    genome: Genome,
    rng: np.random.Generator,
    progress: float = 0.0,
    learned: Optional[dict[str, Any]] = None,
  ) -> tuple[Genome, str]:
    """A valid child of ``genome``, guided by what the parent learned.

    With ``guided`` and the parent's learned connection weights, the edges
    whose weight is below ``drop_threshold`` are dropped, weakest first (a
    node keeps at least its strongest edge, and an edge stays if dropping it
    would leave no valid graph or a level with fewer nodes than the space
    allows). Then one random change: add an edge (not one just dropped),
    drop a random edge (unguided only), split a node into two that share its
    inputs and readers, merge two nodes of a level, change a dilation, or
    change a level's filters. Nodes no level-3 node reads any more are
    removed, as long as every level keeps its minimum of nodes, and every
    weight of the child is left to be learned. An inverted-bottleneck genome
    (AssembleNet++lite) keeps its widths: the space's filters are one int
    per node, its are triples.

    AssembleNet mutates at the same rate throughout, so ``progress`` is
    unused; ``learned`` is the parent record's (None if unknown), and the
    other arguments are as ``Method.mutate`` says. It returns the child and
    what changed, e.g. "dropped 0->8 (0.16); add edge 2->9", and raises a
    UserError when the space offers no change that gives a valid child.
    """
    del progress
    base.expect_genome(genome, Genome, "AssembleNetMethod")
    parent = genome.with_learned_weights()
    weights = (learned or {}).get("connection_weights") if self.guided else None
    start, notes, dropped = parent, [], set()
    if weights:
      start, notes, dropped = self._drop_weak(parent, weights)
    add_edge = lambda g, r: self._add_edge(g, r, avoid=dropped)
    changes = {
      "add_edge": add_edge,
      "split": self._split,
      "merge": self._merge,
      "dilation": self._dilation,
      "filters": self._filters,
    }
    if not weights:
      changes["drop_edge"] = self._drop_edge
    names = list(changes)
    p = np.array([_CHANGE_WEIGHTS[k] for k in names])
    for _ in range(self.max_attempts):
      kind = names[int(rng.choice(len(names), p=p / p.sum()))]
      try:
        proposal = changes[kind](start, rng)
        if proposal is None:
          continue
        child, description = proposal
        child = graph.prune(child)
      except InvalidGenomeError:
        continue
      if child != parent and self._levels_kept(child, parent):
        return child, "; ".join(notes + [description])
    raise UserError(f"AssembleNetSearchSpace offers no valid mutation of {genome.describe()}.")

  def weak_edges(
    self, genome: Genome, connection_weights: dict[str, list[float]]
  ) -> list[tuple[int, int, float]]:
    """(source, node, weight) of each edge below the threshold (not a
    node's strongest): what a guided mutation drops, as far as the graph
    stays valid."""
    weak = []
    for i in genome.blocks:
      node = genome.nodes[i]
      weights = connection_weights.get(str(i))
      if weights is None or len(weights) != len(node.inputs):
        continue  # Not learned (one input) or not this graph's node.
      strongest = int(np.argmax(weights))
      weak.extend(
        (j, i, float(w))
        for k, (j, w) in enumerate(zip(node.inputs, weights))
        if w < self.drop_threshold and k != strongest
      )
    return weak

  def _drop_weak(self, genome: Genome, connection_weights):
    """Drops the weak edges, weakest first, keeping any whose loss would
    leave no valid graph (e.g. cut every RGB and flow stem off the head) or
    would prune a level below the space's minimum of nodes.

    Returns:
      (the graph, notes on what was dropped, the dropped (source, node)).
    """
    current, dropped = genome, []
    for j, i, w in sorted(self.weak_edges(genome, connection_weights), key=lambda edge: edge[2]):
      nodes = list(current.nodes)
      nodes[i] = dataclasses.replace(nodes[i], inputs=tuple(k for k in nodes[i].inputs if k != j))
      try:
        candidate = dataclasses.replace(current, nodes=tuple(nodes))
        if not self._levels_kept(graph.prune(candidate), genome):
          continue
      except InvalidGenomeError:
        continue
      current = candidate
      dropped.append((j, i, w))
    if not dropped:
      return genome, [], set()
    dropped.sort(key=lambda edge: (edge[1], edge[0]))
    text = "dropped " + ", ".join(f"{j}->{i} ({w:.2f})" for j, i, w in dropped)
    return current, [text], {(j, i) for j, i, _ in dropped}

  def _add_edge(
    self, genome: Genome, rng: np.random.Generator, avoid: Collection[tuple[int, int]] = ()
  ):
    """Adds a random new edge, other than the (source, node) pairs ``avoid``."""
    options = [
      (j, i)
      for i in genome.blocks
      for j in range(i)
      if genome.nodes[j].level < genome.nodes[i].level
      and j not in genome.nodes[i].inputs
      and (j, i) not in avoid
    ]
    if not options:
      return None
    j, i = base.choice(rng, options)
    nodes = list(genome.nodes)
    nodes[i] = dataclasses.replace(nodes[i], inputs=tuple(sorted(nodes[i].inputs + (j,))))
    return dataclasses.replace(genome, nodes=tuple(nodes)), f"add edge {j}->{i}"

  def _drop_edge(self, genome: Genome, rng: np.random.Generator):
    options = [
      (j, i)
      for i in genome.blocks
      if len(genome.nodes[i].inputs) > 1
      for j in genome.nodes[i].inputs
    ]
    if not options:
      return None
    j, i = base.choice(rng, options)
    nodes = list(genome.nodes)
    nodes[i] = dataclasses.replace(nodes[i], inputs=tuple(k for k in nodes[i].inputs if k != j))
    return (dataclasses.replace(genome, nodes=tuple(nodes)), f"drop edge {j}->{i}")

  def _split(self, genome: Genome, rng: np.random.Generator):
    options = [
      i
      for i in genome.blocks
      if graph.level_count(genome, genome.nodes[i].level)
      < self.space.nodes_per_level[genome.nodes[i].level][1]
    ]
    if not options:
      return None
    i = base.choice(rng, options)
    node = genome.nodes[i]
    inputs = list(node.inputs)
    rng.shuffle(inputs)
    cut = int(rng.integers(1, len(inputs))) if len(inputs) > 1 else 1
    first, second = sorted(inputs[:cut]), sorted(inputs[cut:] or inputs)
    twin = dataclasses.replace(
      node, inputs=tuple(second), dilation=base.choice(rng, self.space.dilations)
    )
    nodes = list(genome.nodes)
    nodes[i] = dataclasses.replace(node, inputs=tuple(first))
    nodes = graph.insert_node(nodes, i + 1, twin)
    nodes = [
      dataclasses.replace(n, inputs=n.inputs + (i + 1,))
      if isinstance(n, Block) and i in n.inputs
      else n
      for n in nodes
    ]
    return (
      dataclasses.replace(genome, nodes=tuple(nodes)),
      f"split node {i} into {i} <- {first} and {i + 1} <- {second} (d{twin.dilation})",
    )

  def _merge(self, genome: Genome, rng: np.random.Generator):
    options = [
      (a, b)
      for a in genome.blocks
      for b in genome.blocks
      if a < b
      and genome.nodes[a].level == genome.nodes[b].level
      and graph.level_count(genome, genome.nodes[a].level)
      > self.space.nodes_per_level[genome.nodes[a].level][0]
    ]
    if not options:
      return None
    a, b = base.choice(rng, options)
    nodes = list(genome.nodes)
    merged = sorted(set(nodes[a].inputs) | set(nodes[b].inputs))
    nodes[a] = dataclasses.replace(nodes[a], inputs=tuple(merged))
    # Readers of b read a instead (nodes are in level order: a < b < readers).
    nodes = [
      dataclasses.replace(n, inputs=tuple(sorted({a if j == b else j for j in n.inputs})))
      if isinstance(n, Block) and b in n.inputs
      else n
      for n in nodes
    ]
    return (
      dataclasses.replace(genome, nodes=tuple(graph.remove_nodes(nodes, {b}))),
      f"merge node {b} into {a}",
    )

  def _dilation(self, genome: Genome, rng: np.random.Generator):
    # A flow stem's dilation is unused, except by lite stems (temporal conv).
    options = [
      i
      for i, n in enumerate(genome.nodes)
      if not (isinstance(n, Stem) and n.kind != "rgb" and not genome.inverted)
    ]
    i = base.choice(rng, options)
    node = genome.nodes[i]
    values = [d for d in self.space.dilations if d != node.dilation]
    if not values:
      return None
    value = base.choice(rng, values)
    nodes = list(genome.nodes)
    nodes[i] = dataclasses.replace(node, dilation=value)
    return (
      dataclasses.replace(genome, nodes=tuple(nodes)),
      f"node {i} dilation {node.dilation} -> {value}",
    )

  def _filters(self, genome: Genome, rng: np.random.Generator):
    if genome.inverted:
      return None
    i = base.choice(rng, genome.blocks)
    node = genome.nodes[i]
    values = [f for f in self.space.filters[node.level] if f != node.filters]
    if not values:
      return None
    value = base.choice(rng, values)
    top = node.level == NUM_LEVELS - 1  # Level-3 nodes share one width.
    nodes = [
      dataclasses.replace(n, filters=value)
      if k == i or (top and isinstance(n, Block) and n.level == node.level)
      else n
      for k, n in enumerate(genome.nodes)
    ]
    target = "level 3" if top else f"node {i}"
    return (
      dataclasses.replace(genome, nodes=tuple(nodes)),
      f"{target} filters {node.filters} -> {value}",
    )

  # The rest of the Method protocol.

  def learned_state(self, genome: Genome, model) -> dict[str, Any]:
    """The trained model's connection weights σ(w), per node index."""
    return {"connection_weights": learned_connection_weights(genome, model)}

  def genome_from_dict(self, data: dict[str, Any]) -> Genome:
    """Reads a ``Genome.to_dict`` dict; raises InvalidGenomeError."""
    return Genome.from_dict(data)

  def clip_spec(self, genome: Genome) -> ClipSpec:
    """The clips ``genome``'s model reads, with its object maps and
    pipeline flow as extra inputs where it has those stems."""
    return ClipSpec(
      num_frames=genome.num_frames,
      frame_stride=genome.frame_stride,
      resolution=genome.resolution,
      extra_inputs=model_inputs(genome, self.flow_source),
      object_classes=self.object_classes,
    )

  def build(self, genome: Genome, num_classes: int):
    """The Keras model: clips (B, T, H, W, 3) float32 -> logits (B, classes).

    A genome with an object stem (or flow stems, with ``flow_source``
    'pipeline') reads a dict of inputs (see ``assemblenet_model.build_model``).
    """
    return build_model(
      genome,
      num_classes,
      dropout_rate=self.dropout_rate,
      flow_iterations=self.flow_iterations,
      train_flow_params=self.train_flow_params,
      object_classes=self.object_classes,
      flow_source=self.flow_source,
      bn_momentum=self.bn_momentum,
      head=self.head,
    )
