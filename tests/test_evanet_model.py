"""EvaNet builder shapes, the zoo entries, iTGM and its export, 3-D ops from 2-D ones, flow."""

import numpy as np
import pytest
import tensorflow as tf

from vsearch.data import clips as clips_lib
from vsearch.errors import UserError
from vsearch.methods import evanet, zoo
from vsearch.methods.evanet import conv3d, itgm
from vsearch.nn import flow

CLASSES = 5

# The released nets as reference/methods.md §1.3 tables them: per stage the
# repeats and branches ('1x1', 'maxpool', ('conv', type, t), ('conv2', type,
# t, type2, t2)); stage totals 256/512/1024/2048, stem (2+1)D t3 64 ch.
_PUBLISHED = {
  "evanet_a": [
    (2, [("conv", "3d", 1), "maxpool"]),
    (4, ["maxpool", "1x1", ("conv", "3d", 1), "1x1", ("conv", "3d", 5)]),
    (5, ["maxpool", "1x1", ("conv", "itgm", 11), "maxpool"]),
    (3, ["maxpool", ("conv", "3d", 1), ("conv", "itgm", 3)]),
  ],
  "evanet_b": [
    (2, ["maxpool", "maxpool", ("conv2", "itgm", 1, "2plus1d", 9), "maxpool", "1x1"]),
    (
      3,
      [
        "maxpool",
        "maxpool",
        ("conv2", "2plus1d", 5, "3d", 1),
        ("conv2", "itgm", 1, "2plus1d", 11),
        "1x1",
        ("conv2", "2plus1d", 11, "3d", 1),
      ],
    ),
    (5, ["maxpool", "1x1", "maxpool"]),
    (4, [("conv", "2plus1d", 1), "maxpool"]),
  ],
}


def _published_trainable_params(name: str, classes: int) -> int:
  """Trainable parameters of a released EvaNet, counted from the rules of
  reference/methods.md §1.2 and §1.4 alone (not from the builder): convs
  without bias, BN scale and offset, (2+1)D = (t,1,1) to half width + BN +
  (1,3,3), iTGM = spatial kernel + M=4 mixing logits per channel pair + 2M
  centres/widths when its length is > 1, temporal lengths forced to 1 in
  units 1, 3, ..., classifier with bias."""
  bn = lambda c: 2 * c

  def conv(kind, t, c_in, c_out):
    if kind == "3d":
      return t * 9 * c_in * c_out
    if kind == "itgm":
      return 9 * c_in * c_out + (4 * c_in * c_out + 8 if t > 1 else 0)
    return t * c_in * (c_out // 2) + bn(c_out // 2) + 9 * (c_out // 2) * c_out

  total = 3 * 3 * 32 + bn(32) + 7 * 7 * 32 * 64 + bn(64)  # (2+1)D stem, 3 -> 64.
  c_in = 64
  for (repeats, branches), stage_total in zip(_PUBLISHED[name], (256, 512, 1024, 2048)):
    f = stage_total // len(branches)
    width = f * len(branches)
    for r in range(repeats):
      use_time = r % 2 == 0
      if r == 0:
        total += c_in * width + bn(width)  # Projection shortcut.
      for b in branches:
        if b in ("1x1", "maxpool"):
          total += c_in * f + bn(f)
        elif b[0] == "conv":
          time = b[2] if use_time else 1
          total += c_in * (f // 2) + bn(f // 2) + conv(b[1], time, f // 2, f) + bn(f)
        else:
          time, time2 = (b[2], b[4]) if use_time else (1, 1)
          total += c_in * (f // 4) + bn(f // 4) + conv(b[1], time, f // 4, f // 2) + bn(f // 2)
          total += conv(b[3], time2, f // 2, f) + bn(f)
      c_in = width
  return total + c_in * classes + classes


def _tiny_method(stream="rgb"):
  space = evanet.EvanetSearchSpace(
    repeats=(1, 2), max_branches=3, stem_filters=8, stage_filters=(12, 24, 24, 32)
  )
  return evanet.EvanetMethod(
    space=space, num_frames=8, resolution=32, stream=stream, dropout_rate=0.0
  )


def _unit_out(model, stage, repeats):
  return model.get_layer(f"res{stage}_u{repeats - 1}_out").output.shape


def test_random_genomes_build_with_the_stage_shapes():
  method = _tiny_method()
  rng = np.random.default_rng(0)
  clip = rng.uniform(-1, 1, size=(2, 8, 32, 32, 3)).astype(np.float32)
  for _ in range(3):
    tf.keras.backend.clear_session()
    genome = method.sample(rng)
    model = method.build(genome, CLASSES)
    # Stem and pool 1 stride T, H, W by 2; pools 2-4 stride H, W by 2.
    for s, size in zip(range(4), (8, 4, 2, 1)):
      stage = genome.stages[s]
      assert _unit_out(model, s + 2, stage.repeats) == (None, 2, size, size, stage.width)
    logits = model(clip, training=False)
    assert logits.shape == (2, CLASSES) and np.all(np.isfinite(logits))


def test_every_other_unit_drops_temporal_extent():
  tf.keras.backend.clear_session()
  branch = evanet.Branch("conv2", conv_type="3d", time=5, conv_type2="itgm", time2=3)
  stage = evanet.Stage(repeats=3, filters=8, branches=(branch, evanet.Branch("maxpool", time=7)))
  genome = evanet.Genome("2plus1d", 3, 1, 1, 1, (stage,) * 4, stem_filters=8)
  model = evanet.build_model(genome, CLASSES, (8, 32, 32, 3))
  kernel_times = [model.get_layer(f"res2_u{u}_b0_conv").kernel.shape[0] for u in range(3)]
  itgm_times = [model.get_layer(f"res2_u{u}_b0_conv2").kernel_size[0] for u in range(3)]
  pool_times = [model.get_layer(f"res2_u{u}_b1_pool_time").pool_size[0] for u in range(3)]
  assert kernel_times == [5, 1, 5] and itgm_times == [3, 1, 3]
  assert pool_times == [7, 7, 7]  # Pools keep their temporal size.
  # (2+1)D stem: a (3, 1, 1) temporal conv to half width, then (1, 7, 7).
  assert model.get_layer("stem_temporal").kernel.shape == (3, 1, 1, 3, 4)
  assert model.get_layer("stem_spatial").kernel.shape == (1, 7, 7, 4, 8)


@pytest.mark.parametrize("name", ["evanet_a", "evanet_b"])
def test_zoo_entries_build_the_published_structure(name):
  tf.keras.backend.clear_session()
  genome = zoo.genome(name)
  model = zoo.build(name, CLASSES)
  assert model.input_shape == (None, 32, 224, 224, 3)
  assert model.output_shape == (None, CLASSES)
  for s, size in zip(range(4), (56, 28, 14, 7)):
    stage = genome.stages[s]
    assert _unit_out(model, s + 2, stage.repeats) == (None, 8, size, size, stage.width)
  trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
  assert trainable == _published_trainable_params(name, CLASSES)
  tf.keras.backend.clear_session()


def test_published_counts_at_kinetics_400_classes():
  # About 32.8 M and 40.3 M with the Kinetics-400 classifier.
  assert _published_trainable_params("evanet_a", 400) == 32_804_188
  assert _published_trainable_params("evanet_b", 400) == 40_296_514


def test_itgm_parameters_do_not_depend_on_the_temporal_length():
  counts = []
  for length in (1, 3, 11):
    layer = itgm.ITGMConv3D(6, (length, 3, 3))
    layer.build((None, 4, 8, 8, 5))
    counts.append(layer.count_params())
  # Length 1 is the spatial conv alone: no mixture it would not use.
  assert counts == [3 * 3 * 5 * 6] + [3 * 3 * 5 * 6 + 4 * 5 * 6 + 2 * 4] * 2
  assert [w.name for w in layer.weights][0] == "spatial_kernel"


def test_itgm_profiles_are_normalised_cauchy_mixtures():
  layer = itgm.ITGMConv3D(3, (7, 3, 3))
  layer.build((None, 7, 8, 8, 2))
  curves = layer.temporal_curves().numpy()
  assert curves.shape == (4, 7)
  np.testing.assert_allclose(curves.sum(axis=1), 1.0, rtol=1e-5)
  profiles = layer.temporal_profiles().numpy()
  assert profiles.shape == (7, 2, 3)
  np.testing.assert_allclose(profiles.sum(axis=0), 1.0, rtol=1e-5)
  # Each curve peaks at its centre, inside [0, L - 1].
  centers = 6 * (np.tanh(layer.raw_centers.numpy()) + 1) / 2
  np.testing.assert_array_equal(curves.argmax(axis=1), np.round(centers))


def test_flow_finds_the_direction_of_a_shift():
  rng = np.random.default_rng(0)
  x = np.linspace(0, 4 * np.pi, 40)
  image = np.sin(x)[None, :] * np.cos(0.7 * x)[:, None] * 100 + 128
  image += rng.normal(scale=1.0, size=image.shape)
  right = np.roll(image, 1, axis=1)  # Content moves +1 px along W.
  down = np.roll(image, 1, axis=0)
  u = flow.tvl1_flow(np.stack([image, image]), np.stack([right, down])).numpy()
  inner = u[:, 4:-4, 4:-4]
  assert inner[0, ..., 0].mean() > 0.5 and abs(inner[0, ..., 1].mean()) < 0.2
  assert inner[1, ..., 1].mean() > 0.5 and abs(inner[1, ..., 0].mean()) < 0.2


def test_flow_clips_keep_their_frames_and_range():
  rng = np.random.default_rng(1)
  clips = rng.uniform(-1, 1, size=(2, 4, 16, 16, 3)).astype(np.float32)
  flows = flow.clip_flow(clips, num_iterations=5).numpy()
  assert flows.shape == (2, 4, 16, 16, 2)
  assert np.all(np.abs(flows) <= 1.0)
  np.testing.assert_array_equal(flows[:, 3], flows[:, 2])
  layer = flow.ClipFlow(num_iterations=5)
  np.testing.assert_allclose(layer(clips), flows, atol=1e-6)
  tf.keras.backend.clear_session()
  model = _tiny_method("flow").build(_tiny_method().sample(np.random.default_rng(0)), CLASSES)
  assert model.input_shape == (None, 8, 32, 32, 2)


@pytest.mark.parametrize(
  "kernel,strides,frames",
  [
    ((3, 7, 7), (2, 2, 2), 8),
    ((5, 3, 3), (1, 1, 1), 4),
    ((1, 1, 1), (1, 1, 1), 3),
    ((11, 3, 3), (1, 2, 2), 2),
    ((4, 2, 2), (3, 1, 1), 7),
  ],
)
def test_conv3d_through_conv2d_matches_tf_conv3d(kernel, strides, frames):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, frames, 9, 10, 3)).astype(np.float32)
  k = rng.normal(size=(*kernel, 3, 4)).astype(np.float32)
  expected = tf.nn.conv3d(x, k, (1, *strides, 1), "SAME")
  np.testing.assert_allclose(
    conv3d.conv3d(tf.constant(x), tf.constant(k), strides), expected, rtol=1e-4, atol=1e-4
  )


def test_clip_pipeline_gives_flow_for_a_flow_spec():
  rng = np.random.default_rng(2)
  videos = rng.integers(0, 255, size=(3, 10, 20, 24, 3), dtype=np.uint8)
  examples = tf.data.Dataset.from_tensor_slices({"video": videos, "label": np.arange(3)})
  rgb = clips_lib.ClipSpec(num_frames=4, frame_stride=2, resolution=16)
  flow_spec = clips_lib.ClipSpec(4, 2, 16, stream="flow")
  assert flow_spec.input_shape == (4, 16, 16, 2)
  ((rgb_clips, labels),) = clips_lib.make_clips(examples, rgb, batch_size=3, training=False)
  ((flow_clips, flow_labels),) = clips_lib.make_clips(
    examples, flow_spec, batch_size=3, training=False
  )
  assert flow_clips.shape == (3, 4, 16, 16, 2)
  np.testing.assert_array_equal(flow_labels, labels)
  np.testing.assert_allclose(flow_clips, flow.clip_flow(rgb_clips), atol=1e-5)
  with pytest.raises(UserError, match="stream"):
    clips_lib.make_clips(
      examples, clips_lib.ClipSpec(4, 2, 16, stream="depth"), batch_size=1, training=False
    )


@pytest.mark.parametrize(
  "pool,strides,frames",
  [
    ((3, 3, 3), (2, 2, 2), 8),
    ((7, 3, 3), (1, 1, 1), 4),
    ((1, 3, 3), (1, 1, 1), 3),
    ((9, 2, 2), (1, 2, 2), 2),
    ((11, 2, 2), (1, 2, 2), 5),
  ],
)
def test_max_pool3d_from_2d_pools_matches_max_pooling3d(pool, strides, frames):
  tf.keras.backend.clear_session()
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, frames, 9, 10, 3)).astype(np.float32)
  inputs = tf.keras.Input(x.shape[1:])
  built = tf.keras.Model(inputs, conv3d.max_pool3d(inputs, pool, strides, name="p"))
  expected = tf.keras.layers.MaxPooling3D(pool, strides, padding="same")(x)
  np.testing.assert_array_equal(built(x), expected)
  assert not any(isinstance(layer, tf.keras.layers.MaxPooling3D) for layer in built.layers)


@pytest.mark.parametrize("frames", [1, 2, 5])
def test_head_from_2d_ops_matches_the_released_3d_head(frames):
  tf.keras.backend.clear_session()
  stage = evanet.Stage(repeats=1, filters=8, branches=(evanet.Branch("1x1"),))
  genome = evanet.Genome("3d", 1, 1, 1, 1, (stage,) * 4, stem_filters=4)
  model = evanet.build_model(genome, CLASSES, (4 * frames, 64, 64, 3), dropout_rate=0.0)
  rng = np.random.default_rng(0)
  clip = rng.uniform(-1, 1, size=(2, 4 * frames, 64, 64, 3)).astype(np.float32)
  last = tf.keras.Model(model.inputs, model.get_layer("res5_u0_out").output)(clip)
  assert last.shape[1:4] == (frames, 2, 2)
  # The released head: a (min(T, 2), H, W) VALID average pool, a 1x1x1 conv, a mean.
  kernel, bias = model.get_layer("logits_conv").get_weights()
  pooled = tf.keras.layers.AveragePooling3D((min(frames, 2), 2, 2), strides=1)(last)
  expected = tf.reduce_mean(tf.nn.conv3d(pooled, kernel[None], [1] * 5, "VALID") + bias, [1, 2, 3])
  np.testing.assert_allclose(model(clip), expected, rtol=1e-5, atol=1e-7)
  assert not any(
    isinstance(layer, (tf.keras.layers.Conv3D, tf.keras.layers.AveragePooling3D))
    for layer in model.layers
  )
