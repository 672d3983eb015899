"""The record store: one JSON file per finished candidate.

The store is the single source of truth of a search. The population, the
best candidate and the place to resume from are all derived from the records,
so a search that is killed at any moment resumes from what the store says.

Crash safety comes from how a record is written: to a temporary name in the
same folder, then renamed to ``<workdir>/candidates/<id>.json``. A reader
never sees half a record, and a record, once written, is never rewritten.
A record that cannot be read is moved aside by the search (never deleted),
so its candidate runs again instead of holding its id forever.
Everything goes through ``tf.io.gfile``, so the workdir may be on ``gs://``.
"""

import json
import logging
import os
import re
import time
import uuid

import tensorflow as tf

from vsearch import files
from vsearch.errors import UserError
from vsearch.record import RECORD_FORMAT, Record

_RECORD_NAME = re.compile(r"^(\d{6,})\.json$")
# The folder under candidates/ that unreadable records are moved to.
UNREADABLE = "unreadable"


def _newer(record_format) -> bool:
  return isinstance(record_format, int) and record_format > RECORD_FORMAT


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

  def read_all(self, set_aside_unreadable: bool = False) -> list[Record]:
    """All readable records, sorted by id.

    A record that cannot be read (truncated, not JSON, not a record, a field
    of the wrong type) is skipped with a warning naming the file. With
    ``set_aside_unreadable`` (the search's own reads) it is also moved to
    ``candidates/unreadable/``, so its id is free and its candidate runs
    again; otherwise (the report, launchers) it is left where it is. A
    record that could not be read for a passing reason (a network error on
    ``gs://``) or that a newer vsearch wrote is never moved.
    """
    records = []
    for record_id in sorted(self.ids()):
      path = self.path(record_id)
      try:
        with tf.io.gfile.GFile(path, "r") as f:
          data = json.load(f)
        if isinstance(data, dict) and _newer(data.get("format")):
          logging.warning(
            "Skipping record %s: a newer vsearch wrote it (format %s).", path, data["format"]
          )
          continue
        record = Record.from_dict(data)
        if record.id != record_id:
          raise ValueError(f"its id {record.id!r} does not match the file name")
      except tf.errors.NotFoundError:
        continue  # another worker set it aside since the listing
      except (ValueError, TypeError) as e:
        if set_aside_unreadable:
          self._set_aside(path, e)
        else:
          logging.warning("Skipping unreadable record %s: %s", path, e)
        continue
      except (tf.errors.OpError, OSError) as e:
        logging.warning("Skipping record %s, which could not be read now: %s", path, e)
        continue
      records.append(record)
    return records

  def _set_aside(self, path: str, why: Exception) -> None:
    """Moves an unreadable record into ``unreadable/``; its candidate runs again."""
    folder = os.path.join(self.directory, UNREADABLE)
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    aside = os.path.join(folder, f"{os.path.basename(path)[: -len('.json')]}.{stamp}.json")
    try:
      tf.io.gfile.makedirs(folder)
      tf.io.gfile.rename(path, aside)
    except tf.errors.NotFoundError:
      return  # another worker moved it first
    logging.warning(
      "Record %s is unreadable (%s); moved it to %s, and its candidate will run again.",
      path,
      why,
      aside,
    )

  def write(self, record: Record) -> str:
    """Writes a new record atomically and returns its path.

    Raises:
      FileExistsError: a record with this id exists; it is never overwritten.
      ValueError: the record would not read back (a field of the wrong type).
    """
    path = self.path(record.id)
    if tf.io.gfile.exists(path):
      raise FileExistsError(f"record {path} exists and is never overwritten")
    text = json.dumps(record.to_dict(), indent=2, sort_keys=True) + "\n"
    # A record the store could not read back would be set aside and its
    # candidate rerun forever: refuse to write one.
    Record.from_dict(json.loads(text))
    try:
      files.write_atomically(path, text, overwrite=False)
    except FileExistsError as e:
      raise FileExistsError(f"record {path} exists and is never overwritten") from e
    return path
