"""The error vocabulary of vsearch.

Three kinds of failure behave differently, and the type says which:

* ``UserError``: the user asked for something that cannot work (a bad flag, an
  unknown gin binding, an invalid genome file, a missing dataset). Launchers
  print its message as one line and exit non-zero, without a traceback.
* ``CandidateError``: one candidate failed (NaN loss, out of memory, a model
  that cannot be built). The search records the reason and goes on.
* anything else is a bug, and is allowed to crash with its traceback.
"""


class VsearchError(Exception):
  """Base class of all errors raised on purpose by vsearch."""


class UserError(VsearchError):
  """Bad input from the user; the message says what is wrong and what to do."""


class InvalidGenomeError(UserError, ValueError):
  """A genome is malformed: the message names the field and what is allowed."""


class CandidateError(VsearchError):
  """A single candidate failed; it is recorded with this reason and skipped."""
