"""Strategy resolution: clear errors for absent hardware, CPU pinning, precision."""

import os
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from vsearch.errors import UserError
from vsearch.train import strategy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_cpu_is_the_default_strategy_without_accelerators(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  assert strategy.resolve("auto").num_replicas_in_sync == 1
  assert tf.keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.parametrize(
  "tf_config,message",
  [
    (None, "needs the TF_CONFIG"),
    ("{not json", "does not parse"),
    ('{"cluster": {}, "task": {"index": 0}}', "does not parse"),
  ],
)
def test_multi_worker_needs_a_tf_config_that_parses(monkeypatch, tf_config, message):
  if tf_config is None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
  else:
    monkeypatch.setenv("TF_CONFIG", tf_config)
  with pytest.raises(UserError, match=message):
    strategy.resolve("multi_worker")


@pytest.mark.parametrize(
  "tpu,message",
  [
    ("local", "This host has no TPU"),
    ("no-such-tpu-name", "Cannot reach the TPU 'no-such-tpu-name'"),
  ],
)
def test_an_absent_tpu_is_one_clear_error(tpu, message):
  with pytest.raises(UserError, match=message):
    strategy.resolve("tpu", tpu)


def test_unknown_strategy_names_the_choices():
  with pytest.raises(UserError, match="auto, tpu, gpu, multi_worker, cpu"):
    strategy.resolve("fpga")


def test_pinning_restricts_the_process_and_its_thread_pools():
  script = textwrap.dedent("""
      import os
      import tensorflow as tf
      from vsearch.train import strategy
      cores = strategy.pin_cpus("0")
      print("RESULT", cores, sorted(os.sched_getaffinity(0)),
            tf.config.threading.get_intra_op_parallelism_threads())
  """)
  result = subprocess.run(
    [sys.executable, "-c", script],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=120,
    check=False,
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.split("RESULT")[1].split() == ["[0]", "[0]", "1"]


@pytest.mark.parametrize(
  "spec,message",
  [
    ("zero", "does not parse"),
    ("0-", "does not parse"),
    ("4096", "cannot use"),
  ],
)
def test_bad_cpu_lists_are_refused(spec, message):
  with pytest.raises(UserError, match=message):
    strategy.pin_cpus(spec)


def test_precision_is_bfloat16_on_tpu_and_float32_for_deployed_copies():
  try:
    assert strategy.set_precision(on_tpu=True) == "mixed_bfloat16"
    layer = tf.keras.layers.Dense(2)
    assert layer.compute_dtype == "bfloat16" and layer.dtype == "float32"
    with strategy.float32_policy():
      assert tf.keras.layers.Dense(2).compute_dtype == "float32"
    assert tf.keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    with pytest.raises(UserError, match="not a Keras dtype policy"):
      strategy.set_precision(on_tpu=False, policy="int3")
  finally:
    strategy.set_precision(on_tpu=False)
  assert tf.keras.mixed_precision.global_policy().name == "float32"
