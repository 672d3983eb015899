"""Video clips stored as TF Model Garden SequenceExample TFRecords.

TF Model Garden's video input (Kinetics, Moments in Time, Charades, ...) reads
one ``tf.train.SequenceExample`` per clip:

* feature list ``image/encoded``: one JPEG-encoded RGB frame per time step;
* context ``clip/label/index``: the label index, or several for a multi-label
  clip (Charades);
* optional context ``clip/media_id`` (the source video) and
  ``clip/label/text`` (label names); they are written and ignored on read.

``load_sequence_examples`` (gin-configurable) turns such files into a
``VideoDataset``, so a search reads them directly: ``Search.load_dataset =
@load_sequence_examples``. Single-label clips give ``{"video", "label":
int64}`` like a TFDS dataset; with ``multi_label = True`` the label is a
multi-hot int64 vector [num_classes], which the trainer recognises and scores
with sigmoid cross-entropy and mean average precision.

``write_sequence_examples`` writes the same format, for tests and for users
who convert their own clips.
"""

import os
import sys
from collections.abc import Iterable, Sequence

import gin
import numpy as np
import tensorflow as tf

from vsearch.data.datasets import VideoDataset
from vsearch.errors import UserError

IMAGE_KEY = "image/encoded"
LABEL_KEY = "clip/label/index"
LABEL_TEXT_KEY = "clip/label/text"
MEDIA_ID_KEY = "clip/media_id"


def make_sequence_example(
  frames: np.ndarray, labels: Sequence[int], media_id: str = "", label_texts: Sequence[str] = ()
) -> tf.train.SequenceExample:
  """One clip in Model Garden's format.

  Args:
    frames: uint8 [N, H, W, 3]; each frame is stored as a JPEG.
    labels: label indices (one for single-label data).
    media_id: the source video's id, stored as ``clip/media_id``.
    label_texts: label names, stored as ``clip/label/text``.
  """
  example = tf.train.SequenceExample()
  context = example.context.feature
  context[LABEL_KEY].int64_list.value[:] = [int(x) for x in labels]
  if media_id:
    context[MEDIA_ID_KEY].bytes_list.value[:] = [media_id.encode()]
  if label_texts:
    context[LABEL_TEXT_KEY].bytes_list.value[:] = [t.encode() for t in label_texts]
  images = example.feature_lists.feature_list[IMAGE_KEY]
  for frame in frames:
    images.feature.add().bytes_list.value[:] = [tf.io.encode_jpeg(frame, quality=95).numpy()]
  return example


def write_sequence_examples(path: str, clips: Iterable[tuple[np.ndarray, Sequence[int]]]) -> int:
  """Writes ``(frames uint8 [N, H, W, 3], label indices)`` pairs to a TFRecord.

  Returns:
    The number of clips written.
  """
  count = 0
  with tf.io.TFRecordWriter(path) as writer:
    for index, (frames, labels) in enumerate(clips):
      example = make_sequence_example(frames, labels, media_id=f"clip{index:06d}")
      writer.write(example.SerializeToString())
      count += 1
  return count


def _files(pattern: str, setting: str) -> list[str]:
  """The files of a comma-separated list of globs, sorted; at least one."""
  files = []
  for part in (p.strip() for p in pattern.split(",") if p.strip()):
    files += tf.io.gfile.glob(part)
  if not files:
    raise UserError(
      f"load_sequence_examples.{setting} = {pattern!r} matches "
      "no files; set it to a TFRecord path or glob such as "
      "'gs://bucket/kinetics/train-*.tfrecord'."
    )
  return sorted(set(files))


def _parse(serialized: tf.Tensor) -> tuple[dict, dict]:
  context, sequence = tf.io.parse_single_sequence_example(
    serialized,
    context_features={LABEL_KEY: tf.io.VarLenFeature(tf.int64)},
    sequence_features={IMAGE_KEY: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)},
  )
  return context, sequence


def _check_file(path: str, num_classes: int) -> None:
  """Parses the first record of ``path``; names a missing feature or bad label.

  Raises:
    UserError: the file is not a TFRecord of SequenceExamples in Model
      Garden's format.
  """
  try:
    first = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
  except tf.errors.OpError as e:
    raise UserError(
      f"Cannot read {path} as a TFRecord ({e.message.splitlines()[0]}); "
      "check the file or remove it from the glob."
    ) from e
  if first is None:
    raise UserError(f"{path} holds no records; remove it from the glob.")
  example = tf.train.SequenceExample()
  try:
    example.ParseFromString(first.numpy())
  except Exception as e:
    # protobuf raises its own DecodeError, whose type differs by backend.
    raise UserError(
      f"The first record of {path} is not a SequenceExample "
      f"({type(e).__name__}); the files must hold Model Garden "
      "video SequenceExamples."
    ) from e
  frames = example.feature_lists.feature_list.get(IMAGE_KEY)
  labels = example.context.feature.get(LABEL_KEY)
  for key, found in (
    (IMAGE_KEY, frames is not None and len(frames.feature)),
    (LABEL_KEY, labels is not None and labels.int64_list.value),
  ):
    if not found:
      raise UserError(
        f"The first record of {path} has no {key!r} feature; the "
        f"files must hold Model Garden video SequenceExamples "
        f"(feature list {IMAGE_KEY!r}, context {LABEL_KEY!r})."
      )
  bad = [x for x in labels.int64_list.value if not 0 <= x < num_classes]
  if bad:
    raise UserError(
      f"The first record of {path} has label index {bad[0]}, "
      f"outside [0, {num_classes}); set "
      "load_sequence_examples.num_classes to the number of "
      "classes of the data."
    )


def _count(files: list[str]) -> int:
  return int(tf.data.TFRecordDataset(files).reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))


def _examples(files: list[str], num_classes: int, multi_label: bool) -> tf.data.Dataset:
  """``{"video": uint8 [N, H, W, 3], "label"}`` in file order.

  A record without frames or labels, or with a label outside [0,
  num_classes), is skipped with a line on stderr naming its file and index.
  """

  def parse(path, index, serialized):
    context, sequence = _parse(serialized)
    return path, index, context[LABEL_KEY].values, sequence[IMAGE_KEY]

  def usable(path, index, labels, images):
    ok = tf.logical_and(
      tf.logical_and(tf.size(images) > 0, tf.size(labels) > 0),
      tf.reduce_all(tf.logical_and(labels >= 0, labels < num_classes)),
    )

    def skip():
      tf.print(
        "skipped record",
        index,
        "of",
        path,
        ": it lacks",
        IMAGE_KEY,
        "or",
        LABEL_KEY,
        "or has a label outside [0,",
        num_classes,
        ")",
        output_stream=sys.stderr,
      )
      return ok

    return tf.cond(ok, lambda: ok, skip)

  def decode(path, index, labels, images):
    del path, index
    video = tf.map_fn(
      lambda x: tf.io.decode_jpeg(x, channels=3), images, fn_output_signature=tf.uint8
    )
    if multi_label:
      label = tf.reduce_max(tf.one_hot(labels, num_classes, dtype=tf.int64), axis=0)
      label = tf.ensure_shape(label, [num_classes])
    else:
      label = labels[0]
    return {"video": video, "label": label}

  records = tf.data.Dataset.from_tensor_slices(files).interleave(
    lambda path: (
      tf.data.TFRecordDataset(path).enumerate().map(lambda index, record: (path, index, record))
    ),
    cycle_length=1,
  )
  return (
    records.map(parse)
    .filter(usable)
    .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  )


@gin.configurable
def load_sequence_examples(
  train_files: str = gin.REQUIRED,
  validation_files: str = gin.REQUIRED,
  num_classes: int = gin.REQUIRED,
  multi_label: bool = False,
  name: str = "",
  num_train: int | None = None,
  num_validation: int | None = None,
  class_names: Sequence[str] = (),
) -> VideoDataset:
  """A VideoDataset read from Model Garden SequenceExample TFRecords.

  Args:
    train_files: path, glob, or comma-separated globs of the training
      TFRecords (local or gs://).
    validation_files: the same for validation.
    num_classes: number of classes (400 for Kinetics-400, 157 for Charades).
    multi_label: every label index of a clip counts (Charades); otherwise
      the first index is the label.
    name: name shown in logs; defaults to the training glob's folder.
    num_train: clips in the training files; None counts the records (reads
      every file once, which takes a while on terabytes).
    num_validation: the same for the validation files.
    class_names: the name of each class in label-index order, which exports
      write to ``labels.txt``; empty (the default) names them by index.

  Raises:
    UserError: a glob matches nothing, the first record of a file lacks a
      feature or has a label outside [0, num_classes), or ``class_names``
      does not name every class.
  """
  if not isinstance(num_classes, int) or num_classes < 2:
    raise UserError(
      f"load_sequence_examples.num_classes is {num_classes!r}; "
      "set it to the number of classes (at least 2)."
    )
  if class_names and len(class_names) != num_classes:
    raise UserError(
      f"load_sequence_examples.class_names has {len(class_names)} names for "
      f"{num_classes} classes; give one per class, in label-index order."
    )
  train = _files(train_files, "train_files")
  validation = _files(validation_files, "validation_files")
  for path in train + validation:
    _check_file(path, num_classes)
  return VideoDataset(
    name=name or os.path.basename(os.path.dirname(train[0])) or "sequence_example",
    train=_examples(train, num_classes, multi_label),
    validation=_examples(validation, num_classes, multi_label),
    num_classes=num_classes,
    num_train=num_train if num_train is not None else _count(train),
    num_validation=(num_validation if num_validation is not None else _count(validation)),
    class_names=tuple(class_names),
  )
