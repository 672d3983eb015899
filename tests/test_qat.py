"""Quantization-aware fine-tuning runs in a legacy-Keras process and ships a fully int8 model."""

import json
import os

import gin
import pytest
import tensorflow as tf

from vsearch import configurables  # noqa: F401  (registers every gin configurable)
from vsearch.errors import UserError
from vsearch.jobs import qat
from vsearch.methods import genome_source
from vsearch.train import full_training

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One block with every layer tfmot does not know: squeeze-excite and context
# gating (Multiply), hard-swish, and the time-folding reshapes.
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
      "expand": 2,
      "skip": True,
      "squeeze": 0.25,
      "context_gate": True,
      "inverted_bottleneck": False,
      "spatial_activation": "hswish",
      "temporal_activation": "relu",
      "output_activation": "hswish",
    }
  ],
}


@pytest.mark.slow
def test_qat_fine_tunes_a_trained_run_and_compares_it_with_post_training_int8(tmp_path):
  pytest.importorskip("tensorflow_model_optimization")
  pytest.importorskip("tf_keras")
  gin.add_config_file_search_path(REPO)
  gin.parse_config_files_and_bindings(
    [os.path.join(REPO, "gin/tvn/train_smoke.gin")],
    [
      f"load_dataset.data_dir = '{tmp_path / 'data'}'",
      "synthetic_motion_config.num_frames = 8",
      "synthetic_motion_config.train_per_class = 8",
      "synthetic_motion_config.validation_per_class = 4",
      "TrainConfig.steps = 20",
      "TrainConfig.steps_per_call = 10",
      "TrainConfig.batch_size = 8",
      "TrainConfig.warmup_steps = 0",
      "FullTraining.eval_every = 0",
      "FullTraining.checkpoint_every = 20",
    ],
  )
  genome_path = tmp_path / "genome.json"
  genome_path.write_text(json.dumps(GENOME))
  workdir, out = str(tmp_path / "run"), str(tmp_path / "qat")
  full_training.FullTraining(
    workdir, genome_source.resolve(genome_file=str(genome_path)), tf.distribute.get_strategy()
  ).run()

  summary = qat.run(workdir, out, steps=6, batch_size=8, num_calibration_clips=8, max_eval_clips=16)
  assert sorted(os.listdir(out)) == ["model_int8.tflite", "model_qat_int8.tflite", "qat.json"]
  assert json.load(open(os.path.join(out, "qat.json"))) == json.loads(json.dumps(summary))
  for name in ("ptq_int8", "qat_int8"):
    entry = summary[name]
    assert entry["fully_int8"], name
    assert 0.0 <= entry["accuracy"] <= 1.0 and entry["latency_ms"] > 0
  assert summary["num_eval_clips"] == 16 and 0.0 <= summary["float_accuracy"] <= 1.0
  # A different model came out of QAT (its weights moved under simulated int8).
  ptq, qat_model = (
    open(os.path.join(out, f), "rb").read() for f in ("model_int8.tflite", "model_qat_int8.tflite")
  )
  assert ptq != qat_model
  assert "| qat_int8" in qat.format_summary(summary)


def test_qat_needs_a_finished_training_run(tmp_path):
  pytest.importorskip("tensorflow_model_optimization")
  pytest.importorskip("tf_keras")
  with pytest.raises(UserError, match="no trained weights"):
    qat.run(str(tmp_path), str(tmp_path / "out"))


def test_qat_without_the_extra_says_how_to_install_it(tmp_path, monkeypatch):
  # The plain install (no [qat] extra) takes this path for real.
  import importlib.util

  find_spec = importlib.util.find_spec
  monkeypatch.setattr(
    importlib.util,
    "find_spec",
    lambda name, *args: None if name == "tensorflow_model_optimization" else find_spec(name, *args),
  )
  with pytest.raises(
    UserError, match=r'QAT needs tensorflow_model_optimization.*: install .*"\.\[qat\]"'
  ):
    qat.run(str(tmp_path), str(tmp_path / "out"))
