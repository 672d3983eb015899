"""SequenceExample TFRecords (TF Model Garden's video format): written, read, searched."""

import os

import numpy as np
import pytest
import tensorflow as tf

from vsearch.data import sequence_example as se
from vsearch.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(REPO, "tests", "data", "tiny_search.gin")
NUM_CLASSES = 3


def _clip(seed: int, frames=8, size=32):
  """Smooth random frames (JPEG keeps them close): a gradient that drifts."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:size, 0:size]
  colour = rng.uniform(40, 200, 3)
  video = [
    np.clip(colour + 30 * np.sin((x + 2 * t) / 5.0 + y / 7.0)[..., None], 0, 255)
    for t in range(frames)
  ]
  return np.array(video, dtype=np.uint8)


def _labelled_clips(count, first_seed=0):
  """Clips with one to two labels each; class 2 is present in every third clip."""
  return [
    (_clip(first_seed + i), sorted({i % 2, 2} if i % 3 == 0 else {i % 2})) for i in range(count)
  ]


@pytest.fixture(scope="module")
def records(tmp_path_factory):
  root = tmp_path_factory.mktemp("records")
  train = _labelled_clips(12)
  validation = _labelled_clips(6, first_seed=100)
  se.write_sequence_examples(str(root / "train-00000-of-00002.tfrecord"), train[:7])
  se.write_sequence_examples(str(root / "train-00001-of-00002.tfrecord"), train[7:])
  se.write_sequence_examples(str(root / "validation.tfrecord"), validation)
  return root, train, validation


def test_single_label_read_gives_frames_and_the_first_label(records):
  root, train, _ = records
  dataset = se.load_sequence_examples(
    str(root / "train-*"), str(root / "validation.tfrecord"), NUM_CLASSES, name="mini"
  )
  assert (dataset.name, dataset.num_train, dataset.num_validation) == ("mini", 12, 6)
  assert dataset.class_names == ()  # exports name them by index
  examples = list(dataset.train.as_numpy_iterator())
  assert len(examples) == 12
  for example, (frames, labels) in zip(examples, train):  # file order is kept
    assert example["video"].shape == frames.shape
    assert np.abs(example["video"].astype(int) - frames).mean() < 3
    assert example["label"] == labels[0]


def test_multi_label_read_gives_multi_hot_labels(records):
  root, _, validation = records
  dataset = se.load_sequence_examples(
    str(root / "train-*"),
    str(root / "validation.tfrecord"),
    NUM_CLASSES,
    multi_label=True,
    class_names=["walk", "run", "jump"],
  )
  assert dataset.class_names == ("walk", "run", "jump")
  labels = [e["label"] for e in dataset.validation.as_numpy_iterator()]
  expected = np.zeros((6, NUM_CLASSES), np.int64)
  for row, (_, indices) in enumerate(validation):
    expected[row, indices] = 1
  np.testing.assert_array_equal(labels, expected)


def _write_raw(path, examples):
  with tf.io.TFRecordWriter(str(path)) as writer:
    for example in examples:
      writer.write(example.SerializeToString())


def test_bad_files_name_the_file_and_what_is_wrong(records, tmp_path):
  root, _, _ = records
  good = str(root / "validation.tfrecord")
  no_labels = se.make_sequence_example(_clip(0), [1])
  del no_labels.context.feature[se.LABEL_KEY]
  _write_raw(tmp_path / "no_labels.tfrecord", [no_labels])
  no_frames = se.make_sequence_example(_clip(0), [1])
  del no_frames.feature_lists.feature_list[se.IMAGE_KEY]
  _write_raw(tmp_path / "no_frames.tfrecord", [no_frames])
  (tmp_path / "text.tfrecord").write_text("this is not a TFRecord at all")
  cases = {
    str(tmp_path / "none-*"): "matches no files",
    str(tmp_path / "no_labels.tfrecord"): "no_labels.tfrecord has no 'clip/label/index'",
    str(tmp_path / "no_frames.tfrecord"): "no_frames.tfrecord has no 'image/encoded'",
    str(tmp_path / "text.tfrecord"): "Cannot read .*text.tfrecord as a TFRecord",
  }
  for pattern, message in cases.items():
    with pytest.raises(UserError, match=message):
      se.load_sequence_examples(pattern, good, NUM_CLASSES)
  with pytest.raises(UserError, match="label index 2, outside \\[0, 2\\)"):
    se.load_sequence_examples(str(root / "train-*"), good, 2)
  with pytest.raises(UserError, match="2 names for 3 classes"):
    se.load_sequence_examples(good, good, NUM_CLASSES, class_names=["walk", "run"])


def test_a_later_record_missing_a_feature_is_skipped_and_named(records, tmp_path, capfd):
  root, train, _ = records
  broken = se.make_sequence_example(_clip(1), [0])
  del broken.feature_lists.feature_list[se.IMAGE_KEY]
  path = tmp_path / "mixed.tfrecord"
  _write_raw(
    path,
    [se.make_sequence_example(f, y) for f, y in train[:2]]
    + [broken]
    + [se.make_sequence_example(*train[2])],
  )
  dataset = se.load_sequence_examples(str(path), str(root / "validation.tfrecord"), NUM_CLASSES)
  labels = [e["label"] for e in dataset.train.as_numpy_iterator()]
  assert labels == [train[0][1][0], train[1][1][0], train[2][1][0]]
  error = capfd.readouterr().err
  assert "skipped record 2 of" in error and "mixed.tfrecord" in error


@pytest.mark.slow
def test_a_short_multi_label_search_scores_candidates_by_map(records, tmp_path):
  from launch import common
  from vsearch.search import runner as search

  root, _, _ = records
  common.parse_gin(
    [TINY],
    [
      "Search.load_dataset = @load_sequence_examples",
      f"load_sequence_examples.train_files = '{root / 'train-*'}'",
      f"load_sequence_examples.validation_files = '{root / 'validation.tfrecord'}'",
      f"load_sequence_examples.num_classes = {NUM_CLASSES}",
      "load_sequence_examples.multi_label = True",
      "Search.fitness = @map_fitness",
      "Search.num_candidates = 2",
      "TrainConfig.steps = 3",
    ],
  )
  best = search.Search(workdir=str(tmp_path / "work")).run()
  assert best is not None
  assert 0.0 < best.metrics["mAP"] <= 1.0
  assert best.fitness == best.metrics["mAP"]
  assert best.metrics["num_eval_clips"] == 6


@pytest.mark.parametrize(
  "name", ["video_folder", "ucf101", "kinetics_tfrecords", "charades_tfrecords"]
)
def test_the_data_gin_files_parse_with_a_search(name):
  from launch import common

  common.parse_gin(
    [
      os.path.join(REPO, "gin", "tvn", "smoke.gin"),
      os.path.join(REPO, "gin", "data", f"{name}.gin"),
    ],
    [],
  )
