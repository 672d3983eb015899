"""Video datasets by name: synthetic_motion (generated here) or any TFDS one.

``load_dataset`` is what the search loop calls. It prepares the dataset if it
is not in ``data_dir`` yet (generating synthetic_motion locally, downloading
the others through TFDS) and returns the raw examples ``{"video", "label"}``
of the training and validation splits, ready for ``clips.make_clips``.

Importing this module registers the ``synthetic_motion`` TFDS builder.
"""

import contextlib
import dataclasses
import logging
import os
import time

import gin
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from vsearch.data import synthetic_motion, video_folder
from vsearch.errors import UserError

SYNTHETIC = "synthetic_motion"
VIDEO_FOLDER = video_folder.NAME


@dataclasses.dataclass(frozen=True)
class VideoDataset:
  """The two splits of a video dataset, as raw TFDS examples.

  Attributes:
    name: dataset and config, e.g. "synthetic_motion/f16_r48_c8_tr128_va32_s0".
    train: examples ``{"video": uint8 [N, H, W, 3], "label": int64}`` in a
      fixed order (TFDS stores them in a hashed order, so they are mixed).
    validation: examples of the same form, in a fixed order.
    num_classes: number of labels.
    num_train: examples in ``train``.
    num_validation: examples in ``validation``.
    object_classes: names of the classes of the per-frame segmentation maps
      its examples carry as ``"objects"`` (uint8 [N, H, W, 1] class indices);
      empty for a dataset without them. synthetic_motion has them.
    class_names: the name of each label, in label order: the names of the
      TFDS ``label`` feature (synthetic_motion's directions of motion, such
      as ``"90deg"``; a video folder's subfolders; UCF101's actions); empty
      when the source has none. Exports write them to ``labels.txt``.
  """

  name: str
  train: tf.data.Dataset
  validation: tf.data.Dataset
  num_classes: int
  num_train: int
  num_validation: int
  object_classes: tuple[str, ...] = ()
  class_names: tuple[str, ...] = ()


@contextlib.contextmanager
def _quiet_tfds():
  """Holds back TFDS's info and warning logs (custom config, deprecations)."""
  logger = logging.getLogger("absl")
  level = logger.level
  logger.setLevel(logging.ERROR)
  try:
    yield
  finally:
    logger.setLevel(level)


@contextlib.contextmanager
def _without_tfds_bars():
  """Leaves progress to synthetic_motion's own lines, which say time left."""
  was_active = getattr(tfds.core.utils.tqdm_utils, "_active", True)
  tfds.display_progress_bar(False)
  try:
    yield
  finally:
    tfds.display_progress_bar(was_active)


def _builder(name: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
  if name == SYNTHETIC:
    config = synthetic_motion.synthetic_motion_config()
    return synthetic_motion.make_builder(config, data_dir=data_dir)
  if name == VIDEO_FOLDER:
    config = video_folder.video_folder_config()
    return video_folder.make_builder(config, data_dir=data_dir)
  try:
    return tfds.builder(name, data_dir=data_dir)
  except (tfds.core.registered.DatasetNotFoundError, ValueError, AssertionError) as e:
    first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
    raise UserError(
      f"Unknown dataset {name!r} ({first_line}); set load_dataset.name to "
      f"{SYNTHETIC!r}, {VIDEO_FOLDER!r} or to the name of a TFDS video "
      "dataset such as 'ucf101'."
    ) from e


def _prepare(builder: tfds.core.DatasetBuilder, name: str, download: bool) -> None:
  """Generates synthetic_motion, or downloads and prepares a TFDS dataset."""
  where = builder.data_dir
  if name == SYNTHETIC:
    config = builder.builder_config
    print(
      f"Generating {name}/{config.name}: "
      f"{config.train_per_class * config.num_classes} train and "
      f"{config.validation_per_class * config.num_classes} validation "
      f"clips into {where}",
      flush=True,
    )
    start = time.monotonic()
    with _without_tfds_bars():
      builder.download_and_prepare()
    print(f"Generated {name}/{config.name} in {time.monotonic() - start:.1f} s", flush=True)
    return
  if name == VIDEO_FOLDER:
    config = builder.builder_config
    print(
      f"Decoding {name}/{config.name}: {len(config.classes)} classes from "
      f"{config.manual_dir} into {where}",
      flush=True,
    )
    start = time.monotonic()
    try:
      with _without_tfds_bars():
        builder.download_and_prepare()
    finally:
      _remove_empty_dirs(str(where), str(builder.data_dir_root))
    print(
      f"Decoded {name}/{config.name} in {time.monotonic() - start:.1f} s, "
      f"{len(builder.skipped)} files skipped",
      flush=True,
    )
    return
  advice = (
    f"prepare it on a machine with internet access (python -m "
    f"launch.prepare_data --dataset={name} --data_dir=DIR) and set "
    "load_dataset.data_dir to DIR"
  )
  if not download:
    raise UserError(
      f"Dataset {name!r} is not prepared in {where} and load_dataset.download is False; {advice}."
    )
  try:
    builder.download_and_prepare()
  except Exception as e:
    # Any failure here (no network, a bad archive, a full disk) leaves the
    # user with the same remedy, so it is reported as one line.
    reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
    raise UserError(
      f"Dataset {name!r} is not prepared in {where} and could "
      f"not be downloaded ({type(e).__name__}: {reason}); "
      f"{advice}."
    ) from e


def _remove_empty_dirs(path: str, root: str) -> None:
  """Removes ``path`` and its parents below ``root`` that are empty.

  A failed build leaves no files (TFDS writes into a temporary directory it
  deletes) but would leave the empty directories of the dataset's name and
  version, and TFDS's empty download directory.
  """
  if "://" in path:
    return  # Cloud storage has no empty directories to leave behind.
  path, root = os.path.abspath(path), os.path.abspath(root)
  for start in (path, os.path.join(root, "downloads", "extracted")):
    while start.startswith(root + os.sep):
      if os.path.isdir(start):
        if os.listdir(start):
          break
        os.rmdir(start)
      start = os.path.dirname(start)


def _num_examples(builder: tfds.core.DatasetBuilder, name: str, split: str, setting: str) -> int:
  splits = builder.info.splits
  try:
    return splits[split].num_examples
  except (KeyError, ValueError, AssertionError) as e:
    raise UserError(
      f"Dataset {name!r} has no split {split!r}; set load_dataset.{setting} "
      f"to one of {sorted(splits.keys())} (slices like 'train[:90%]' work "
      "too)."
    ) from e


def prepare_dataset(
  name: str, data_dir: str | None, download: bool = True
) -> tfds.core.DatasetBuilder:
  """The builder of ``name`` in ``data_dir``, prepared there if it was not.

  synthetic_motion is generated and video_folder decoded locally (their
  settings come from gin); other TFDS datasets are downloaded if
  ``download``. After a video_folder build, ``builder.skipped`` names the
  files that could not be decoded.

  Raises:
    UserError: the name is unknown, or the dataset cannot be prepared.
  """
  with _quiet_tfds():
    builder = _builder(name, data_dir)
    if not builder.is_prepared():
      _prepare(builder, name, download)
  return builder


_CACHE_CHOICES = ("auto", "memory", "none")


def _caches(cache: str, features, num_examples: int, limit_mb: float) -> bool:
  """Whether ``load_dataset`` keeps the decoded examples in memory."""
  if cache not in _CACHE_CHOICES:
    raise UserError(f"load_dataset.cache must be one of {_CACHE_CHOICES}, got {cache!r}")
  if cache != "auto":
    return cache == "memory"
  decoded_bytes = 0
  for feature in features.values():
    shape = tuple(getattr(feature, "shape", ()))
    if None in shape:
      return False  # Variable-sized videos: their decoded size is not known here.
    decoded_bytes += int(np.prod(shape, dtype=np.int64)) * np.dtype(feature.np_dtype).itemsize
  return num_examples * decoded_bytes <= limit_mb * 2**20


@gin.configurable
def load_dataset(
  name: str = SYNTHETIC,
  data_dir: str | None = None,
  train_split: str = "train",
  validation_split: str = "validation",
  download: bool = True,
  cache: str = "auto",
  cache_limit_mb: float = 2048.0,
) -> VideoDataset:
  """Loads a video dataset, preparing it first if ``data_dir`` lacks it.

  Args:
    name: "synthetic_motion" (its size comes from the gin-configurable
      ``synthetic_motion_config``), or a TFDS name such as "ucf101" or
      "ucf101/ucf101_1_256".
    data_dir: TFDS data directory; None means TFDS's default
      (~/tensorflow_datasets).
    train_split: split to train on (any TFDS split expression).
    validation_split: split to evaluate on; ucf101 has no "validation", use
      "test" there.
    download: whether a missing TFDS dataset may be downloaded;
      synthetic_motion is generated locally whatever this says.
    cache: keep the decoded examples in memory after their first pass, so
      later epochs and later candidates of a search skip reading and
      decoding them: 'auto' when every feature has a static shape and both
      splits fit in ``cache_limit_mb`` decoded (synthetic_motion does),
      'memory' always, 'none' never.
    cache_limit_mb: the decoded size 'auto' caches up to.

  Returns:
    The VideoDataset, with examples in a fixed order.

  Raises:
    UserError: the name is unknown, a split does not exist, the dataset has
      no "video" and "label" features, or it is not prepared and cannot be
      downloaded.
  """
  with _quiet_tfds():
    builder = prepare_dataset(name, data_dir, download)
    features = builder.info.features
    if "video" not in features or "label" not in features:
      raise UserError(
        f"Dataset {name!r} has features {sorted(features.keys())}, not "
        "'video' and 'label'; set load_dataset.name to a video "
        "classification dataset."
      )
    num_train = _num_examples(builder, name, train_split, "train_split")
    num_validation = _num_examples(builder, name, validation_split, "validation_split")
    train = builder.as_dataset(split=train_split, shuffle_files=False)
    validation = builder.as_dataset(split=validation_split, shuffle_files=False)
    if _caches(cache, features, num_train + num_validation, cache_limit_mb):
      train, validation = train.cache(), validation.cache()
  full_name = builder.name
  if builder.builder_config is not None:
    full_name += "/" + builder.builder_config.name
  has_objects = name == SYNTHETIC and "objects" in features
  return VideoDataset(
    name=full_name,
    train=train,
    validation=validation,
    num_classes=features["label"].num_classes,
    num_train=num_train,
    num_validation=num_validation,
    object_classes=synthetic_motion.OBJECT_CLASSES if has_objects else (),
    class_names=tuple(features["label"].names),
  )
