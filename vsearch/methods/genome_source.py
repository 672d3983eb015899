"""Where a launcher's genome comes from: a JSON file, a search's record, or the zoo.

``launch.train`` and ``launch.export`` take exactly one of ``--genome=FILE``,
``--candidate=WORKDIR/ID`` and ``--zoo=NAME``; this module turns that choice
into a method and a genome, or one clear ``UserError``.
"""

import json
import os
from typing import Any, Optional

import tensorflow as tf

from vsearch.errors import UserError
from vsearch.methods import registry, zoo
from vsearch.methods.base import Method, Source
from vsearch.record import Record


def resolve(
  genome_file: Optional[str] = None,
  candidate: Optional[str] = None,
  zoo_name: Optional[str] = None,
  method: Optional[str] = None,
) -> Source:
  """Reads the one genome a launcher was given.

  Args:
    genome_file: a JSON genome as ``Genome.to_dict`` writes it, or
      ``{"method": NAME, "genome": {...}}`` as ``launch.train`` writes it.
    candidate: ``WORKDIR/ID`` (``runs/x/000015``) or a record's path.
    zoo_name: a name from ``vsearch.methods.zoo.names()``.
    method: the method of ``genome_file``; None reads it from the file, or
      takes the one method whose genome the file is (a file no method reads
      gets the TVN reading's error).

  Raises:
    UserError: none or several sources given, or the source cannot be read.
  """
  given = [x for x in (genome_file, candidate, zoo_name) if x]
  if len(given) != 1:
    raise UserError("Give exactly one of --genome=FILE, --candidate=WORKDIR/ID and --zoo=NAME.")
  if zoo_name:
    found = zoo.entry(zoo_name)
    return Source(found.make_method(), found.genome, f"zoo {zoo_name}")
  if genome_file:
    data = _read_json(genome_file, "genome")
    if isinstance(data, dict) and set(data) == {"method", "genome"}:
      method, data = method or data["method"], data["genome"]
    chosen = registry.method(method) if method else _method_reading(data)
    return Source(chosen, chosen.genome_from_dict(data), f"genome {genome_file}")
  path = _record_path(candidate)
  try:
    record = Record.from_dict(_read_json(path, "record"))
  except ValueError as e:
    raise UserError(f"{path} is not a candidate record: {e}.") from e
  chosen = registry.method(record.method)
  return Source(chosen, chosen.genome_from_dict(record.genome), f"candidate {path}", record)


def _method_reading(data: Any) -> Method:
  """The method whose genome ``data`` is; TVN's error when none reads it."""
  errors = {}
  for name in registry.names():
    candidate = registry.method(name)
    try:
      candidate.genome_from_dict(data)
      return candidate
    except UserError as e:
      errors[name] = e
  raise errors["tvn"]


def candidate_workdir(candidate: str) -> str:
  """The search workdir of ``--candidate`` (``WORKDIR/ID`` or a record's path).

  Raises:
    UserError: ``candidate`` is neither.
  """
  folder = os.path.dirname(_record_path(candidate))
  return os.path.dirname(folder) if os.path.basename(folder) == "candidates" else folder


def _record_path(candidate: str) -> str:
  if candidate.endswith(".json"):
    return candidate
  workdir, record_id = os.path.split(candidate.rstrip("/"))
  if not record_id.isdigit():
    raise UserError(
      f"--candidate={candidate} must be WORKDIR/ID (e.g. runs/tvn/000015) or the path of a record."
    )
  return os.path.join(workdir, "candidates", f"{int(record_id):06d}.json")


def _read_json(path: str, what: str) -> Any:
  try:
    with tf.io.gfile.GFile(path, "r") as f:
      return json.load(f)
  except (tf.errors.NotFoundError, FileNotFoundError) as e:
    raise UserError(f"No {what} file at {path}.") from e
  except json.JSONDecodeError as e:
    raise UserError(f"The {what} file {path} is not valid JSON: {e}.") from e
