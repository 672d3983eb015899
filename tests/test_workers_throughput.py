"""benchmarks/workers_throughput.py: which cores each run's workers get."""

import importlib.util
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _benchmark():
  path = os.path.join(REPO, "benchmarks", "workers_throughput.py")
  spec = importlib.util.spec_from_file_location("workers_throughput", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_pinned_compares_one_worker_on_one_core_with_one_worker_per_core():
  assert _benchmark().plan([0, 1, 2, 3], 2, pinned=True) == [
    ("one", ["0"]),
    ("many", ["0", "1"]),
  ]


def test_shared_gives_one_worker_all_cores_and_each_of_many_its_share():
  assert _benchmark().plan([0, 1, 2, 3], 2, pinned=False) == [
    ("one", ["0,1,2,3"]),
    ("many", ["0,2", "1,3"]),
  ]


def test_more_workers_than_cores_is_refused():
  with pytest.raises(SystemExit, match="3 workers need 3 cores"):
    _benchmark().plan([0, 1], 3, pinned=True)
