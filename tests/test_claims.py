"""In-progress markers: one owner per candidate, stale ones taken over, never lost."""

import json
import os
import subprocess
import sys
import time

import pytest

from vsearch.errors import ClaimLostError, UserError
from vsearch.search import claims as claims_lib

FAST = claims_lib.ClaimSettings(heartbeat_s=0.05, stale_after_s=60.0)


def _proposal(n=1):
  return claims_lib.Proposal(genome={"n": n}, parent=None, mutation="random", seed=n)


def _age(claims, candidate_id, seconds):
  """Makes a marker look untouched for ``seconds``."""
  path = claims.marker_path(candidate_id)
  then = time.time() - seconds
  os.utime(path, (then, then))


def test_a_live_claim_keeps_other_workers_out(tmp_path):
  a = claims_lib.Claims(str(tmp_path), "a", FAST)
  b = claims_lib.Claims(str(tmp_path), "b", FAST)
  claim = a.try_claim("000000", lambda: _proposal(1))
  assert claim is not None and claim.proposal == _proposal(1)
  assert b.is_live("000000")
  assert b.try_claim("000000", lambda: pytest.fail("must not propose")) is None
  assert b.try_claim("000001", lambda: _proposal(2)) is not None
  assert a.markers() == ["000000", "000001"]


def test_a_stale_marker_is_taken_over_with_its_proposal(tmp_path):
  a = claims_lib.Claims(str(tmp_path), "a", FAST)
  b = claims_lib.Claims(str(tmp_path), "b", FAST)
  a.try_claim("000003", lambda: _proposal(3))
  _age(a, "000003", 61)
  assert not b.is_live("000003")
  claim = b.try_claim("000003", lambda: pytest.fail("the dead worker's child is kept"))
  assert claim is not None and claim.taken_over_from == "a"
  assert claim.proposal == _proposal(3)  # same child, so its checkpoints still fit
  assert json.load(open(a.marker_path("000003")))["worker"] == "b"


def test_a_restarted_worker_takes_back_its_own_marker_at_once(tmp_path):
  before = claims_lib.Claims(str(tmp_path), "a", FAST)
  before.try_claim("000000", lambda: _proposal(7))
  marker = json.load(open(before.marker_path("000000")))
  marker["pid"] = 2**22 + 12345  # a process that no longer exists
  with open(before.marker_path("000000"), "w") as f:
    json.dump(marker, f)
  after = claims_lib.Claims(str(tmp_path), "a", FAST)
  claim = after.try_claim("000000", lambda: pytest.fail("must not propose"))
  assert claim is not None and claim.taken_over_from is None
  assert claim.proposal == _proposal(7)


def test_the_same_worker_id_twice_on_one_host_is_refused(tmp_path):
  first = claims_lib.Claims(str(tmp_path), "a", FAST)
  first.try_claim("000000", lambda: _proposal())
  other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  try:
    marker = json.load(open(first.marker_path("000000")))
    marker["pid"] = other.pid
    with open(first.marker_path("000000"), "w") as f:
      json.dump(marker, f)
    with pytest.raises(UserError, match="own --worker_id"):
      claims_lib.Claims(str(tmp_path), "a", FAST).try_claim("000000", _proposal)
  finally:
    other.kill()
    other.wait()


def test_heartbeats_keep_a_marker_fresh_and_notice_a_takeover(tmp_path):
  a = claims_lib.Claims(str(tmp_path), "a", FAST)
  b = claims_lib.Claims(str(tmp_path), "b", FAST)
  claim = a.try_claim("000000", lambda: _proposal())
  with claim:
    _age(a, "000000", 30)
    deadline = time.monotonic() + 10
    while a.age_s("000000") > 5 and time.monotonic() < deadline:
      time.sleep(0.02)
    assert a.age_s("000000") < 5, "the heartbeat did not refresh the marker"
    claim.check()
    b.write_marker("000000", _proposal())  # b took it over (a looked dead)
    deadline = time.monotonic() + 10
    while not claim.lost and time.monotonic() < deadline:
      time.sleep(0.02)
  with pytest.raises(ClaimLostError):
    claim.check()
  assert json.load(open(a.marker_path("000000")))["worker"] == "b"  # a did not write back


def test_release_removes_the_marker_and_the_child_checkpoints(tmp_path):
  a = claims_lib.Claims(str(tmp_path), "a", FAST)
  claim = a.try_claim("000000", lambda: _proposal())
  os.makedirs(claim.checkpoint_dir)
  open(os.path.join(claim.checkpoint_dir, "ckpt-3.index"), "w").close()
  a.release("000000")
  assert a.markers() == [] and not os.path.exists(claim.checkpoint_dir)
  assert os.listdir(a.directory) == []


def test_each_claim_saves_into_a_folder_of_its_own_and_resumes_from_the_one_before(tmp_path):
  a = claims_lib.Claims(str(tmp_path), "a", FAST)
  b = claims_lib.Claims(str(tmp_path), "b", FAST)
  first = a.try_claim("000004", lambda: _proposal(4))
  assert first.resume_from is None  # a fresh child
  assert os.path.dirname(first.checkpoint_dir) == a.checkpoint_root("000004")
  assert json.load(open(a.marker_path("000004")))["checkpoints"] == first.checkpoints
  _age(a, "000004", 61)  # a died
  second = b.try_claim("000004", lambda: pytest.fail("the dead worker's child is kept"))
  assert second.resume_from == first.checkpoint_dir
  assert second.checkpoint_dir != first.checkpoint_dir  # a living a never shares b's folder
  assert json.load(open(b.marker_path("000004")))["checkpoints"] == second.checkpoints
  with second:
    second.beat()
  b.hand_over(second)
  third = a.try_claim("000004", lambda: pytest.fail("a handed-over child is kept"))
  assert third.resume_from == second.checkpoint_dir
  assert len({first.checkpoint_dir, second.checkpoint_dir, third.checkpoint_dir}) == 3


def test_a_marker_from_before_claim_folders_resumes_from_the_candidates_folder(tmp_path):
  a = claims_lib.Claims(str(tmp_path), "a", FAST)
  a.write_marker("000005", _proposal(5))  # names no folder, as older markers did
  _age(a, "000005", 61)
  claim = claims_lib.Claims(str(tmp_path), "b", FAST).try_claim("000005", pytest.fail)
  assert claim.resume_from == a.checkpoint_root("000005")


@pytest.mark.parametrize(
  "content",
  [
    '{"worker": ',  # truncated
    "[1, 2]",  # not an object
    '{"worker": "b", "seed": 1}',  # no genome
    '{"worker": "b", "genome": {}, "seed": "one"}',  # a seed that is not a number
    '{"worker": "b", "genome": {}, "seed": 1, "checkpoints": "../../elsewhere"}',  # not a name
  ],
)
def test_an_unreadable_marker_is_replaced_by_a_fresh_proposal_at_once(tmp_path, caplog, content):
  a = claims_lib.Claims(str(tmp_path), "a", FAST)
  with open(a.marker_path("000002"), "w") as f:
    f.write(content)
  os.makedirs(a.checkpoint_root("000002"))  # whatever child it held, its checkpoints go too
  assert not a.is_live("000002")
  claim = a.try_claim("000002", lambda: _proposal(2))  # fresh, not stale: replaced all the same
  assert claim is not None and claim.proposal == _proposal(2) and claim.failed_attempts == []
  assert json.load(open(a.marker_path("000002")))["worker"] == "a"
  assert not os.path.exists(a.checkpoint_root("000002"))
  assert "000002" in caplog.text and "fresh proposal" in caplog.text


def test_a_marker_whose_genome_is_invalid_is_replaced(tmp_path):
  a = claims_lib.Claims(str(tmp_path), "a", FAST)
  b = claims_lib.Claims(str(tmp_path), "b", FAST)
  a.try_claim("000001", lambda: _proposal(1))
  _age(a, "000001", 61)  # a's worker died

  def check(proposal):
    if proposal.genome.get("n") == 1:
      raise ValueError("blocks[0].filters must be positive")

  claim = b.try_claim("000001", lambda: _proposal(5), check=check)
  assert claim is not None and claim.proposal == _proposal(5)
  assert json.load(open(b.marker_path("000001")))["genome"] == {"n": 5}


def test_a_live_marker_is_not_judged_by_its_genome(tmp_path):
  a = claims_lib.Claims(str(tmp_path), "a", FAST)
  b = claims_lib.Claims(str(tmp_path), "b", FAST)
  a.try_claim("000001", lambda: _proposal(1))
  assert b.try_claim("000001", lambda: _proposal(5), check=lambda p: 1 / 0) is None


def test_failed_attempts_are_kept_in_the_marker_across_takeovers(tmp_path):
  a = claims_lib.Claims(str(tmp_path), "a", FAST)
  claim = a.try_claim("000004", lambda: _proposal(4))
  assert claim.record_failure("RuntimeError: converter crashed") == 1
  with claim:
    time.sleep(0.2)  # heartbeats rewrite the marker and keep the count
  assert json.load(open(a.marker_path("000004")))["failed_attempts"] == [
    "RuntimeError: converter crashed"
  ]
  _age(a, "000004", 61)
  again = claims_lib.Claims(str(tmp_path), "b", FAST).try_claim("000004", pytest.fail)
  assert again.failed_attempts == ["RuntimeError: converter crashed"]


def test_a_handed_over_marker_is_free_at_once_and_keeps_its_child(tmp_path):
  a = claims_lib.Claims(str(tmp_path), "a", FAST)
  b = claims_lib.Claims(str(tmp_path), "b", FAST)
  claim = a.try_claim("000000", lambda: _proposal(3))
  claim.failed_attempts.append("OSError: flaky")
  assert b.is_live("000000")
  a.hand_over(claim)
  assert not b.is_live("000000")
  taken = b.try_claim("000000", lambda: pytest.fail("the child is kept"))
  assert taken.taken_over_from == "a" and taken.proposal == _proposal(3)
  assert taken.failed_attempts == ["OSError: flaky"]
  assert not json.load(open(b.marker_path("000000"))).get("handed_over")


@pytest.mark.parametrize(
  "bad",
  [
    dict(heartbeat_s=0.0, stale_after_s=10.0),
    dict(heartbeat_s=30.0, stale_after_s=10.0),
  ],
)
def test_bad_settings_are_refused(bad):
  with pytest.raises(UserError, match="heartbeat_s"):
    claims_lib.ClaimSettings(**bad)


def test_bad_worker_ids_are_refused(tmp_path):
  with pytest.raises(UserError, match="worker_id"):
    claims_lib.Claims(str(tmp_path), "a/b")
