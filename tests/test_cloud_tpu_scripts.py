"""The Cloud TPU scripts, run as far as they go without Google Cloud.

A stand-in ``gcloud`` on PATH records the command lines the scripts run, so
these tests check what would be asked of Google Cloud (VM names, flags, one
worker per host against the gs:// workdir), not that Google Cloud does it.
"""

import os
import stat
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "launch", "cloud_tpu")


@pytest.fixture(name="run_script")
def fixture_run_script(tmp_path):
  log = tmp_path / "gcloud.log"
  fake = tmp_path / "bin" / "gcloud"
  fake.parent.mkdir()
  fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\n')
  fake.chmod(fake.stat().st_mode | stat.S_IEXEC)

  def run(script, *args, **settings):
    env = dict(os.environ, PATH=f"{fake.parent}:{os.environ['PATH']}")
    env.update(
      PROJECT="p",
      ZONE="z",
      TPU_NAME="vs",
      COUNT="2",
      WORKDIR="gs://b/run",
      GIN_FILES="gin/tvn/ucf101_tpu.gin",
    )
    env.update(settings)
    result = subprocess.run(
      ["bash", os.path.join(SCRIPTS, script), *args],
      env=env,
      capture_output=True,
      text=True,
      timeout=60,
      check=False,
    )
    # Compare commands with their whitespace collapsed.
    calls = (
      [" ".join(line.split()) for line in log.read_text().splitlines()] if log.exists() else []
    )
    return result, calls

  return run


def test_every_script_parses():
  for name in sorted(os.listdir(SCRIPTS)):
    if name.endswith(".sh"):
      result = subprocess.run(
        ["bash", "-n", os.path.join(SCRIPTS, name)], capture_output=True, text=True, check=False
      )
      assert result.returncode == 0, f"{name}: {result.stderr}"


def test_create_makes_count_tpu_vms(run_script):
  result, calls = run_script("create.sh")
  assert result.returncode == 0, result.stderr
  assert sorted(c.split()[4] for c in calls) == ["vs-0", "vs-1"]
  assert all(
    "tpus tpu-vm create" in c and "--accelerator-type=v4-8" in c and "--spot" in c for c in calls
  )


def test_start_runs_one_worker_per_host_on_the_shared_workdir(run_script):
  result, calls = run_script("start.sh")
  assert result.returncode == 0, result.stderr
  assert len(calls) == 2 and all("--worker=all" in c for c in calls)
  for call in calls:
    assert "launch.search --workdir='gs://b/run' --gin_file=gin/tvn/ucf101_tpu.gin" in call
    assert "--strategy=tpu --tpu=local --worker_id=$(hostname)" in call


def test_stop_with_delete_stops_workers_then_deletes_the_vms(run_script):
  result, calls = run_script("stop.sh", "--delete")
  assert result.returncode == 0, result.stderr
  assert sum("pkill -f 'launch.search'" in c for c in calls) == 2
  assert sorted(c.split()[4] for c in calls if "tpu-vm delete" in c) == ["vs-0", "vs-1"]


def test_a_local_workdir_is_refused_before_anything_runs(run_script):
  result, calls = run_script("start.sh", WORKDIR="/tmp/run")
  assert result.returncode == 2 and calls == []
  assert "WORKDIR must be a gs:// path" in result.stderr
