"""Quantization-aware fine-tuning (QAT) of a trained model, beside post-training int8.

Post-training quantization (``vsearch.quantize``) calibrates int8 ranges on a
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
2. the child process (``python -m vsearch.qat REQUEST``, legacy Keras)
   rebuilds the genome, loads those weights, wraps it for QAT (tfmot's
   default 8-bit scheme, plus ``QuantizeConfig``s for the layers tfmot does
   not know: ``Multiply`` of squeeze-excite and context gating and
   ``HardSwish`` get their outputs quantized, ``FreeReshape`` passes
   through), fine-tunes it on the training clips, and converts it to int8
   TFLite with ``vsearch.quantize.to_tflite``;
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

from vsearch.errors import UserError

SUMMARY = "qat.json"
QAT_MODEL = "model_qat_int8.tflite"
PTQ_MODEL = "model_int8.tflite"
_LEGACY_ENV = "TF_USE_LEGACY_KERAS"


@gin.configurable("qat")
def run(workdir: str, out_dir: str, steps: int = 300, learning_rate: float = 1e-4,
        batch_size: int = 16, num_calibration_clips: int = 64,
        max_eval_clips: int = 512, seed: int = 0) -> dict[str, Any]:
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
  # Keras 3 side; imported here so the legacy-Keras child never loads them.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from vsearch import export as export_lib  # pylint: disable=g-import-not-at-top
  from vsearch import genome_source  # pylint: disable=g-import-not-at-top
  from vsearch import latency as latency_lib  # pylint: disable=g-import-not-at-top
  from vsearch import quantize  # pylint: disable=g-import-not-at-top
  from vsearch import runtime  # pylint: disable=g-import-not-at-top
  from vsearch.data import clips as clips_lib  # pylint: disable=g-import-not-at-top
  from vsearch.data import datasets  # pylint: disable=g-import-not-at-top

  _check_tfmot_installed()
  weights = os.path.join(workdir, export_lib.TRAINED_WEIGHTS)
  genome_file = os.path.join(workdir, export_lib.TRAINED_GENOME)
  if not tf.io.gfile.exists(weights):
    raise UserError(f"{workdir} has no trained weights ({export_lib.TRAINED_WEIGHTS}); "
                    "QAT fine-tunes a finished launch.train run.")
  source = genome_source.resolve(genome_file=genome_file)
  dataset = datasets.load_dataset()
  model = source.method.build(source.genome, dataset.num_classes)
  model.load_weights(weights)
  spec = source.method.clip_spec(source.genome)
  calibration = quantize.representative_clips(
      clips_lib.make_clips(dataset.train, spec, batch_size=16, training=True, seed=seed),
      model.inputs[0].shape[1:], num_calibration_clips)
  clips, labels = runtime.take_clips(
      clips_lib.make_clips(dataset.validation, spec, batch_size=32, training=False),
      max_eval_clips)
  float_accuracy = float(np.mean(
      model.predict(clips, batch_size=32, verbose=0).argmax(-1) == labels))
  tf.io.gfile.makedirs(out_dir)
  settings = latency_lib.LatencySettings()

  print(f"QAT of {source.description}: post-training int8 first ...", flush=True)
  ptq = quantize.to_tflite(model, quantize.INT8, calibration)
  ptq.save(os.path.join(out_dir, PTQ_MODEL))

  with tempfile.TemporaryDirectory(prefix="vsearch_qat_") as scratch:
    request = {
        "method": source.method.name, "genome": source.genome.to_dict(),
        "num_classes": dataset.num_classes,
        "weights": os.path.join(scratch, "weights.npz"),
        "calibration": os.path.join(scratch, "calibration.npy"),
        "gin_config": os.path.join(scratch, "config.gin"),
        "output": os.path.join(scratch, QAT_MODEL),
        "steps": steps, "learning_rate": learning_rate, "batch_size": batch_size,
        "seed": seed,
    }
    np.savez(request["weights"], **_weights_by_layer(model))
    np.save(request["calibration"], calibration)
    with open(request["gin_config"], "w", encoding="utf-8") as f:
      f.write(gin.config_str())
    request_path = os.path.join(scratch, "request.json")
    with open(request_path, "w", encoding="utf-8") as f:
      json.dump(request, f)
    print(f"Fine-tuning with simulated int8 for {steps} steps (legacy Keras "
          "process) ...", flush=True)
    start = time.monotonic()
    _run_child(request_path)
    finetune_s = time.monotonic() - start
    with open(request["output"], "rb") as f:
      qat_content = f.read()
  with tf.io.gfile.GFile(os.path.join(out_dir, QAT_MODEL), "wb") as f:
    f.write(qat_content)
  qat = quantize.TfliteModel(
      content=qat_content, format=quantize.INT8, ops=quantize.inspect_ops(qat_content),
      input_dtype="int8", output_dtype="int8")

  summary = {"source": source.description, "genome": source.genome.to_dict(),
             "dataset": dataset.name, "num_eval_clips": int(len(labels)),
             "float_accuracy": float_accuracy,
             "steps": steps, "learning_rate": learning_rate, "finetune_s": finetune_s}
  for name, converted, path in (("ptq_int8", ptq, PTQ_MODEL), ("qat_int8", qat, QAT_MODEL)):
    measured = latency_lib.measure_latency(converted, settings)
    summary[name] = {
        "path": path, "size_bytes": len(converted.content),
        "fully_int8": converted.fully_int8,
        "accuracy": latency_lib.evaluate_tflite(converted, clips, labels, settings)["accuracy"],
        "latency_ms": measured.median_ms}
  with tf.io.gfile.GFile(os.path.join(out_dir, SUMMARY), "w") as f:
    json.dump(summary, f, indent=2, sort_keys=True)
    f.write("\n")
  print(format_summary(summary), flush=True)
  return summary


def format_summary(summary: dict[str, Any]) -> str:
  """The comparison as a table a person reads."""
  lines = [f"Float (Keras) accuracy {summary['float_accuracy']:.3f} on "
           f"{summary['num_eval_clips']} validation clips.",
           "| int8 model | accuracy | latency ms | size | fully int8 |", "|---|---|---|---|---|"]
  for name in ("ptq_int8", "qat_int8"):
    entry = summary[name]
    lines.append(f"| {name} ({entry['path']}) | {entry['accuracy']:.3f} | "
                 f"{entry['latency_ms']:.2f} | {entry['size_bytes'] / 1e3:.0f} kB | "
                 f"{'yes' if entry['fully_int8'] else 'no'} |")
  return "\n".join(lines)


def _check_tfmot_installed() -> None:
  import importlib.util  # pylint: disable=g-import-not-at-top
  missing = [name for name in ("tensorflow_model_optimization", "tf_keras")
             if importlib.util.find_spec(name) is None]
  if missing:
    raise UserError(f"QAT needs {' and '.join(missing)}: install vsearch with "
                    "pip install -e \".[qat]\".")


def _weights_by_layer(model) -> dict[str, np.ndarray]:
  """``'<layer>/<i>'`` -> the i-th weight of each layer that has weights."""
  return {f"{layer.name}/{i}": np.asarray(w)
          for layer in model.layers for i, w in enumerate(layer.get_weights())}


def _run_child(request_path: str) -> None:
  env = dict(os.environ, **{_LEGACY_ENV: "1"})
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  result = subprocess.run([sys.executable, "-m", "vsearch.qat", request_path], env=env,
                          capture_output=True, text=True, check=False)
  if result.returncode != 0:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    raise UserError(f"The QAT process failed: {lines[-1] if lines else result.returncode}")


# ---------------------------------------------------------------------------
# The child process: legacy Keras (tf_keras) and tfmot.


def _quantize_configs():
  """QuantizeConfigs for the layers tfmot's default 8-bit scheme does not know."""
  import tensorflow_model_optimization as tfmot  # pylint: disable=g-import-not-at-top
  keras_quant = tfmot.quantization.keras

  class OutputQuantizeConfig(keras_quant.QuantizeConfig):
    """No weights; the output is quantized to 8 bits (asymmetric, per tensor)."""

    def get_weights_and_quantizers(self, layer):
      return []

    def get_activations_and_quantizers(self, layer):
      return []

    def set_quantize_weights(self, layer, quantize_weights):
      pass

    def set_quantize_activations(self, layer, quantize_activations):
      pass

    def get_output_quantizers(self, layer):
      return [keras_quant.quantizers.MovingAverageQuantizer(
          num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

    def get_config(self):
      return {}

  class PassThroughQuantizeConfig(OutputQuantizeConfig):
    """A reshape: int8 in, the same int8 out; nothing to quantize."""

    def get_output_quantizers(self, layer):
      return []

  return OutputQuantizeConfig, PassThroughQuantizeConfig


def quantization_aware_model(model):
  """``model`` (tf_keras) wrapped for QAT, its weights kept."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_model_optimization as tfmot  # pylint: disable=g-import-not-at-top
  from vsearch import layers  # pylint: disable=g-import-not-at-top
  keras_quant = tfmot.quantization.keras
  output_config, pass_through_config = _quantize_configs()

  def annotate(layer):
    if isinstance(layer, layers.FreeReshape):
      return keras_quant.quantize_annotate_layer(layer, pass_through_config())
    if isinstance(layer, (tf.keras.layers.Multiply, layers.HardSwish)):
      return keras_quant.quantize_annotate_layer(layer, output_config())
    return keras_quant.quantize_annotate_layer(layer)

  annotated = tf.keras.models.clone_model(model, clone_function=annotate)
  annotated.set_weights(model.get_weights())
  with keras_quant.quantize_scope({
      "OutputQuantizeConfig": output_config,
      "PassThroughQuantizeConfig": pass_through_config,
      "FreeReshape": layers.FreeReshape, "HardSwish": layers.HardSwish}):
    return keras_quant.quantize_apply(annotated)


def _child(request_path: str) -> None:
  """Rebuilds, fine-tunes with QAT and converts; see the module docstring."""
  if os.environ.get(_LEGACY_ENV) != "1":
    raise SystemExit(f"python -m vsearch.qat runs with {_LEGACY_ENV}=1 (vsearch.qat.run "
                     "starts it so)")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from vsearch import configurables  # pylint: disable=g-import-not-at-top,unused-import
  from vsearch import genome_source  # pylint: disable=g-import-not-at-top
  from vsearch import quantize  # pylint: disable=g-import-not-at-top
  from vsearch.data import clips as clips_lib  # pylint: disable=g-import-not-at-top
  from vsearch.data import datasets  # pylint: disable=g-import-not-at-top

  with open(request_path, encoding="utf-8") as f:
    request = json.load(f)
  gin.parse_config_file(request["gin_config"])
  method = genome_source.method_named(request["method"])
  genome = method.genome_from_dict(request["genome"])
  tf.keras.utils.set_random_seed(request["seed"])
  model = method.build(genome, request["num_classes"])
  saved = np.load(request["weights"])
  for layer in model.layers:
    count = len(layer.get_weights())
    if count:
      layer.set_weights([saved[f"{layer.name}/{i}"] for i in range(count)])
  qat_model = quantization_aware_model(model)
  qat_model.compile(
      optimizer=tf.keras.optimizers.Adam(request["learning_rate"]),
      loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  data = clips_lib.make_clips(datasets.load_dataset().train, method.clip_spec(genome),
                              batch_size=request["batch_size"], training=True,
                              seed=request["seed"])
  qat_model.fit(data, steps_per_epoch=request["steps"], epochs=1, verbose=0)
  converted = quantize.to_tflite(qat_model, quantize.INT8, np.load(request["calibration"]))
  converted.save(request["output"])


if __name__ == "__main__":
  _child(sys.argv[1])
