"""Tests of the synthetic_motion dataset and of load_dataset.

The last test is the reason the dataset exists: a frame-only model stays near
chance while a model with one temporal convolution learns the class.
"""

import gin
import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

from vsearch.data import datasets
from vsearch.data import synthetic_motion as sm
from vsearch.data.clips import ClipSpec, make_clips
from vsearch.errors import UserError

TINY = dict(num_frames=4, resolution=16, num_classes=2, train_per_class=3, validation_per_class=2)


def _read(builder, split, with_objects=False):
  """All (video, label) pairs of a split, as numpy; with their object maps
  [T, S, S] as a third item if ``with_objects``."""
  return [
    (ex["video"].numpy(), int(ex["label"].numpy()))
    + ((ex["objects"].numpy()[..., 0],) if with_objects else ())
    for ex in builder.as_dataset(split=split, shuffle_files=False)
  ]


def _bind_size(**sizes):
  gin.parse_config("\n".join(f"synthetic_motion_config.{k} = {v}" for k, v in sizes.items()))


def test_config_name_depends_on_every_size():
  base = sm.SyntheticMotionConfig(**TINY, seed=0)
  assert base.name == "f4_r16_c2_tr3_va2_s0"
  names = {base.name}
  for field, value in [
    ("num_frames", 5),
    ("resolution", 17),
    ("num_classes", 4),
    ("train_per_class", 4),
    ("validation_per_class", 3),
    ("seed", 1),
  ]:
    names.add(sm.SyntheticMotionConfig(**{**TINY, field: value}).name)
  assert len(names) == 7


def test_bad_sizes_are_user_errors():
  with pytest.raises(UserError, match="even"):
    sm.SyntheticMotionConfig(**{**TINY, "num_classes": 3})
  with pytest.raises(UserError, match="num_frames"):
    sm.SyntheticMotionConfig(**{**TINY, "num_frames": 1})


def test_generation_is_deterministic_balanced_and_typed(tmp_path):
  builds = [
    sm.make_builder(sm.SyntheticMotionConfig(**TINY, seed=seed), data_dir=str(tmp_path / name))
    for name, seed in (("a", 0), ("b", 0), ("c", 1))
  ]
  for builder in builds:
    builder.download_and_prepare()
  a, b, c = builds
  assert "direction of travel" in a.info.description
  for split, per_class in (("train", 3), ("validation", 2)):
    examples_a, examples_b = _read(a, split), _read(b, split)
    assert len(examples_a) == 2 * per_class
    for (video_a, label_a), (video_b, label_b) in zip(examples_a, examples_b):
      assert video_a.shape == (4, 16, 16, 3) and video_a.dtype == np.uint8
      np.testing.assert_array_equal(video_a, video_b)
      assert label_a == label_b
    labels = [label for _, label in examples_a]
    assert np.bincount(labels).tolist() == [per_class, per_class]
    # A different seed gives different clips.
    for (video_a, _), (video_c, _) in zip(examples_a, _read(c, split)):
      assert not np.array_equal(video_a, video_c)


def test_each_stored_clip_is_its_index_rendered_alone(tmp_path):
  config = sm.SyntheticMotionConfig(**TINY, seed=5)
  builder = sm.make_builder(config, data_dir=str(tmp_path))
  builder.download_and_prepare()
  stored = {
    video.tobytes(): (label, objects)
    for video, label, objects in _read(builder, "train", with_objects=True)
  }
  for index in reversed(range(6)):  # Any order gives the same clips.
    label = index % 2
    video, objects = sm.render_clip_with_objects(
      sm.example_rng(5, "train", index), sm.class_angle(label, 2), 4, 16
    )
    assert stored[video.tobytes()][0] == label
    np.testing.assert_array_equal(stored[video.tobytes()][1], objects)
    # render_clip draws the same clip.
    np.testing.assert_array_equal(
      sm.render_clip(sm.example_rng(5, "train", index), sm.class_angle(label, 2), 4, 16), video
    )


@pytest.mark.parametrize("index", range(4))
def test_object_maps_name_the_shape_where_it_is_drawn(index, monkeypatch):
  # One object on a flat background: the pixels that differ from the
  # background are the object's, and its map must cover them.
  monkeypatch.setattr(sm, "_NUM_OBJECTS", (1, 1))
  monkeypatch.setattr(sm, "_BACKGROUND_CONTRAST", 0.0)
  shapes = []
  real_sdf = sm._unit_sdf
  monkeypatch.setattr(
    sm, "_unit_sdf", lambda shape, u, v: shapes.append(shape) or real_sdf(shape, u, v)
  )
  video, objects = sm.render_clip_with_objects(sm.example_rng(0, "train", index), 1.0, 3, 48)
  assert objects.shape == (3, 48, 48) and objects.dtype == np.uint8
  drawn = np.abs(video.astype(int) - video[0, 0, 0].astype(int)).max(-1) > 40
  labelled = objects > 0
  assert set(np.unique(objects)) == {0, sm.OBJECT_CLASSES.index(shapes[0])}
  overlap = (drawn & labelled).sum() / (drawn | labelled).sum()
  assert overlap > 0.8, overlap


@pytest.mark.parametrize("label", range(8))
def test_objects_travel_in_the_class_direction(label, monkeypatch):
  # One rigid object on a flat background, so its circular centroid moves
  # exactly with it.
  monkeypatch.setattr(sm, "_NUM_OBJECTS", (1, 1))
  monkeypatch.setattr(sm, "_MAX_SPIN", 0.0)
  monkeypatch.setattr(sm, "_MAX_GROWTH", 0.0)
  monkeypatch.setattr(sm, "_BACKGROUND_CONTRAST", 0.0)
  size, frames = 64, 6
  angle = sm.class_angle(label, 8)
  for index in range(3):
    video = sm.render_clip(sm.example_rng(0, "train", index), angle, frames, size).astype(float)
    # The object covers under a third of the image: the median is background.
    background = np.median(video.reshape(-1, 3), axis=0)
    weight = np.abs(video - background).sum(axis=-1)  # [T, S, S]
    phase = np.exp(2j * np.pi * (np.arange(size) + 0.5) / size)
    x = np.angle((weight.sum(axis=1) * phase).sum(axis=1))
    row = np.angle((weight.sum(axis=2) * phase).sum(axis=1))
    step_x = np.angle(np.exp(1j * np.diff(x))) * size / (2 * np.pi)
    step_up = -np.angle(np.exp(1j * np.diff(row))) * size / (2 * np.pi)
    speed = np.hypot(step_x, step_up)
    assert np.all((speed > 0.9 * size / 32) & (speed < 3.1 * size / 32))
    heading = np.arctan2(step_up.mean(), step_x.mean())
    assert abs(np.angle(np.exp(1j * (heading - angle)))) < np.radians(5)


def test_load_dataset_builds_the_gin_sized_dataset_once(tmp_path, capsys):
  _bind_size(**TINY)
  data = datasets.load_dataset(data_dir=str(tmp_path))
  name = "synthetic_motion/f4_r16_c2_tr3_va2_s0"
  assert f"Generated {name}" in capsys.readouterr().out
  assert data.name == name
  assert (data.num_classes, data.num_train, data.num_validation) == (2, 6, 4)
  example = next(iter(data.validation))
  assert example["video"].shape == (4, 16, 16, 3)
  # The second call reads what the first one wrote.
  again = datasets.load_dataset(data_dir=str(tmp_path))
  assert "Generat" not in capsys.readouterr().out
  assert again.num_train == 6


def test_cached_examples_give_the_clips_of_uncached_ones(tmp_path):
  _bind_size(**TINY)
  cached = datasets.load_dataset(data_dir=str(tmp_path), cache="memory")
  plain = datasets.load_dataset(data_dir=str(tmp_path), cache="none")
  assert "CacheDataset" in type(cached.train).__name__ and "Cache" not in type(plain.train).__name__
  spec = ClipSpec(num_frames=2, frame_stride=1, resolution=16)

  def batches(data, training):
    split = data.train if training else data.validation
    clips = make_clips(split, spec, batch_size=4, training=training, seed=3)
    # Five batches of 4 cross the 6 training clips' epoch twice: the cache is read back.
    return [(x.numpy(), y.numpy()) for x, y in clips.take(5)]

  for training in (True, False):
    for (a, la), (b, lb) in zip(batches(cached, training), batches(plain, training), strict=True):
      np.testing.assert_array_equal(a, b)
      np.testing.assert_array_equal(la, lb)
  # A second search candidate reads the same cached examples again.
  np.testing.assert_array_equal(batches(cached, True)[4][0], batches(plain, True)[4][0])


def test_auto_cache_takes_datasets_of_static_shape_that_fit(tmp_path):
  _bind_size(**TINY)
  features = datasets.prepare_dataset("synthetic_motion", str(tmp_path)).info.features
  # 4 frames x 16 x 16 x 4 channels (video and objects) + an int64 label = 4104 bytes a clip.
  assert datasets._caches("auto", features, 10, limit_mb=4104 * 10 / 2**20)
  assert not datasets._caches("auto", features, 11, limit_mb=4104 * 10 / 2**20)
  assert datasets._caches("memory", features, 10**9, limit_mb=0)
  assert not datasets._caches("none", features, 1, limit_mb=1e9)
  variable = tfds.features.FeaturesDict({"video": tfds.features.Video((None, None, None, 3))})
  assert not datasets._caches("auto", variable, 1, limit_mb=1e9)
  with pytest.raises(UserError, match="load_dataset.cache"):
    datasets._caches("disk", features, 1, limit_mb=1)


def test_load_dataset_user_errors(tmp_path):
  with pytest.raises(UserError, match="Unknown dataset 'no_such_videos'"):
    datasets.load_dataset("no_such_videos", data_dir=str(tmp_path))
  _bind_size(**TINY)
  with pytest.raises(UserError, match="no split 'test'.*validation_split"):
    datasets.load_dataset(data_dir=str(tmp_path), validation_split="test")
  with pytest.raises(UserError, match="not prepared.*data_dir"):
    datasets.load_dataset("ucf101", data_dir=str(tmp_path), download=False)


# The property test. Over dataset and training seeds 0-7 these sizes gave the
# frame-only model 0.19-0.31 validation accuracy and the temporal one
# 0.92-0.985 (chance 0.25), in about 10 s per model on 2 CPU cores.
PROPERTY_SIZE = dict(
  num_frames=8, resolution=32, num_classes=4, train_per_class=128, validation_per_class=50
)
PROPERTY_CLIP = ClipSpec(num_frames=4, frame_stride=1, resolution=32)
PROPERTY_STEPS = 160


def _conv_bn_relu(x, layer):
  x = layer(x)
  x = keras.layers.BatchNormalization(momentum=0.9)(x)
  return keras.layers.ReLU()(x)


def small_video_model(
  temporal: bool, spec: ClipSpec, num_classes: int, width: int = 8
) -> keras.Model:
  """2-D convs on each frame, max over space, mean over time, a classifier.

  With ``temporal`` the third layer is a (3, 1) convolution over time (frames
  folded with H*W); without it, a 1x1 convolution per frame of the same width,
  so the two models differ only in whether they can compare frames: the
  frame-only model sees a bag of frames.
  """
  frames, side = spec.num_frames, spec.resolution // 4
  per_frame = keras.layers.TimeDistributed
  x = inputs = keras.Input(spec.input_shape)
  x = _conv_bn_relu(x, per_frame(keras.layers.Conv2D(width, 3, strides=2, padding="same")))
  x = _conv_bn_relu(x, per_frame(keras.layers.Conv2D(2 * width, 3, strides=2, padding="same")))
  if temporal:
    x = keras.layers.Reshape((frames, side * side, 2 * width))(x)
    x = _conv_bn_relu(x, keras.layers.Conv2D(2 * width, (3, 1), padding="same"))
    x = keras.layers.Reshape((frames, side, side, 2 * width))(x)
  else:
    x = _conv_bn_relu(x, per_frame(keras.layers.Conv2D(2 * width, 1)))
  x = _conv_bn_relu(x, per_frame(keras.layers.Conv2D(2 * width, 3, padding="same")))
  x = per_frame(keras.layers.GlobalMaxPooling2D())(x)
  x = keras.layers.GlobalAveragePooling1D()(x)
  return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


def train_and_evaluate(
  data: datasets.VideoDataset, temporal: bool, spec: ClipSpec, steps: int, seed: int
) -> float:
  """Validation accuracy of a small model after ``steps`` steps of Adam."""
  keras.utils.set_random_seed(seed)
  model = small_video_model(temporal, spec, data.num_classes)
  model.compile(
    keras.optimizers.Adam(6e-3),
    keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
  )
  train = make_clips(data.train, spec, batch_size=32, training=True, seed=seed)
  model.fit(train, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
  validation = make_clips(data.validation, spec, batch_size=100, training=False)
  return model.evaluate(validation, verbose=0)[1]


@pytest.mark.slow
def test_frame_only_model_stays_near_chance_and_temporal_model_learns(tmp_path):
  _bind_size(**PROPERTY_SIZE)
  data = datasets.load_dataset(data_dir=str(tmp_path))
  chance = 1.0 / data.num_classes
  frame_only = train_and_evaluate(data, False, PROPERTY_CLIP, PROPERTY_STEPS, seed=0)
  temporal = train_and_evaluate(data, True, PROPERTY_CLIP, PROPERTY_STEPS, seed=0)
  assert frame_only < chance + 0.15, (frame_only, temporal)
  assert temporal > chance + 0.4, (frame_only, temporal)
