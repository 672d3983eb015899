"""Quantization-aware fine-tuning (QAT) of a trained model, beside post-training int8.

Post-training quantization (``vsearch.deploy.quantize``) calibrates int8 ranges on a
few clips after training; quantization-aware training fine-tunes the model
with the int8 rounding simulated in the forward pass, so the weights adapt
to it. TensorFlow Model Optimization (tfmot) does the simulation, and tfmot
only accepts legacy Keras models (``tf_keras``), while vsearch builds Keras 3
models. So QAT runs in a process of its own with ``TF_USE_LEGACY_KERAS=1``,
where the same builders (which reach Keras through ``tf.keras``) build the
same genome under ``tf_keras``:

1. this process (Keras 3) loads a ``launch.train`` workdir's genome and
   weights, converts the trained model to int8 TFLite after training (PTQ),
   and saves the weights by layer name;
2. the child process (``python -m vsearch.jobs.qat REQUEST``, legacy Keras)
   rebuilds the genome, loads those weights, wraps it for QAT (tfmot's
   default 8-bit scheme, plus ``QuantizeConfig``s for the layers tfmot does
   not know: ``Multiply`` of squeeze-excite and context gating and
   ``HardSwish`` get their outputs quantized, ``FreeReshape`` passes
   through), fine-tunes it on the training clips, and converts it to int8
   TFLite with ``vsearch.deploy.quantize.to_tflite``;
3. back here, both int8 models are scored on the same validation clips
   through LiteRT and timed, and ``qat.json`` says which is better.

Install with ``pip install -e ".[qat]"``.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import gin
import numpy as np
import tensorflow as tf

from vsearch.data import clips as clips_lib
from vsearch.data import datasets
from vsearch.deploy import latency as latency_lib
from vsearch.deploy import quantize
from vsearch.errors import UserError
from vsearch.jobs import qat_child
from vsearch.methods import genome_source
from vsearch.train import full_training

SUMMARY = "qat.json"
QAT_MODEL = qat_child.QAT_MODEL
PTQ_MODEL = "model_int8.tflite"


@gin.configurable("qat")
def run(
  workdir: str,
  out_dir: str,
  steps: int = 300,
  learning_rate: float = 1e-4,
  batch_size: int = 16,
  num_calibration_clips: int = 64,
  max_eval_clips: int = 512,
  seed: int = 0,
) -> dict[str, Any]:
  """Fine-tunes a trained model with QAT and compares it with PTQ int8.

  Args:
    workdir: a finished ``launch.train`` workdir (genome and trained weights).
    out_dir: where ``model_int8.tflite`` (PTQ), ``model_qat_int8.tflite`` and
      ``qat.json`` go.
    steps: QAT fine-tuning steps.
    learning_rate: Adam's learning rate for them (small: the model is
      trained already).
    batch_size: clips per step.
    num_calibration_clips: training clips that calibrate both int8 models.
    max_eval_clips: validation clips both are scored on.
    seed: seed of the fine-tuning clip stream.

  Returns:
    The contents of ``qat.json``.

  Raises:
    UserError: the workdir is not a finished training run, tfmot is not
      installed, or the QAT process failed.
  """
  _check_tfmot_installed()
  full_training.check_finished(workdir)
  source = genome_source.resolve(genome_file=os.path.join(workdir, full_training.GENOME_FILE))
  dataset = datasets.load_dataset()
  model = source.method.build(source.genome, dataset.num_classes)
  full_training.load_weights(model, workdir)
  spec = source.method.clip_spec(source.genome)
  calibration = quantize.representative_clips(
    clips_lib.make_clips(dataset.train, spec, batch_size=16, training=True, seed=seed),
    model.inputs[0].shape[1:],
    num_calibration_clips,
  )
  clips, labels = clips_lib.take_clips(
    clips_lib.make_clips(dataset.validation, spec, batch_size=32, training=False), max_eval_clips
  )
  float_accuracy = float(
    np.mean(model.predict(clips, batch_size=32, verbose=0).argmax(-1) == labels)
  )
  tf.io.gfile.makedirs(out_dir)
  settings = latency_lib.LatencySettings()

  print(f"QAT of {source.description}: post-training int8 first ...", flush=True)
  ptq = quantize.to_tflite(model, quantize.INT8, calibration)
  ptq.save(os.path.join(out_dir, PTQ_MODEL))

  with tempfile.TemporaryDirectory(prefix="vsearch_qat_") as scratch:
    request = {
      "method": source.method.name,
      "genome": source.genome.to_dict(),
      "num_classes": dataset.num_classes,
      "weights": os.path.join(scratch, "weights.npz"),
      "calibration": os.path.join(scratch, "calibration.npy"),
      "gin_config": os.path.join(scratch, "config.gin"),
      "output": os.path.join(scratch, QAT_MODEL),
      "steps": steps,
      "learning_rate": learning_rate,
      "batch_size": batch_size,
      "seed": seed,
    }
    np.savez(request["weights"], **_weights_by_layer(model))
    np.save(request["calibration"], calibration)
    with open(request["gin_config"], "w", encoding="utf-8") as f:
      f.write(_without_imports(gin.config_str()))
    request_path = os.path.join(scratch, "request.json")
    with open(request_path, "w", encoding="utf-8") as f:
      json.dump(request, f)
    print(
      f"Fine-tuning with simulated int8 for {steps} steps (legacy Keras process) ...", flush=True
    )
    start = time.monotonic()
    _run_child(request_path)
    finetune_s = time.monotonic() - start
    with open(request["output"], "rb") as f:
      qat_content = f.read()
  with tf.io.gfile.GFile(os.path.join(out_dir, QAT_MODEL), "wb") as f:
    f.write(qat_content)
  qat = quantize.TfliteModel(
    content=qat_content,
    format=quantize.INT8,
    ops=quantize.inspect_ops(qat_content),
    input_dtype="int8",
    output_dtype="int8",
  )

  summary = {
    "source": source.description,
    "genome": source.genome.to_dict(),
    "dataset": dataset.name,
    "num_eval_clips": int(len(labels)),
    "float_accuracy": float_accuracy,
    "steps": steps,
    "learning_rate": learning_rate,
    "finetune_s": finetune_s,
  }
  for name, converted, path in (("ptq_int8", ptq, PTQ_MODEL), ("qat_int8", qat, QAT_MODEL)):
    measured = latency_lib.measure_latency(converted, settings)
    summary[name] = {
      "path": path,
      "size_bytes": len(converted.content),
      "fully_int8": converted.fully_int8,
      "accuracy": latency_lib.evaluate_tflite(converted, clips, labels, settings)["accuracy"],
      "latency_ms": measured.median_ms,
    }
  with tf.io.gfile.GFile(os.path.join(out_dir, SUMMARY), "w") as f:
    json.dump(summary, f, indent=2, sort_keys=True)
    f.write("\n")
  print(format_summary(summary), flush=True)
  return summary


def format_summary(summary: dict[str, Any]) -> str:
  """The comparison as a table a person reads."""
  lines = [
    f"Float (Keras) accuracy {summary['float_accuracy']:.3f} on "
    f"{summary['num_eval_clips']} validation clips.",
    "| int8 model | accuracy | latency ms | size | fully int8 |",
    "|---|---|---|---|---|",
  ]
  for name in ("ptq_int8", "qat_int8"):
    entry = summary[name]
    lines.append(
      f"| {name} ({entry['path']}) | {entry['accuracy']:.3f} | "
      f"{entry['latency_ms']:.2f} | {entry['size_bytes'] / 1e3:.0f} kB | "
      f"{'yes' if entry['fully_int8'] else 'no'} |"
    )
  return "\n".join(lines)


def _without_imports(config: str) -> str:
  """A gin config without its import lines, which the config files brought.

  The child imports only the modules it needs, under legacy Keras; it parses
  with ``skip_unknown``, so the bindings of modules it lacks are ignored.
  """
  return "".join(
    line for line in config.splitlines(keepends=True) if not line.startswith(("import ", "from "))
  )


def _check_tfmot_installed() -> None:
  import importlib.util

  missing = [
    name
    for name in ("tensorflow_model_optimization", "tf_keras")
    if importlib.util.find_spec(name) is None
  ]
  if missing:
    raise UserError(
      f'QAT needs {" and ".join(missing)}: install vsearch with pip install -e ".[qat]".'
    )


def _weights_by_layer(model) -> dict[str, np.ndarray]:
  """``'<layer>/<i>'`` -> the i-th weight of each layer that has weights."""
  return {
    f"{layer.name}/{i}": np.asarray(w)
    for layer in model.layers
    for i, w in enumerate(layer.get_weights())
  }


def _run_child(request_path: str) -> None:
  env = dict(os.environ, **{qat_child.LEGACY_ENV: "1"})
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  result = subprocess.run(
    [sys.executable, "-m", qat_child.__name__, request_path],
    env=env,
    capture_output=True,
    text=True,
    check=False,
  )
  if result.returncode != 0:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    raise UserError(f"The QAT process failed: {lines[-1] if lines else result.returncode}")
