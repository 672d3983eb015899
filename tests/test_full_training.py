"""launch.train end to end: a run killed with SIGKILL resumes, bad input ends cleanly."""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from vsearch.train import trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 120

# One (2+1)D block at 4 frames of 32 px: a few hundred parameters, ~0.1 s a step.
GENOME = {
  "resolution": 32,
  "num_frames": 4,
  "frame_stride": 1,
  "blocks": [
    {
      "spatial_type": "conv",
      "spatial_kernel": 3,
      "spatial_stride": 2,
      "temporal_type": "conv",
      "temporal_kernel": 2,
      "temporal_stride": 1,
      "repeats": 1,
      "filters": 8,
      "expand": 1,
      "skip": False,
      "squeeze": 0.0,
      "context_gate": False,
      "inverted_bottleneck": False,
      "spatial_activation": "relu",
      "temporal_activation": "relu",
      "output_activation": "relu",
    }
  ],
}

# The data of tests/data/tiny_search.gin, and a schedule whose warm-up and
# cosine make the learning rate tell one step from another.
BINDINGS = (
  "synthetic_motion_config.num_frames = 8",
  "synthetic_motion_config.train_per_class = 8",
  "synthetic_motion_config.validation_per_class = 4",
  f"TrainConfig.steps = {STEPS}",
  "TrainConfig.steps_per_call = 5",
  "TrainConfig.batch_size = 8",
  "TrainConfig.eval_batch_size = 8",
  "TrainConfig.warmup_steps = 20",
  "FullTraining.checkpoint_every = 10",
  "FullTraining.eval_every = 30",
)


def _train_command(workdir, data_dir, genome):
  return [
    sys.executable,
    "-m",
    "launch.train",
    f"--workdir={workdir}",
    f"--genome={genome}",
    "--gin_file=gin/tvn/train_smoke.gin",
    f"--gin_bindings=load_dataset.data_dir='{data_dir}'",
    *(f"--gin_bindings={b}" for b in BINDINGS),
  ]


def _run(command, timeout=300):
  return subprocess.run(
    command, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
  )


def _scalars(directory, tag):
  """{step: value} of ``tag`` over every event file in ``directory``, later files winning."""
  values = {}
  for path in sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*"))):
    for record in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event.FromString(record.numpy())
      for value in event.summary.value:
        if value.tag == tag:
          values[event.step] = float(tf.make_ndarray(value.tensor))
  return values


@pytest.mark.slow
def test_train_killed_after_a_checkpoint_resumes_and_finishes_once(tmp_path):
  workdir, data_dir = tmp_path / "work", tmp_path / "data"
  genome = tmp_path / "genome.json"
  genome.write_text(json.dumps(GENOME))
  command = _train_command(workdir, data_dir, genome)
  index = workdir / "checkpoints" / "checkpoint"
  process = subprocess.Popen(
    command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
  )
  deadline = time.monotonic() + 200
  while not index.exists():
    assert process.poll() is None, "the run ended before it could be killed"
    assert time.monotonic() < deadline, "the run wrote no checkpoint in time"
    time.sleep(0.05)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert not (workdir / "result.json").exists()

  resumed = _run(command)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  match = re.search(r"Resuming from step (\d+)", resumed.stdout)
  assert match, resumed.stdout
  assert 0 < int(match.group(1)) < STEPS
  assert f"[{STEPS}/{STEPS}]" in resumed.stdout
  result = json.loads((workdir / "result.json").read_text())
  assert result["steps"] == STEPS and result["num_params"] > 0
  assert 0.0 <= result["accuracy"] <= 1.0 and result["wall_s"] > 0
  assert result["genome"] == GENOME and str(genome) in result["source"]
  assert json.loads((workdir / "genome.json").read_text()) == GENOME
  for name in ("final.weights.h5", "config.gin", "operative_config.gin"):
    assert (workdir / name).exists(), name
  checkpoints = [
    int(m) for m in re.findall(r"ckpt-(\d+)\.index", " ".join(os.listdir(workdir / "checkpoints")))
  ]
  assert max(checkpoints) == STEPS

  # The learning rate logged at every step is the schedule's value there: the
  # resumed run restored the optimizer's step instead of warming up again.
  rates = _scalars(workdir / "tensorboard" / "train", "learning_rate")
  optimizer = trainer.make_optimizer(
    trainer.TrainConfig(steps=STEPS, warmup_steps=20, learning_rate=0.006)
  )
  assert sorted(rates) == list(range(5, STEPS + 1, 5))
  for step, rate in rates.items():
    optimizer.iterations.assign(step)
    assert rate == pytest.approx(float(optimizer.learning_rate), rel=1e-5, abs=1e-8), step
  assert _scalars(workdir / "tensorboard" / "train", "loss")
  accuracy = _scalars(workdir / "tensorboard" / "validation", "accuracy")
  assert STEPS in accuracy and 30 in accuracy

  # Finished: running again trains nothing and changes nothing.
  again = _run(command)
  assert again.returncode == 0 and "Already finished" in again.stdout, again.stderr[-3000:]
  assert json.loads((workdir / "result.json").read_text()) == result
  assert "Resuming" not in again.stdout


@pytest.mark.parametrize(
  "args,message",
  [
    ([], "exactly one of"),
    (["--zoo=no_such_model"], "no_such_model"),
    (["--genome={not_json}"], "not valid JSON"),
    (["--genome={not_genome}"], "missing keys"),
  ],
)
def test_bad_input_ends_with_one_line(tmp_path, args, message):
  not_json = tmp_path / "not.json"
  not_json.write_text("{not json")
  not_genome = tmp_path / "not_genome.json"
  not_genome.write_text(json.dumps({"resolution": 32}))
  args = [a.format(not_json=not_json, not_genome=not_genome) for a in args]
  result = _run([sys.executable, "-m", "launch.train", f"--workdir={tmp_path / 'w'}", *args])
  assert result.returncode == 2, result.stderr[-3000:]
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr
  assert "Traceback" not in result.stdout + result.stderr
  assert not (tmp_path / "w").exists()


def test_missing_workdir_is_a_flag_error():
  result = _run([sys.executable, "-m", "launch.train", "--zoo=tvn1"])
  assert result.returncode != 0
  assert "--workdir" in result.stderr and "Traceback" not in result.stderr
