"""In-progress markers: which worker trains which candidate, and whether it lives.

Many workers can share one search: each picks the next candidate nobody has
recorded or claimed, writes an in-progress marker for it, trains it and
writes its record. The marker is ``<workdir>/in_progress/<id>.json``; its
owner rewrites it every ``heartbeat_s`` seconds, and a marker whose file has
not changed for ``stale_after_s`` seconds belongs to a dead worker, so
another worker takes the candidate over. The marker holds the proposal (the
genome, its parent, the mutation and the seed), so whoever finishes a
candidate trains the same child, resuming from the child's training
checkpoints in ``<workdir>/in_progress/<id>.checkpoints``.

Correctness never rests on the markers. A record is never overwritten and a
candidate's child is fixed by its marker, so two workers that both believe
they own a candidate (a race on an object store without atomic create) only
waste work: the second record write finds the first and is dropped. The
markers only keep that rare.

A worker is named by ``--worker_id`` (the host name by default). A worker
restarted under its old name takes back its own markers at once instead of
waiting for them to go stale, which is how a preempted TPU VM resumes the
child it was training.
"""

import dataclasses
import json
import logging
import os
import socket
import threading
import time
from typing import Any, Optional

import gin
import tensorflow as tf

from vsearch import files
from vsearch.errors import ClaimLostError, UserError


@dataclasses.dataclass(frozen=True)
class Proposal:
  """What a candidate will train: fixed once its marker is written."""

  genome: dict[str, Any]
  parent: Optional[str]
  mutation: str
  seed: int


@gin.configurable
@dataclasses.dataclass(frozen=True)
class ClaimSettings:
  """Timing of in-progress markers.

  Attributes:
    heartbeat_s: seconds between rewrites of a live marker.
    stale_after_s: a marker unchanged for this long belongs to a dead worker
      and is taken over. Keep it several heartbeats long, and longer than the
      clock skew between hosts (marker ages are file modification times).
  """

  heartbeat_s: float = 30.0
  stale_after_s: float = 300.0

  def __post_init__(self):
    if not 0 < self.heartbeat_s < self.stale_after_s:
      raise UserError(
        f"ClaimSettings needs 0 < heartbeat_s < stale_after_s, not "
        f"{self.heartbeat_s} and {self.stale_after_s}."
      )


class Claim:
  """This worker's hold on one candidate; beats until released.

  Use as a context manager: entering starts the heartbeat thread, leaving
  stops it. ``lost`` turns true when a beat finds that another worker has
  taken the marker over; ``check()`` raises ``ClaimLostError`` then.
  """

  def __init__(
    self, claims: "Claims", candidate_id: str, proposal: Proposal, taken_over_from: Optional[str]
  ):
    self._claims = claims
    self.id = candidate_id
    self.proposal = proposal
    self.taken_over_from = taken_over_from
    self.checkpoint_dir = claims.checkpoint_dir(candidate_id)
    self.lost = False
    self._stop = threading.Event()
    self._thread: Optional[threading.Thread] = None

  def __enter__(self) -> "Claim":
    self._thread = threading.Thread(
      target=self._beat_until_stopped, name=f"heartbeat-{self.id}", daemon=True
    )
    self._thread.start()
    return self

  def __exit__(self, *unused):
    self._stop.set()
    self._thread.join()

  def check(self) -> None:
    if self.lost:
      raise ClaimLostError(f"candidate {self.id} was taken over by another worker")

  def beat(self) -> None:
    """Rewrites the marker, or marks the claim lost if it is not ours any more."""
    marker = self._claims.read_marker(self.id)
    if marker is None or marker.get("worker") != self._claims.worker_id:
      self.lost = True
      return
    self._claims.write_marker(self.id, self.proposal)

  def _beat_until_stopped(self):
    while not self._stop.wait(self._claims.settings.heartbeat_s):
      try:
        self.beat()
      except (tf.errors.OpError, OSError) as e:
        # A missed beat is not fatal; a marker left stale for long is.
        logging.warning("Heartbeat of candidate %s failed: %s", self.id, e)
      if self.lost:
        return


class Claims:
  """The in-progress markers of one workdir.

  Args:
    workdir: the search's workdir (local or ``gs://``).
    worker_id: this worker's stable name.
    settings: heartbeat and staleness timing.
  """

  def __init__(self, workdir: str, worker_id: str, settings: Optional[ClaimSettings] = None):
    if not worker_id or "/" in worker_id:
      raise UserError(f"--worker_id={worker_id!r} must be a non-empty name without '/'.")
    self.directory = os.path.join(workdir, "in_progress")
    self.worker_id = worker_id
    self.settings = settings or ClaimSettings()
    self._host = socket.gethostname()
    tf.io.gfile.makedirs(self.directory)

  def marker_path(self, candidate_id: str) -> str:
    return os.path.join(self.directory, f"{candidate_id}.json")

  def checkpoint_dir(self, candidate_id: str) -> str:
    return os.path.join(self.directory, f"{candidate_id}.checkpoints")

  def read_marker(self, candidate_id: str) -> Optional[dict[str, Any]]:
    """The marker's contents; None when there is none or it is unreadable."""
    try:
      with tf.io.gfile.GFile(self.marker_path(candidate_id), "r") as f:
        marker = json.load(f)
      return marker if isinstance(marker, dict) else None
    except (tf.errors.NotFoundError, FileNotFoundError):
      return None
    except (ValueError, tf.errors.OpError, OSError) as e:
      logging.warning("Ignoring unreadable marker of candidate %s: %s", candidate_id, e)
      return None

  def age_s(self, candidate_id: str) -> Optional[float]:
    """Seconds since the marker last changed; None when there is none."""
    try:
      stat = tf.io.gfile.stat(self.marker_path(candidate_id))
    except tf.errors.NotFoundError:
      return None
    return time.time() - stat.mtime_nsec / 1e9

  def is_live(self, candidate_id: str) -> bool:
    """Whether another worker is alive and training this candidate."""
    marker = self.read_marker(candidate_id)
    if marker is None:
      return False
    if marker.get("worker") == self.worker_id:
      return False  # our own, from before a restart
    age = self.age_s(candidate_id)
    return age is not None and age < self.settings.stale_after_s

  def write_marker(self, candidate_id: str, proposal: Proposal) -> None:
    """Writes (or rewrites) the marker atomically, as ours."""
    content = self._marker_content(candidate_id, proposal)
    files.write_atomically(self.marker_path(candidate_id), json.dumps(content, sort_keys=True))

  def try_claim(self, candidate_id: str, propose) -> Optional[Claim]:
    """Claims a candidate nobody is training, or returns None.

    Args:
      candidate_id: the candidate.
      propose: returns the ``Proposal`` for a fresh candidate; not called
        when an old marker (ours or a dead worker's) already fixes it.

    Raises:
      UserError: another live process on this host uses this worker id.
    """
    marker = self.read_marker(candidate_id)
    taken_over_from = None
    if marker is None:
      age = self.age_s(candidate_id)
      if age is not None:
        # A marker nobody can read (written by hand, or by a broken tool):
        # left alone until stale like any other, then replaced.
        if age < self.settings.stale_after_s:
          return None
        tf.io.gfile.remove(self.marker_path(candidate_id))
        taken_over_from = "?"
      proposal = propose()
      if not self._create_marker(candidate_id, proposal):
        return None  # another worker was quicker
    else:
      if marker.get("worker") == self.worker_id:
        self._check_not_running_twice(marker)
      elif self.is_live(candidate_id):
        return None
      else:
        taken_over_from = marker.get("worker", "?")
      proposal = Proposal(
        genome=marker["genome"],
        parent=marker.get("parent"),
        mutation=marker.get("mutation", "random"),
        seed=int(marker.get("seed", 0)),
      )
      self.write_marker(candidate_id, proposal)
    # Last writer wins: whoever reads back someone else's name backs off.
    mine = self.read_marker(candidate_id)
    if mine is None or mine.get("worker") != self.worker_id:
      return None
    return Claim(self, candidate_id, proposal, taken_over_from)

  def release(self, candidate_id: str) -> None:
    """Removes the marker and the child's checkpoints once its record exists."""
    checkpoints = self.checkpoint_dir(candidate_id)
    if tf.io.gfile.exists(checkpoints):
      tf.io.gfile.rmtree(checkpoints)
    try:
      tf.io.gfile.remove(self.marker_path(candidate_id))
    except tf.errors.NotFoundError:
      pass

  def markers(self) -> list[str]:
    """Ids that have a marker."""
    return sorted(
      name[: -len(".json")]
      for name in tf.io.gfile.listdir(self.directory)
      if name.endswith(".json") and files.TEMPORARY_MARK not in name
    )

  def _create_marker(self, candidate_id: str, proposal: Proposal) -> bool:
    """Creates the marker unless one exists; atomic on local disks."""
    content = self._marker_content(candidate_id, proposal)
    try:
      # Atomic on local disks; on object stores the read-back in try_claim
      # settles most races and record writes settle the rest.
      files.write_atomically(
        self.marker_path(candidate_id), json.dumps(content, sort_keys=True), overwrite=False
      )
      return True
    except FileExistsError:
      return False

  def _marker_content(self, candidate_id: str, proposal: Proposal) -> dict[str, Any]:
    return {
      "id": candidate_id,
      "worker": self.worker_id,
      "host": self._host,
      "pid": os.getpid(),
      "heartbeat_at": time.time(),
      **dataclasses.asdict(proposal),
    }

  def _check_not_running_twice(self, marker: dict[str, Any]) -> None:
    pid = marker.get("pid")
    age = self.age_s(marker.get("id", ""))
    fresh = age is not None and age < self.settings.stale_after_s
    if (
      marker.get("host") == self._host
      and isinstance(pid, int)
      and fresh
      and pid != os.getpid()
      and _process_alive(pid)
    ):
      raise UserError(
        f"Another worker with --worker_id={self.worker_id} is running on this "
        f"host (pid {pid}); give each worker its own --worker_id."
      )


def _process_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True
