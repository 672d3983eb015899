"""In-progress markers: which worker trains which candidate, and whether it lives.

Many workers can share one search: each picks the next candidate nobody has
recorded or claimed, writes an in-progress marker for it, trains it and
writes its record. The marker is ``<workdir>/in_progress/<id>.json``; its
owner rewrites it every ``heartbeat_s`` seconds, and a marker whose file has
not changed for ``stale_after_s`` seconds belongs to a dead worker, so
another worker takes the candidate over. The marker holds the proposal (the
genome, its parent, the mutation and the seed), so whoever finishes a
candidate trains the same child, resuming from the child's training
checkpoints.

Each claim checkpoints into a folder of its own,
``<workdir>/in_progress/<id>.checkpoints/<worker>-<token>``, named in the
marker (``checkpoints``). A claim resumes from the folder the marker named
before it and saves into its own, so two workers that both believe they own
a candidate never write into one folder, and a claim that dies part-way
through a save leaves the checkpoint it resumed from intact. All of a
candidate's folders go when its record exists.

Correctness never rests on the markers. A record is never overwritten and a
candidate's child is fixed by its marker, so two workers that both believe
they own a candidate (a race on an object store without atomic create) only
waste work: the second record write finds the first and is dropped. The
markers only keep that rare.

A worker is named by ``--worker_id`` (the host name by default). A worker
restarted under its old name takes back its own markers at once instead of
waiting for them to go stale, which is how a preempted TPU VM resumes the
child it was training. A worker stopped by SIGTERM hands its marker over
(``hand_over``), so any worker may resume the child at once.

The marker also counts the child's failed attempts (``failed_attempts``: an
unexpected error while it trained), so a child that keeps failing is
recorded as failed instead of being retried forever, whichever worker runs
it. A marker that cannot be read, or whose genome the method rejects, fixes
nothing: it is replaced by a fresh proposal at once.
"""

import dataclasses
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Optional

import gin
import tensorflow as tf

from vsearch import files
from vsearch.errors import ClaimLostError, UserError

# What ``Claims._read`` says of a marker that could not be read for a passing reason.
UNAVAILABLE = "unavailable"


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
    self,
    claims: "Claims",
    candidate_id: str,
    proposal: Proposal,
    taken_over_from: Optional[str],
    checkpoints: str,
    resume_from: Optional[str] = None,
  ):
    self._claims = claims
    self.id = candidate_id
    self.proposal = proposal
    self.taken_over_from = taken_over_from
    # Where this claim saves the child's checkpoints, and where it resumes
    # from (the folder of the claim before it; None for a fresh child).
    self.checkpoint_dir = claims.claim_folder(candidate_id, checkpoints)
    self.resume_from = resume_from
    self.failed_attempts: list[str] = []
    self.lost = False
    self._lock = threading.Lock()
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
    with self._lock:
      self._claims.write_marker(self.id, self.proposal, self.failed_attempts, self.checkpoints)

  @property
  def checkpoints(self) -> str:
    """The name of this claim's checkpoint folder, as the marker holds it."""
    return os.path.basename(self.checkpoint_dir)

  def record_failure(self, reason: str) -> int:
    """Counts a failed attempt in the marker at once; returns the failed attempts so far."""
    with self._lock:
      self.failed_attempts.append(reason)
      self._claims.write_marker(self.id, self.proposal, self.failed_attempts, self.checkpoints)
    return len(self.failed_attempts)

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

  def checkpoint_root(self, candidate_id: str) -> str:
    """The folder of every claim's checkpoints of this candidate."""
    return os.path.join(self.directory, f"{candidate_id}.checkpoints")

  def claim_folder(self, candidate_id: str, checkpoints: str) -> str:
    """The checkpoint folder a marker names (``checkpoints``)."""
    return os.path.join(self.checkpoint_root(candidate_id), checkpoints)

  def read_marker(self, candidate_id: str) -> Optional[dict[str, Any]]:
    """The marker's contents; None when there is none or it is unreadable."""
    return self._read(candidate_id)[0]

  def _read(self, candidate_id: str) -> tuple[Optional[dict[str, Any]], Optional[str]]:
    """(marker, problem): problem is None (read, or no marker), UNAVAILABLE
    (reading failed for a passing reason: try later) or why it is corrupt."""
    try:
      with tf.io.gfile.GFile(self.marker_path(candidate_id), "r") as f:
        marker = json.load(f)
    except (tf.errors.NotFoundError, FileNotFoundError):
      return None, None
    except ValueError as e:
      return None, f"not JSON: {e}"
    except (tf.errors.OpError, OSError) as e:
      logging.warning("Cannot read the marker of candidate %s now: %s", candidate_id, e)
      return None, UNAVAILABLE
    if not isinstance(marker, dict):
      return None, "not a JSON object"
    for key, kind in (("worker", str), ("genome", dict), ("seed", int)):
      if not isinstance(marker.get(key), kind):
        return None, f"its {key!r} is missing or not a {kind.__name__}"
    if not isinstance(marker.get("failed_attempts", []), list):
      return None, "its 'failed_attempts' is not a list"
    folder = marker.get("checkpoints")
    if folder is not None and (
      not isinstance(folder, str) or not folder or folder != os.path.basename(folder)
    ):
      return None, "its 'checkpoints' is not a folder name"
    return marker, None

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
    if marker is None or marker.get("handed_over"):
      return False
    if marker.get("worker") == self.worker_id:
      return False  # our own, from before a restart
    age = self.age_s(candidate_id)
    return age is not None and age < self.settings.stale_after_s

  def write_marker(
    self,
    candidate_id: str,
    proposal: Proposal,
    failed_attempts: Sequence[str] = (),
    checkpoints: Optional[str] = None,
  ) -> None:
    """Writes (or rewrites) the marker atomically, as ours."""
    content = self._marker_content(candidate_id, proposal, failed_attempts, checkpoints)
    files.write_atomically(self.marker_path(candidate_id), json.dumps(content, sort_keys=True))

  def hand_over(self, claim: Claim) -> None:
    """Frees a stopping worker's marker, so any worker may resume its child at once."""
    content = self._marker_content(
      claim.id, claim.proposal, claim.failed_attempts, claim.checkpoints
    )
    content["handed_over"] = True
    try:
      files.write_atomically(self.marker_path(claim.id), json.dumps(content, sort_keys=True))
    except (tf.errors.OpError, OSError) as e:
      logging.warning("Could not hand over candidate %s: %s", claim.id, e)

  def try_claim(
    self,
    candidate_id: str,
    propose: Callable[[], Proposal],
    check: Optional[Callable[[Proposal], Any]] = None,
  ) -> Optional[Claim]:
    """Claims a candidate nobody is training, or returns None.

    Args:
      candidate_id: the candidate.
      propose: returns the ``Proposal`` for a fresh candidate; not called
        when an old marker (ours or a dead worker's) already fixes it.
      check: raises ValueError (or KeyError, TypeError) when an old marker's
        proposal is invalid (its genome does not read); such a marker is
        replaced by a fresh proposal, like one that cannot be read.

    Raises:
      UserError: another live process on this host uses this worker id.
    """
    marker, problem = self._read(candidate_id)
    if problem == UNAVAILABLE:
      return None
    taken_over_from, proposal, failed_attempts, resume_from = None, None, [], None
    checkpoints = f"{self.worker_id}-{uuid.uuid4().hex[:8]}"
    if marker is not None:
      if marker["worker"] == self.worker_id:
        self._check_not_running_twice(marker)
      elif self.is_live(candidate_id):
        return None
      else:
        taken_over_from = marker["worker"]
      proposal = Proposal(
        genome=marker["genome"],
        parent=marker.get("parent"),
        mutation=str(marker.get("mutation", "random")),
        seed=marker["seed"],
      )
      try:
        if check:
          check(proposal)
        failed_attempts = [str(reason) for reason in marker.get("failed_attempts", [])]
        # A marker written before claims had folders of their own names none:
        # its checkpoints are in the candidate's folder itself.
        previous = marker.get("checkpoints")
        resume_from = (
          self.claim_folder(candidate_id, previous)
          if previous
          else self.checkpoint_root(candidate_id)
        )
        self.write_marker(candidate_id, proposal, failed_attempts, checkpoints)
      except (ValueError, KeyError, TypeError) as e:
        problem, proposal, resume_from = f"its genome is invalid: {e}", None, None
    if proposal is None:
      if problem:
        # Nothing a marker holds can be trusted once part of it is wrong, and a
        # worker still training it finds it changed and drops the child.
        logging.warning(
          "The marker of candidate %s is unusable (%s); replacing it with a fresh proposal.",
          candidate_id,
          problem,
        )
        self.release(candidate_id)  # and the checkpoints of whatever child it held
        taken_over_from = taken_over_from or "?"
      proposal = propose()
      if not self._create_marker(candidate_id, proposal, checkpoints):
        return None  # another worker was quicker
    # Last writer wins: whoever reads back someone else's name backs off.
    mine = self.read_marker(candidate_id)
    if mine is None or mine.get("worker") != self.worker_id:
      return None
    claim = Claim(self, candidate_id, proposal, taken_over_from, checkpoints, resume_from)
    claim.failed_attempts = failed_attempts
    return claim

  def release(self, candidate_id: str) -> None:
    """Removes the marker and every claim's checkpoints once its record exists."""
    checkpoints = self.checkpoint_root(candidate_id)
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

  def _create_marker(self, candidate_id: str, proposal: Proposal, checkpoints: str) -> bool:
    """Creates the marker unless one exists; atomic on local disks."""
    content = self._marker_content(candidate_id, proposal, checkpoints=checkpoints)
    try:
      # Atomic on local disks and on gs:// with the Cloud Storage client; on
      # other object stores the read-back in try_claim settles most races and
      # record writes settle the rest.
      files.write_atomically(
        self.marker_path(candidate_id), json.dumps(content, sort_keys=True), overwrite=False
      )
      return True
    except FileExistsError:
      return False

  def _marker_content(
    self,
    candidate_id: str,
    proposal: Proposal,
    failed_attempts: Sequence[str] = (),
    checkpoints: Optional[str] = None,
  ) -> dict[str, Any]:
    return {
      "id": candidate_id,
      **({"checkpoints": checkpoints} if checkpoints else {}),
      "worker": self.worker_id,
      "host": self._host,
      "pid": os.getpid(),
      "heartbeat_at": time.time(),
      "failed_attempts": list(failed_attempts),
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
