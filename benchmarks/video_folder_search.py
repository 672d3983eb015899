r"""A search on real encoded videos: decode speed and whether candidates learn.

Encodes a folder of videos whose class is the direction (left, right, up,
down) in which a square slides over a noisy background (mp4, webm, avi, mov,
plus one corrupt file), builds it with launch.prepare_data, then runs a short
search on it with gin/data/video_folder.gin (augmentation without flips:
mirroring would swap left and right):

  python benchmarks/video_folder_search.py
  python benchmarks/video_folder_search.py --per_class=40 \
      --gin_bindings='Search.num_candidates=8'
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from vsearch.data import video_folder

DIRECTIONS = {"left": (-3, 0), "right": (3, 0), "up": (0, -3), "down": (0, 3)}
CONTAINERS = (".mp4", ".webm", ".avi", ".mov")


def _video(rng, step, frames=24, height=96, width=128, side=24):
  background = rng.integers(0, 90, (height, width, 3)).astype(np.uint8)
  colour = rng.integers(150, 256, 3)
  y, x = rng.integers(0, height), rng.integers(0, width)
  video = np.repeat(background[None], frames, axis=0)
  for t in range(frames):
    top, left = (y + step[1] * t) % (height - side), (x + step[0] * t) % (width - side)
    video[t, top : top + side, left : left + side] = colour
  return video


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--per_class", type=int, default=30)
  parser.add_argument("--gin_bindings", action="append", default=[])
  parser.add_argument("--workdir", default=None, help="default: a new temporary folder")
  args = parser.parse_args()
  workdir = args.workdir or tempfile.mkdtemp(prefix="vsearch_videos_")
  videos, data_dir = os.path.join(workdir, "videos"), os.path.join(workdir, "tfds")

  rng = np.random.default_rng(0)
  start = time.monotonic()
  for name, step in DIRECTIONS.items():
    os.makedirs(os.path.join(videos, name))
    for index in range(args.per_class):
      path = os.path.join(videos, name, f"{index:03d}{CONTAINERS[index % 4]}")
      video_folder.encode_video(path, _video(rng, step))
  with open(os.path.join(videos, "left", "corrupt.mp4"), "wb") as f:
    f.write(rng.bytes(4096))
  print(f"encoded {4 * args.per_class} videos in {time.monotonic() - start:.1f} s", flush=True)

  start = time.monotonic()
  subprocess.run(
    [
      sys.executable,
      "-m",
      "launch.prepare_data",
      "--dataset=video_folder",
      f"--manual_dir={videos}",
      f"--data_dir={data_dir}",
      "--resolution=128",
      "--max_frames=64",
    ],
    cwd=REPO,
    check=True,
  )
  print(f"prepare_data: {time.monotonic() - start:.1f} s wall, start-up included", flush=True)

  command = [
    sys.executable,
    "-m",
    "launch.search",
    f"--workdir={os.path.join(workdir, 'search')}",
    "--gin_file=gin/tvn/smoke.gin",
    "--gin_file=gin/data/video_folder.gin",
    f"--gin_bindings=video_folder_config.manual_dir='{videos}'",
    f"--gin_bindings=load_dataset.data_dir='{data_dir}'",
    "--gin_bindings=Augmentation.flip=False",
    "--gin_bindings=make_clips.num_eval_clips=2",
    "--gin_bindings=Search.num_candidates=6",
  ]
  command += [f"--gin_bindings={b}" for b in args.gin_bindings]
  start = time.monotonic()
  subprocess.run(command, cwd=REPO, check=True)
  print(f"search: {time.monotonic() - start:.0f} s wall", flush=True)


if __name__ == "__main__":
  main()
