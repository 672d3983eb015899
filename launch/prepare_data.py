r"""Builds a TFDS video dataset once, so searches can read it from --data_dir.

  python -m launch.prepare_data --dataset=video_folder \
      --manual_dir=~/my_videos --data_dir=~/tensorflow_datasets --resolution=128
  python -m launch.prepare_data --dataset=synthetic_motion --data_dir=DIR \
      --gin_file=gin/data/synthetic_smoke.gin
  python -m launch.prepare_data --dataset=ucf101 --data_dir=DIR   # downloads

It prints progress, then the classes, the examples of each split and the
files that could not be decoded (skipped, never fatal). A dataset already
prepared in --data_dir is only summarised.
"""

from absl import flags

from launch import common, console

flags.DEFINE_string(
  "dataset",
  None,
  "synthetic_motion, video_folder, or a TFDS name such as ucf101 or ucf101/ucf101_1_256.",
)
flags.DEFINE_string("data_dir", None, "TFDS data directory to build into (local or gs://).")
flags.DEFINE_string(
  "manual_dir", None, "video_folder: the folder with one subfolder of videos per class."
)
flags.DEFINE_integer(
  "resolution", None, "video_folder: resize the shorter side to this many pixels (0: keep)."
)
flags.DEFINE_integer(
  "max_frames", None, "video_folder: keep at most this many frames per video (0: all)."
)
flags.mark_flags_as_required(["dataset", "data_dir"])
flags.adopt_module_key_flags(common)  # --help lists the shared flags too.
FLAGS = flags.FLAGS

_MAX_SKIPS_LISTED = 20


def _video_folder_bindings() -> list[str]:
  """Gin bindings for the video_folder flags that were given."""
  bindings = []
  if FLAGS.manual_dir is not None:
    bindings.append(f"video_folder_config.manual_dir = {FLAGS.manual_dir!r}")
  for name in ("resolution", "max_frames"):
    if getattr(FLAGS, name) is not None:
      bindings.append(f"video_folder_config.{name} = {getattr(FLAGS, name)}")
  return bindings


def _summarise(builder) -> None:
  """Prints the classes, the examples per split and the skipped files."""
  info, config = builder.info, builder.builder_config
  full_name = f"{builder.name}/{config.name}" if config else builder.name
  print(f"\n{full_name} in {builder.data_dir}")
  label = info.features["label"] if "label" in info.features else None
  names = list(getattr(label, "names", []))
  print(f"classes: {len(names)} ({', '.join(names[:10])}{', ...' if len(names) > 10 else ''})")
  for split, split_info in sorted(info.splits.items()):
    print(f"{split}: {split_info.num_examples} examples")
  if FLAGS.dataset != "video_folder":
    return
  if builder.skipped is None:
    print("skipped: built before; its build listed the skipped files")
    return
  print(f"skipped: {len(builder.skipped)} files")
  for path, reason in builder.skipped[:_MAX_SKIPS_LISTED]:
    print(f"  {path}: {reason}")
  if len(builder.skipped) > _MAX_SKIPS_LISTED:
    print(f"  ... and {len(builder.skipped) - _MAX_SKIPS_LISTED} more")


def main(argv):
  with common.started(argv, parse=False):
    from vsearch.data import datasets
    from vsearch.errors import UserError

    folder_flags = _video_folder_bindings()
    if folder_flags and FLAGS.dataset != "video_folder":
      raise UserError(
        "--manual_dir, --resolution and --max_frames are for "
        f"--dataset=video_folder; drop them for {FLAGS.dataset!r}."
      )
    common.parse_gin(FLAGS.gin_file, FLAGS.gin_bindings + folder_flags)
    _summarise(datasets.prepare_dataset(FLAGS.dataset, FLAGS.data_dir))


def run():
  """The `vsearch-prepare-data` console script."""
  console.run(main, __name__)


if __name__ == "__main__":
  run()
