"""Parent selection: regularized (aging) evolution and plain tournament.

Selection only reads records: it never builds or trains a model. The
population is derived from the records each time, which is what lets a
restarted search, or many workers sharing one store, agree on it.

* Regularized evolution (Real et al., 2019): the population is the
  ``population_size`` most recent successful candidates, so every model ages
  out however good it was; this keeps the search from over-exploiting a
  lucky early model whose accuracy was noise.
* Plain tournament: the population is the ``population_size`` best
  candidates (adding a child and removing the worst, repeated).

In both, the parent is the fittest of ``tournament_size`` members drawn
without replacement. The first ``population_size`` candidates are sampled at
random. ``RandomSearch`` is the baseline: every candidate is sampled at random.
"""

from collections.abc import Sequence
from typing import Optional

import gin
import numpy as np

from vsearch.errors import UserError
from vsearch.record import Record


@gin.configurable
class Evolution:
  """Tournament selection over a population derived from the records.

  Args:
    population_size: how many candidates form the population.
    tournament_size: how many population members compete to be a parent.
    aging: True for regularized evolution (the oldest member leaves), False
      for plain tournament (the worst member leaves).
  """

  def __init__(self, population_size: int = 16, tournament_size: int = 4, aging: bool = True):
    if population_size < 1:
      raise UserError(f"Evolution.population_size must be >= 1, got {population_size}")
    if not 1 <= tournament_size <= population_size:
      raise UserError(
        f"Evolution.tournament_size must be in [1, population_size={population_size}], got {tournament_size}"
      )
    self.population_size = population_size
    self.tournament_size = tournament_size
    self.aging = aging

  def population(self, records: Sequence[Record]) -> list[Record]:
    """The current population, given all records so far in id order."""
    alive = [r for r in records if r.ok]
    if self.aging:
      return alive[-self.population_size :]
    return sorted(alive, key=lambda r: (r.fitness, -r.index))[-self.population_size :]

  def select_parent(self, records: Sequence[Record], rng: np.random.Generator) -> Optional[Record]:
    """The parent of the next child, or None when it should be random.

    Args:
      records: every record written before the child, in id order.
      rng: the child's random generator.
    """
    if len(records) < self.population_size:
      return None
    population = self.population(records)
    if not population:
      return None
    size = min(self.tournament_size, len(population))
    contestants = rng.choice(len(population), size=size, replace=False)
    # Ties go to the younger candidate, which has seen the data most recently.
    return max((population[i] for i in contestants), key=lambda r: (r.fitness, r.index))


@gin.configurable
class RandomSearch:
  """Random search: every candidate is sampled afresh, none is a child.

  The baseline the evolutionary methods claim to beat. It plugs into
  ``Search.evolution`` (``Search.evolution = @RandomSearch()``): the search
  samples a random genome whenever ``select_parent`` returns None, so with
  the same search seed candidate ``i`` of a random search is the same genome
  as candidate ``i`` of the initial population of an evolutionary one.
  """

  def population(self, records: Sequence[Record]) -> list[Record]:
    """Every successful candidate: random search keeps no population."""
    return [r for r in records if r.ok]

  def select_parent(self, records: Sequence[Record], rng: np.random.Generator) -> Optional[Record]:
    """Always None: the next candidate is sampled at random."""
    del records, rng  # Random search ignores what came before.
    return None
