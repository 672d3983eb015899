"""AssembleNet and AssembleNet++ (arXiv:1905.13209, 2008.08072): one folder, one method.

* ``genome``: the multi-stream graph (``Genome`` of ``Stem``s and ``Block``s)
  and its rules.
* ``method``: ``AssembleNetMethod`` (sampling, connection-learning-guided
  mutation).
* ``space``: the search space, ``AssembleNetSearchSpace``.
* ``graph``: node insertion, removal and pruning.
* ``layers``: connection weights, the peer-attention mix and representation
  flow, as Keras layers; ``model``: the Keras builder; ``lite``:
  AssembleNet++lite's stems, 3-D inverted bottleneck unit and head.
* ``one_shot``: the release's one-shot connection search.
* ``zoo``: AssembleNet-50/101, AssembleNet++-50 and AssembleNet++lite as
  published.
"""

from vsearch.methods.assemblenet import one_shot, zoo
from vsearch.methods.assemblenet.genome import DEPTHS, Block, Genome, Stem
from vsearch.methods.assemblenet.layers import flow_cost
from vsearch.methods.assemblenet.method import AssembleNetMethod
from vsearch.methods.assemblenet.model import build_model, learned_connection_weights, live_nodes
from vsearch.methods.assemblenet.one_shot import one_shot_genome, over_connected
from vsearch.methods.assemblenet.space import AssembleNetSearchSpace

METHOD = AssembleNetMethod

__all__ = [
  "DEPTHS",
  "METHOD",
  "AssembleNetMethod",
  "AssembleNetSearchSpace",
  "Block",
  "Genome",
  "Stem",
  "build_model",
  "flow_cost",
  "learned_connection_weights",
  "live_nodes",
  "one_shot",
  "one_shot_genome",
  "over_connected",
  "zoo",
]
