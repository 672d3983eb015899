"""What a search tells as it goes: a progress line per candidate, TensorBoard summaries.

TensorBoard (``tensorboard --logdir=WORKDIR/tensorboard``) shows three things:
``search/<worker>``, the search's scalars; ``candidates/<id>``, each
candidate's training curves; and ``hparams/<id>``, each finished candidate's
genome and results for the HParams dashboard, where candidates are sorted and
filtered by any genome field or metric.
"""

import datetime
import json
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

from vsearch.progress import format_duration
from vsearch.record import STATUS_OVER_LIMIT, STATUS_STOPPED, Record, best_record


def describe(record: Record, records: Sequence[Record]) -> str:
  """The progress line of a finished candidate: what it was, how it did, the best so far."""
  origin = f"child of {record.parent} ({record.mutation})" if record.parent else record.mutation
  seconds = format_duration(record.timings.get("total_s", 0.0))
  if record.ok:
    se = record.standard_error()
    spread = f" ± {se:.3f}" if se is not None else ""
    outcome = (
      f"acc {record.metrics['accuracy']:.3f}{spread} fitness {record.fitness:.3f} in {seconds}"
    )
    if "latency_ms" in record.metrics:
      outcome += f" ({record.metrics['latency_ms']:.2f} ms)"
  elif record.status == STATUS_OVER_LIMIT:
    outcome = f"over limit, not trained ({seconds}): {record.reason}"
  elif record.status == STATUS_STOPPED:
    outcome = f"{record.reason} ({seconds})"
  else:
    outcome = f"FAILED in {seconds}: {record.reason}"
  best = best_record(records)
  best_text = f"best {best.fitness:.3f} ({best.id})" if best else "no success yet"
  return f"{record.id} {origin}: {outcome} | {best_text}"


class SearchSummaries:
  """Search-level TensorBoard scalars, one event file per worker.

  Written under ``<workdir>/tensorboard/search/<worker_id>`` at step = the
  number of finished candidates: the finished candidate's fitness and
  accuracy, the best fitness so far, the mean fitness of the current
  population, and this worker's candidates per hour.
  """

  def __init__(self, workdir: str, worker_id: str, evolution):
    self._writer = tf.summary.create_file_writer(
      os.path.join(workdir, "tensorboard", "search", worker_id)
    )
    self._evolution = evolution
    self._start = time.monotonic()
    self._finished_here = 0

  def write(self, record: Record, records: Sequence[Record]) -> None:
    self._finished_here += 1
    hours = (time.monotonic() - self._start) / 3600
    best = best_record(records)
    population = getattr(self._evolution, "population", None)
    members = population(records) if population else []
    with self._writer.as_default(step=len(records)):
      if record.ok:
        tf.summary.scalar("candidate/fitness", record.fitness)
        tf.summary.scalar("candidate/accuracy", record.metrics.get("accuracy", 0.0))
      if best is not None:
        tf.summary.scalar("search/best_fitness", best.fitness)
      if members:
        tf.summary.scalar(
          "search/population_mean_fitness", float(np.mean([r.fitness for r in members]))
        )
      tf.summary.scalar("search/candidates_per_hour", self._finished_here / max(hours, 1e-9))
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


# The numbers of a record the HParams dashboard shows as metrics, when present.
HPARAMS_METRICS = (
  "fitness",
  "accuracy",
  "accuracy_int8",
  "mAP",
  "loss",
  "latency_ms",
  "num_params",
)


def write_hparams(workdir: str, record: Record) -> None:
  """Writes a finished candidate for TensorBoard's HParams dashboard.

  One run per candidate, ``<workdir>/tensorboard/hparams/<id>``: its
  hyperparameters are the genome's fields, flattened (``resolution``,
  ``blocks[0].filters``, ``len(blocks)``), with the candidate's ``method``,
  ``status`` (ok, failed, over_limit, stopped) and ``parent``; its metrics
  are the numbers of ``HPARAMS_METRICS`` the record has (an over-limit child
  has a latency and no accuracy), as scalars at step 0.
  """
  values: dict[str, Any] = {"method": record.method, "status": record.status}
  if record.parent is not None:
    values["parent"] = record.parent
  values.update(flatten_genome(record.genome))
  numbers = {**record.metrics, "fitness": record.fitness}
  writer = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard", "hparams", record.id))
  with writer.as_default(step=0):
    hparams_api.hparams(values, trial_id=record.id, start_time_secs=_start_time(record))
    for name in HPARAMS_METRICS:
      value = numbers.get(name)
      if isinstance(value, (int, float)) and not isinstance(value, bool):
        tf.summary.scalar(name, float(value))
  writer.close()


def flatten_genome(genome: Any, prefix: str = "") -> dict[str, Any]:
  """A genome's fields as one flat dict of TensorBoard hyperparameter values.

  Nested fields join with dots, list items take their index
  (``blocks[0].filters``) and a list of records adds its length
  (``len(blocks)``); a list of plain values becomes its JSON text, and empty
  values are left out.
  """
  return dict(_flatten(genome, prefix))


def _flatten(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
  if isinstance(value, dict):
    for key in sorted(value):
      yield from _flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
  elif isinstance(value, (list, tuple)):
    if any(isinstance(item, (dict, list, tuple)) for item in value):
      yield f"len({prefix})", len(value)
      for index, item in enumerate(value):
        yield from _flatten(item, f"{prefix}[{index}]")
    else:
      yield prefix, json.dumps(list(value))
  elif isinstance(value, (bool, int, float, str)):
    yield prefix, value
  elif value is not None:
    yield prefix, str(value)


def _start_time(record: Record) -> float | None:
  """When the candidate started, from when it finished and how long it took."""
  try:
    finished = datetime.datetime.fromisoformat(record.finished_at).timestamp()
  except ValueError:
    return None
  return finished - float(record.timings.get("total_s", 0.0))
