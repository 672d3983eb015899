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


def test_an_unreadable_marker_does_not_block_the_search(tmp_path):
  a = claims_lib.Claims(str(tmp_path), "a", FAST)
  with open(a.marker_path("000002"), "w") as f:
    f.write('{"worker": ')
  assert not a.is_live("000002")
  assert a.try_claim("000002", lambda: _proposal(2)) is None  # fresh: left alone
  _age(a, "000002", 61)
  claim = a.try_claim("000002", lambda: _proposal(2))  # stale: replaced
  assert claim is not None and claim.proposal == _proposal(2)
  assert json.load(open(a.marker_path("000002")))["worker"] == "a"


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
