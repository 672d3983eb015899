"""Checks every method's genome runs on what it reads: one wording for every error.

Genomes come from JSON written by people and programs (genome files, records,
markers), so each field is checked and a bad one named, as ``blocks[2].filters:
got -1; allowed: an int >= 1``.
"""

import numbers
from typing import Any, NoReturn, Optional

from vsearch.errors import InvalidGenomeError


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
