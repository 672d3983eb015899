"""The distributed training loop: learns, stops on NaN, resumes from a checkpoint,
runs under MirroredStrategy and MultiWorkerMirroredStrategy."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from vsearch.errors import CandidateError
from vsearch.train import trainer


def _data(num=64, batch=16):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(num, 2, 4, 4, 3)).astype("float32")
  y = (x.mean(axis=(1, 2, 3, 4)) > 0).astype("int32")
  train = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(batch, drop_remainder=True)
  evaluation = tf.data.Dataset.from_tensor_slices((x, y)).batch(24)  # last batch partial
  return train, evaluation


def _linear_model(scale=1.0):
  inputs = tf.keras.Input((2, 4, 4, 3))
  x = tf.keras.layers.Flatten()(inputs)
  x = tf.keras.layers.Rescaling(scale)(x)
  return tf.keras.Model(inputs, tf.keras.layers.Dense(2)(x))


def test_learns_a_separable_task_and_counts_every_clip():
  train, evaluation = _data()
  metrics, timings, _ = trainer.train_and_evaluate(
    tf.distribute.get_strategy(),
    _linear_model,
    train,
    evaluation,
    trainer.TrainConfig(steps=60, batch_size=16, learning_rate=0.05, steps_per_call=7),
  )
  assert metrics["accuracy"] > 0.9
  assert metrics["num_eval_clips"] == 64
  assert metrics["num_params"] == 2 * 4 * 4 * 3 * 2 + 2
  assert set(timings) == {"build_s", "train_s", "evaluate_s"}


def test_nan_loss_is_a_candidate_error():
  train, evaluation = _data()
  with pytest.raises(CandidateError, match="nan|inf"):
    trainer.train_and_evaluate(
      tf.distribute.get_strategy(),
      lambda: _linear_model(scale=float("inf")),
      train,
      evaluation,
      trainer.TrainConfig(steps=5, batch_size=16),
    )


def test_mirrored_strategy_over_two_cpu_replicas():
  # Logical devices must be set before TensorFlow starts: use a fresh process.
  script = textwrap.dedent("""
      import tensorflow as tf
      [cpu] = tf.config.list_physical_devices("CPU")
      tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
      strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
      assert strategy.num_replicas_in_sync == 2
      from tests import test_trainer as t
      train, evaluation = t._data()
      metrics, _, _ = t.trainer.train_and_evaluate(
          strategy, t._linear_model, train, evaluation,
          t.trainer.TrainConfig(steps=60, batch_size=16, learning_rate=0.05))
      print("ACCURACY", metrics["accuracy"], metrics["num_eval_clips"])
  """)
  result = subprocess.run(
    [sys.executable, "-c", script],
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
    cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
  )
  assert result.returncode == 0, result.stderr[-3000:]
  accuracy, count = result.stdout.split("ACCURACY")[1].split()
  assert float(accuracy) > 0.9 and int(count) == 64


def _free_ports(count):
  import socket

  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


@pytest.mark.slow
def test_multi_worker_mirrored_strategy_over_two_local_processes():
  script = textwrap.dedent("""
      import os
      import tensorflow as tf
      from vsearch.train import strategy as strategy_lib
      strategy = strategy_lib.resolve("multi_worker")
      assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
      from tests import test_trainer as t
      train, evaluation = t._data()
      metrics, _, model = t.trainer.train_and_evaluate(
          strategy, t._linear_model, train, evaluation,
          t.trainer.TrainConfig(steps=60, batch_size=16, learning_rate=0.05))
      checksum = sum(float(tf.reduce_sum(w)) for w in model.get_weights())
      print("RESULT", metrics["accuracy"], metrics["num_eval_clips"], repr(checksum))
  """)
  cluster = [f"localhost:{port}" for port in _free_ports(2)]
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  workers = []
  for index in range(2):
    env = dict(
      os.environ,
      TF_CONFIG=json.dumps(
        {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}
      ),
    )
    workers.append(
      subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
      )
    )
  results = []
  try:
    for worker in workers:
      results.append(worker.communicate(timeout=300))
  finally:  # a worker whose peer died would wait for it forever
    for worker in workers:
      if worker.poll() is None:
        worker.kill()
  outputs = []
  for worker, (out, err) in zip(workers, results):
    assert worker.returncode == 0, err[-3000:]
    outputs.append(out.split("RESULT")[1].split())
  for accuracy, count, _ in outputs:
    # The workers split the validation clips; the reduced count has each once.
    assert float(accuracy) > 0.9 and int(count) == 64
  assert outputs[0][2] == outputs[1][2], "the workers' weights differ after training"


def test_a_killed_training_resumes_from_its_checkpoint(tmp_path):
  train, evaluation = _data()
  config = trainer.TrainConfig(steps=30, batch_size=16, learning_rate=0.05, steps_per_call=5)
  seen = []

  class Killed(Exception):
    pass

  def die_at_20(done, loss):
    seen.append(done)
    if done == 20:
      raise Killed()

  with pytest.raises(Killed):
    trainer.train_and_evaluate(
      tf.distribute.get_strategy(),
      _linear_model,
      train,
      evaluation,
      config,
      checkpoint_dir=str(tmp_path),
      checkpoint_every=10,
      on_progress=die_at_20,
    )
  assert seen == [5, 10, 15, 20]
  starts = []
  metrics, timings, _ = trainer.train_and_evaluate(
    tf.distribute.get_strategy(),
    _linear_model,
    lambda step: starts.append(step) or train,
    evaluation,
    config,
    checkpoint_dir=str(tmp_path),
    checkpoint_every=10,
  )
  assert starts == [10] and timings["resumed_from_step"] == 10  # step 20 was never saved
  assert metrics["accuracy"] > 0.9
  # The last checkpoint is at 20 of 30: the end of training is never checkpointed.
  assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-20")


def test_per_replica_batches_scale_with_replicas():
  config = trainer.TrainConfig(
    batch_size=16, eval_batch_size=32, learning_rate=0.01, per_replica_batch=True
  )
  scaled = config.for_replicas(8)
  assert (scaled.batch_size, scaled.eval_batch_size) == (128, 256)
  assert scaled.learning_rate == pytest.approx(0.08) and not scaled.per_replica_batch
  assert scaled.for_replicas(8) == scaled  # global sizes are not scaled twice
  plain = trainer.TrainConfig(batch_size=16)
  assert plain.for_replicas(8) is plain
