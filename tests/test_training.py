"""The distributed training loop: learns, stops on NaN, runs under MirroredStrategy."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from vsearch import training
from vsearch.errors import CandidateError


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
  metrics, timings, _ = training.train_and_evaluate(
      tf.distribute.get_strategy(), _linear_model, train, evaluation,
      training.TrainConfig(steps=60, batch_size=16, learning_rate=0.05, steps_per_call=7))
  assert metrics["accuracy"] > 0.9
  assert metrics["num_eval_clips"] == 64
  assert metrics["num_params"] == 2 * 4 * 4 * 3 * 2 + 2
  assert set(timings) == {"build_s", "train_s", "evaluate_s"}


def test_nan_loss_is_a_candidate_error():
  train, evaluation = _data()
  with pytest.raises(CandidateError, match="nan|inf"):
    training.train_and_evaluate(
        tf.distribute.get_strategy(), lambda: _linear_model(scale=float("inf")),
        train, evaluation, training.TrainConfig(steps=5, batch_size=16))


def test_mirrored_strategy_over_two_cpu_replicas():
  # Logical devices must be set before TensorFlow starts: use a fresh process.
  script = textwrap.dedent("""
      import tensorflow as tf
      [cpu] = tf.config.list_physical_devices("CPU")
      tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
      strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
      assert strategy.num_replicas_in_sync == 2
      from tests import test_training as t
      train, evaluation = t._data()
      metrics, _, _ = t.training.train_and_evaluate(
          strategy, t._linear_model, train, evaluation,
          t.training.TrainConfig(steps=60, batch_size=16, learning_rate=0.05))
      print("ACCURACY", metrics["accuracy"], metrics["num_eval_clips"])
  """)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, check=False,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert result.returncode == 0, result.stderr[-3000:]
  accuracy, count = result.stdout.split("ACCURACY")[1].split()
  assert float(accuracy) > 0.9 and int(count) == 64
