"""video_folder: real encoded videos in, a TFDS dataset out; bad folders end cleanly."""

import os
import subprocess
import sys

import numpy as np
import pytest

from vsearch.data import video_folder
from vsearch.errors import VideoDecodeError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(REPO, "tests", "data", "tiny_search.gin")
# Files per class and their containers; every class gets each container.
CONTAINERS = (".mp4", ".mp4", ".webm", ".avi")


def _moving_square(direction: int, seed: int, frames=10, height=32, width=40):
  """A bright square sliding left (-1) or right (+1) over a dark background."""
  rng = np.random.default_rng(seed)
  video = np.full((frames, height, width, 3), 30, np.uint8)
  top, left = rng.integers(4, height - 14), rng.integers(0, width - 10)
  for t in range(frames):
    x = (left + direction * 2 * t) % (width - 10)
    video[t, top : top + 10, x : x + 10] = (220, 200, 60)
  return video


def _write_folder(root, classes=("left", "right")):
  originals = {}
  for label, name in enumerate(classes):
    os.makedirs(os.path.join(root, name, "more"))
    for index, extension in enumerate(CONTAINERS):
      # One file per class sits in a nested folder, which counts too.
      sub = "more" if index == 1 else ""
      path = os.path.join(name, sub, f"clip{index}{extension}")
      frames = _moving_square(2 * label - 1, seed=10 * label + index)
      video_folder.encode_video(os.path.join(root, path), frames)
      originals[path] = frames
  return originals


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("videos"))
  originals = _write_folder(root)
  # Bytes of an mp4 header followed by garbage: an undecodable file.
  with open(os.path.join(root, "left", "corrupt.mp4"), "wb") as f:
    f.write(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
  with open(os.path.join(root, "left", "notes.txt"), "w") as f:
    f.write("not a video, not counted")
  return root, originals


def _prepare(*flags):
  return subprocess.run(
    [sys.executable, "-m", "launch.prepare_data", *flags],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )


def _files_under(directory):
  return [os.path.join(parent, name) for parent, _, names in os.walk(directory) for name in names]


def test_decoding_returns_the_encoded_frames_resized_and_capped(videos):
  root, originals = videos
  for path, frames in originals.items():
    decoded = video_folder.decode_video(os.path.join(root, path))
    assert decoded.shape == frames.shape, path
    assert np.abs(decoded.astype(int) - frames).mean() < 6, path
  small = video_folder.decode_video(
    os.path.join(root, "left", "clip0.mp4"), resolution=16, max_frames=3, frame_step=2
  )
  assert small.shape == (3, 16, 20, 3)
  with pytest.raises(VideoDecodeError):
    video_folder.decode_video(os.path.join(root, "left", "corrupt.mp4"))


def test_split_is_deterministic_stratified_and_stable_when_files_are_added():
  files = {"a": [f"a/{i}.mp4" for i in range(10)], "b": ["b/0.mp4", "b/1.mp4"]}
  splits = video_folder.split_files(files, 0.2, seed=0)
  assert splits == video_folder.split_files(files, 0.2, seed=0)
  validation = {p for p, _ in splits["validation"]}
  assert len([p for p in validation if p.startswith("a/")]) == 2
  assert len([p for p in validation if p.startswith("b/")]) == 1
  grown = video_folder.split_files({**files, "a": files["a"] + ["a/new.mp4"]}, 0.2, seed=0)
  moved = validation ^ {p for p, _ in grown["validation"]}
  # The new file may take a validation place from one file; nothing else moves.
  assert len(moved - {"a/new.mp4"}) <= 1
  assert any(video_folder.split_files(files, 0.2, seed=s) != splits for s in (1, 2, 3))


def test_prepare_data_builds_the_folder_skipping_the_corrupt_file(videos, tmp_path):
  root, _ = videos
  data_dir = str(tmp_path / "data")
  result = _prepare(
    "--dataset=video_folder", f"--manual_dir={root}", f"--data_dir={data_dir}", "--resolution=32"
  )
  assert result.returncode == 0, result.stderr[-3000:]
  out = result.stdout
  assert f"skipped {os.path.join(root, 'left', 'corrupt.mp4')}" in out
  assert "classes: 2 (left, right)" in out
  assert "train: 6 examples" in out and "validation: 2 examples" in out
  assert "skipped: 1 files" in out and "notes.txt" not in out

  import gin
  import tensorflow_datasets as tfds

  from vsearch.data import datasets

  gin.bind_parameter("video_folder_config.manual_dir", root)
  gin.bind_parameter("video_folder_config.resolution", 32)
  loaded = datasets.load_dataset(name="video_folder", data_dir=data_dir)
  assert (loaded.num_classes, loaded.num_train, loaded.num_validation) == (2, 6, 2)
  for example in tfds.as_numpy(loaded.train.take(2)):
    assert example["video"].shape == (10, 32, 40, 3)

  # Built already: the same settings are only read back, not decoded again.
  assert datasets.prepare_dataset("video_folder", data_dir).is_prepared()


def test_a_missing_folder_ends_the_launcher_with_one_line(tmp_path):
  result = _prepare(
    "--dataset=video_folder", f"--manual_dir={tmp_path / 'none'}", f"--data_dir={tmp_path / 'data'}"
  )
  assert result.returncode == 2, result.stderr[-3000:]
  assert result.stderr.strip().splitlines() == [
    f"error: The video folder '{tmp_path / 'none'}' does not exist; put one "
    "subfolder per class in it, holding video files (.mp4, .avi, .webm, "
    ".mov) and pass it as --manual_dir (video_folder_config.manual_dir in gin)."
  ]


@pytest.mark.parametrize("case", ["empty", "no_videos", "undecodable"])
def test_bad_folders_raise_one_clear_error_and_leave_nothing(case, tmp_path):
  import gin

  from vsearch.data import datasets
  from vsearch.errors import UserError

  root, data_dir = tmp_path / "videos", tmp_path / "data"
  root.mkdir()
  if case == "no_videos":
    (root / "cats").mkdir()
    (root / "cats" / "readme.txt").write_text("no videos here")
  if case == "undecodable":
    _write_folder(str(root), classes=("dogs",))
    (root / "cats").mkdir()
    (root / "cats" / "broken.webm").write_bytes(b"\x1aE\xdf\xa3 not really webm")
  gin.bind_parameter("video_folder_config.manual_dir", str(root))
  expected = {
    "empty": "has no class subfolders",
    "no_videos": "holds no video files .*; add videos",
    "undecodable": "/cats' has no decodable video",
  }[case]
  with pytest.raises(UserError, match=expected):
    datasets.prepare_dataset("video_folder", str(data_dir))
  assert not data_dir.exists() or not _files_under(str(data_dir))
  if case == "undecodable":
    assert not data_dir.exists() or not os.listdir(data_dir)  # no empty folders either


@pytest.mark.slow
def test_a_short_search_runs_on_a_video_folder(videos, tmp_path):
  from launch import common
  from vsearch.search import runner as search

  root, _ = videos
  common.parse_gin(
    [TINY],
    [
      "load_dataset.name = 'video_folder'",
      f"video_folder_config.manual_dir = '{root}'",
      "video_folder_config.resolution = 32",
      f"load_dataset.data_dir = '{tmp_path / 'data'}'",
      "Search.num_candidates = 2",
      "TrainConfig.steps = 3",
      "make_clips.augmentation = @Augmentation()",
      "Augmentation.random_crop = True",
      "Augmentation.min_crop_scale = 0.8",
      "make_clips.num_eval_clips = 2",
    ],
  )
  best = search.Search(workdir=str(tmp_path / "work")).run()
  assert best is not None
  assert best.metrics["num_eval_clips"] == 2  # videos, each scored by 2 clips
