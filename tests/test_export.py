"""launch.export: an untrained zoo model and a trained genome ship as four artifacts."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from vsearch import export as export_lib
from vsearch import latency
from vsearch.methods import tvn

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(REPO, "tests", "data", "tiny_search.gin")
ARTIFACTS = {"saved_model", "model_float.tflite", "model_int8.tflite", "export.json"}


def test_untrained_zoo_model_exports_all_four_artifacts(tmp_path):
  out = tmp_path / "out"
  result = subprocess.run(
      [sys.executable, "-m", "launch.export", "--zoo=tvn_mobile2", f"--out={out}",
       f"--gin_file={TINY}", f"--gin_bindings=load_dataset.data_dir='{tmp_path / 'data'}'",
       "--gin_bindings=export.num_calibration_clips=2",
       "--gin_bindings=LatencySettings.warmup=1", "--gin_bindings=LatencySettings.runs=3"],
      cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert set(os.listdir(out)) == ARTIFACTS
  summary = json.loads((out / "export.json").read_text())
  assert summary["source"] == "zoo tvn_mobile2" and not summary["trained"]
  assert summary["input_shape"] == [1, 2, 224, 224, 3]
  assert summary["tflite_int8"]["fully_int8"] and summary["tflite_int8"]["float_ops"] == []
  for fmt in ("float", "int8"):
    entry = summary[f"tflite_{fmt}"]
    assert entry["latency_ms"] > 0 and entry["latency"]["settings"]["runs"] == 3
    assert "accuracy" not in entry
  assert "| tflite_int8 | model_int8.tflite |" in result.stdout
  assert "Traceback" not in result.stderr and "signature_serialization" not in result.stderr


def test_trained_model_reports_each_forms_accuracy_and_serves(tmp_path):
  genome = tvn.Genome(resolution=32, num_frames=4, frame_stride=1, blocks=(
      tvn.Block(spatial_type="conv", spatial_kernel=3, spatial_stride=2, temporal_type="conv",
                temporal_kernel=3, temporal_stride=1, repeats=1, filters=8, expand=2),))
  tf.keras.utils.set_random_seed(0)
  model = tvn.build_model(genome, 3)
  rng = np.random.default_rng(0)
  clips = rng.uniform(-1, 1, (24, 4, 32, 32, 3)).astype("float32")
  labels = model.predict(clips, verbose=0).argmax(-1)  # the float model is right by definition
  data = tf.data.Dataset.from_tensor_slices((clips, labels)).batch(8)
  summary = export_lib.export(model, str(tmp_path), data, data, trained=True,
                              settings=latency.LatencySettings(warmup=1, runs=3),
                              num_calibration_clips=8)
  assert set(os.listdir(tmp_path)) == ARTIFACTS
  assert summary["saved_model"]["accuracy"] == 1.0
  assert summary["tflite_float"]["accuracy"] == 1.0
  assert summary["tflite_int8"]["accuracy"] >= 0.75
  served = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["serving_default"]
  outputs = served(clips=tf.constant(clips[:5]))
  np.testing.assert_allclose(outputs["logits"].numpy(), model.predict(clips[:5], verbose=0),
                             rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(outputs["probabilities"].numpy().sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("args,message", [
    (["--zoo=tvn9"], "tvn9"),
    (["--zoo=tvn1", "--genome=g.json"], "exactly one"),
    (["--workdir=/nonexistent/run"], "no trained weights"),
])
def test_bad_sources_end_with_one_line(tmp_path, args, message):
  result = subprocess.run([sys.executable, "-m", "launch.export", f"--out={tmp_path}", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and message in lines[0], result.stderr
