"""What a search tells as it goes: a progress line per candidate, TensorBoard scalars."""

import os
import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

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
