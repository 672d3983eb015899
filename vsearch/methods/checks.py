"""Checks every method's genome runs on what it reads: one wording for every error.

Genomes come from JSON written by people and programs (genome files, records,
markers), so each field is checked and a bad one named, as ``blocks[2].filters:
got -1; allowed: an int >= 1``.
"""

import numbers
from collections.abc import Sequence
from typing import Any, NoReturn, Optional

from vsearch.errors import InvalidGenomeError, UserError


def fail(field: str, value: Any, allowed: str) -> NoReturn:
  """Raises the InvalidGenomeError that names ``field``, its value and what is allowed."""
  raise InvalidGenomeError(f"{field}: got {value!r}; allowed: {allowed}")


def check_int(value: Any, field: str, minimum: int = 1) -> int:
  """``value`` as an int, if it is an integer (not a bool) of at least ``minimum``."""
  if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
    fail(field, value, f"an int >= {minimum}")
  return int(value)


def check_keys(
  data: Any, expected: tuple[str, ...], path: str, required: Optional[tuple[str, ...]] = None
) -> None:
  """Checks that ``data`` is an object with the ``expected`` keys and no others.

  Args:
    data: what was read.
    expected: every key it may have.
    path: where it is, for the message (``genome``, ``blocks[2]``).
    required: the keys it must have (default: all of ``expected``).

  Raises:
    InvalidGenomeError: not an object, or unknown or missing keys.
  """
  if not isinstance(data, dict):
    fail(path, data, "an object with keys " + ", ".join(expected))
  unknown = sorted(set(data) - set(expected), key=str)
  missing = [k for k in (expected if required is None else required) if k not in data]
  if unknown or missing:
    problems = []
    if unknown:
      problems.append(f"unknown keys {unknown}")
    if missing:
      problems.append(f"missing keys {missing}")
    raise InvalidGenomeError(f"{path}: {' and '.join(problems)}; the keys are {list(expected)}")


def check_choices(owner: str, name: str, value: Any, allowed: Optional[Sequence[Any]]) -> tuple:
  """A search space's list of choices ``owner.name``, checked: a tuple of them.

  Args:
    owner: the space's gin name, for the message (e.g. 'EvanetSearchSpace').
    name: the field.
    value: what was bound.
    allowed: the valid choices; None: any positive int.

  Raises:
    UserError: not a non-empty list, or a choice that is not allowed.
  """
  if isinstance(value, str) or not isinstance(value, Sequence) or not value:
    raise UserError(f"{owner}.{name} must be a non-empty list, got {value!r}")
  if allowed is None:
    bad = [v for v in value if not isinstance(v, int) or isinstance(v, bool) or v < 1]
  else:
    bad = [v for v in value if v not in allowed]
  if bad:
    raise UserError(
      f"{owner}.{name} holds invalid choices {bad}; allowed: {allowed or 'positive ints'}"
    )
  return tuple(value)
