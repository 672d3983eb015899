"""synthetic_motion: a video dataset whose class is a direction of motion.

Class ``k`` of ``K`` is the direction of travel at angle ``360° * k / K``,
counter-clockwise from "rightwards" (90° is "upwards" on screen). Each clip
shows one to three textured objects, all travelling in that direction in
straight lines, each at its own constant speed, over a static, randomly
textured background. Space is a torus: an object leaves on one side and comes
back on the other, so its position in any single frame is uniform over the
image whatever the class.

Everything else is drawn independently of the class, per object: the speed (1
to 3 pixels per frame at 32 px; all lengths scale with the resolution), the
shape (disc, square, diamond, ellipse, triangle, cross, ring), its size, a spin
of random speed and sense, a steady growth or shrinkage, the colours and the
texture (plain, stripes, checks, rings), which spins with the object; and per
clip the background's colours and texture.

What a model can learn from what:

* one frame: nothing. Positions, orientations, sizes and appearance have the
  same distribution for every class.
* an unordered bag of frames: at most the axis of motion (the direction modulo
  180°, from where the objects are across frames), never its sense. Reversing
  a clip of direction ``d`` gives a clip of direction ``d + 180°`` that is just
  as likely (spin and growth are symmetric in time), so with an even ``K``
  opposite classes have the same bag distribution and an order-free model is
  held to ``2 / K`` accuracy. Frame models that pool over space (convnets
  with global pooling) lose even the axis and stay near chance, ``1 / K``.
  ``K`` must be even: with an odd ``K`` no two classes are opposite, and the
  axis alone would name the class.
* frame order: the class. A displacement of 1 to 3 px per frame stays visible
  at 2 frames with a frame stride up to 5 in a 32-px clip (under half the
  image, so the shorter way round the torus is the true one).

Every clip also carries its segmentation: per frame, the index in
``OBJECT_CLASSES`` of what each pixel shows (0 for the background, 1 + the
shape index for the front-most object covering at least half of the pixel).
These are the object maps AssembleNet++'s object stem reads, made from the
known shapes instead of a segmentation network.

Generation needs no download: every clip is rendered in numpy from a generator
seeded by (seed, split, index), so the dataset is the same whatever the order
or parallelism of generation. Differently sized datasets have different config
names, so they never collide in one data_dir.
"""

import dataclasses

import gin
import numpy as np
import tensorflow_datasets as tfds

from vsearch import progress
from vsearch.data import local_builder
from vsearch.errors import UserError

SHAPES = ("disc", "square", "diamond", "ellipse", "triangle", "cross", "ring")
# Classes of the per-frame segmentation maps ("objects" feature).
OBJECT_CLASSES = ("background",) + SHAPES
PATTERNS = ("plain", "stripes", "checks", "rings")
_SPLIT_IDS = {"train": 0, "validation": 1}
# Bump the version whenever the rendering changes, so that data written by an
# older renderer is not read as if it were current.
_VERSION = tfds.core.Version("1.1.0")

# Lengths are fractions of the image side, so that a clip resized to another
# resolution moves the same way; rates are per frame.
_SPEED_RANGE = (1.0 / 32, 3.0 / 32)  # fraction of the image side per frame
_RADIUS_RANGE = (0.14, 0.24)  # fraction of the image side
_RADIUS_LIMITS = (0.06, 0.3)
_MAX_SPIN = 0.25  # radians per frame
_MAX_GROWTH = 0.03  # log-radius per frame
_MAX_BACKGROUND_CYCLES = 3  # per image side, per grating
_BACKGROUND_CONTRAST = 0.1
_NUM_OBJECTS = (1, 3)  # fewest and most objects per clip


def _description(num_classes: int) -> str:
  return (
    f"Class k of {num_classes} is the direction of travel at angle "
    f"360*k/{num_classes} degrees (counter-clockwise from rightwards) of one "
    "to three objects on a torus (wrap-around at the borders) over a static "
    "random background. Speeds, shapes, sizes, spins, growth, colours, "
    "textures and positions are random and independent of the class, so no "
    "single frame tells the class, and an unordered bag of frames tells at "
    "most the axis of motion, never its sense."
  )


@dataclasses.dataclass(eq=False)
class SyntheticMotionConfig(tfds.core.BuilderConfig):
  """Size of a synthetic_motion dataset; its name is derived from the sizes.

  Attributes:
    num_frames: frames per clip.
    resolution: side of the square frames, in pixels.
    num_classes: number of directions, evenly spaced over 360°.
    train_per_class: training clips per class.
    validation_per_class: validation clips per class.
    seed: seed of all randomness; a different seed gives different clips.
  """

  name: str = dataclasses.field(default="", init=False)
  num_frames: int = 16
  resolution: int = 48
  num_classes: int = 8
  train_per_class: int = 128
  validation_per_class: int = 32
  seed: int = 0

  def __post_init__(self):
    checks = (
      ("num_frames", 2),
      ("resolution", 16),
      ("num_classes", 2),
      ("train_per_class", 1),
      ("validation_per_class", 1),
      ("seed", 0),
    )
    for field, minimum in checks:
      value = getattr(self, field)
      if not isinstance(value, int) or value < minimum:
        raise UserError(
          f"synthetic_motion_config.{field} is {value!r}; set it "
          f"to an integer of at least {minimum}."
        )
    if self.num_classes % 2:
      raise UserError(
        f"synthetic_motion_config.num_classes is {self.num_classes}; set it "
        "to an even number, so that every direction has an opposite class "
        "and the axis of motion alone cannot tell the class."
      )
    self.name = (
      f"f{self.num_frames}_r{self.resolution}_c{self.num_classes}_"
      f"tr{self.train_per_class}_va{self.validation_per_class}_"
      f"s{self.seed}"
    )
    self.version = _VERSION
    self.description = _description(self.num_classes)


@gin.configurable
def synthetic_motion_config(
  num_frames: int = 16,
  resolution: int = 48,
  num_classes: int = 8,
  train_per_class: int = 128,
  validation_per_class: int = 32,
  seed: int = 0,
) -> SyntheticMotionConfig:
  """The synthetic_motion size that gin selects (see SyntheticMotionConfig)."""
  return SyntheticMotionConfig(**locals())  # Every argument is a field of the config.


def make_builder(config: SyntheticMotionConfig, data_dir: str | None = None) -> "SyntheticMotion":
  """The builder of a dataset of this size (prepared or not) in ``data_dir``."""
  # TFDS refuses a config object that shares its name with a predefined one.
  predefined = SyntheticMotion.builder_configs.get(config.name)
  return SyntheticMotion(config=predefined or config, data_dir=data_dir)


def class_angle(label: int, num_classes: int) -> float:
  """Direction of travel of class ``label``, in radians."""
  return 2.0 * np.pi * label / num_classes


def example_rng(seed: int, split: str, index: int) -> np.random.Generator:
  """The generator that draws everything about one example."""
  return np.random.default_rng([seed, _SPLIT_IDS[split], index])


def _unit_sdf(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Approximate signed distance to a shape of radius 1, in radius units."""
  if shape == "disc":
    return np.hypot(u, v) - 1.0
  if shape == "square":
    return np.maximum(np.abs(u), np.abs(v)) - 0.8
  if shape == "diamond":
    return (np.abs(u) + np.abs(v) - 1.0) / np.sqrt(2.0)
  if shape == "ellipse":
    return (np.hypot(u, v / 0.55) - 1.0) * 0.55
  if shape == "triangle":
    sides = [
      np.cos(a) * u + np.sin(a) * v - 0.5 for a in (np.pi / 2, np.pi * 7 / 6, np.pi * 11 / 6)
    ]
    return np.max(sides, axis=0)
  if shape == "cross":
    bar_u = np.maximum(np.abs(u) - 1.0, np.abs(v) - 0.35)
    bar_v = np.maximum(np.abs(u) - 0.35, np.abs(v) - 1.0)
    return np.minimum(bar_u, bar_v)
  if shape == "ring":
    return np.abs(np.hypot(u, v) - 0.72) - 0.28
  raise ValueError(f"unknown shape {shape!r}")


def _pattern(pattern: str, u: np.ndarray, v: np.ndarray, frequency: float) -> np.ndarray:
  """Mixing weight in [0, 1] between the object's two colours."""
  if pattern == "plain":
    return np.zeros_like(u)
  if pattern == "stripes":
    return 0.5 + 0.5 * np.sign(np.sin(frequency * np.pi * u))
  if pattern == "checks":
    product = np.sin(frequency * np.pi * u) * np.sin(frequency * np.pi * v)
    return 0.5 + 0.5 * np.sign(product)
  return 0.5 + 0.5 * np.sign(np.sin(frequency * np.pi * np.hypot(u, v)))


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
  """A static random texture: a base colour plus a few coloured gratings."""
  y, x = np.mgrid[0:size, 0:size] / size
  image = np.broadcast_to(rng.uniform(0.2, 0.8, 3), (size, size, 3)).copy()
  for _ in range(rng.integers(2, 5)):
    fx, fy = rng.integers(-_MAX_BACKGROUND_CYCLES, _MAX_BACKGROUND_CYCLES + 1, size=2)
    wave = np.sin(2 * np.pi * (fx * x + fy * y) + rng.uniform(0, 2 * np.pi))
    image += wave[..., None] * rng.uniform(-_BACKGROUND_CONTRAST, _BACKGROUND_CONTRAST, 3)
  return image


def _object_colours(rng: np.random.Generator, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Two colours for an object, the first well apart from the background."""
  while True:
    first = rng.uniform(0.0, 1.0, 3)
    if np.abs(first - mean).max() > 0.35:
      return first, rng.uniform(0.0, 1.0, 3)


def _draw_object(
  rng: np.random.Generator,
  frames: np.ndarray,
  angle: float,
  background_mean: np.ndarray,
  objects: np.ndarray,
) -> np.ndarray:
  """Composites one moving object over ``frames`` [T, S, S, 3] in [0, 1].

  Writes the object's class into the segmentation maps ``objects`` [T, S, S]
  (in place) where it covers at least half of a pixel.
  """
  num_frames, resolution = frames.shape[0], frames.shape[1]
  size = float(resolution)
  shape = SHAPES[rng.integers(len(SHAPES))]
  pattern = PATTERNS[rng.integers(len(PATTERNS))]
  frequency = rng.uniform(1.5, 3.5)
  colour_a, colour_b = (c.astype(np.float32) for c in _object_colours(rng, background_mean))

  t = np.arange(num_frames, dtype=np.float64)
  speed = rng.uniform(*_SPEED_RANGE) * size
  # Rows grow downwards on screen, so "up" is a negative row step.
  start = rng.uniform(0.0, size, 2)  # (x, row)
  x0 = start[0] + speed * np.cos(angle) * t
  row0 = start[1] - speed * np.sin(angle) * t
  spin = rng.uniform(0.0, _MAX_SPIN) * rng.choice([-1.0, 1.0])
  heading = rng.uniform(0.0, 2 * np.pi) + spin * t
  # Growth is centred on the middle frame, so a reversed clip is as likely.
  growth = rng.uniform(-_MAX_GROWTH, _MAX_GROWTH)
  radius = rng.uniform(*_RADIUS_RANGE) * np.exp(growth * (t - (num_frames - 1) / 2.0))
  radius = np.clip(radius, *_RADIUS_LIMITS) * size

  # Minimum-image offsets from the object centre on the torus, per frame;
  # columns and rows are separable, so they broadcast to [T, S, S] late.
  pixels = np.arange(resolution, dtype=np.float32) + 0.5
  dx = (pixels[None] - x0[:, None] + size / 2) % size - size / 2
  dy = (pixels[None] - row0[:, None] + size / 2) % size - size / 2
  dx, dy = dx[:, None, :].astype(np.float32), dy[:, :, None].astype(np.float32)
  r = radius[:, None, None].astype(np.float32)
  cos_h = (np.cos(heading)[:, None, None] / r).astype(np.float32)
  sin_h = (np.sin(heading)[:, None, None] / r).astype(np.float32)
  u = cos_h * dx - sin_h * dy
  v = sin_h * dx + cos_h * dy
  coverage = np.clip(0.5 - _unit_sdf(shape, u, v) * r, 0.0, 1.0)[..., None]
  mix = _pattern(pattern, u, v, frequency)[..., None]
  colour = colour_a + mix * (colour_b - colour_a)
  objects[coverage[..., 0] >= 0.5] = OBJECT_CLASSES.index(shape)
  return frames + coverage * (colour - frames)


def render_clip(
  rng: np.random.Generator, angle: float, num_frames: int, resolution: int
) -> np.ndarray:
  """The frames, uint8 [num_frames, resolution, resolution, 3], of one clip.

  They are those of ``render_clip_with_objects`` (the arguments are the same),
  which draws the same clip from the same ``rng``.
  """
  return render_clip_with_objects(rng, angle, num_frames, resolution)[0]


def render_clip_with_objects(
  rng: np.random.Generator, angle: float, num_frames: int, resolution: int
) -> tuple[np.ndarray, np.ndarray]:
  """Renders one clip and its per-frame segmentation maps.

  Args:
    rng: the only source of randomness.
    angle: direction of travel in radians, counter-clockwise from rightwards.
    num_frames: frames in the clip.
    resolution: side of the square frames, in pixels.

  Returns:
    (frames uint8 [T, S, S, 3], objects uint8 [T, S, S]): ``objects`` holds
    the ``OBJECT_CLASSES`` index of the front-most object covering at least
    half of each pixel, 0 where none does.
  """
  background = _background(rng, resolution)
  frames = np.repeat(background[None].astype(np.float32), num_frames, axis=0)
  objects = np.zeros((num_frames, resolution, resolution), np.uint8)
  for _ in range(rng.integers(_NUM_OBJECTS[0], _NUM_OBJECTS[1] + 1)):
    frames = _draw_object(rng, frames, angle, background.mean(axis=(0, 1)), objects)
  return np.round(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8), objects


class SyntheticMotion(local_builder.LocalBuilder):
  """Clips whose class is the direction of motion (see the module docstring)."""

  VERSION = _VERSION
  RELEASE_NOTES = {
    "1.0.0": "First version.",
    "1.1.0": "Adds 'objects', the per-frame segmentation maps (same clips).",
  }
  # The default size, so that tfds.builder("synthetic_motion") works too.
  BUILDER_CONFIGS = [SyntheticMotionConfig()]

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    names = [
      f"{np.degrees(class_angle(k, config.num_classes)):g}deg" for k in range(config.num_classes)
    ]
    shape = (config.num_frames, config.resolution, config.resolution, 3)
    return self.dataset_info_from_configs(
      description=_description(config.num_classes),
      features=tfds.features.FeaturesDict(
        {
          "video": tfds.features.Video(shape=shape, encoding_format="png"),
          "label": tfds.features.ClassLabel(names=names),
          # One channel of OBJECT_CLASSES indices per frame.
          "objects": tfds.features.Video(shape=shape[:-1] + (1,), encoding_format="png"),
        }
      ),
      supervised_keys=("video", "label"),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Everything is generated locally.
    config = self.builder_config
    return {
      "train": self._generate_examples("train", config.train_per_class),
      "validation": self._generate_examples("validation", config.validation_per_class),
    }

  def _generate_examples(self, split: str, per_class: int):
    config = self.builder_config
    total = per_class * config.num_classes
    report = progress.Progress(total)
    for index in range(total):
      label = index % config.num_classes
      rng = example_rng(config.seed, split, index)
      frames, objects = render_clip_with_objects(
        rng, class_angle(label, config.num_classes), config.num_frames, config.resolution
      )
      yield index, {"video": frames, "label": label, "objects": objects[..., None]}
      report.step()
      report.print_every(f"synthetic_motion {split} clips")
