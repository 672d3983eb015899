"""AssembleNet's one-shot connection search, the mode its public release kept.

Instead of evolving graphs, train one over-connected graph (every block reads
every lower-level node) with learnable connection weights, keep the edges
whose learned weight σ(w) reaches ``keep_threshold``, fix those weights, and
train the kept graph from scratch (reference/methods.md §2.5).

Workdir layout::

  over_connected/      FullTraining of the over-connected graph
  learned.json         its learned connection weights, per node
  genome.json          the kept graph, weights fixed (``--genome`` reads it)
  final/               FullTraining of the kept graph (skipped if retrain=False)
"""

import dataclasses
import json
import os
from typing import Any, Optional

import gin
import numpy as np
import tensorflow as tf

from vsearch import files
from vsearch.data import datasets
from vsearch.errors import UserError
from vsearch.methods.assemblenet import graph
from vsearch.methods.assemblenet.genome import Block, Genome
from vsearch.methods.assemblenet.method import AssembleNetMethod
from vsearch.methods.assemblenet.model import learned_connection_weights
from vsearch.methods.base import Source
from vsearch.train import full_training


def over_connected(genome: Genome) -> Genome:
  """``genome`` with every node reading every lower-level node, weights learned.

  The start of the released one-shot search: train it, then
  ``one_shot_genome`` keeps the edges the training found useful.
  """
  nodes = list(genome.nodes)
  for i in genome.blocks:
    node = nodes[i]
    inputs = tuple(j for j in range(i) if nodes[j].level < node.level)
    nodes[i] = dataclasses.replace(node, inputs=inputs, weights=None)
  return dataclasses.replace(genome, nodes=tuple(nodes))


def one_shot_genome(
  genome: Genome, connection_weights: dict[str, list[float]], keep_threshold: float
) -> Genome:
  """The graph a one-shot connection search keeps, with its weights fixed.

  Args:
    genome: the trained (over-connected) graph.
    connection_weights: its learned σ(w) per node, as ``learned_state``
      stores them under 'connection_weights'.
    keep_threshold: edges whose weight is below this are dropped; a node
      keeps at least its strongest edge.

  Returns:
    The pruned genome with every kept edge's learned weight fixed (nodes
    with one input keep no weight; nodes no level-3 node reads are removed).

  Raises:
    UserError: a multi-input node has no learned weights to read.
  """
  nodes = list(genome.nodes)
  for i in genome.blocks:
    node = nodes[i]
    if len(node.inputs) < 2:
      continue
    weights = connection_weights.get(str(i))
    if weights is None or len(weights) != len(node.inputs):
      raise UserError(
        f"No learned weights for the {len(node.inputs)} inputs "
        f"of node {i}; train the graph with combine 'sigmoid' "
        "first."
      )
    keep = [k for k, w in enumerate(weights) if w >= keep_threshold]
    keep = keep or [int(np.argmax(weights))]
    nodes[i] = dataclasses.replace(
      node,
      inputs=tuple(node.inputs[k] for k in keep),
      weights=tuple(weights[k] for k in keep) if len(keep) > 1 else None,
    )
  return graph.prune(dataclasses.replace(genome, nodes=tuple(nodes)))


@gin.configurable
class OneShotSearch:
  """Over-connect, train, keep the strong edges, retrain.

  Args:
    workdir: where both trainings and the kept genome go.
    source: the graph whose nodes are over-connected (a zoo entry, a genome
      file or a search record of the 'assemblenet' method).
    strategy: the ``tf.distribute`` strategy to train under.
    keep_threshold: edges whose learned weight is below this are dropped
      (a node keeps at least its strongest edge).
    retrain: train the kept graph after the search.
    genome_overrides: global genome fields to replace before over-connecting
      (e.g. ``{'num_frames': 8, 'resolution': 32, 'depth': 26}``), so a
      published graph runs at a small scale.
    filters_divisor: divides every block's filters (at least 1 is left).
  """

  def __init__(
    self,
    workdir: str,
    source: Source,
    strategy: tf.distribute.Strategy,
    keep_threshold: float = 0.5,
    retrain: bool = True,
    genome_overrides: Optional[dict[str, Any]] = None,
    filters_divisor: int = 1,
  ):
    if not isinstance(source.method, AssembleNetMethod):
      raise UserError(
        "The one-shot search runs on AssembleNet graphs; "
        f"{source.description} is a {source.method.name} genome."
      )
    if not 0.0 < keep_threshold < 1.0:
      raise UserError(f"OneShotSearch.keep_threshold must be in (0, 1), got {keep_threshold}")
    self.workdir = workdir
    self.source = source
    self.strategy = strategy
    self.keep_threshold = keep_threshold
    self.retrain = retrain
    genome = source.genome
    try:
      genome = dataclasses.replace(genome, **(genome_overrides or {}))
    except TypeError as e:
      raise UserError(f"OneShotSearch.genome_overrides: {e}") from None
    if filters_divisor > 1:
      genome = dataclasses.replace(
        genome,
        nodes=tuple(
          n.divided(filters_divisor) if isinstance(n, Block) else n for n in genome.nodes
        ),
      )
    self.genome = genome

  def run(self) -> dict[str, Any]:
    """Runs (or resumes) both stages; returns the kept genome and results."""
    method = self.source.method
    dense = over_connected(self.genome.with_learned_weights())
    dense_dir = os.path.join(self.workdir, "over_connected")
    first = full_training.FullTraining(
      dense_dir, Source(method, dense, f"over-connected {self.source.description}"), self.strategy
    ).run()
    model = method.build(dense, datasets.load_dataset().num_classes)
    full_training.load_weights(model, dense_dir)
    weights = learned_connection_weights(dense, model)
    kept = one_shot_genome(dense, weights, self.keep_threshold)
    _write(os.path.join(self.workdir, "learned.json"), {"connection_weights": weights})
    _write(os.path.join(self.workdir, full_training.GENOME_FILE), kept.to_dict())
    edges = lambda g: sum(len(g.nodes[i].inputs) for i in g.blocks)
    print(
      f"Kept {edges(kept)} of {edges(dense)} edges (weights >= "
      f"{self.keep_threshold}): {kept.describe()}",
      flush=True,
    )
    result = {"over_connected": first, "genome": kept.to_dict()}
    if self.retrain:
      result["final"] = full_training.FullTraining(
        os.path.join(self.workdir, "final"),
        Source(method, kept, f"one-shot graph of {self.source.description}"),
        self.strategy,
      ).run()
    return result


def _write(path: str, data: Any) -> None:
  files.write_atomically(path, json.dumps(data, indent=2, sort_keys=True))
