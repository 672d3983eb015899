"""Parent selection: random start, aging vs plain tournament, determinism."""

import numpy as np
import pytest

from vsearch.errors import UserError
from vsearch.record import Record, format_id
from vsearch.search.evolution import Evolution


def _records(fitnesses):
  return [
    Record(
      id=format_id(i),
      method="tvn",
      genome={},
      status="ok" if f is not None else "failed",
      fitness=f,
    )
    for i, f in enumerate(fitnesses)
  ]


def test_initial_population_is_random():
  evolution = Evolution(population_size=4, tournament_size=2)
  assert evolution.select_parent(_records([0.9, 0.8, 0.7]), np.random.default_rng(0)) is None


def test_aging_keeps_the_most_recent_and_tournament_the_best():
  records = _records([0.9, 0.1, 0.2, None, 0.3, 0.4])
  aging = Evolution(population_size=3, tournament_size=3, aging=True)
  assert [r.id for r in aging.population(records)] == ["000002", "000004", "000005"]
  best = Evolution(population_size=3, tournament_size=3, aging=False)
  assert [r.id for r in best.population(records)] == ["000004", "000005", "000000"]


def test_full_tournament_picks_the_fittest_member():
  records = _records([0.1, 0.5, 0.3, 0.2])
  evolution = Evolution(population_size=4, tournament_size=4)
  assert evolution.select_parent(records, np.random.default_rng(1)).id == "000001"


def test_old_champion_ages_out():
  records = _records([0.99] + [0.1] * 8)
  evolution = Evolution(population_size=4, tournament_size=4, aging=True)
  assert evolution.select_parent(records, np.random.default_rng(0)).fitness == 0.1


def test_selection_is_deterministic_given_the_generator():
  records = _records(list(np.linspace(0, 1, 20)))
  evolution = Evolution(population_size=10, tournament_size=3)
  picks = [evolution.select_parent(records, np.random.default_rng([7, i])).id for i in range(10)]
  again = [evolution.select_parent(records, np.random.default_rng([7, i])).id for i in range(10)]
  assert picks == again
  assert len(set(picks)) > 1


def test_only_failures_means_random():
  evolution = Evolution(population_size=2, tournament_size=1)
  assert evolution.select_parent(_records([None, None, None]), np.random.default_rng(0)) is None


@pytest.mark.parametrize("population_size,tournament_size", [(0, 1), (4, 0), (4, 5)])
def test_bad_sizes_are_rejected(population_size, tournament_size):
  with pytest.raises(UserError, match="Evolution"):
    Evolution(population_size=population_size, tournament_size=tournament_size)


def test_random_search_never_picks_a_parent():
  from vsearch.search.evolution import RandomSearch

  records = _records([0.9, 0.1, None, 0.5] * 5)
  random_search = RandomSearch()
  assert all(
    random_search.select_parent(records[:n], np.random.default_rng(n)) is None
    for n in range(len(records) + 1)
  )
  assert len(random_search.population(records)) == 15
