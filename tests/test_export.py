"""launch.export: an untrained zoo model, a trained genome and a search's candidate ship as
five artifacts."""

import json
import os
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from vsearch.data import datasets
from vsearch.deploy import export as export_lib
from vsearch.deploy import latency
from vsearch.jobs import export as export_job
from vsearch.methods import assemblenet as an
from vsearch.methods import tvn
from vsearch.record import Record

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(REPO, "tests", "data", "tiny_search.gin")
ARTIFACTS = {
  "saved_model",
  "model_float.tflite",
  "model_int8.tflite",
  "labels.txt",
  "export.json",
}


@pytest.mark.slow
def test_untrained_zoo_model_exports_all_five_artifacts(tmp_path):
  out = tmp_path / "out"
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "launch.export",
      "--zoo=tvn_mobile2",
      f"--out={out}",
      f"--gin_file={TINY}",
      f"--gin_bindings=load_dataset.data_dir='{tmp_path / 'data'}'",
      "--gin_bindings=export.num_calibration_clips=2",
      "--gin_bindings=LatencySettings.warmup=1",
      "--gin_bindings=LatencySettings.runs=3",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=600,
    check=False,
  )
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


def _tiny_genome():
  return tvn.Genome(
    resolution=32,
    num_frames=4,
    frame_stride=1,
    blocks=(
      tvn.Block(
        spatial_type="conv",
        spatial_kernel=3,
        spatial_stride=2,
        temporal_type="conv",
        temporal_kernel=3,
        temporal_stride=1,
        repeats=1,
        filters=8,
        expand=2,
      ),
    ),
  )


def test_trained_model_reports_each_forms_accuracy_and_serves(tmp_path):
  tf.keras.utils.set_random_seed(0)
  model = tvn.build_model(_tiny_genome(), 3)
  rng = np.random.default_rng(0)
  clips = rng.uniform(-1, 1, (24, 4, 32, 32, 3)).astype("float32")
  labels = model.predict(clips, verbose=0).argmax(-1)  # the float model is right by definition
  data = tf.data.Dataset.from_tensor_slices((clips, labels)).batch(8)
  summary = export_lib.export(
    model,
    str(tmp_path),
    data,
    data,
    trained=True,
    settings=latency.LatencySettings(warmup=1, runs=3),
    num_calibration_clips=8,
  )
  assert set(os.listdir(tmp_path)) == ARTIFACTS
  # Without class names, the outputs are named by index.
  assert summary["labels"] == ["0", "1", "2"]
  assert (tmp_path / "labels.txt").read_text().splitlines() == ["0", "1", "2"]
  assert summary["saved_model"]["accuracy"] == 1.0
  assert summary["tflite_float"]["accuracy"] == 1.0
  assert summary["tflite_int8"]["accuracy"] >= 0.75
  served = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["serving_default"]
  outputs = served(clips=tf.constant(clips[:5]))
  np.testing.assert_allclose(
    outputs["logits"].numpy(), model.predict(clips[:5], verbose=0), rtol=1e-4, atol=1e-5
  )
  np.testing.assert_allclose(outputs["probabilities"].numpy().sum(-1), 1.0, rtol=1e-5)


def test_an_export_names_the_datasets_classes_in_label_order(tmp_path):
  gin.parse_config(
    [
      f"load_dataset.data_dir = '{tmp_path / 'data'}'",
      "synthetic_motion_config.num_classes = 4",
      "synthetic_motion_config.num_frames = 4",
      "synthetic_motion_config.resolution = 32",
      "synthetic_motion_config.train_per_class = 2",
      "synthetic_motion_config.validation_per_class = 1",
      "export.num_calibration_clips = 2",
      "LatencySettings.warmup = 1",
      "LatencySettings.runs = 3",
    ]
  )
  genome_path = tmp_path / "genome.json"
  genome_path.write_text(json.dumps(_tiny_genome().to_dict()))
  out = tmp_path / "out"
  summary = export_job.run(str(out), genome_file=str(genome_path))
  # synthetic_motion names each class by its direction of motion.
  names = list(datasets.load_dataset().class_names)
  assert names == ["0deg", "90deg", "180deg", "270deg"]
  assert (out / "labels.txt").read_text(encoding="utf-8").splitlines() == names
  assert summary["labels"] == names
  assert json.loads((out / "export.json").read_text())["labels"] == names


@pytest.mark.parametrize(
  "args,message",
  [
    (["--zoo=tvn9"], "tvn9"),
    (["--zoo=tvn1", "--genome=g.json"], "exactly one"),
    (["--workdir=/nonexistent/run"], "no trained weights"),
  ],
)
def test_bad_sources_end_with_one_line(tmp_path, args, message):
  result = subprocess.run(
    [sys.executable, "-m", "launch.export", f"--out={tmp_path}", *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and message in lines[0], result.stderr


def _two_input_model(classes):
  """Clips [2, 16, 16, 3] and object maps [2, 16, 16, 4] to logits.

  The object branch comes first in the concat, which (with TF 2.21) puts
  'objects' before 'clips' among the TFLite inputs: the opposite of the Keras
  order, so matching inputs by position would fail.
  """
  layers = tf.keras.layers
  clips = tf.keras.Input((2, 16, 16, 3), name="clips")
  objects = tf.keras.Input((2, 16, 16, 4), name="objects")

  def branch(x, filters, name):
    x = layers.Reshape((2 * 16, 16, x.shape[-1]), name=f"{name}_fold")(x)
    x = layers.Conv2D(
      filters, 3, strides=2, padding="same", activation="relu", name=f"{name}_conv"
    )(x)
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    return layers.GlobalAveragePooling2D(name=f"{name}_mean")(x)

  x = layers.Concatenate(name="concat")([branch(objects, 4, "objects"), branch(clips, 8, "clips")])
  return tf.keras.Model([clips, objects], layers.Dense(classes, name="logits")(x))


def test_two_input_model_exports_with_named_inputs(tmp_path):
  tf.keras.utils.set_random_seed(0)
  model = _two_input_model(3)
  rng = np.random.default_rng(0)
  inputs = {
    "clips": rng.uniform(-1, 1, (24, 2, 16, 16, 3)).astype("float32"),
    "objects": np.eye(4, dtype="float32")[rng.integers(0, 4, (24, 2, 16, 16))],
  }
  labels = model.predict(inputs, verbose=0).argmax(-1)  # the float model is right
  data = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(8)
  summary = export_lib.export(
    model,
    str(tmp_path),
    data,
    data,
    trained=True,
    settings=latency.LatencySettings(warmup=1, runs=3),
    num_calibration_clips=8,
  )
  assert set(os.listdir(tmp_path)) == ARTIFACTS
  assert summary["input_shape"] == [1, 2, 16, 16, 3]
  assert summary["input_shapes"] == {"clips": [1, 2, 16, 16, 3], "objects": [1, 2, 16, 16, 4]}
  assert summary["serving_signature"]["inputs"] == ["clips", "objects"]
  assert summary == json.loads((tmp_path / "export.json").read_text())

  served = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["serving_default"]
  assert set(served.structured_input_signature[1]) == {"clips", "objects"}
  outputs = served(
    clips=tf.constant(inputs["clips"][:5]), objects=tf.constant(inputs["objects"][:5])
  )
  keras_logits = model.predict(inputs, verbose=0)
  np.testing.assert_allclose(outputs["logits"].numpy(), keras_logits[:5], rtol=1e-4, atol=1e-5)
  assert summary["saved_model"]["accuracy"] == 1.0

  # Float TFLite: the same logits, its inputs matched by name.
  floats = latency.evaluate_tflite(
    str(tmp_path / "model_float.tflite"), inputs, labels, return_logits=True
  )
  np.testing.assert_allclose(floats["logits"], keras_logits, rtol=1e-3, atol=1e-4)
  assert summary["tflite_float"]["accuracy"] == 1.0

  int8 = summary["tflite_int8"]
  assert int8["fully_int8"] and int8["float_ops"] == []
  assert int8["latency"]["model"]["input_dtype"] == "int8"
  assert 0.0 <= int8["accuracy"] <= 1.0 and int8["accuracy"] >= 0.5
  for fmt in ("float", "int8"):
    assert summary[f"tflite_{fmt}"]["latency_ms"] > 0


def _search_workdir(tmp_path):
  """A search workdir: its config.gin (4 classes, 2 flow iterations) and one
  AssembleNet record with RGB and flow stems."""
  workdir = tmp_path / "search"
  (workdir / "candidates").mkdir(parents=True)
  (workdir / "config.gin").write_text(
    f"include '{TINY}'\n"
    f"load_dataset.data_dir = '{tmp_path / 'data'}'\n"
    "AssembleNetMethod.flow_iterations = 2\n"
    "AssembleNetMethod.dropout_rate = 0.0\n"
  )
  genome = an.Genome(
    nodes=(
      an.Stem("rgb", 1),
      an.Stem("flow", 1),
      an.Block(0, (0, 1), 2, 1, 1),
      an.Block(1, (2,), 2),
      an.Block(2, (3,), 2),
      an.Block(3, (0, 4), 2),
    ),
    num_frames=4,
    resolution=32,
    depth=26,
    level_widths=(4, 4, 4, 4),
    stem_width=8,
  )
  record = Record(
    id="000003",
    method="assemblenet",
    status="ok",
    genome=genome.to_dict(),
    fitness=0.5,
    metrics={"accuracy": 0.5, "num_classes": 4},
  )
  (workdir / "candidates" / "000003.json").write_text(json.dumps(record.to_dict()))
  return workdir


def _export(out, *args):
  return subprocess.run(
    [sys.executable, "-m", "launch.export", f"--out={out}", *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=900,
    check=False,
  )


@pytest.mark.slow
def test_a_candidate_exports_with_its_searchs_config(tmp_path):
  workdir = _search_workdir(tmp_path)
  quick = ["--gin_bindings=export.num_calibration_clips=2", "--gin_bindings=LatencySettings.runs=2"]
  result = _export(tmp_path / "out", f"--candidate={workdir}/3", *quick)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "4 classes of synthetic_motion" in result.stdout
  summary = json.loads((tmp_path / "out" / "export.json").read_text())
  assert summary["source"].startswith("candidate ")
  assert summary["dataset"].startswith("synthetic_motion/") and "_c4_" in summary["dataset"]
  assert "representation_flow" in summary["flow"]
  int8 = summary["tflite_int8"]
  assert int8["float_layers"] == ["representation_flow"] and int8["int8_outside_float_layers"]
  assert "DIV" in int8["float_ops"] and not int8["fully_int8"]
  served = tf.saved_model.load(str(tmp_path / "out" / "saved_model")).signatures["serving_default"]
  logits = served(clips=tf.zeros((1, 4, 32, 32, 3)))["logits"]
  assert logits.shape == (1, 4)  # The search's 4 classes, not the default dataset's.
  # The user's bindings apply on top of the search's config; a model that
  # cannot be run ends with one line, no traceback.
  failed = _export(
    tmp_path / "failed",
    f"--candidate={workdir}/candidates/000003.json",
    *quick,
    "--gin_bindings=LatencySettings.timeout_s=0.001",
  )
  assert failed.returncode == 2
  lines = failed.stderr.strip().splitlines()
  assert len(lines) == 1 and "cannot be exported" in lines[0] and "hung" in lines[0], failed.stderr
