"""A candidate's record: what a search knows about one finished candidate.

Records are the search's file format. The search writes them
(``vsearch.search.store``), the report reads them, launchers take genomes from
them (``--candidate``) and EvaNet's ensemble picks its members from them, so
the type lives here, below every layer that reads it.
"""

import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Any, Optional

RECORD_FORMAT = 1

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_OVER_LIMIT = "over_limit"  # measured, broke a limit, never trained
STATUS_STOPPED = "stopped"  # stopped part-way: clearly worse than the population


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
    status: ``"ok"``; ``"failed"`` with ``reason`` set; ``"over_limit"``
      (measured untrained, broke a runtime or parameter limit, not trained);
      or ``"stopped"`` (early stopping ended its training part-way; its
      metrics are the partial ones, ``reason`` says why). Only ``"ok"``
      records have a fitness, so only they can be parents.
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

  def standard_error(self, key: str = "accuracy") -> Optional[float]:
    """The standard error of an accuracy metric, from the clips it was measured on.

    ``sqrt(p (1 - p) / n)``: the binomial spread of an accuracy ``p`` over
    ``n`` validation clips (``num_eval_clips`` for ``accuracy``,
    ``num_int8_eval_clips`` for ``accuracy_int8``). None when either is
    missing. Two accuracies closer than about twice this are not told apart
    by the evaluation.
    """
    suffix = key[len("accuracy") :]
    p = self.metrics.get(key)
    n = self.metrics.get(f"num{suffix}_eval_clips" if suffix else "num_eval_clips")
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not isinstance(n, int) or n < 1:
      return None
    return standard_error(float(p), n)

  def to_dict(self) -> dict[str, Any]:
    return {"format": RECORD_FORMAT, **dataclasses.asdict(self)}

  @classmethod
  def from_dict(cls, data: dict[str, Any]) -> "Record":
    """Reads a record; raises ValueError when it is not one.

    Every field must hold its JSON type (a ``fitness`` that is a string, a
    ``genome`` that is a list, ...), so code that reads records can trust
    them, and a search treats a record with a wrong type as unreadable.
    """
    if not isinstance(data, dict):
      raise ValueError("a record must be a JSON object")
    names = {f.name for f in dataclasses.fields(cls)}
    missing = {"id", "method", "genome", "status"} - data.keys()
    if missing:
      raise ValueError(f"missing fields {sorted(missing)}")
    # Unknown keys come from newer formats: keep reading what is understood.
    fields = {k: v for k, v in data.items() if k in names}
    for name, value in fields.items():
      _check_field(name, value)
    if not _ID.match(fields["id"]):
      raise ValueError(f"its id {fields['id']!r} is not a candidate id (digits)")
    return cls(**fields)


_ID = re.compile(r"^\d{6,}$")
_NUMBER = (int, float)
# What each field's JSON value must be; None where null is allowed.
_FIELD_TYPES: dict[str, tuple[Any, ...]] = {
  "id": (str,),
  "method": (str,),
  "genome": (dict,),
  "status": (str,),
  "parent": (str, None),
  "mutation": (str,),
  "metrics": (dict,),
  "fitness": (*_NUMBER, None),
  "reason": (str, None),
  "seed": (int,),
  "timings": (dict,),
  "worker": (str,),
  "finished_at": (str,),
  "learned": (dict,),
}


def _check_field(name: str, value: Any) -> None:
  """Raises ValueError when a record field holds the wrong JSON type."""
  allowed = _FIELD_TYPES[name]
  if value is None and None in allowed:
    return
  types = tuple(t for t in allowed if t is not None)
  if isinstance(value, bool) or not isinstance(value, types):
    expected = " or ".join(("null" if t is None else t.__name__) for t in allowed)
    raise ValueError(f"its {name} is {type(value).__name__} {value!r:.40}, not {expected}")
  if name == "timings":
    for key, seconds in value.items():
      if isinstance(seconds, bool) or not isinstance(seconds, _NUMBER):
        raise ValueError(f"its timings[{key!r}] is not a number")


def best_record(records: Sequence[Record]) -> Optional[Record]:
  """The fittest successful record (the earliest among equals), or None."""
  ok = [r for r in records if r.ok]
  return max(ok, key=lambda r: (r.fitness, -r.index)) if ok else None


def standard_error(accuracy: float, num_clips: int) -> float:
  """``sqrt(p (1 - p) / n)``: the standard error of an accuracy over ``n`` clips."""
  return math.sqrt(max(accuracy * (1.0 - accuracy), 0.0) / num_clips)
