"""Multi-label training and mAP, multi-clip evaluation, training augmentation."""

import numpy as np
import pytest
import tensorflow as tf

from vsearch.data.clips import Augmentation, ClipSpec, make_clips
from vsearch.errors import UserError
from vsearch.search import fitness
from vsearch.train import trainer


def test_mean_average_precision_matches_a_hand_computed_case():
  scores = np.array([[0.9, 0.2, 0.5], [0.8, 0.7, 0.1], [0.3, 0.6, 0.2], [0.1, 0.4, 0.3]])
  labels = np.array([[1, 0, 0], [0, 0, 0], [1, 0, 0], [0, 1, 0]])
  # Class 0: positives ranked 1st and 3rd -> AP = (1/1 + 2/3) / 2 = 5/6.
  # Class 1: its positive is ranked 3rd -> AP = 1/3.
  # Class 2 has no positive and is left out: mAP = (5/6 + 1/3) / 2 = 7/12.
  assert trainer.mean_average_precision(scores, labels) == pytest.approx(7 / 12)
  assert np.isnan(trainer.mean_average_precision(scores, labels * 0))
  perfect = trainer.mean_average_precision(labels * 0.9 + 0.05, labels)
  assert perfect == pytest.approx(1.0)


def test_score_videos_multi_label_accuracy_counts_a_top_class_among_the_labels():
  probabilities = np.array([[0.9, 0.8], [0.2, 0.6], [0.7, 0.1]])
  labels = np.array([[0, 1], [0, 1], [1, 1]])
  metrics = trainer.score_videos(probabilities, labels)
  assert metrics["accuracy"] == pytest.approx(2 / 3)  # the first clip's top is not a label
  expected_loss = (
    -np.mean([np.log(0.1) + np.log(0.8), np.log(0.8) + np.log(0.6), np.log(0.7) + np.log(0.1)]) / 2
  )
  assert metrics["loss"] == pytest.approx(expected_loss)
  assert metrics["num_eval_clips"] == 3


def _multi_label_data(num=48):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(num, 2, 4, 4, 3)).astype("float32")
  # Class 0: bright clips; class 1: clips brighter on the left; both may hold.
  y = np.stack(
    [
      x.mean(axis=(1, 2, 3, 4)) > 0,
      x[:, :, :, :2].mean(axis=(1, 2, 3, 4)) > x[:, :, :, 2:].mean(axis=(1, 2, 3, 4)),
      np.zeros(num, bool),
    ],
    axis=1,
  ).astype("int32")
  return x, y


def _linear_model(num_classes):
  inputs = tf.keras.Input((2, 4, 4, 3))
  outputs = tf.keras.layers.Dense(num_classes)(tf.keras.layers.Flatten()(inputs))
  return tf.keras.Model(inputs, outputs)


def test_multi_label_trains_with_sigmoid_loss_and_reports_map_of_its_predictions():
  x, y = _multi_label_data()
  train = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(16, drop_remainder=True)
  evaluation = tf.data.Dataset.from_tensor_slices((x, y)).batch(20)  # last batch partial
  tf.keras.utils.set_random_seed(0)
  metrics, _, model = trainer.train_and_evaluate(
    tf.distribute.get_strategy(),
    lambda: _linear_model(3),
    train,
    evaluation,
    trainer.TrainConfig(steps=40, batch_size=16, learning_rate=0.05, steps_per_call=10),
  )
  probabilities = tf.sigmoid(model(x)).numpy()
  assert metrics["num_eval_clips"] == 48
  assert metrics["mAP"] == pytest.approx(trainer.mean_average_precision(probabilities, y), abs=1e-6)
  assert metrics["mAP"] > 0.8  # both label rules are linear
  assert fitness.map_fitness(metrics) == metrics["mAP"]
  with pytest.raises(UserError, match="multi-label"):
    fitness.map_fitness({"accuracy": 0.5, "loss": 1.0})


def _counting_videos(lengths, size=8):
  """Examples whose frame i has every pixel equal to 10 * i (label = index)."""

  def generator():
    for label, length in enumerate(lengths):
      frames = np.broadcast_to(
        (10 * np.arange(length, dtype=np.uint8))[:, None, None, None], (length, size, size, 3)
      )
      yield {"video": np.array(frames), "label": np.int64(label)}

  signature = {
    "video": tf.TensorSpec([None, None, None, 3], tf.uint8),
    "label": tf.TensorSpec([], tf.int64),
  }
  return tf.data.Dataset.from_generator(generator, output_signature=signature)


def test_multi_clip_evaluation_spreads_clips_and_averages_probabilities():
  spec = ClipSpec(num_frames=2, frame_stride=2, resolution=4)
  examples = _counting_videos([11, 3])
  clips = make_clips(examples, spec, batch_size=2, training=False, num_eval_clips=3)
  batch, labels = next(iter(clips))
  assert batch.shape == (2, 3, 2, 4, 4, 3)
  frames = np.round((batch.numpy()[..., 0, 0, 0] + 1.0) * 127.5 / 10).astype(int)
  # 11 frames, span 3: starts 0, 4, 8; a 3-frame video has one valid start.
  np.testing.assert_array_equal(frames[0], [[0, 2], [4, 6], [8, 10]])
  np.testing.assert_array_equal(frames[1], [[0, 2], [0, 2], [0, 2]])
  again, _ = next(iter(clips))
  np.testing.assert_array_equal(batch, again)

  inputs = tf.keras.Input(spec.input_shape)
  model = tf.keras.Model(
    inputs, tf.keras.layers.Dense(2)(tf.keras.layers.GlobalAveragePooling3D()(inputs))
  )
  metrics = trainer.Trainer(
    tf.distribute.get_strategy(), lambda: model, trainer.TrainConfig()
  ).evaluate(clips)
  flat = tf.reshape(batch, (6,) + spec.input_shape)
  mean = tf.reduce_mean(tf.reshape(tf.nn.softmax(model(flat)), (2, 3, 2)), axis=1).numpy()
  assert metrics["num_eval_clips"] == 2
  assert metrics["accuracy"] == float(np.mean(mean.argmax(1) == labels.numpy()))
  assert metrics["loss"] == pytest.approx(-np.mean(np.log(mean[[0, 1], [0, 1]])), rel=1e-5)


def test_augmentation_crops_flips_and_is_the_same_for_the_same_seed():
  rng = np.random.default_rng(0)
  video = rng.integers(0, 256, (4, 16, 24, 3), dtype=np.uint8)
  examples = tf.data.Dataset.from_tensors({"video": video, "label": np.int64(0)})
  spec = ClipSpec(num_frames=4, frame_stride=1, resolution=16)

  def clips(augmentation, seed=0):
    stream = make_clips(
      examples,
      spec,
      batch_size=1,
      training=True,
      seed=seed,
      shuffle_buffer=1,
      augmentation=augmentation,
    )
    return np.concatenate([c.numpy() for c, _ in stream.take(24)])

  centre = clips(None)
  assert np.all(centre == centre[:1])  # no augmentation: the centre crop every time
  flipped = clips(Augmentation(flip=True))
  mirrored = np.array([np.array_equal(c, centre[0][:, :, ::-1]) for c in flipped])
  unchanged = np.array([np.array_equal(c, centre[0]) for c in flipped])
  assert np.all(mirrored | unchanged) and mirrored.any() and unchanged.any()
  cropped = clips(Augmentation(random_crop=True, min_crop_scale=0.5))
  assert len({c.tobytes() for c in cropped}) > 12
  np.testing.assert_array_equal(cropped, clips(Augmentation(random_crop=True, min_crop_scale=0.5)))
  with pytest.raises(UserError, match="min_crop_scale"):
    Augmentation(min_crop_scale=0.0)
