"""Two search workers share one store; one is killed mid-child with SIGKILL.

The other worker notices the dead worker's stale marker, takes its child
over and resumes it from the child's checkpoint; the killed worker, started
again, joins the rest of the search. At the end every candidate has exactly
one valid record and nothing is left in progress.
"""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(REPO, "tests", "data", "tiny_search.gin")
NUM_CANDIDATES = 8


def _start(workdir, data_dir, worker_id, log):
  command = [
    sys.executable,
    "-m",
    "launch.search",
    f"--workdir={workdir}",
    f"--gin_file={TINY}",
    f"--worker_id={worker_id}",
    f"--gin_bindings=load_dataset.data_dir='{data_dir}'",
    f"--gin_bindings=Search.num_candidates={NUM_CANDIDATES}",
    # Long enough per child to be killed between checkpoints.
    "--gin_bindings=TrainConfig.steps=15",
    "--gin_bindings=TrainConfig.steps_per_call=3",
    "--gin_bindings=Search.checkpoint_every=3",
    "--gin_bindings=Search.wait_poll_s=0.5",
    "--gin_bindings=ClaimSettings.heartbeat_s=0.5",
    "--gin_bindings=ClaimSettings.stale_after_s=6.0",
  ]
  return subprocess.Popen(command, cwd=REPO, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def _wait_for(condition, processes, timeout, what):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    found = condition()
    if found:
      return found
    for p in processes:
      assert p.poll() is None, f"a worker exited early while waiting for {what}"
    time.sleep(0.05)
  pytest.fail(f"timed out waiting for {what}")


def _checkpointed_child_of(in_progress, worker):
  """The id of a child ``worker`` is training that has a checkpoint, if any."""
  for name in os.listdir(in_progress):
    if not name.endswith(".json") or ".tmp-" in name:
      continue
    candidate_id = name[: -len(".json")]
    try:
      with open(os.path.join(in_progress, name)) as f:
        owner = json.load(f)["worker"]
    except (OSError, ValueError, KeyError):
      continue
    checkpoints = os.path.join(in_progress, f"{candidate_id}.checkpoints", "*", "checkpoint")
    if owner == worker and glob.glob(checkpoints):
      return candidate_id
  return None


@pytest.mark.slow
def test_workers_share_a_store_and_survive_a_sigkill(tmp_path):
  workdir, data_dir = str(tmp_path / "work"), str(tmp_path / "data")
  in_progress = os.path.join(workdir, "in_progress")
  candidates = os.path.join(workdir, "candidates")
  logs = {name: str(tmp_path / f"{name}.log") for name in ("a", "b", "a2")}
  a = _start(workdir, data_dir, "a", logs["a"])
  # The first worker prepares the dataset; the second starts once it exists.
  _wait_for(lambda: "Searching" in open(logs["a"]).read(), [a], 400, "the dataset")
  b = _start(workdir, data_dir, "b", logs["b"])
  try:
    killed = _wait_for(
      lambda: _checkpointed_child_of(in_progress, "a"),
      [a, b],
      400,
      "a checkpoint of a child of worker a",
    )
    a.send_signal(signal.SIGKILL)
    a.wait()
    record_path = os.path.join(candidates, f"{killed}.json")
    _wait_for(
      lambda: os.path.exists(record_path), [b], 400, f"worker b to finish the killed child {killed}"
    )
    a2 = _start(workdir, data_dir, "a", logs["a2"])
    for worker in (b, a2):
      assert worker.wait(timeout=600) == 0
  finally:
    for worker in (a, b):
      if worker.poll() is None:
        worker.kill()

  names = sorted(os.listdir(candidates))
  assert names == [f"{i:06d}.json" for i in range(NUM_CANDIDATES)], names
  records = {}
  for name in names:
    with open(os.path.join(candidates, name)) as f:
      record = json.load(f)  # every record is whole, valid JSON
    assert record["id"] == name[: -len(".json")]
    records[record["id"]] = record
  assert all(r["status"] == "ok" for r in records.values())
  resumed = records[killed]
  assert resumed["worker"].startswith("b "), resumed["worker"]
  assert resumed["timings"]["resumed_from_step"] >= 3
  assert os.listdir(in_progress) == []  # nothing left claimed or checkpointed
  log_b = open(logs["b"]).read()
  assert f"Taking over candidate {killed} from worker a" in log_b
  for name in ("a2", "b"):
    assert "Best:" in open(logs[name]).read()
  # TensorBoard: search scalars per worker, training scalars per candidate.
  assert sorted(os.listdir(os.path.join(workdir, "tensorboard", "search"))) == ["a", "b"]
  assert sorted(os.listdir(os.path.join(workdir, "tensorboard", "candidates"))) == [
    f"{i:06d}" for i in range(NUM_CANDIDATES)
  ]
