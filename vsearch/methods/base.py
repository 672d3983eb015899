"""What every search method is to the rest of vsearch: the ``Method`` protocol.

The search loop only talks to a method through ``Method``: it never looks
inside a genome, and a method's search space never trains or records anything
(the split Keras Tuner makes between its Oracle and its Tuner).
"""

import dataclasses
from collections.abc import Sequence
from typing import Any, Optional, Protocol, TypeVar

import numpy as np

from vsearch.data.clips import ClipSpec
from vsearch.record import Record

_T = TypeVar("_T")


class Genome(Protocol):
  """A candidate architecture: immutable, validated, JSON-serialisable."""

  def to_dict(self) -> dict[str, Any]:
    """A JSON-compatible dict that ``Method.genome_from_dict`` reads back."""


class Method(Protocol):
  """What the search loop needs from a search method."""

  name: str

  def sample(self, rng: np.random.Generator) -> Genome:
    """Draws a random genome from the search space."""

  def mutate(self, genome: Genome, rng: np.random.Generator, progress: float) -> tuple[Genome, str]:
    """Returns a valid child that differs from ``genome`` and what changed.

    Args:
      genome: the parent.
      rng: the only source of randomness.
      progress: fraction of the search done, in [0, 1]; methods that mutate
        more early than late (EvaNet) read it.
    """

  def genome_from_dict(self, data: dict[str, Any]) -> Genome:
    """Reads a genome written by ``Genome.to_dict``; raises InvalidGenomeError."""

  def clip_spec(self, genome: Genome) -> ClipSpec:
    """The clips the genome's model reads."""

  def build(self, genome: Genome, num_classes: int):
    """The Keras model: clips (B, T, H, W, 3) float32 -> logits (B, classes)."""


class LearningGuidedMethod(Method, Protocol):
  """A method whose mutations read what the parent's training learned.

  AssembleNet mutates a child from its parent's learned connection weights.
  The search stores ``learned_state`` in each record's ``learned`` field and
  passes the parent's to ``mutate``.
  """

  def learned_state(self, genome: Genome, model) -> dict[str, Any]:
    """JSON-compatible facts about the trained ``model`` of ``genome``."""

  def mutate(
    self,
    genome: Genome,
    rng: np.random.Generator,
    progress: float,
    learned: dict[str, Any] | None = None,
  ) -> tuple[Genome, str]:
    """As ``Method.mutate``, given the parent's ``learned_state`` (None if unknown)."""


@dataclasses.dataclass(frozen=True)
class Source:
  """A genome with the method that builds it, and where it came from.

  Attributes:
    method: the search method (builds the genome).
    genome: the architecture.
    description: e.g. ``zoo tvn1`` or ``candidate runs/x/candidates/000015.json``.
    record: the search record, when the genome came from one.
  """

  method: Method
  genome: Genome
  description: str
  record: Optional[Record] = None


def choice(rng: np.random.Generator, options: Sequence[_T]) -> _T:
  """One of ``options``, drawn from ``rng``, of its own Python type.

  Indexing keeps Python types (``rng.choice`` would return numpy scalars,
  which JSON cannot write).
  """
  return options[int(rng.integers(len(options)))]


def expect_genome(genome: Any, genome_type: type, method: str) -> None:
  """Raises TypeError unless ``genome`` is a ``genome_type``: a method reads only its own."""
  if not isinstance(genome, genome_type):
    raise TypeError(
      f"{method} takes {genome_type.__module__}.{genome_type.__name__}, got {type(genome)}"
    )
