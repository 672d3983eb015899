"""Early stopping: a child clearly below the population stops part-way, is recorded, never a parent."""

import os

import gin
import numpy as np
import pytest

from vsearch import configurables  # noqa: F401  (registers every gin configurable)
from vsearch.errors import StoppedEarlyError, UserError
from vsearch.methods import tvn
from vsearch.record import Record, format_id
from vsearch.search.early_stopping import EarlyStopping
from vsearch.search.evolution import Evolution
from vsearch.search.runner import Search
from vsearch.search.store import RecordStore

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _record(index, fitness, status="ok"):
  return Record(
    id=format_id(index),
    method="tvn",
    genome={},
    status=status,
    fitness=fitness if status == "ok" else None,
    metrics={"accuracy": fitness, "num_eval_clips": 100},
  )


def test_bar_waits_for_a_population_and_is_its_worst_fitness():
  stopping = EarlyStopping(min_population=3)
  assert stopping.bar([_record(0, 0.9), _record(1, 0.5)]) is None
  assert stopping.bar([_record(0, 0.9), _record(1, 0.5), _record(2, 0.7)]) == 0.5


def test_only_a_child_clearly_below_the_bar_stops():
  stopping = EarlyStopping(margin=2.0)
  # 400 clips: the standard error at 0.5 is 0.025, so 2 of them are 0.05.
  stopping.check(10, 20, {"accuracy": 0.46, "num_eval_clips": 400}, bar=0.5)
  stopping.check(10, 20, {"accuracy": 0.1, "num_eval_clips": 400}, bar=None)
  with pytest.raises(StoppedEarlyError, match="step 10 of 20") as stopped:
    stopping.check(10, 20, {"accuracy": 0.4, "num_eval_clips": 400}, bar=0.5)
  assert stopped.value.metrics["stopped_at_step"] == 10
  assert stopped.value.metrics["accuracy"] == 0.4


def test_settings_out_of_range_are_one_clear_error():
  with pytest.raises(UserError, match="at_fraction"):
    EarlyStopping(at_fraction=1.0)
  with pytest.raises(UserError, match="min_population"):
    EarlyStopping(min_population=0)


def test_a_stopped_child_is_never_in_the_population_nor_a_parent():
  records = [_record(0, 0.6), _record(1, 0.9, status="stopped"), _record(2, 0.7)]
  evolution = Evolution(population_size=2, tournament_size=2)
  assert [r.id for r in evolution.population(records)] == ["000000", "000002"]
  parents = {evolution.select_parent(records, np.random.default_rng(s)).id for s in range(20)}
  assert parents == {"000002"}


def test_a_search_stops_a_child_below_the_population_and_records_it(tmp_path):
  """Three hand-made members at fitness 1.0 make any partly trained child hopeless."""
  gin.add_config_file_search_path(REPO)
  gin.parse_config_files_and_bindings(
    [os.path.join(REPO, "tests", "data", "tiny_search.gin")],
    [
      f"load_dataset.data_dir = '{tmp_path / 'data'}'",
      "Search.num_candidates = 4",
      "Search.early_stopping = @EarlyStopping()",
      "EarlyStopping.min_population = 3",
      "EarlyStopping.margin = 0.0",
    ],
  )
  workdir = str(tmp_path / "work")
  store = RecordStore(workdir)
  genome = tvn.TvnMethod().sample(np.random.default_rng(0)).to_dict()
  for index in range(3):
    store.write(
      Record(
        id=format_id(index),
        method="tvn",
        genome=genome,
        status="ok",
        fitness=1.0,
        metrics={"accuracy": 1.0, "num_eval_clips": 16},
      )
    )
  Search(workdir=workdir).run()
  child = {r.id: r for r in store.read_all()}["000003"]
  assert child.status == "stopped" and child.fitness is None
  assert child.metrics["stopped_at_step"] == 3  # half of TrainConfig.steps = 6
  assert child.metrics["accuracy"] < 1.0 and child.metrics["num_eval_clips"] == 16
  assert "below the population's worst fitness 1.000" in child.reason
  assert child.parent in {"000000", "000001", "000002"}
