"""The TVN Keras builder and the video layers it is made of."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from vsearch.methods import tvn
from vsearch.nn import layers

FRAMES, SIZE, CLASSES = 4, 32, 3


def _block(**changes):
  fields = dict(
    spatial_type="conv",
    spatial_kernel=3,
    spatial_stride=2,
    temporal_type="conv",
    temporal_kernel=3,
    temporal_stride=1,
    repeats=1,
    filters=8,
    expand=2,
  )
  fields.update(changes)
  return tvn.Block(**fields)


def _genome(*blocks, num_frames=FRAMES):
  return tvn.Genome(resolution=SIZE, num_frames=num_frames, frame_stride=1, blocks=blocks)


# Every spatial and temporal type, SE, CG, skip, inverted bottleneck, hswish.
EVERYTHING = _genome(
  _block(
    temporal_stride=2,
    repeats=2,
    skip=True,
    squeeze=0.5,
    context_gate=True,
    spatial_activation="hswish",
    temporal_activation="hswish",
    output_activation="hswish",
  ),
  _block(
    spatial_type="depthwise",
    temporal_type="maxpool",
    temporal_kernel=2,
    repeats=2,
    inverted_bottleneck=True,
    skip=True,
    squeeze=0.25,
  ),
  _block(
    spatial_type="maxpool",
    spatial_kernel=2,
    temporal_type="avgpool",
    temporal_kernel=2,
    temporal_stride=2,
    context_gate=True,
  ),
  _block(
    spatial_type="avgpool",
    spatial_kernel=2,
    spatial_stride=1,
    temporal_kernel=1,
    repeats=3,
    skip=True,
    filters=4,
    expand=1,
  ),
  _block(spatial_stride=1, temporal_kernel=2),  # One frame left: no time op.
)


@pytest.fixture(scope="module")
def model():
  tf.keras.utils.set_random_seed(0)
  return tvn.build_model(EVERYTHING, CLASSES)


def _clips(batch, genome=EVERYTHING, seed=0):
  shape = (batch, genome.num_frames, genome.resolution, genome.resolution, 3)
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _names(model):
  return {layer.name for layer in model.layers}


def test_everything_model_gives_logits(model):
  assert model.input_shape == (None, FRAMES, SIZE, SIZE, 3)
  logits = model(_clips(2), training=False)
  assert logits.shape == (2, CLASSES)
  assert np.all(np.isfinite(logits))
  for name in (
    "block0_rep0_spatial_conv",
    "block0_rep0_temporal_conv",
    "block0_rep0_se_gate",
    "block0_rep0_cg_gate",
    "block1_rep0_spatial_depthwise",
    "block1_rep0_temporal_maxpool",
    "block1_rep0_project",
    "block2_rep0_spatial_maxpool",
    "block2_rep0_temporal_avgpool",
    "block3_rep2_spatial_avgpool",
    "block0_rep1_add",
    "logits",
  ):
    assert name in _names(model), name
  assert isinstance(model.get_layer("block0_rep0_out"), layers.HardSwish)


def test_no_three_dimensional_op_anywhere(model):
  for layer in model.layers:
    assert "3D" not in type(layer).__name__, layer.name
    if not isinstance(layer, tf.keras.layers.InputLayer):
      assert len(layer.output.shape) <= 4, layer.name
    for weight in layer.weights:
      assert len(weight.shape) <= 4, weight.name


def test_intermediate_shapes_follow_the_strides(model):
  # The temporal conv sees (B, T, H·W, C) and its stride 2 halves T.
  assert model.get_layer("block0_rep0_temporal_conv_fold").output.shape == (None, 4, 16 * 16, 8)
  assert model.get_layer("block0_rep0_temporal_conv").output.shape == (None, 2, 16 * 16, 8)
  assert model.get_layer("block1_rep0_temporal_maxpool").output.shape == (None, 2, 8 * 8, 16)
  assert model.get_layer("block2_rep0_temporal_avgpool").output.shape == (None, 1, 4 * 4, 8)
  for i, (_, size) in enumerate(EVERYTHING.block_shapes()):
    last = EVERYTHING.blocks[i].repeats - 1
    out = model.get_layer(f"block{i}_rep{last}_out").output.shape
    assert out == (None, size, size, EVERYTHING.blocks[i].output_width)
  assert EVERYTHING.block_shapes() == [(2, 16), (2, 8), (1, 4), (1, 4), (1, 4)]


def test_repeats_alternate_the_temporal_op_and_skip_only_without_time_stride(model):
  names = _names(model)
  # Block 0 strides time in repeat 0: no residual there, one in repeat 1.
  assert "block0_rep0_add" not in names and "block0_rep1_add" in names
  # Repeat 1 has no temporal op; block 3 has none at all (kernel 1).
  assert "block0_rep1_temporal_conv" not in names
  assert not [n for n in names if n.startswith("block3") and "temporal" in n]
  # Once one frame is left, temporal ops are skipped.
  assert not [n for n in names if n.startswith("block4") and "temporal" in n]
  # A shortcut is strided like the spatial op only when the size changes.
  assert model.get_layer("block1_rep0_shortcut").strides == (2, 2)
  assert model.get_layer("block1_rep1_shortcut").strides == (1, 1)


def test_temporal_op_in_even_repeats_and_strided_shortcut():
  genome = _genome(_block(repeats=3, skip=True, temporal_kernel=2))
  names = _names(tvn.build_model(genome, CLASSES))
  assert {"block0_rep0_temporal_conv", "block0_rep2_temporal_conv"} <= names
  assert "block0_rep1_temporal_conv" not in names
  model = tvn.build_model(genome, CLASSES)
  assert model.get_layer("block0_rep0_shortcut").strides == (2, 2)


def test_kernel_one_skips_the_spatial_op():
  genome = _genome(_block(spatial_kernel=1, spatial_stride=1))
  model = tvn.build_model(genome, CLASSES)
  assert not [n for n in _names(model) if "spatial" in n]
  assert model.get_layer("block0_rep0_out").output.shape[1] == SIZE


def test_clips_do_not_mix_in_a_batch(model):
  # SE, CG and the head average per clip: a clip's logits are the same alone
  # or in a batch with other clips.
  clips = _clips(3, seed=1)
  together = model(clips, training=False).numpy()
  alone = model(clips[1:2], training=False).numpy()
  np.testing.assert_allclose(together[1:2], alone, rtol=1e-4, atol=1e-5)


def test_a_training_step_runs_and_changes_the_weights():
  tf.keras.utils.set_random_seed(1)
  model = tvn.TvnMethod().build(EVERYTHING, CLASSES)
  optimizer = tf.keras.optimizers.SGD(0.01)
  loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  clips, labels = _clips(2, seed=2), np.array([0, 2])
  before = [w.numpy().copy() for w in model.trainable_weights]
  with tf.GradientTape() as tape:
    loss = loss_fn(labels, model(clips, training=True))
  grads = tape.gradient(loss, model.trainable_weights)
  assert all(g is not None for g in grads)
  optimizer.apply_gradients(zip(grads, model.trainable_weights))
  assert np.isfinite(loss.numpy())
  changed = [not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights)]
  assert sum(changed) > len(changed) // 2


def test_model_config_round_trips(model):
  again = tf.keras.Model.from_config(model.get_config())
  again.set_weights(model.get_weights())
  clips = _clips(1, seed=3)
  np.testing.assert_allclose(
    again(clips, training=False), model(clips, training=False), rtol=1e-5, atol=1e-6
  )


def test_temporal_layers_match_numpy():
  x = np.random.default_rng(4).normal(size=(2 * 5, 3, 3, 2)).astype(np.float32)
  inputs = tf.keras.Input(shape=(3, 3, 2))
  pooled, frames = layers.temporal_pool(inputs, 5, "maxpool", 2, 2, name="p")
  assert frames == 3
  got = tf.keras.Model(inputs, pooled)(x).numpy().reshape(2, 3, 3, 3, 2)
  clips = x.reshape(2, 5, 3, 3, 2)
  # SAME padding over time: windows {0,1}, {2,3}, {4}.
  want = np.stack([clips[:, 0:2].max(1), clips[:, 2:4].max(1), clips[:, 4]], 1)
  np.testing.assert_allclose(got, want)
  swish = layers.HardSwish()(tf.constant([-4.0, -1.0, 0.0, 1.0, 4.0])).numpy()
  np.testing.assert_allclose(swish, [0.0, -1 / 3, 0.0, 2 / 3, 4.0], rtol=1e-6)


def test_free_reshape_folds_time_into_batch():
  layer = layers.FreeReshape((4, 4, 3))
  assert layer(tf.zeros((2, 5, 4, 4, 3))).shape == (10, 4, 4, 3)
  again = layers.FreeReshape.from_config(layer.get_config())
  assert again.target_shape == (4, 4, 3)


def test_max_space_head_keeps_the_peak_of_each_frame_and_converts_to_int8():
  from vsearch.deploy import quantize

  genome = dataclasses.replace(_genome(_block(), _block()), head_pool="max_space")
  model = tvn.build_model(genome, CLASSES)
  assert {"head_pool_space_max", "head_pool"} <= _names(model)
  clips = _clips(3, genome)
  features = tf.keras.Model(model.inputs, model.get_layer("head_pool").output)
  last = tf.keras.Model(model.inputs, model.get_layer("block1_rep0_out").output)
  frames = last(clips, training=False).numpy()  # (B·T, H, W, C)
  expected = frames.reshape(3, FRAMES, -1, frames.shape[-1]).max(axis=2).mean(axis=1)
  np.testing.assert_allclose(features(clips, training=False), expected, rtol=1e-5, atol=1e-6)
  converted = quantize.to_tflite(model, quantize.INT8, np.tanh(clips), num_calibration_clips=3)
  assert converted.fully_int8
