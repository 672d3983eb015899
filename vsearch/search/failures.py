"""What a search does when a child's training goes wrong: record, retry, or stop.

The policy follows Keras Tuner's (``max_retries_per_trial``,
``max_consecutive_failed_trials``):

* a failure vsearch knows is the child's own (``CandidateError``: NaN loss,
  a model that does not fit memory) is recorded as ``failed`` at once:
  trying the same child with the same seed again would fail the same way;
* any other exception while the child trains (a converter crash, an error
  from TensorFlow or the model) is a failed attempt: it is counted in the
  child's in-progress marker and the child is tried again, until
  ``max_attempts`` attempts failed; then it is recorded as ``failed`` with
  every attempt's reason, and never retried;
* what is no child's fault stops the worker without recording anything,
  so the same command resumes: a full disk (``DiskFullError``), SIGTERM
  (``PreemptedError``), a bad setting (``UserError``);
* ``max_consecutive`` failed records in a row stop the worker
  (``TooManyFailuresError``): a broken setup should not fail every child.
"""

import dataclasses
import logging
from typing import Any, Optional

import tensorflow as tf

from vsearch import files
from vsearch import record as record_lib
from vsearch.errors import (
  CandidateError,
  DiskFullError,
  OverLimitError,
  PreemptedError,
  StoppedEarlyError,
  TooManyFailuresError,
  UserError,
  WorkerStopError,
)


def describe(error: BaseException) -> str:
  """One line: the error's type and the first line of its message."""
  text = str(error).strip()
  first = text.splitlines()[0] if text else ""
  return f"{type(error).__name__}: {first}" if first else type(error).__name__


def disk_full(error: BaseException, workdir: str) -> DiskFullError:
  """The error that stops a worker whose disk (or quota) is full."""
  return DiskFullError(
    f"A disk the search writes to is full ({describe(error)}). Nothing was recorded for "
    f"the child in training; free space (the workdir is {workdir}) and rerun the same command."
  )


@dataclasses.dataclass
class FailurePolicy:
  """Retries and stops, per ``Search.max_attempts_per_candidate`` and ``max_consecutive_failures``.

  Attributes:
    max_attempts: attempts a child gets before an unexpected error is
      recorded as its failure (1: no retry).
    max_consecutive: failed records in a row that stop the worker; 0 never.
    in_a_row: failed records this worker wrote since its last other record.
  """

  max_attempts: int = 2
  max_consecutive: int = 5
  in_a_row: int = 0

  def __post_init__(self):
    if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
      raise UserError(
        f"Search.max_attempts_per_candidate must be an int, not {self.max_attempts!r}"
      )
    if self.max_attempts < 1:
      raise UserError(f"Search.max_attempts_per_candidate must be >= 1, got {self.max_attempts}")
    if isinstance(self.max_consecutive, bool) or not isinstance(self.max_consecutive, int):
      raise UserError(
        f"Search.max_consecutive_failures must be an int, not {self.max_consecutive!r}"
      )
    if self.max_consecutive < 0:
      raise UserError(
        f"Search.max_consecutive_failures must be >= 0 (0: never stop), got {self.max_consecutive}"
      )

  def outcome(
    self, error: Exception, claim: Any, *, preempted: bool, workdir: str
  ) -> Optional[dict[str, Any]]:
    """The record fields of a child whose training raised ``error``.

    Args:
      error: what its training raised.
      claim: the child's ``claims.Claim``; a failed attempt is counted in
        its marker.
      preempted: SIGTERM arrived: whatever failed, it is the stop's doing
        (it also ends the latency measurement's subprocess).
      workdir: the search's workdir, for the disk-full message.

    Returns:
      The fields to record, or None when the child should be tried again.

    Raises:
      UserError, WorkerStopError: re-raised: the worker stops.
      PreemptedError: ``preempted``.
      DiskFullError: ``error`` came from a full disk.
    """
    if isinstance(error, OverLimitError):
      return dict(status=record_lib.STATUS_OVER_LIMIT, reason=str(error), metrics=error.metrics)
    if isinstance(error, StoppedEarlyError):
      return dict(status=record_lib.STATUS_STOPPED, reason=str(error), metrics=error.metrics)
    if isinstance(error, (UserError, WorkerStopError)):
      raise error
    if preempted:
      raise PreemptedError(f"stopped by SIGTERM ({describe(error)})") from error
    if files.is_disk_full(error):
      raise disk_full(error, workdir) from error
    if isinstance(error, CandidateError):
      return dict(status=record_lib.STATUS_FAILED, reason=str(error))
    if isinstance(error, tf.errors.ResourceExhaustedError):
      return dict(
        status=record_lib.STATUS_FAILED,
        reason=f"out of memory: {error.message.splitlines()[0]}",
      )
    reason = describe(error)
    attempt = len(claim.failed_attempts) + 1
    logging.warning(
      "Candidate %s: attempt %d of %d failed.", claim.id, attempt, self.max_attempts, exc_info=error
    )
    if attempt < self.max_attempts:
      claim.record_failure(reason)
      print(
        f"Candidate {claim.id} failed (attempt {attempt} of {self.max_attempts}): {reason}; "
        "trying it again.",
        flush=True,
      )
      return None
    earlier = "".join(f"; attempt {i}: {r}" for i, r in enumerate(claim.failed_attempts, 1))
    return dict(
      status=record_lib.STATUS_FAILED,
      reason=f"{reason} (attempt {attempt} of {self.max_attempts}{earlier})",
    )

  def count(self, record: record_lib.Record) -> None:
    """Counts a written record; raises TooManyFailuresError at the limit."""
    if record.status != record_lib.STATUS_FAILED:
      self.in_a_row = 0
      return
    self.in_a_row += 1
    if self.max_consecutive and self.in_a_row >= self.max_consecutive:
      raise TooManyFailuresError(
        f"{self.in_a_row} candidates failed in a row, the last ({record.id}) with: "
        f"{record.reason}. The worker stops rather than fail every candidate "
        "(Search.max_consecutive_failures); fix the cause and rerun the same command."
      )
