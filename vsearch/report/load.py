"""Reading a search workdir for the report: its records, config and zoo latencies."""

import dataclasses
import json
import os
import re
from typing import Any, Optional

import tensorflow as tf

from vsearch.errors import UserError
from vsearch.record import RECORD_FORMAT, Record
from vsearch.search.store import UNREADABLE, RecordStore

# The file in a workdir that places published models on the latency plot: the
# JSON that ``benchmarks/latency.py --json`` writes, or a list of
# {"name", "latency_ms", "accuracy" (optional)}.
ZOO_LATENCY_FILE = "zoo_latency.json"


@dataclasses.dataclass
class SearchData:
  """What the report knows about one workdir.

  Attributes:
    workdir: the search's workdir.
    records: the readable records, in id order.
    skipped: (file, why) for every record file that could not be read.
    config: the text of ``config.gin``; empty when there is none.
    zoo: published models measured for the latency plot (name, latency_ms,
      and accuracy when it was measured).
    set_aside: files of unreadable records the search moved to
      ``candidates/unreadable/`` (their candidates ran again).
  """

  workdir: str
  records: list[Record]
  skipped: list[tuple[str, str]]
  config: str = ""
  zoo: list[dict[str, Any]] = dataclasses.field(default_factory=list)
  set_aside: list[str] = dataclasses.field(default_factory=list)

  @property
  def ok(self) -> list[Record]:
    return [r for r in self.records if r.ok]

  def by_id(self) -> dict[str, Record]:
    return {r.id: r for r in self.records}


def number(value: Any) -> Optional[float]:
  """``value`` as a float, or None when it is missing or not a number."""
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    return None
  return float(value)


def load_search(workdir: str, zoo_latency: Optional[str] = None) -> SearchData:
  """Reads every record of ``workdir``, skipping (and listing) unreadable ones.

  Args:
    workdir: a search workdir (local or ``gs://``).
    zoo_latency: a zoo latency JSON file; None reads ``<workdir>/zoo_latency.json``
      when it exists.

  Raises:
    UserError: the workdir does not exist or holds no ``candidates`` folder.
  """
  if not tf.io.gfile.isdir(workdir):
    raise UserError(f"No such workdir: {workdir}. Pass the --workdir a search was started with.")
  if not tf.io.gfile.isdir(os.path.join(workdir, "candidates")):
    raise UserError(
      f"{workdir} has no candidates/ folder, so it is not a search "
      "workdir (or its search has not started yet)."
    )
  store = RecordStore(workdir)
  records, skipped = [], []
  for record_id in sorted(store.ids()):
    path = store.path(record_id)
    try:
      with tf.io.gfile.GFile(path, "r") as f:
        data = json.load(f)
      if isinstance(data, dict) and data.get("format", RECORD_FORMAT) > RECORD_FORMAT:
        raise ValueError(
          f"record format {data['format']} is newer than this vsearch reads ({RECORD_FORMAT})"
        )
      record = Record.from_dict(data)
      if record.id != record_id:
        raise ValueError(f"its id {record.id!r} does not match the file name")
      if not isinstance(record.genome, dict):
        raise ValueError("its genome is not a JSON object")
    except (ValueError, TypeError, tf.errors.OpError, OSError) as e:
      skipped.append((path, str(e) or type(e).__name__))
      continue
    records.append(record)
  config = _read_text(os.path.join(workdir, "config.gin"))
  zoo_path = zoo_latency or os.path.join(workdir, ZOO_LATENCY_FILE)
  zoo = (
    read_zoo_latency(zoo_path, _latency_format(config))
    if (zoo_latency or tf.io.gfile.exists(zoo_path))
    else []
  )
  aside = os.path.join(store.directory, UNREADABLE)
  set_aside = (
    [os.path.join(aside, name) for name in sorted(tf.io.gfile.listdir(aside))]
    if tf.io.gfile.isdir(aside)
    else []
  )
  return SearchData(
    workdir=workdir,
    records=records,
    skipped=skipped,
    config=config,
    zoo=zoo,
    set_aside=set_aside,
  )


def read_zoo_latency(path: str, column: str = "int8_1t") -> list[dict[str, Any]]:
  """Published models' latencies from ``path``.

  Reads the rows ``benchmarks/latency.py --json`` writes (``name`` and, per
  format and thread count, ``<format>_<threads>t.median_ms``) or plain rows
  with ``name``, ``latency_ms`` and optionally ``accuracy``.

  Args:
    path: the JSON file.
    column: which measurement of a benchmark row to read, e.g. ``int8_1t``.

  Raises:
    UserError: the file is missing or not a list of rows.
  """
  text = _read_text(path)
  if not text:
    raise UserError(f"Cannot read the zoo latency file {path}: missing or empty.")
  try:
    rows = json.loads(text)
    if not isinstance(rows, list):
      raise ValueError("not a list")
    zoo = []
    for row in rows:
      latency = row.get("latency_ms")
      if latency is None and isinstance(row.get(column), dict):
        latency = row[column].get("median_ms")
      if latency is None:
        continue
      zoo.append(
        {
          "name": str(row["name"]),
          "latency_ms": float(latency),
          "accuracy": number(row.get("accuracy")),
        }
      )
  except (ValueError, KeyError, TypeError, AttributeError) as e:
    raise UserError(
      f"The zoo latency file {path} is not a list of rows with name "
      f"and latency ({e}); write it with benchmarks/latency.py --json."
    ) from e
  return zoo


def _read_text(path: str) -> str:
  try:
    with tf.io.gfile.GFile(path, "r") as f:
      return f.read()
  except (tf.errors.OpError, OSError):
    return ""


def _config_value(config: str, name: str) -> Optional[str]:
  """The value bound to ``name`` in a gin config text, or None."""
  match = re.search(rf"^{re.escape(name)}\s*=\s*(.+)$", config, re.MULTILINE)
  return match.group(1).strip() if match else None


def _latency_format(config: str) -> str:
  fmt = (_config_value(config, "RuntimeGate.format") or "'int8'").strip("'\"")
  threads = _config_value(config, "LatencySettings.threads") or "1"
  return f"{fmt}_{threads}t"


def runtime_limit_ms(config: str) -> Optional[float]:
  """The runtime limit a search ran under, from its gin config; None if none."""
  gate = _config_value(config, "Search.runtime_gate")
  limit = _config_value(config, "RuntimeGate.max_latency_ms")
  if not gate or gate == "None" or limit in (None, "None"):
    return None
  try:
    return float(limit)
  except ValueError:
    return None
