"""The record store: one JSON file per finished candidate.

The store is the single source of truth of a search. The population, the
best candidate and the place to resume from are all derived from the records,
so a search that is killed at any moment resumes from what the store says.

Crash safety comes from how a record is written: to a temporary name in the
same folder, then renamed to ``<workdir>/candidates/<id>.json``. A reader
never sees half a record, and a record, once written, is never rewritten.
Everything goes through ``tf.io.gfile``, so the workdir may be on ``gs://``.
"""

import json
import logging
import os
import re

import tensorflow as tf

from vsearch import files
from vsearch.errors import UserError
from vsearch.record import Record

_RECORD_NAME = re.compile(r"^(\d{6,})\.json$")


class RecordStore:
  """Reads and writes the records of one search in ``<workdir>/candidates``."""

  def __init__(self, workdir: str):
    self.directory = os.path.join(workdir, "candidates")
    try:
      tf.io.gfile.makedirs(self.directory)
    except (tf.errors.OpError, OSError) as e:
      raise UserError(
        f"Cannot create the record folder {self.directory}: {e}. Choose a "
        "--workdir you can write to."
      ) from e

  def path(self, record_id: str) -> str:
    return os.path.join(self.directory, f"{record_id}.json")

  def ids(self) -> set[str]:
    """Ids that have a record file, readable or not: none may be reused."""
    return {
      m.group(1) for name in tf.io.gfile.listdir(self.directory) if (m := _RECORD_NAME.match(name))
    }

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
    text = json.dumps(record.to_dict(), indent=2, sort_keys=True) + "\n"
    try:
      files.write_atomically(path, text, overwrite=False)
    except FileExistsError as e:
      raise FileExistsError(f"record {path} exists and is never overwritten") from e
    return path
