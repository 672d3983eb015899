"""Tiny Video Networks (arXiv:1910.06961): one folder, one method.

* ``genome``: the architecture (``Genome`` of ``Block``s) and its rules.
* ``method``: the search space (``TvnSearchSpace``) and ``TvnMethod``
  (sampling, mutation, building).
* ``model``: the Keras builder, stage by stage.
* ``zoo``: TVN-1..4 and TVN-Mobile as published.
* ``latency_table``: a target device's latency, predicted from a table
  profiled on it once.

Import the package for its public names: ``tvn.TvnMethod``, ``tvn.Genome``.
"""

from vsearch.methods.tvn import zoo
from vsearch.methods.tvn.genome import ACTIVATIONS, SPATIAL_TYPES, TEMPORAL_TYPES, Block, Genome
from vsearch.methods.tvn.method import TvnMethod, TvnSearchSpace
from vsearch.methods.tvn.model import build_model

METHOD = TvnMethod

__all__ = [
  "ACTIVATIONS",
  "METHOD",
  "SPATIAL_TYPES",
  "TEMPORAL_TYPES",
  "Block",
  "Genome",
  "TvnMethod",
  "TvnSearchSpace",
  "build_model",
  "zoo",
]
