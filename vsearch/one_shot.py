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
import tempfile
from typing import Any, Optional

import gin
import tensorflow as tf

from vsearch import full_training
from vsearch import genome_source
from vsearch.data import datasets
from vsearch.errors import UserError
from vsearch.methods import assemblenet


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

  def __init__(self, workdir: str, source: genome_source.Source,
               strategy: tf.distribute.Strategy, keep_threshold: float = 0.5,
               retrain: bool = True,
               genome_overrides: Optional[dict[str, Any]] = None,
               filters_divisor: int = 1):
    if not isinstance(source.method, assemblenet.AssembleNetMethod):
      raise UserError("The one-shot search runs on AssembleNet graphs; "
                      f"{source.description} is a {source.method.name} genome.")
    if not 0.0 < keep_threshold < 1.0:
      raise UserError("OneShotSearch.keep_threshold must be in (0, 1), got "
                      f"{keep_threshold}")
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
      genome = dataclasses.replace(genome, nodes=tuple(
          dataclasses.replace(n, filters=max(n.filters // filters_divisor, 1))
          if isinstance(n, assemblenet.Block) else n for n in genome.nodes))
    self.genome = genome

  def run(self) -> dict[str, Any]:
    """Runs (or resumes) both stages; returns the kept genome and results."""
    method = self.source.method
    dense = assemblenet.over_connected(self.genome.with_learned_weights())
    dense_dir = os.path.join(self.workdir, "over_connected")
    first = full_training.FullTraining(
        dense_dir, genome_source.Source(
            method, dense, f"over-connected {self.source.description}"),
        self.strategy).run()
    model = method.build(dense, datasets.load_dataset().num_classes)
    # Keras reads h5 from local files only; the workdir may be on gs://.
    with tempfile.TemporaryDirectory() as local:
      path = os.path.join(local, "final.weights.h5")
      tf.io.gfile.copy(os.path.join(dense_dir, "final.weights.h5"), path)
      model.load_weights(path)
    weights = assemblenet.learned_connection_weights(dense, model)
    kept = assemblenet.one_shot_genome(dense, weights, self.keep_threshold)
    _write(os.path.join(self.workdir, "learned.json"),
           {"connection_weights": weights})
    _write(os.path.join(self.workdir, "genome.json"), kept.to_dict())
    edges = lambda g: sum(len(g.nodes[i].inputs) for i in g.blocks)
    print(f"Kept {edges(kept)} of {edges(dense)} edges (weights >= "
          f"{self.keep_threshold}): {kept.describe()}", flush=True)
    result = {"over_connected": first, "genome": kept.to_dict()}
    if self.retrain:
      result["final"] = full_training.FullTraining(
          os.path.join(self.workdir, "final"), genome_source.Source(
              method, kept, f"one-shot graph of {self.source.description}"),
          self.strategy).run()
    return result


def _write(path: str, data: Any) -> None:
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(json.dumps(data, indent=2, sort_keys=True))
