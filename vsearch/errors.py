"""The error vocabulary of vsearch: every error type it raises on purpose.

Three kinds of failure behave differently, and the type says which:

* ``UserError``: the user asked for something that cannot work (a bad flag, an
  unknown gin binding, an invalid genome file, a missing dataset). Launchers
  print its message as one line and exit non-zero, without a traceback.
* ``CandidateError``: one candidate failed (NaN loss, out of memory, a model
  that cannot be built). The search records the reason and goes on.
* ``WorkerStopError``: the worker cannot go on, through no fault of one
  candidate (a full disk, a preemption, too many failures in a row). Launchers
  print one line and exit non-zero; the same command resumes.
* anything else is a bug, and is allowed to crash with its traceback. While a
  child trains, the search records it as that child's failed attempt instead
  (``Search.max_attempts_per_candidate``).

The rest are signals one part of vsearch sends another. The device script
``vsearch/deploy/profile_tflite.py`` keeps its own ``BadRequest``: it runs on
devices without vsearch and imports nothing from it.
"""

from typing import Any


class VsearchError(Exception):
  """Base class of all errors raised on purpose by vsearch."""


class UserError(VsearchError):
  """Bad input from the user; the message says what is wrong and what to do."""


class InvalidGenomeError(UserError, ValueError):
  """A genome is malformed: the message names the field and what is allowed."""


class MissingEntryError(UserError):
  """A model needs a stage the latency table has no timing for."""


class WorkerStopError(VsearchError):
  """The worker stops; nothing is lost, and the same command resumes.

  Attributes:
    label: what the launcher's one line starts with.
    exit_status: the launcher's exit status.
  """

  label = "error"
  exit_status = 1


class DiskFullError(WorkerStopError):
  """A disk (or quota) the search writes to is full; no candidate is blamed."""


class TooManyFailuresError(WorkerStopError):
  """``Search.max_consecutive_failures`` candidates failed in a row."""


class PreemptedError(WorkerStopError):
  """SIGTERM asked the worker to stop; the child in training was checkpointed.

  Attributes:
    step: the step the child's training stopped at; None when no child was
      in training.
    checkpointed: whether a checkpoint holds that step.
  """

  label = "stopped"
  exit_status = 143  # 128 + SIGTERM, as a shell reports a process it ended.

  def __init__(self, message: str = "", step: int | None = None, checkpointed: bool = False):
    super().__init__(message)
    self.step = step
    self.checkpointed = checkpointed


class CandidateError(VsearchError):
  """A single candidate failed; it is recorded with this reason and skipped."""


class OverLimitError(VsearchError):
  """A candidate breaks a runtime or parameter limit; it is not trained.

  Attributes:
    metrics: what was measured, recorded with the candidate.
  """

  def __init__(self, message: str, metrics: dict[str, Any]):
    super().__init__(message)
    self.metrics = metrics


class StoppedEarlyError(VsearchError):
  """A child was clearly worse than the population part-way through training.

  Attributes:
    metrics: what the partial evaluation measured, recorded with the child.
  """

  def __init__(self, message: str, metrics: dict[str, Any]):
    super().__init__(message)
    self.metrics = metrics


class ClaimLostError(VsearchError):
  """Another worker took over this worker's candidate; drop it."""


class VideoDecodeError(VsearchError):
  """A video file could not be decoded; the message says why."""
