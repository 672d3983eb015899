"""EvaNet (arXiv:1811.10636): one folder, one method.

* ``genome``: the architecture (``Genome`` of ``Stage``s of ``Branch``es),
  its rules and ``genome_distance``, in the released ResNet-like
  meta-architecture.
* ``inception``, ``inception_model``: the paper's second, I3D-like
  meta-architecture (``InceptionGenome`` of ``Module``s of the same
  ``Branch``es, ``InceptionSearchSpace``), reconstructed from I3D;
  ``EvanetMethod.meta_architecture = 'inception'`` searches it.
* ``method``: the search space (``EvanetSearchSpace``), ``EvanetMethod``
  and the early-heavy, late-light ``mutation_schedule``.
* ``model``: the Keras builder; ``conv3d`` (3-D convs as one 2-D conv over
  stacked temporal taps) and ``itgm`` (Temporal Gaussian Mixture layers).
* ``ensemble``: the diverse ensemble of a search's best, EvaNet's final step.
* ``zoo``: EvaNet-A and -B as published.
"""

from vsearch.methods.evanet import ensemble, inception, zoo
from vsearch.methods.evanet.genome import (
  BRANCH_TYPES,
  CONV_TYPES,
  META_ARCHITECTURES,
  TEMPORAL_LENGTHS,
  Branch,
  Genome,
  Stage,
  genome_distance,
)
from vsearch.methods.evanet.inception import (
  InceptionGenome,
  InceptionSearchSpace,
  Module,
  inception_distance,
)
from vsearch.methods.evanet.inception_model import build_inception_model
from vsearch.methods.evanet.method import EvanetMethod, EvanetSearchSpace, mutation_schedule
from vsearch.methods.evanet.model import build_model

METHOD = EvanetMethod

__all__ = [
  "BRANCH_TYPES",
  "CONV_TYPES",
  "META_ARCHITECTURES",
  "METHOD",
  "TEMPORAL_LENGTHS",
  "Branch",
  "EvanetMethod",
  "EvanetSearchSpace",
  "Genome",
  "InceptionGenome",
  "InceptionSearchSpace",
  "Module",
  "Stage",
  "build_inception_model",
  "build_model",
  "ensemble",
  "genome_distance",
  "inception",
  "inception_distance",
  "mutation_schedule",
  "zoo",
]
