"""LiteRT latency and accuracy in a TensorFlow-free subprocess."""

import ast
import json
import os
import subprocess
import sys
import time

import ai_edge_litert
import gin
import numpy as np
import pytest
import tensorflow as tf

from vsearch.deploy import latency, litert_runner, profile_tflite, quantize
from vsearch.errors import CandidateError, UserError
from vsearch.methods import tvn

CLASSES = 4
CLIP_SHAPE = (4, 32, 32, 3)
GENOME = tvn.Genome(
  resolution=32,
  num_frames=4,
  frame_stride=1,
  blocks=(
    tvn.Block("conv", 3, 2, "conv", 2, 1, repeats=1, filters=16, expand=2, skip=True, squeeze=0.5),
    tvn.Block(
      "depthwise",
      3,
      2,
      "maxpool",
      2,
      2,
      repeats=2,
      filters=16,
      expand=2,
      context_gate=True,
      output_activation="hswish",
    ),
  ),
)
FAST = latency.LatencySettings(warmup=2, runs=10)


def _clips(n, seed):
  return np.random.default_rng(seed).uniform(-1, 1, (n,) + CLIP_SHAPE).astype(np.float32)


@pytest.fixture(scope="module")
def keras_model():
  tf.keras.utils.set_random_seed(1)
  return tvn.build_model(GENOME, CLASSES)


@pytest.fixture(scope="module")
def int8_model(keras_model):
  return quantize.to_tflite(keras_model, "int8", _clips(16, seed=0))


@pytest.fixture(scope="module")
def float_model(keras_model):
  return quantize.to_tflite(keras_model, "float")


def test_latency_has_positive_median_spread_and_settings(int8_model):
  measured = latency.measure_latency(int8_model, FAST)
  assert 0 < measured.min_ms <= measured.p10_ms <= measured.median_ms
  assert measured.median_ms <= measured.p90_ms
  record = measured.to_dict()
  assert record["settings"] == {
    "threads": 1,
    "use_xnnpack": True,
    "warmup": 2,
    "runs": 10,
    "timeout_s": 300.0,
  }
  assert record["model"]["format"] == "int8"
  assert record["model"]["input_dtype"] == "int8"
  assert measured.litert_version == ai_edge_litert.__version__
  assert record["host"]["cpu"] and record["host"]["cpu_count"] >= 1
  json.dumps(record)  # Goes into a JSON record as it is.


def test_latency_of_a_model_file(int8_model, tmp_path):
  path = tmp_path / "model.tflite"
  int8_model.save(str(path))
  measured = latency.measure_latency(str(path), FAST)
  assert measured.median_ms > 0
  assert measured.model["format"] is None  # A file does not say its format.
  assert measured.model["size_bytes"] == len(int8_model.content)
  json.dumps(measured.to_dict())


def test_threads_and_xnnpack_reach_the_interpreter(int8_model, float_model):
  on = latency.measure_latency(float_model, FAST)
  off = latency.measure_latency(
    float_model.content, latency.LatencySettings(threads=2, use_xnnpack=False, warmup=1, runs=3)
  )
  assert off.settings["threads"] == 2 and not off.settings["use_xnnpack"]
  assert off.model["format"] is None  # Bytes do not say their format.
  # XNNPACK replaces parts of the graph with DELEGATE nodes; off, none.
  assert on.model["delegate_partitions"] > 0
  assert off.model["delegate_partitions"] == 0
  assert latency.measure_latency(int8_model, FAST).model["delegate_partitions"] > 0


def test_settings_are_gin_configurable_and_validated():
  gin.parse_config("LatencySettings.threads = 2\nLatencySettings.use_xnnpack = False")
  settings = latency.LatencySettings()
  assert (settings.threads, settings.use_xnnpack, settings.runs) == (2, False, 30)
  for bad in (
    dict(threads=0),
    dict(runs=0),
    dict(warmup=-1),
    dict(timeout_s=0),
    dict(use_xnnpack="yes"),
  ):
    with pytest.raises(UserError):
      latency.LatencySettings(**bad)


def test_a_runner_that_fails_is_a_candidate_error(tmp_path):
  with pytest.raises(CandidateError, match=r"crashed \(exit status 1\).*"):
    latency.measure_latency(b"not a flatbuffer", FAST)
  path = tmp_path / "garbage.tflite"
  path.write_bytes(b"\0" * 64)
  with pytest.raises(CandidateError, match="crashed"):
    latency.measure_latency(str(path), FAST)


def test_a_runner_killed_by_a_signal_is_a_candidate_error():
  segfault = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
  with pytest.raises(CandidateError, match="killed by SIGSEGV"):
    latency.run_runner({}, timeout_s=30, command=segfault)


def test_a_runner_that_prints_garbage_is_a_candidate_error():
  garbage = [sys.executable, "-c", "print('some garbage'); print('[1, 2')"]
  with pytest.raises(CandidateError, match=r"no result.*\[1, 2"):
    latency.run_runner({}, timeout_s=30, command=garbage)


def test_a_hanging_runner_is_killed_at_the_timeout(int8_model):
  endless = latency.LatencySettings(warmup=0, runs=10**8, timeout_s=3)
  start = time.monotonic()
  with pytest.raises(CandidateError, match="hung.*3 s"):
    latency.measure_latency(int8_model, endless)
  assert time.monotonic() - start < 20


def test_runner_imports_no_tensorflow(float_model, tmp_path, monkeypatch):
  # A tensorflow package first on the path that refuses to import.
  shim = tmp_path / "shim" / "tensorflow"
  shim.mkdir(parents=True)
  (shim / "__init__.py").write_text(
    "raise ImportError('the LiteRT runner must not import tensorflow')\n"
  )
  monkeypatch.setenv("PYTHONPATH", str(tmp_path / "shim"))
  check = subprocess.run(
    [sys.executable, "-c", "import tensorflow"],
    env=dict(os.environ),
    capture_output=True,
    check=False,
  )
  assert b"must not import tensorflow" in check.stderr  # The shim works.
  assert latency.measure_latency(float_model, FAST).median_ms > 0
  clips = _clips(2, seed=3)
  assert latency.evaluate_tflite(float_model, clips, np.zeros(2))["num_clips"] == 2


def _imported_modules(path):
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read())
  imported = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      imported.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      imported.add(node.module)
  return {name for name in imported if name.split(".")[0] not in sys.stdlib_module_names}


def test_runner_source_imports_only_stdlib_numpy_and_litert():
  # The runner shares its LiteRT helpers with the standalone device profiler.
  assert {m.split(".")[0] for m in _imported_modules(litert_runner.__file__)} == {
    "numpy",
    "vsearch",
  }
  assert {m for m in _imported_modules(litert_runner.__file__) if m.startswith("vsearch")} == {
    "vsearch.deploy.profile_tflite"
  }
  assert {m.split(".")[0] for m in _imported_modules(profile_tflite.__file__)} == {
    "numpy",
    "ai_edge_litert",
  }


def test_litert_agrees_with_keras(keras_model, int8_model, float_model):
  clips = _clips(32, seed=7)  # Not the calibration clips.
  keras_logits = keras_model.predict(clips, verbose=0)
  agreed = np.argmax(keras_logits, axis=-1)
  floats = latency.evaluate_tflite(float_model, clips, agreed, return_logits=True)
  assert floats["accuracy"] == 1.0 and floats["input_dtype"] == "float32"
  np.testing.assert_allclose(floats["logits"], keras_logits, atol=1e-4, rtol=1e-3)
  # int8 rounds: most top-1 choices agree, and the dequantized logits follow
  # Keras' closely.
  ints = latency.evaluate_tflite(int8_model, clips, agreed, return_logits=True)
  assert ints["input_dtype"] == "int8" and ints["num_clips"] == 32
  assert ints["accuracy"] >= 0.8
  correlation = np.corrcoef(ints["logits"].ravel(), keras_logits.ravel())[0, 1]
  assert correlation > 0.9
  # Labels that are not the Keras predictions give the accuracy they should.
  wrong = (agreed + 1) % CLASSES
  assert latency.evaluate_tflite(float_model, clips, wrong)["accuracy"] == 0.0


def test_evaluation_input_errors(float_model):
  with pytest.raises(UserError, match="as many clips as labels"):
    latency.evaluate_tflite(float_model, _clips(3, seed=0), np.zeros(2))
  other = np.zeros((2, 2, 32, 32, 3), np.float32)
  with pytest.raises(UserError, match="do not fit the model input"):
    latency.evaluate_tflite(float_model, other, np.zeros(2))


def test_quantize_input_round_trips_with_stored_parameters():
  detail = {
    "name": "x",
    "dtype": np.int8,
    "quantization_parameters": {"scales": np.array([2 / 255]), "zero_points": np.array([-1])},
  }
  x = np.linspace(-1, 1, 11, dtype=np.float32)
  q = litert_runner.quantize_input(x, detail)
  assert q.dtype == np.int8
  back = litert_runner.dequantize_output(q, detail)
  np.testing.assert_allclose(back, x, atol=1 / 255 + 1e-6)
  # Out of range saturates instead of wrapping around.
  assert list(litert_runner.quantize_input(np.array([-5.0, 5.0]), detail)) == [-128, 127]


def test_inputs_are_matched_by_name_not_position():
  details = [
    {"index": 0, "name": "serving_default_objects:0"},
    {"index": 1, "name": "serving_default_clips:0"},
  ]

  class Interpreter:
    def get_input_details(self):
      return details

    def get_signature_list(self):
      return {}

  matched = litert_runner.inputs_by_name(Interpreter(), ["clips", "objects"])
  assert {name: d["index"] for name, d in matched.items()} == {"clips": 1, "objects": 0}
  with pytest.raises(profile_tflite.BadRequest, match="no input named flow"):
    litert_runner.inputs_by_name(Interpreter(), ["clips", "flow"])
  with pytest.raises(profile_tflite.BadRequest, match="objects get no clips"):
    litert_runner.inputs_by_name(Interpreter(), ["clips"])
