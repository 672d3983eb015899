"""TFLite conversion (int8 and float), op inspection, calibration clips, FLOPs."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from vsearch.deploy import latency, quantize
from vsearch.errors import CandidateError, InvalidGenomeError, UserError
from vsearch.methods import tvn, zoo
from vsearch.nn import cost

CLASSES = 3

# Every spatial and temporal op type, SE, context gating, skips, hard-swish in
# every position and an inverted bottleneck, on 4 frames of 32x32.
TINY = tvn.Genome(
  resolution=32,
  num_frames=4,
  frame_stride=1,
  blocks=(
    tvn.Block(
      "conv",
      3,
      2,
      "conv",
      2,
      1,
      repeats=2,
      filters=8,
      expand=2,
      skip=True,
      squeeze=0.5,
      context_gate=True,
      spatial_activation="hswish",
      temporal_activation="hswish",
    ),
    tvn.Block("depthwise", 3, 1, "maxpool", 2, 2, repeats=1, filters=8, expand=2, skip=True),
    tvn.Block(
      "maxpool",
      2,
      2,
      "avgpool",
      2,
      1,
      repeats=2,
      filters=8,
      expand=2,
      inverted_bottleneck=True,
      output_activation="hswish",
    ),
    tvn.Block(
      "avgpool",
      3,
      1,
      "conv",
      3,
      1,
      repeats=1,
      filters=16,
      expand=1,
      context_gate=True,
      squeeze=0.25,
    ),
  ),
)
CLIP_SHAPE = (4, 32, 32, 3)
# The builtins a reshape-only TVN lowers to.
TVN_OPS = {
  "CONV_2D",
  "DEPTHWISE_CONV_2D",
  "MAX_POOL_2D",
  "AVERAGE_POOL_2D",
  "RESHAPE",
  "MEAN",
  "MUL",
  "ADD",
  "LOGISTIC",
  "HARD_SWISH",
  "FULLY_CONNECTED",
}


def _clips(n, shape=CLIP_SHAPE, seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, (n,) + shape).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_model():
  tf.keras.utils.set_random_seed(0)
  return tvn.build_model(TINY, CLASSES)


def test_tiny_tvn_converts_with_every_op_in_int8(tiny_model):
  converted = quantize.to_tflite(tiny_model, "int8", _clips(4))
  assert converted.fully_int8 and not converted.float_ops
  assert (converted.input_dtype, converted.output_dtype) == ("int8", "int8")
  names = {op.name for op in converted.ops}
  assert names == TVN_OPS
  # No float island anywhere: every op reads int8.
  assert {op.input_dtype for op in converted.ops} == {"int8"}
  summary = converted.summary()
  assert summary["fully_int8"] and summary["float_ops"] == []
  assert summary["op_counts"]["HARD_SWISH"] >= 3


def test_float_conversion_runs_every_op_in_float(tiny_model):
  converted = quantize.to_tflite(tiny_model, "float")
  assert converted.format == "float" and converted.input_dtype == "float32"
  assert not converted.fully_int8
  assert {op.name for op in converted.float_ops} == TVN_OPS


def _shrunk(genome):
  """The genome with every op kept, 1/16 of the widths, a small resolution."""
  blocks = tuple(dataclasses.replace(b, filters=max(8, b.filters // 16)) for b in genome.blocks)
  for resolution in (32, 48, 64, 96):
    try:
      return dataclasses.replace(genome, resolution=resolution, blocks=blocks)
    except InvalidGenomeError:
      continue  # Its strides need a larger input.
  raise AssertionError(f"no small resolution fits {genome}")


@pytest.mark.parametrize("name", zoo.names("tvn"))
def test_zoo_architecture_converts_fully_int8(name):
  # At published widths and sizes the zoo takes 6 s (tvn_mobile1) to 100 s
  # (tvn2) per conversion; the ops do not depend on widths or resolution.
  tf.keras.backend.clear_session()
  genome = _shrunk(zoo.genome(name))
  model = tvn.build_model(genome, CLASSES)
  shape = (genome.num_frames, genome.resolution, genome.resolution, 3)
  converted = quantize.to_tflite(model, "int8", _clips(2, shape), num_calibration_clips=2)
  assert converted.fully_int8, converted.float_ops


def test_zoo_mobile_model_at_published_size_converts_fully_int8():
  tf.keras.backend.clear_session()
  model = zoo.build("tvn_mobile1", CLASSES)
  converted = quantize.to_tflite(model, "int8", _clips(2, (2, 224, 224, 3)))
  assert converted.fully_int8, converted.float_ops
  assert converted.ops[0].name == "RESHAPE"  # int8 input: no QUANTIZE first.


def _conv3d_model(pool=False):
  inputs = tf.keras.Input(CLIP_SHAPE)
  x = tf.keras.layers.Conv3D(8, 3, padding="same")(inputs)
  x = tf.keras.layers.ReLU()(x)
  if pool:
    x = tf.keras.layers.MaxPool3D(2)(x)
  x = tf.keras.layers.GlobalAveragePooling3D()(x)
  return tf.keras.Model(inputs, tf.keras.layers.Dense(CLASSES)(x))


def test_conv3d_model_is_reported_not_fully_int8():
  converted = quantize.to_tflite(_conv3d_model(), "int8", _clips(2))
  assert not converted.fully_int8
  assert [op.name for op in converted.float_ops] == ["CONV_3D"]
  assert converted.float_ops[0].input_dtype == "float32"
  # The converter wraps the float op in conversions; the rest stays int8.
  names = [op.name for op in converted.ops]
  assert names[names.index("CONV_3D") - 1] == "DEQUANTIZE"
  assert converted.summary()["float_ops"] == ["CONV_3D"]
  with pytest.raises(CandidateError, match="not fully int8: CONV_3D"):
    converted.require_fully_int8()


def test_int8_file_computes_what_the_converters_own_int8_conversion_computes(tiny_model):
  # to_tflite stops the converter before its calibration so the converter and
  # the frozen graph are freed first (AssembleNet++-50 would not fit
  # otherwise); the file must compute exactly what one converter.convert()
  # call gives (every range is seen here, so no range is widened).
  clips = _clips(4)
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
    [cost.frozen_function(tiny_model)], tf.Module()
  )
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = lambda: ([clip[None]] for clip in clips)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  converter.inference_input_type = converter.inference_output_type = tf.int8
  theirs = converter.convert()
  ours = quantize.to_tflite(tiny_model, "int8", clips).content
  assert quantize.inspect_ops(ours) == quantize.inspect_ops(theirs)
  test_clips = np.random.default_rng(1).integers(-128, 128, (3, 1, *CLIP_SHAPE), dtype=np.int8)
  outputs = []
  for content in (ours, theirs):
    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    logits = []
    for clip in test_clips:
      interpreter.set_tensor(inp["index"], clip)
      interpreter.invoke()
      logits.append(interpreter.get_tensor(out["index"]).copy())
    outputs.append((inp["quantization"], out["quantization"], np.stack(logits)))
  assert outputs[0][:2] == outputs[1][:2]
  np.testing.assert_array_equal(outputs[0][2], outputs[1][2])


def test_a_tensor_calibration_never_saw_move_gets_a_scale_xnnpack_loads():
  # A ReLU biased far below what any clip reaches is zero on every
  # calibration clip: calibrated range [0, 0], which the quantizer turned
  # into scale 0, and XNNPACK aborted the process loading the file.
  inputs = tf.keras.Input(CLIP_SHAPE)
  x = tf.keras.layers.Reshape((CLIP_SHAPE[0] * CLIP_SHAPE[1], CLIP_SHAPE[2], 3))(inputs)
  x = tf.keras.layers.Conv2D(4, 1, bias_initializer=tf.keras.initializers.Constant(-100.0))(x)
  x = tf.keras.layers.ReLU(name="never_on")(x)
  x = tf.keras.layers.Conv2D(4, 1, activation="relu", bias_initializer="ones")(x)
  x = tf.keras.layers.GlobalAveragePooling2D()(x)
  model = tf.keras.Model(inputs, tf.keras.layers.Dense(CLASSES, bias_initializer="ones")(x))
  converted = quantize.to_tflite(model, "int8", _clips(2))
  assert converted.fully_int8
  subgraph = schema.Model.GetRootAs(converted.content, 0).Subgraphs(0)
  scales = {
    subgraph.Tensors(t).Name().decode(): subgraph.Tensors(t).Quantization().ScaleAsNumpy()
    for t in range(subgraph.TensorsLength())
    if subgraph.Tensors(t).Quantization() and subgraph.Tensors(t).Quantization().ScaleLength()
  }
  assert all(np.all(scale > 0) for scale in scales.values()), scales
  never_on = [scale for name, scale in scales.items() if "never_on" in name and scale.size == 1]
  assert never_on and np.allclose(never_on[0], 1 / 255)
  # It runs under XNNPACK, and what follows the dead ReLU keeps its bias.
  clips = _clips(3, seed=1)
  result = latency.evaluate_tflite(converted, clips, np.zeros(3, int), return_logits=True)
  np.testing.assert_allclose(result["logits"], model(clips).numpy(), atol=0.05)


@pytest.mark.parametrize("format", quantize.FORMATS)
def test_3d_pooling_does_not_convert(format):
  with pytest.raises(CandidateError) as raised:
    quantize.to_tflite(_conv3d_model(pool=True), format, _clips(2))
  message = str(raised.value)
  assert "MaxPool3D" in message and "\n" not in message
  assert len(message) < 200


def test_converter_logs_stay_off_the_console(tiny_model, capfd):
  quantize.to_tflite(tiny_model, "int8", _clips(2))
  assert "fully_quantize" not in capfd.readouterr().err


def test_representative_clips_from_a_dataset_of_batches():
  clips = _clips(10)
  data = tf.data.Dataset.from_tensor_slices((clips, np.arange(10, dtype=np.int32))).batch(4)
  taken = quantize.representative_clips(data, CLIP_SHAPE, num_clips=6)
  assert taken.shape == (6,) + CLIP_SHAPE and taken.dtype == np.float32
  np.testing.assert_array_equal(taken, clips[:6])
  # Fewer clips than asked: all of them.
  assert len(quantize.representative_clips(data, CLIP_SHAPE, 50)) == 10


def test_representative_clips_from_arrays():
  assert quantize.representative_clips(_clips(5), CLIP_SHAPE, 3).shape == ((3,) + CLIP_SHAPE)
  single = quantize.representative_clips(_clips(1)[0], CLIP_SHAPE)
  assert single.shape == (1,) + CLIP_SHAPE


def test_representative_clips_of_several_named_inputs():
  shapes = {"clips": CLIP_SHAPE, "objects": (4, 32, 32, 2)}
  clips, objects = _clips(10), _clips(10, shapes["objects"], seed=1) + 1.5
  data = tf.data.Dataset.from_tensor_slices(
    ({"clips": clips, "objects": objects}, np.arange(10))
  ).batch(4)
  taken = quantize.representative_clips(data, shapes, num_clips=6)
  assert set(taken) == {"clips", "objects"}
  np.testing.assert_array_equal(taken["clips"], clips[:6])
  # Only RGB clips must lie in [-1, 1].
  np.testing.assert_array_equal(taken["objects"], objects[:6])
  single = quantize.representative_clips({"clips": clips[0], "objects": objects[0]}, shapes)
  assert single["objects"].shape == (1, 4, 32, 32, 2)
  with pytest.raises(UserError, match="model reads"):
    quantize.representative_clips({"clips": clips}, shapes)
  with pytest.raises(UserError, match="dict of them"):
    quantize.representative_clips(clips, shapes)
  with pytest.raises(UserError, match=r"'objects' has shape"):
    quantize.representative_clips({"clips": clips, "objects": clips}, shapes)


def test_calibration_shape_mismatch_is_a_clear_error(tiny_model):
  with pytest.raises(UserError, match=r"shape \(8, 32, 32, 3\).*\(4, 32, 32, 3\)"):
    quantize.to_tflite(tiny_model, "int8", _clips(2, (8, 32, 32, 3)))
  data = tf.data.Dataset.from_tensor_slices(_clips(4, (4, 16, 16, 3))).batch(2)
  with pytest.raises(UserError, match="clip spec"):
    quantize.representative_clips(data, CLIP_SHAPE)


def test_bad_calibration_input(tiny_model):
  with pytest.raises(UserError, match=r"\[-1, 1\]"):
    quantize.representative_clips(_clips(2) * 127.5 + 127.5, CLIP_SHAPE)
  with pytest.raises(UserError, match="empty"):
    quantize.representative_clips(np.zeros((0,) + CLIP_SHAPE), CLIP_SHAPE)
  with pytest.raises(UserError, match="calibration"):
    quantize.to_tflite(tiny_model, "int8")
  with pytest.raises(UserError, match="format"):
    quantize.to_tflite(tiny_model, "int4", _clips(2))


def test_count_flops_is_twice_the_multiply_adds():
  inputs = tf.keras.Input((4, 8, 8, 3))
  x = tf.keras.layers.Conv3D(6, (3, 3, 3), padding="same", use_bias=False)(
    inputs
  )  # 4*8*8*6 outputs x 27*3
  x = tf.keras.layers.Reshape((32, 8, 6))(x)
  x = tf.keras.layers.Conv2D(5, 3, strides=2, padding="same")(x)  # 16*4*5 x 54
  x = tf.keras.layers.DepthwiseConv2D(3, padding="same")(x)  # 16*4*5 x 9
  x = tf.keras.layers.GlobalAveragePooling2D()(x)
  outputs = tf.keras.layers.Dense(7)(x)  # 7 x 5
  model = tf.keras.Model(inputs, outputs)
  macs = 4 * 8 * 8 * 6 * 27 * 3 + 16 * 4 * 5 * 54 + 16 * 4 * 5 * 9 + 7 * 5
  assert cost.count_flops(model) == 2 * macs


def test_count_flops_of_a_tvn_grows_with_its_resolution(tiny_model):
  flops = cost.count_flops(tiny_model)
  bigger = tvn.build_model(dataclasses.replace(TINY, resolution=64), CLASSES)
  # Everything but the per-clip SE/CG convs and the head scales with H*W.
  assert 3.5 * flops < cost.count_flops(bigger) < 4 * flops
