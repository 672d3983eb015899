"""Export form: layers swapped for what they compute at inference, and large kernels in int8."""

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from vsearch.deploy import quantize
from vsearch.methods import evanet
from vsearch.methods.evanet import conv3d, itgm
from vsearch.nn import export_form

CLASSES = 5


def test_itgm_and_3d_convs_export_as_stacked_convs_with_identical_outputs():
  tf.keras.backend.clear_session()
  branch = evanet.Branch("conv", conv_type="itgm", time=5)
  stage = evanet.Stage(repeats=2, filters=8, branches=(branch,))
  genome = evanet.Genome("itgm", 3, 1, 1, 1, (stage,) * 4, stem_filters=8)
  model = evanet.build_model(genome, CLASSES, (8, 32, 32, 3))
  rng = np.random.default_rng(0)
  # Move the temporal parameters off their initial values.
  for layer in model.layers:
    if isinstance(layer, itgm.ITGMConv3D) and layer.has_mixture:
      layer.raw_centers.assign(rng.normal(size=4))
      layer.mixing_logits.assign(rng.normal(size=layer.mixing_logits.shape))
  exported = export_form.export_form(model)
  assert not any(isinstance(layer, itgm.ITGMConv3D) for layer in exported.layers)
  convs = [layer for layer in exported.layers if isinstance(layer, conv3d.SpaceTimeConv3D)]
  assert len(convs) > sum(isinstance(layer, conv3d.SpaceTimeConv3D) for layer in model.layers)
  assert all(conv.stacked for conv in convs)
  assert [layer.name for layer in exported.layers[1:]] == [layer.name for layer in model.layers[1:]]
  clip = rng.uniform(-1, 1, size=(2, 8, 32, 32, 3)).astype(np.float32)
  np.testing.assert_allclose(
    exported(clip, training=False), model(clip, training=False), rtol=1e-4, atol=1e-5
  )
  # The stem (L=3, 7x7, 3 -> 8) holds its kernel as the 2-D conv takes it.
  assert exported.get_layer("stem").kernel.shape == (7, 7, 3 * 3, 8)
  # A stacked layer round-trips through its config, and a model without
  # export forms is returned as it is.
  config = exported.get_layer("stem").get_config()
  assert conv3d.SpaceTimeConv3D.from_config(config).stacked
  plain = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)])
  assert export_form.export_form(plain) is plain


def test_a_large_itgm_kernel_is_quantized_as_a_weight_and_runs_in_litert():
  # EvaNet-A's 11-tap iTGM synthesizes a 13 MB stacked kernel (256 x 3 x 3 x
  # 1408). The converter does not fold a computed kernel that large into a
  # constant, so without the export form the quantizer took it for an
  # activation (zero point 1) and LiteRT refused the conv at prepare.
  tf.keras.backend.clear_session()
  inputs = tf.keras.Input((12, 4, 4, 128))
  x = itgm.ITGMConv3D(256, (11, 3, 3), name="long_itgm")(inputs)
  x = tf.keras.layers.GlobalAveragePooling3D()(x)
  model = tf.keras.Model(inputs, tf.keras.layers.Dense(CLASSES)(x))
  clips = np.random.default_rng(0).uniform(-1, 1, (4, 12, 4, 4, 128)).astype(np.float32)
  converted = quantize.to_tflite(model, quantize.INT8, clips, num_calibration_clips=4)
  assert converted.fully_int8
  interpreter = Interpreter(model_content=converted.content)
  interpreter.allocate_tensors()  # Raised "zero_point 1 != 0" before.
  detail = interpreter.get_input_details()[0]
  scale, zero = detail["quantization"]
  interpreter.set_tensor(detail["index"], np.round(clips[:1] / scale + zero).astype(np.int8))
  interpreter.invoke()
  logits = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
  assert logits.shape == (1, CLASSES)
