"""What the report computes from records: fronts, curves, lineage, gate savings."""

import datetime
from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np

from vsearch.record import STATUS_OVER_LIMIT, Record
from vsearch.report import load


def metric(record: Record, key: str) -> Optional[float]:
  """A numeric metric of a record, or None (missing, or not a number)."""
  return load.number(record.metrics.get(key)) if isinstance(record.metrics, dict) else None


def chance_level(records: Sequence[Record]) -> Optional[float]:
  """1 / classes: the accuracy of guessing, from the records' ``num_classes``; None if unknown."""
  classes = {r.metrics.get("num_classes") for r in records if isinstance(r.metrics, dict)}
  classes = {c for c in classes if isinstance(c, int) and c > 0}
  return 1.0 / classes.pop() if len(classes) == 1 else None


def accuracy_key(records: Sequence[Record]) -> str:
  """``accuracy_int8`` when the search measured the deployed model, else ``accuracy``."""
  return (
    "accuracy_int8" if any(metric(r, "accuracy_int8") is not None for r in records) else "accuracy"
  )


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
  """Indices of the points no other point beats on both cost and accuracy.

  A point (cost, accuracy) is dominated when another point costs no more and
  is no less accurate, and is strictly better in one of the two. Equal points
  do not dominate each other, so both stay on the front.

  Args:
    points: (cost, accuracy) pairs; lower cost and higher accuracy are better.

  Returns:
    The indices of the front, by increasing cost (then decreasing accuracy).
  """
  order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
  front, best_accuracy, best_cost = [], float("-inf"), None
  for i in order:
    cost, accuracy = points[i]
    if accuracy > best_accuracy:
      front.append(i)
      best_accuracy, best_cost = accuracy, cost
    elif accuracy == best_accuracy and cost == best_cost:
      front.append(i)  # A duplicate of a front point.
  return front


def gate_savings(records: Sequence[Record]) -> Optional[dict[str, float]]:
  """What the runtime gate saved: training time not spent on over-limit children.

  A child over a limit is measured and recorded untrained, so it saves
  roughly what a trained candidate spends after its gate: the median of the
  trained candidates' training, evaluation and deployed evaluation. None
  when no candidate went through a gate.

  Returns:
    ``{'over_limit', 'gated', 'median_training_s', 'saved_s', 'gate_s'}``:
    rejected and measured candidate counts, the per-candidate estimate, the
    time saved, and the time all gate measurements took.
  """
  gated = [r for r in records if "gate_s" in r.timings or r.status == STATUS_OVER_LIMIT]
  if not gated:
    return None
  trained = [
    sum(r.timings.get(k, 0.0) for k in ("train_s", "evaluate_s", "deployed_evaluate_s"))
    for r in records
    if r.ok and "train_s" in r.timings
  ]
  median = float(np.median(trained)) if trained else 0.0
  over = sum(r.status == STATUS_OVER_LIMIT for r in records)
  return {
    "over_limit": over,
    "gated": len(gated),
    "median_training_s": median,
    "saved_s": over * median,
    "gate_s": float(sum(r.timings.get("gate_s", 0.0) for r in gated)),
  }


def best_so_far(
  records: Sequence[Record], value: Callable[[Record], Optional[float]] = lambda r: r.fitness
) -> list[Optional[float]]:
  """For each record in order, the best ``value`` of the successful ones so far.

  Failed and over-limit candidates count as evaluated (they spent budget) but
  do not raise the best. None until the first success.
  """
  best, curve = None, []
  for record in records:
    current = value(record) if record.ok else None
    if current is not None and (best is None or current > best):
      best = current
    curve.append(best)
  return curve


def top_k(records: Sequence[Record], k: int) -> list[Record]:
  """The ``k`` fittest successful records, fittest first (earliest among equals)."""
  return sorted((r for r in records if r.ok), key=lambda r: (-r.fitness, r.index))[:k]


def lineage(records: Sequence[Record], record_id: str) -> tuple[list[Record], Optional[str]]:
  """The ancestors of ``record_id``, oldest first, ending with the record itself.

  Returns:
    The chain, and the id of a parent whose record is missing or unreadable
    (where the chain was cut), or None when it reaches a random genome.
  """
  by_id = {r.id: r for r in records}
  chain, current, seen = [], by_id.get(record_id), set()
  while current is not None and current.id not in seen:
    seen.add(current.id)
    chain.append(current)
    if not current.parent:
      return chain[::-1], None
    if current.parent not in by_id:
      return chain[::-1], current.parent
    current = by_id[current.parent]
  return chain[::-1], None


def elapsed_hours(records: Sequence[Record]) -> list[Optional[float]]:
  """Hours from the search's start to when each record was written.

  The start is the earliest ``finished_at`` minus that candidate's own time.
  None for a record without a readable ``finished_at``.
  """
  times = []
  for r in records:
    try:
      times.append(datetime.datetime.fromisoformat(r.finished_at).timestamp())
    except (TypeError, ValueError):
      times.append(None)
  known = [(t, r) for t, r in zip(times, records) if t is not None]
  if not known:
    return [None] * len(records)
  start = min(t - (load.number(r.timings.get("total_s")) or 0.0) for t, r in known)
  return [None if t is None else (t - start) / 3600 for t in times]
