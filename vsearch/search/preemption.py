"""Preemption: SIGTERM stops the worker at the next training step boundary.

Spot VMs and preemptible TPU VMs get SIGTERM about 30 seconds before they
go. The handler only sets a flag; the search reads it where stopping is safe
(between candidates, and after each ``steps_per_call`` steps of training,
where the trainer checkpoints the child and raises ``PreemptedError``), so a
preempted worker loses at most the steps since that boundary and the same
command resumes the child from it. A second SIGTERM ends the process at once.
SIGINT (Ctrl-C) is left alone: it interrupts at once, as it always did.
"""

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from vsearch.errors import PreemptedError


class Preemption:
  """Whether SIGTERM has asked this worker to stop."""

  def __init__(self):
    self.requested = False

  def __call__(self) -> bool:
    """The cheap check the trainer makes at each step boundary."""
    return self.requested

  def check(self, message: str = "stopped by SIGTERM before training the next candidate") -> None:
    """Raises PreemptedError when a stop was asked for."""
    if self.requested:
      raise PreemptedError(message)

  def sleep(self, seconds: float) -> None:
    """Sleeps, waking early for SIGTERM."""
    end = time.monotonic() + seconds
    while not self.requested and (left := end - time.monotonic()) > 0:
      time.sleep(min(left, 1.0))

  def _handle(self, signum, frame) -> None:
    del frame  # unused
    if self.requested:
      # Asked twice: the default action, at once.
      signal.signal(signum, signal.SIG_DFL)
      os.kill(os.getpid(), signum)
    self.requested = True

  @contextlib.contextmanager
  def installed(self) -> Iterator["Preemption"]:
    """Handles SIGTERM inside the block (in the main thread; elsewhere, not at all)."""
    if threading.current_thread() is not threading.main_thread():
      yield self
      return
    previous = signal.signal(signal.SIGTERM, self._handle)
    try:
      yield self
    finally:
      signal.signal(signal.SIGTERM, previous)


def stopped(claim: Any, stop: PreemptedError, steps: int) -> PreemptedError:
  """The error a worker stopped by SIGTERM ends with: what became of its child."""
  if stop.step is None:
    message = (
      f"by SIGTERM while candidate {claim.id} was not training (no step to checkpoint); "
      "the same command runs it again."
    )
  elif stop.checkpointed:
    message = (
      f"by SIGTERM: candidate {claim.id} checkpointed at step {stop.step} of {steps} in "
      f"{claim.checkpoint_dir}; the same command resumes it."
    )
  else:
    message = (
      f"by SIGTERM: candidate {claim.id} stopped at step {stop.step} without a checkpoint "
      "(Search.checkpoint_every = 0); the same command trains it again."
    )
  return PreemptedError(message, stop.step, stop.checkpointed)
