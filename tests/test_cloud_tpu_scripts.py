"""The Cloud TPU scripts, run as far as they go without Google Cloud.

A stand-in ``gcloud`` on PATH records the command lines the scripts run, so
these tests check what would be asked of Google Cloud (VM names, flags, one
worker per host against the gs:// workdir), not that Google Cloud does it.
It fails for the VM names in ``GCLOUD_FAIL``, and keeps each remote shell
command (``--command=``) whole, so a test can run it as the host would.
"""

import os
import socket
import stat
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "launch", "cloud_tpu")


@pytest.fixture(name="run_script")
def fixture_run_script(tmp_path):
  log = tmp_path / "gcloud.log"
  commands = tmp_path / "commands"
  commands.mkdir()
  fake = tmp_path / "bin" / "gcloud"
  fake.parent.mkdir()
  fake.write_text(
    f"""#!/bin/sh
printf "%s\\n" "$*" >> "{log}"
for a in "$@"; do
  case "$a" in --command=*) printf "%s" "${{a#--command=}}" > "{commands}/$$" ;; esac
  for bad in $GCLOUD_FAIL; do
    if [ "$a" = "$bad" ]; then echo "ERROR: (gcloud) $bad: unreachable" >&2; exit 1; fi
  done
done
"""
  )
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
    run.remote_commands = [p.read_text() for p in sorted(commands.iterdir())]
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
    assert "launch.search --workdir=gs://b/run --gin_file=gin/tvn/ucf101_tpu.gin" in call
    assert "--strategy=tpu --tpu=local --worker_id=$(hostname)" in call


def test_stop_with_delete_stops_workers_then_deletes_the_vms(run_script):
  result, calls = run_script("stop.sh", "--delete")
  assert result.returncode == 0, result.stderr
  assert sum("pkill -TERM -f 'launch[.]search'" in c for c in calls) == 2
  assert sorted(c.split()[4] for c in calls if "tpu-vm delete" in c) == ["vs-0", "vs-1"]


def test_a_local_workdir_is_refused_before_anything_runs(run_script):
  result, calls = run_script("start.sh", WORKDIR="/tmp/run")
  assert result.returncode == 2 and calls == []
  assert "WORKDIR must be a gs:// path" in result.stderr


@pytest.mark.parametrize(
  "script,args",
  [("create.sh", []), ("install.sh", []), ("start.sh", []), ("stop.sh", ["--delete"])],
)
def test_a_failure_on_any_vm_fails_the_script_and_names_it(run_script, script, args):
  result, calls = run_script(script, *args, GCLOUD_FAIL="vs-1")
  assert result.returncode != 0
  assert "failed on 1 of 2 TPU VMs: vs-1" in result.stderr, result.stderr
  assert any("vs-0" in c for c in calls)  # the other VM was still asked
  if script == "stop.sh":
    assert sum("tpu-vm delete" in c for c in calls) == 2  # a failed stop does not keep VMs


def test_start_passes_settings_to_the_remote_shell_unchanged(run_script, tmp_path):
  """Runs the remote command the way the host's shell would, with a stand-in Python."""
  workdir = "gs://b/it's a $(touch pwned) run"
  bindings = "load_dataset.data_dir='gs://b/tfds'\nSearch.seed = `touch pwned`; \"x\""
  result, _ = run_script("start.sh", COUNT="1", WORKDIR=workdir, GIN_BINDINGS=bindings)
  assert result.returncode == 0, result.stderr
  [command] = run_script.remote_commands
  home = tmp_path / "home"
  (home / "vsearch").mkdir(parents=True)
  python = home / "venv" / "bin" / "python"
  python.parent.mkdir(parents=True)
  args_file = tmp_path / "args"
  python.write_text(
    f'#!/bin/sh\nprintf "%s\\0" "$@" > "{args_file}.tmp"; mv "{args_file}.tmp" "{args_file}"\n'
  )
  python.chmod(python.stat().st_mode | stat.S_IEXEC)
  subprocess.run(
    ["bash", "-c", command], env=dict(os.environ, HOME=str(home)), cwd=tmp_path, check=True
  )
  deadline = time.monotonic() + 30
  while not args_file.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
  assert args_file.read_text().split("\0")[:-1] == [
    "-m",
    "launch.search",
    f"--workdir={workdir}",
    "--gin_file=gin/tvn/ucf101_tpu.gin",
    f"--gin_bindings={bindings}",
    "--strategy=tpu",
    "--tpu=local",
    f"--worker_id={socket.gethostname()}",
  ]
  assert not list(tmp_path.rglob("pwned"))
