"""video_folder: a TFDS dataset made from a user's folder of labelled videos.

The manual directory holds one subfolder per class, named after the class,
with video files (mp4, avi, webm, mov) inside, at any depth::

  my_videos/
    jumping/  a.mp4  b.webm  more/c.avi
    running/  d.mov  ...

Videos are decoded with PyAV, whose wheels bundle FFmpeg's libraries, so no
system FFmpeg is needed. Each video may be resized (shorter side to
``resolution``, keeping the aspect ratio), thinned (every ``frame_step``-th
frame) and capped (``max_frames``) while it is decoded, so long or large
videos do not have to fit in memory at full size.

The train/validation split is deterministic and stratified: within a class,
files are ordered by a hash of (split seed, relative path) and the first
``validation_fraction`` of them are validation. Adding a file moves no other
file between splits.

A file that cannot be decoded is skipped, named on the output and counted in
``VideoFolder.skipped``; it never stops the build. A class with no decodable
video, a directory that does not exist or holds no videos, stop it with one
``UserError`` before anything is written.

The config name is derived from the settings and a fingerprint of the file
list, so a changed folder or other settings never collide with an earlier
build in the same data directory.
"""

import dataclasses
import hashlib
import os

import av
import gin
import numpy as np
import tensorflow_datasets as tfds

from vsearch import progress
from vsearch.data import local_builder
from vsearch.errors import UserError, VideoDecodeError

NAME = "video_folder"
VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mov")
# Bump whenever decoding or the split changes, so older builds are not reused.
_VERSION = tfds.core.Version("1.0.0")
# Codecs PyAV's bundled FFmpeg encodes, by container; used by encode_video.
_CODECS = {".mp4": "mpeg4", ".avi": "mpeg4", ".mov": "mpeg4", ".webm": "libvpx"}


def decode_video(
  path: str, resolution: int = 0, max_frames: int = 0, frame_step: int = 1
) -> np.ndarray:
  """Decodes the first video stream of a file into RGB frames.

  Args:
    path: the video file.
    resolution: side the shorter image side is resized to (aspect ratio
      kept, sizes rounded to even); 0 keeps the decoded size.
    max_frames: most frames kept; 0 keeps all.
    frame_step: keep every ``frame_step``-th decoded frame.

  Returns:
    uint8 [N, H, W, 3] with N >= 1.

  Raises:
    VideoDecodeError: the file is not a video, is corrupt, or has no frames.
  """
  frames = []
  try:
    with av.open(path) as container:
      if not container.streams.video:
        raise VideoDecodeError("no video stream")
      stream = container.streams.video[0]
      stream.thread_type = "AUTO"
      size = None
      for index, frame in enumerate(container.decode(stream)):
        if index % frame_step:
          continue
        if size is None:
          size = _target_size(frame.width, frame.height, resolution)
        frames.append(frame.to_ndarray(format="rgb24", width=size[0], height=size[1]))
        if max_frames and len(frames) >= max_frames:
          break
  except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
    # FFmpeg's message repeats the path, which the skip line already names.
    reason = getattr(e, "strerror", None) or str(e)
    raise VideoDecodeError(f"{type(e).__name__}: {reason}") from e
  if not frames:
    raise VideoDecodeError("no decodable frames")
  return np.stack(frames)


def _target_size(width: int, height: int, resolution: int) -> tuple[int, int]:
  """(width, height) with the shorter side at ``resolution``, both even."""
  if not resolution:
    return width, height
  scale = resolution / min(width, height)
  even = lambda x: max(2, int(round(x * scale / 2)) * 2)
  return even(width), even(height)


def encode_video(path: str, frames: np.ndarray, fps: int = 10) -> None:
  """Writes uint8 frames [N, H, W, 3] (H, W even) as a video file.

  The container comes from the extension (mp4, avi, mov: MPEG-4 Part 2;
  webm: VP8), all encoded by the FFmpeg that PyAV bundles. Tests use it to
  make real video files; users can use it to turn arrays into a folder.
  """
  extension = os.path.splitext(path)[1].lower()
  if extension not in _CODECS:
    raise UserError(f"Cannot encode {path!r}: the extension must be one of {sorted(_CODECS)}.")
  with av.open(path, mode="w") as container:
    stream = container.add_stream(_CODECS[extension], rate=fps)
    stream.width, stream.height = frames.shape[2], frames.shape[1]
    stream.pix_fmt = "yuv420p"
    stream.options = {"qscale": "2"} if _CODECS[extension] == "mpeg4" else {}
    for image in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(image, "rgb24")):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


def scan_folder(manual_dir: str) -> dict[str, list[str]]:
  """The video files of each class folder, as sorted paths relative to it.

  Raises:
    UserError: the directory does not exist, has no class subfolders, or a
      class folder holds no video file.
  """
  fix = f"put one subfolder per class in it, holding video files ({', '.join(VIDEO_EXTENSIONS)})"
  if not manual_dir or not os.path.isdir(manual_dir):
    raise UserError(
      f"The video folder {manual_dir!r} does not exist; {fix} "
      "and pass it as --manual_dir (video_folder_config."
      "manual_dir in gin)."
    )
  classes = sorted(
    name
    for name in os.listdir(manual_dir)
    if os.path.isdir(os.path.join(manual_dir, name)) and not name.startswith(".")
  )
  if not classes:
    raise UserError(f"The video folder {manual_dir!r} has no class subfolders; {fix}.")
  files = {}
  for name in classes:
    root = os.path.join(manual_dir, name)
    found = []
    for parent, dirs, names in os.walk(root):
      dirs.sort()
      found += [
        os.path.relpath(os.path.join(parent, n), manual_dir)
        for n in names
        if os.path.splitext(n)[1].lower() in VIDEO_EXTENSIONS
      ]
    if not found:
      raise UserError(
        f"The class folder {root!r} holds no video files "
        f"({', '.join(VIDEO_EXTENSIONS)}); add videos or remove "
        "the folder."
      )
    files[name] = sorted(found)
  return files


def split_files(
  files: dict[str, list[str]], validation_fraction: float, seed: int
) -> dict[str, list[tuple[str, int]]]:
  """Deterministic stratified split: {"train"|"validation": [(path, label)]}."""
  splits = {"train": [], "validation": []}
  for label, name in enumerate(sorted(files)):
    ranked = sorted(files[name], key=lambda p: hashlib.sha256(f"{seed}:{p}".encode()).hexdigest())
    # At least one validation file where the class has two or more, and
    # always at least one training file.
    count = int(round(validation_fraction * len(ranked)))
    if validation_fraction > 0 and len(ranked) > 1:
      count = min(max(count, 1), len(ranked) - 1)
    splits["validation"] += [(p, label) for p in ranked[:count]]
    splits["train"] += [(p, label) for p in ranked[count:]]
  return {k: sorted(v) for k, v in splits.items()}


@dataclasses.dataclass(eq=False)
class VideoFolderConfig(tfds.core.BuilderConfig):
  """Where the videos are and how they are decoded and split.

  Attributes:
    manual_dir: the folder with one subfolder per class.
    resolution: shorter side after resizing; 0 keeps the decoded size.
    max_frames: most frames kept per video (after ``frame_step``); 0 keeps
      all.
    frame_step: keep every ``frame_step``-th frame (2 halves the frame rate).
    validation_fraction: share of each class's files used for validation.
    split_seed: seed of the train/validation split.
    classes: class names (the subfolders), filled in from ``manual_dir``.
    fingerprint: hash of the file list and sizes, filled in.
  """

  name: str = dataclasses.field(default="", init=False)
  manual_dir: str = ""
  resolution: int = 0
  max_frames: int = 0
  frame_step: int = 1
  validation_fraction: float = 0.2
  split_seed: int = 0
  classes: tuple[str, ...] = ()
  fingerprint: str = ""

  def __post_init__(self):
    for field, minimum in (
      ("resolution", 0),
      ("max_frames", 0),
      ("frame_step", 1),
      ("split_seed", 0),
    ):
      value = getattr(self, field)
      if not isinstance(value, int) or value < minimum:
        raise UserError(
          f"video_folder_config.{field} is {value!r}; set it to an integer of at least {minimum}."
        )
    if not 0.0 <= self.validation_fraction < 1.0:
      raise UserError(
        "video_folder_config.validation_fraction is "
        f"{self.validation_fraction!r}; set it in [0, 1)."
      )
    self.name = (
      f"r{self.resolution}_m{self.max_frames}_st{self.frame_step}_"
      f"va{int(round(self.validation_fraction * 100))}_"
      f"s{self.split_seed}_{self.fingerprint[:10]}"
    )
    self.version = _VERSION
    self.description = f"Videos of {len(self.classes)} classes from {self.manual_dir}."


def _fingerprint(manual_dir: str, files: dict[str, list[str]]) -> str:
  digest = hashlib.sha256()
  for name in sorted(files):
    for path in files[name]:
      size = os.path.getsize(os.path.join(manual_dir, path))
      digest.update(f"{path}\0{size}\n".encode())
  return digest.hexdigest()


@gin.configurable
def video_folder_config(
  manual_dir: str = "",
  resolution: int = 0,
  max_frames: int = 0,
  frame_step: int = 1,
  validation_fraction: float = 0.2,
  split_seed: int = 0,
) -> VideoFolderConfig:
  """The video_folder that gin selects (see VideoFolderConfig); scans the folder.

  Raises:
    UserError: the folder is missing or empty, or a setting is out of range.
  """
  if not manual_dir:
    raise UserError(
      "No video folder given; set video_folder_config.manual_dir "
      "(--manual_dir for launch.prepare_data) to a folder with "
      "one subfolder of videos per class."
    )
  manual_dir = os.path.abspath(os.path.expanduser(manual_dir))
  files = scan_folder(manual_dir)
  return VideoFolderConfig(
    manual_dir=manual_dir,
    resolution=resolution,
    max_frames=max_frames,
    frame_step=frame_step,
    validation_fraction=validation_fraction,
    split_seed=split_seed,
    classes=tuple(sorted(files)),
    fingerprint=_fingerprint(manual_dir, files),
  )


def make_builder(config: VideoFolderConfig, data_dir: str | None = None) -> "VideoFolder":
  """The builder of this folder with these settings, in ``data_dir``."""
  return VideoFolder(config=config, data_dir=data_dir)


class VideoFolder(local_builder.LocalBuilder):
  """Labelled videos from a folder per class (see the module docstring).

  After a build by ``download_and_prepare``, ``skipped`` lists ``(path,
  reason)`` of every file that could not be decoded; it is None when this
  builder did not build (the dataset was prepared already).
  """

  VERSION = _VERSION
  RELEASE_NOTES = {"1.0.0": "First version."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
    "Put one subfolder per class, holding its video files, in the manual directory."
  )

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.skipped: list[tuple[str, str]] | None = None

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    return self.dataset_info_from_configs(
      description=config.description,
      features=tfds.features.FeaturesDict(
        {
          "video": tfds.features.Video(shape=(None, None, None, 3), encoding_format="jpeg"),
          "label": tfds.features.ClassLabel(names=list(config.classes)),
        }
      ),
      supervised_keys=("video", "label"),
    )

  def _decode(self, path: str) -> np.ndarray:
    config = self.builder_config
    return decode_video(
      os.path.join(config.manual_dir, path), config.resolution, config.max_frames, config.frame_step
    )

  def _skip(self, path: str, reason: str) -> None:
    self.skipped.append((path, reason))
    print(f"skipped {os.path.join(self.builder_config.manual_dir, path)}: {reason}", flush=True)

  def _split_generators(self, dl_manager):
    del dl_manager  # The files are read from the config's manual_dir.
    config = self.builder_config
    self.skipped = []
    files = scan_folder(config.manual_dir)
    if tuple(sorted(files)) != config.classes:
      raise UserError(
        f"The class folders of {config.manual_dir!r} changed "
        "while the dataset was being built; run again."
      )
    # Every class needs a decodable video before anything is written; one
    # frame per file tells, so this costs a fraction of the full decode.
    for name, paths in files.items():
      decodable = []
      for path in paths:
        try:
          decode_video(os.path.join(config.manual_dir, path), max_frames=1)
          decodable.append(path)
        except VideoDecodeError as e:
          self._skip(path, str(e))
      if not decodable:
        raise UserError(
          f"The class folder {os.path.join(config.manual_dir, name)!r} has "
          "no decodable video; add playable videos or remove the folder."
        )
      files[name] = decodable
    splits = split_files(files, config.validation_fraction, config.split_seed)
    generators = {"train": self._generate_examples("train", splits["train"])}
    if splits["validation"]:
      generators["validation"] = self._generate_examples("validation", splits["validation"])
    return generators

  def _generate_examples(self, split: str, items: list[tuple[str, int]]):
    report = progress.Progress(len(items))
    for path, label in items:
      try:
        frames = self._decode(path)
      except VideoDecodeError as e:
        self._skip(path, str(e))
      else:
        yield path, {"video": frames, "label": label}
      report.step()
      report.print_every(f"video_folder {split} videos")
