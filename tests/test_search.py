"""The search end to end: a real search killed with SIGKILL resumes, bad input ends cleanly."""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from vsearch.search.store import RecordStore

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(REPO, "tests", "data", "tiny_search.gin")


def _search_command(workdir, data_dir, *extra):
  return [
    sys.executable,
    "-m",
    "launch.search",
    f"--workdir={workdir}",
    f"--gin_file={TINY}",
    f"--gin_bindings=load_dataset.data_dir='{data_dir}'",
    *extra,
  ]


def _run(command, timeout=600):
  return subprocess.run(
    command, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
  )


def _files(directory):
  """The files in ``directory`` by name (not its folders, such as candidates/unreadable)."""
  paths = {name: os.path.join(directory, name) for name in sorted(os.listdir(directory))}
  return {name: open(path, "rb").read() for name, path in paths.items() if os.path.isfile(path)}


@pytest.mark.slow
def test_search_killed_mid_candidate_resumes_without_losing_or_repeating(tmp_path):
  workdir, data_dir = str(tmp_path / "work"), str(tmp_path / "data")
  candidates = os.path.join(workdir, "candidates")
  process = subprocess.Popen(
    _search_command(workdir, data_dir),
    cwd=REPO,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
  deadline = time.monotonic() + 400
  while time.monotonic() < deadline:
    if os.path.isdir(candidates) and len(os.listdir(candidates)) >= 2:
      break
    assert process.poll() is None, "the search ended before it could be killed"
    time.sleep(0.2)
  else:
    pytest.fail("the search wrote no records in time")
  time.sleep(1.0)  # let it get into the next candidate's training
  process.send_signal(signal.SIGKILL)
  process.wait()
  before = {k: v for k, v in _files(candidates).items() if k.endswith(".json")}
  assert 2 <= len(before) < 6
  # A broken record (as a crash of another tool might leave) is moved aside, and its
  # candidate runs again.
  broken = os.path.join(candidates, "000005.json")
  with open(broken, "w") as f:
    f.write('{"id": "000005", "genome": {')

  result = _run(_search_command(workdir, data_dir))
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Resuming" in result.stdout
  assert "000005.json" in result.stderr  # the warning names the file
  after = _files(candidates)
  for name, content in before.items():
    assert after[name] == content, f"{name} was rewritten"
  [aside] = os.listdir(os.path.join(candidates, "unreadable"))
  assert aside.startswith("000005.") and aside in result.stderr
  assert open(os.path.join(candidates, "unreadable", aside)).read() == (
    '{"id": "000005", "genome": {'
  )
  assert sorted(n for n in after if n.endswith(".json")) == [f"{i:06d}.json" for i in range(6)]
  assert not [n for n in after if ".tmp-" in n and n[:6] + ".json" not in before]
  records = RecordStore(workdir).read_all()
  assert [r.id for r in records] == [f"{i:06d}" for i in range(6)]
  assert all(r.status == "ok" and 0.0 <= r.fitness <= 1.0 for r in records)
  assert all(r.parent is None for r in records[:3])  # the random initial population
  assert all(r.parent is not None and r.mutation for r in records[3:])
  assert "Best:" in result.stdout and "record:" in result.stdout
  for name in ("config.gin", "operative_config.gin"):
    assert os.path.exists(os.path.join(workdir, name))

  # Finished: running again changes nothing and trains nothing.
  again = _run(_search_command(workdir, data_dir))
  assert again.returncode == 0 and "0 to go" in again.stdout
  assert _files(candidates) == after


@pytest.mark.parametrize(
  "args,message",
  [
    (["--gin_file=gin/tvn/no_such.gin"], "no_such.gin"),
    (
      ["--gin_file=gin/tvn/smoke.gin", "--gin_bindings=Search.no_such_parameter=1"],
      "no_such_parameter",
    ),
    (
      ["--gin_file=gin/tvn/smoke.gin", "--gin_bindings=Search.initial_genomes=['{genome}']"],
      "not valid JSON",
    ),
    (
      ["--gin_file=gin/tvn/smoke.gin", "--gin_bindings=Search.initial_genomes=['{bad_field}']"],
      "blocks[0].filters",
    ),
    (["--gin_file=gin/tvn/smoke.gin", "--strategy=gpu"], "GPU"),
    (["--gin_file=gin/tvn/smoke.gin", "--strategy=tpu", "--tpu=local"], "no TPU"),
    (["--gin_file=gin/tvn/smoke.gin", "--workdir=/proc/vsearch"], "Choose a --workdir"),
    (["--gin_file=gin/tvn/smoke.gin", "--cpus=0-x"], "--cpus"),
    ([], "needs --gin_file"),
    (["--gin_file=gin/data/synthetic_smoke.gin"], "Search.method is not set"),
    (["--gin_file=gin/tvn/smoke.gin", "--gin_bindings=Search.num_candidates=-1"], "num_candidates"),
    (["--gin_file=gin/tvn/smoke.gin", "--gin_bindings=TrainConfig.steps=0"], "TrainConfig.steps"),
  ],
)
def test_bad_input_ends_with_one_line(tmp_path, args, message):
  genome = tmp_path / "genome.json"
  genome.write_text("{not json")
  from vsearch.methods import zoo

  bad = zoo.genome("tvn1").to_dict()
  bad["blocks"][0]["filters"] = -3
  bad_field = tmp_path / "bad_field.json"
  bad_field.write_text(json.dumps(bad))
  args = [a.format(genome=genome, bad_field=bad_field) for a in args]
  result = _run([sys.executable, "-m", "launch.search", f"--workdir={tmp_path / 'w'}", *args])
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr
  assert "Traceback" not in result.stdout + result.stderr


def test_missing_workdir_is_a_flag_error():
  result = _run([sys.executable, "-m", "launch.search", "--gin_file=gin/tvn/smoke.gin"])
  assert result.returncode != 0
  assert "--workdir" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_sigterm_checkpoints_the_child_and_the_same_command_resumes_it(tmp_path):
  workdir, data_dir = str(tmp_path / "work"), str(tmp_path / "data")
  command = _search_command(
    workdir,
    data_dir,
    "--gin_bindings=Search.num_candidates = 1",
    "--gin_bindings=TrainConfig.steps = 150",
    "--gin_bindings=Search.checkpoint_every = 3",
  )
  # The claim's own folder (in_progress/000000.checkpoints/<worker>-<token>).
  pattern = os.path.join(workdir, "in_progress", "000000.checkpoints", "*", "checkpoint")
  process = subprocess.Popen(
    command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
  )
  deadline = time.monotonic() + 400
  while not glob.glob(pattern):
    assert process.poll() is None, "the search ended before it could be stopped"
    assert time.monotonic() < deadline, "the child wrote no checkpoint in time"
    time.sleep(0.1)
  checkpoints = os.path.dirname(glob.glob(pattern)[0])
  sent = time.monotonic()
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=60)
  assert time.monotonic() - sent < 30
  assert process.returncode == 143, stderr[-3000:]
  last = stderr.strip().splitlines()[-1]
  match = re.fullmatch(
    r"stopped: by SIGTERM: candidate 000000 checkpointed at step (\d+) of 150 in "
    + re.escape(checkpoints)
    + "; the same command resumes it.",
    last,
  )
  assert match, stderr[-3000:]
  step = int(match.group(1))
  assert 3 <= step < 150 and step % 3 == 0  # a step boundary (steps_per_call = 3)
  assert sorted(os.listdir(checkpoints))[-1] == f"ckpt-{step}.index"
  assert not os.path.exists(os.path.join(workdir, "candidates", "000000.json"))
  marker = json.load(open(os.path.join(workdir, "in_progress", "000000.json")))
  assert marker["handed_over"] and marker["failed_attempts"] == []
  assert marker["checkpoints"] == os.path.basename(checkpoints)

  result = _run(command)
  assert result.returncode == 0, result.stderr[-3000:]
  [record] = RecordStore(workdir).read_all()
  assert record.ok and record.timings["resumed_from_step"] == step
  assert os.listdir(os.path.join(workdir, "in_progress")) == []
