"""Progress lines for long work: n of N, what happened, best so far, time left."""

import sys
import time
from typing import Optional, TextIO


def format_duration(seconds: float) -> str:
  """``75`` -> ``"1m15s"``; ``4000`` -> ``"1h06m"``."""
  seconds = max(int(round(seconds)), 0)
  if seconds < 60:
    return f"{seconds}s"
  if seconds < 3600:
    return f"{seconds // 60}m{seconds % 60:02d}s"
  return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
  """Counts finished items and estimates the time left from the mean so far.

  Only items done in this process count towards the rate, so a resumed job
  does not claim that the items it skipped took no time.

  Args:
    total: how many items the job has.
    done: how many were already done before this process started.
    stream: where lines go.
  """

  def __init__(self, total: int, done: int = 0, stream: Optional[TextIO] = None):
    self.total = total
    self.done = done
    self._done_here = 0
    self._start = time.monotonic()
    self._stream = stream or sys.stdout
    self._printed_at = self._start

  def step(self) -> None:
    self.done += 1
    self._done_here += 1

  def update(self, done: int) -> None:
    """Sets the count, e.g. from a store other workers add to as well.

    Items others finish while this process runs count towards the rate, so
    with several workers the time left is that of the whole job.
    """
    self._done_here += max(done - self.done, 0)
    self.done = done

  @property
  def counter(self) -> str:
    width = len(str(self.total))
    return f"[{self.done:>{width}}/{self.total}]"

  @property
  def time_left(self) -> Optional[float]:
    if not self._done_here:
      return None
    rate = (time.monotonic() - self._start) / self._done_here
    return rate * (self.total - self.done)

  def print(self, message: str) -> None:
    self._printed_at = time.monotonic()
    left = self.time_left
    eta = f" | ~{format_duration(left)} left" if left is not None and self.done < self.total else ""
    print(f"{self.counter} {message}{eta}", file=self._stream, flush=True)

  def print_every(self, message: str, seconds: float = 5.0) -> None:
    """Prints at most once every ``seconds``, and always at the last item."""
    now = time.monotonic()
    if self.done >= self.total or now - self._printed_at > seconds:
      self._printed_at = now
      self.print(message)
