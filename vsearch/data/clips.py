"""The clip pipeline: from a TFDS video dataset to batches of model inputs."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """What a model reads from a video: how many frames, how far apart, how big.

  Attributes:
    num_frames: frames per clip.
    frame_stride: distance between sampled frames, in source frames.
    resolution: side of the square frames, in pixels.
  """

  num_frames: int
  frame_stride: int
  resolution: int

  @property
  def input_shape(self) -> tuple[int, int, int, int]:
    """Shape of one clip as the model receives it: (T, H, W, 3)."""
    return (self.num_frames, self.resolution, self.resolution, 3)
