"""The record store: one JSON file per finished candidate.

The store is the single source of truth of a search. The population, the
best candidate and the place to resume from are all derived from the records,
so a search that is killed at any moment resumes from what the store says.

Crash safety comes from how a record is written: to a temporary name in the
same folder, then renamed to ``<workdir>/candidates/<id>.json``. A reader
never sees half a record, and a record, once written, is never rewritten.
Everything goes through ``tf.io.gfile``, so the workdir may be on ``gs://``.
"""

import dataclasses
import json
import logging
import os
import re
import uuid
from typing import Any, Optional

import tensorflow as tf

from vsearch.errors import UserError

RECORD_FORMAT = 1
_RECORD_NAME = re.compile(r"^(\d{6,})\.json$")

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_OVER_LIMIT = "over_limit"  # measured, broke a limit, never trained


def format_id(index: int) -> str:
  """The id of the candidate with this index: zero-padded, so ids sort."""
  return f"{index:06d}"


@dataclasses.dataclass(frozen=True)
class Record:
  """What is known about one finished candidate.

  Attributes:
    id: the candidate's id (``format_id`` of its index in the search).
    method: the search method's name, e.g. ``"tvn"``.
    genome: the genome as written by ``Genome.to_dict``.
    status: ``"ok"``; ``"failed"`` with ``reason`` set; or ``"over_limit"``
      (measured untrained, broke a runtime or parameter limit, not trained).
    parent: the parent's id; None for randomly sampled candidates.
    mutation: what changed from the parent (``"random"`` when sampled).
    metrics: what evaluation measured (accuracy, loss, parameters, ...).
    fitness: the number selection compares; None when the candidate failed.
    reason: why the candidate failed; None when it did not.
    seed: the seed of the candidate's randomness (sampling and training).
    timings: wall-clock seconds by phase (build, train, evaluate, total).
    worker: which process wrote the record.
    finished_at: when the record was written (ISO 8601, UTC).
    learned: what the method read from the trained model for later
      mutations (AssembleNet's learned connection weights); empty otherwise.
  """

  id: str
  method: str
  genome: dict[str, Any]
  status: str
  parent: Optional[str] = None
  mutation: str = "random"
  metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
  fitness: Optional[float] = None
  reason: Optional[str] = None
  seed: int = 0
  timings: dict[str, float] = dataclasses.field(default_factory=dict)
  worker: str = ""
  finished_at: str = ""
  learned: dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def index(self) -> int:
    return int(self.id)

  @property
  def ok(self) -> bool:
    return self.status == STATUS_OK and self.fitness is not None

  def to_dict(self) -> dict[str, Any]:
    return {"format": RECORD_FORMAT, **dataclasses.asdict(self)}

  @classmethod
  def from_dict(cls, data: dict[str, Any]) -> "Record":
    """Reads a record; raises ValueError when it is not one."""
    if not isinstance(data, dict):
      raise ValueError("a record must be a JSON object")
    names = {f.name for f in dataclasses.fields(cls)}
    missing = {"id", "method", "genome", "status"} - data.keys()
    if missing:
      raise ValueError(f"missing fields {sorted(missing)}")
    # Unknown keys come from newer formats: keep reading what is understood.
    return cls(**{k: v for k, v in data.items() if k in names})


class RecordStore:
  """Reads and writes the records of one search in ``<workdir>/candidates``."""

  def __init__(self, workdir: str):
    self.directory = os.path.join(workdir, "candidates")
    try:
      tf.io.gfile.makedirs(self.directory)
    except (tf.errors.OpError, OSError) as e:
      raise UserError(
          f"Cannot create the record folder {self.directory}: {e}. Choose a "
          "--workdir you can write to.") from e

  def path(self, record_id: str) -> str:
    return os.path.join(self.directory, f"{record_id}.json")

  def ids(self) -> set[str]:
    """Ids that have a record file, readable or not: none may be reused."""
    return {m.group(1) for name in tf.io.gfile.listdir(self.directory)
            if (m := _RECORD_NAME.match(name))}

  def read_all(self) -> list[Record]:
    """All readable records, sorted by id.

    A record that cannot be read (truncated, not JSON, not a record) is
    skipped with a warning naming the file; it is left as it is.
    """
    records = []
    for record_id in sorted(self.ids()):
      path = self.path(record_id)
      try:
        with tf.io.gfile.GFile(path, "r") as f:
          record = Record.from_dict(json.load(f))
        if record.id != record_id:
          raise ValueError(f"its id {record.id!r} does not match the file name")
      except (ValueError, TypeError, tf.errors.OpError, OSError) as e:
        logging.warning("Skipping unreadable record %s: %s", path, e)
        continue
      records.append(record)
    return records

  def write(self, record: Record) -> str:
    """Writes a new record atomically and returns its path.

    Raises:
      FileExistsError: a record with this id exists; it is never overwritten.
    """
    path = self.path(record.id)
    if tf.io.gfile.exists(path):
      raise FileExistsError(f"record {path} exists and is never overwritten")
    temporary = f"{path}.tmp-{uuid.uuid4().hex}"
    with tf.io.gfile.GFile(temporary, "w") as f:
      json.dump(record.to_dict(), f, indent=2, sort_keys=True)
      f.write("\n")
    try:
      tf.io.gfile.rename(temporary, path, overwrite=False)
    except tf.errors.AlreadyExistsError as e:
      tf.io.gfile.remove(temporary)
      raise FileExistsError(
          f"record {path} exists and is never overwritten") from e
    return path
