"""The record store: atomic writes, never overwritten, unreadable records skipped."""

import dataclasses
import json
import os

import pytest

from vsearch.errors import UserError
from vsearch.record import RECORD_FORMAT, Record, format_id
from vsearch.search.store import RecordStore


def _record(index, fitness=0.5, status="ok"):
  return Record(
    id=format_id(index),
    method="tvn",
    genome={"x": index},
    status=status,
    fitness=fitness if status == "ok" else None,
    metrics={"accuracy": fitness},
  )


def test_write_then_read_round_trips(tmp_path):
  store = RecordStore(str(tmp_path))
  path = store.write(_record(3, fitness=0.75))
  assert path == os.path.join(tmp_path, "candidates", "000003.json")
  [record] = store.read_all()
  assert record == _record(3, fitness=0.75)
  assert json.load(open(path))["format"] == RECORD_FORMAT


def test_records_are_never_overwritten(tmp_path):
  store = RecordStore(str(tmp_path))
  store.write(_record(0, fitness=0.1))
  with pytest.raises(FileExistsError):
    store.write(_record(0, fitness=0.9))
  assert store.read_all()[0].fitness == 0.1
  assert os.listdir(store.directory) == ["000000.json"]  # no temporary left


def test_unreadable_records_are_skipped_with_a_warning_and_kept(tmp_path, caplog):
  store = RecordStore(str(tmp_path))
  store.write(_record(0))
  store.write(_record(2))
  truncated = store.path("000001")
  with open(truncated, "w") as f:
    f.write('{"id": "000001", "meth')
  with open(store.path("000003"), "w") as f:
    json.dump({"id": "000004", "method": "tvn", "genome": {}, "status": "ok"}, f)
  records = store.read_all()
  assert [r.id for r in records] == ["000000", "000002"]
  assert "000001.json" in caplog.text and "000003.json" in caplog.text
  # The broken files still hold their ids: a search never reuses them.
  assert store.ids() == {"000000", "000001", "000002", "000003"}
  assert open(truncated).read() == '{"id": "000001", "meth'


def test_temporary_files_are_not_records(tmp_path):
  store = RecordStore(str(tmp_path))
  with open(os.path.join(store.directory, "000005.json.tmp-abc"), "w") as f:
    f.write("{")
  assert store.ids() == set() and store.read_all() == []


def test_newer_fields_are_ignored_and_missing_fields_rejected(tmp_path):
  data = _record(1).to_dict() | {"from_the_future": 1}
  assert Record.from_dict(data) == _record(1)
  with pytest.raises(ValueError, match="genome"):
    Record.from_dict({"id": "000001", "method": "tvn", "status": "ok"})


def test_unwritable_workdir_is_a_user_error(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a folder")
  with pytest.raises(UserError, match="--workdir"):
    RecordStore(str(blocker / "workdir"))


@pytest.mark.parametrize(
  "change",
  [
    {"fitness": "0.9"},
    {"fitness": True},
    {"genome": [1, 2]},
    {"metrics": "accuracy=0.9"},
    {"parent": 3},
    {"seed": 1.5},
    {"timings": {"total_s": "long"}},
    {"id": "../000001"},
  ],
)
def test_fields_of_the_wrong_type_make_a_record_unreadable(change):
  data = _record(1).to_dict() | change
  with pytest.raises(ValueError):
    Record.from_dict(data)


def test_the_search_sets_unreadable_records_aside_so_their_candidates_run_again(tmp_path, caplog):
  store = RecordStore(str(tmp_path))
  store.write(_record(0))
  with open(store.path("000001"), "w") as f:
    f.write('{"id": "000001", "meth')
  with open(store.path("000002"), "w") as f:
    json.dump(_record(2).to_dict() | {"fitness": "high"}, f)
  with open(store.path("000003"), "w") as f:
    json.dump(_record(3).to_dict() | {"format": RECORD_FORMAT + 1, "fitness": "new"}, f)
  records = store.read_all(set_aside_unreadable=True)
  assert [r.id for r in records] == ["000000"]
  # Moved, not deleted, and named in a warning; a newer vsearch's record is kept.
  aside = sorted(os.listdir(os.path.join(store.directory, "unreadable")))
  assert [name[:6] for name in aside] == ["000001", "000002"]
  assert open(os.path.join(store.directory, "unreadable", aside[0])).read() == (
    '{"id": "000001", "meth'
  )
  assert store.ids() == {"000000", "000003"}
  assert "000001.json" in caplog.text and "unreadable/000001." in caplog.text
  assert "newer vsearch" in caplog.text
  store.write(_record(1))  # its id is free again
  assert [r.id for r in store.read_all(set_aside_unreadable=True)] == ["000000", "000001"]


def test_a_record_that_would_not_read_back_is_never_written(tmp_path):
  store = RecordStore(str(tmp_path))
  with pytest.raises(ValueError, match="fitness"):
    store.write(dataclasses.replace(_record(0), fitness="0.5"))
  assert store.ids() == set()
