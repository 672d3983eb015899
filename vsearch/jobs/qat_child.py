"""The legacy-Keras side of QAT: rebuild, fine-tune with simulated int8, convert.

``vsearch.jobs.qat`` starts ``python -m vsearch.jobs.qat_child REQUEST`` with
``TF_USE_LEGACY_KERAS=1``, because tfmot only wraps legacy Keras
(``tf_keras``) models. Here the same builders build the same genome under
``tf_keras``, load the parent's weights by layer name, wrap the model for
QAT (tfmot's default 8-bit scheme, plus ``QuantizeConfig``s for the layers
tfmot does not know: ``Multiply`` of squeeze-excite and context gating and
``HardSwish`` get their outputs quantized, ``FreeReshape`` passes through),
fine-tune it on the training clips and convert it to int8 TFLite with
``vsearch.deploy.quantize.to_tflite``. This module imports no Keras 3 code
at the top, so the parent can import its constants.
"""

import json
import os
import sys

import gin
import numpy as np

LEGACY_ENV = "TF_USE_LEGACY_KERAS"
QAT_MODEL = "model_qat_int8.tflite"


def _quantize_configs():
  """QuantizeConfigs for the layers tfmot's default 8-bit scheme does not know."""
  import tensorflow_model_optimization as tfmot

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
      return [
        keras_quant.quantizers.MovingAverageQuantizer(
          num_bits=8, per_axis=False, symmetric=False, narrow_range=False
        )
      ]

    def get_config(self):
      return {}

  class PassThroughQuantizeConfig(OutputQuantizeConfig):
    """A reshape: int8 in, the same int8 out; nothing to quantize."""

    def get_output_quantizers(self, layer):
      return []

  return OutputQuantizeConfig, PassThroughQuantizeConfig


def quantization_aware_model(model):
  """``model`` (tf_keras) wrapped for QAT, its weights kept."""
  import tensorflow as tf
  import tensorflow_model_optimization as tfmot

  from vsearch.nn import layers

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
  with keras_quant.quantize_scope(
    {
      "OutputQuantizeConfig": output_config,
      "PassThroughQuantizeConfig": pass_through_config,
      "FreeReshape": layers.FreeReshape,
      "HardSwish": layers.HardSwish,
    }
  ):
    return keras_quant.quantize_apply(annotated)


def main(request_path: str) -> None:
  """Rebuilds, fine-tunes with QAT and converts; see the module docstring."""
  if os.environ.get(LEGACY_ENV) != "1":
    raise SystemExit(
      f"python -m vsearch.jobs.qat_child runs with {LEGACY_ENV}=1 "
      "(vsearch.jobs.qat.run starts it so)"
    )
  import tensorflow as tf

  from vsearch.data import clips as clips_lib
  from vsearch.data import datasets
  from vsearch.deploy import quantize
  from vsearch.methods import registry

  with open(request_path, encoding="utf-8") as f:
    request = json.load(f)
  # The parent checked the whole config; this process needs only the
  # method's and the dataset's bindings, and imports only their modules.
  gin.parse_config_file(request["gin_config"], skip_unknown=True)
  method = registry.method(request["method"])
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
    loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
  )
  data = clips_lib.make_clips(
    datasets.load_dataset().train,
    method.clip_spec(genome),
    batch_size=request["batch_size"],
    training=True,
    seed=request["seed"],
  )
  qat_model.fit(data, steps_per_epoch=request["steps"], epochs=1, verbose=0)
  converted = quantize.to_tflite(qat_model, quantize.INT8, np.load(request["calibration"]))
  converted.save(request["output"])


if __name__ == "__main__":
  main(sys.argv[1])
