"""The graphs an AssembleNet search draws from: ``AssembleNetSearchSpace``."""

import dataclasses
from collections.abc import Sequence

import gin

from vsearch.errors import InvalidGenomeError, UserError
from vsearch.methods.assemblenet.genome import (
  DILATIONS,
  NUM_LEVELS,
  PUBLISHED_LEVEL_WIDTHS,
  Block,
  Genome,
  Stem,
)


@gin.configurable
@dataclasses.dataclass(frozen=True)
class AssembleNetSearchSpace:
  """The graphs an AssembleNet search draws.

  Defaults follow the published AssembleNet-50 (reference §2.4): two RGB and
  two flow stems sharing 128 channels, 2-4 / 2-4 / 1-2 / 1 nodes at levels
  0-3, filters 32 / 64 / 128-256 / 512, dilations 1-8, stride 1 at level 0
  and 2 above, 32 frames of 224 px, 50-layer units.

  Attributes:
    resolutions, frame_counts, frame_strides: clip choices.
    stems: the stems every genome has, by kind (their dilations are drawn).
    nodes_per_level: (min, max) block nodes at each level.
    filters: per level, the filter choices.
    dilations: temporal dilations of stems and blocks.
    level_strides: the stride of every node of each level.
    connection_prob: chance that a sampled node reads each lower node (at
      least one is always read); high values give the over-connected graphs
      the paper starts from.
    depth, level_widths, stem_width, combine, attention: copied into every
      genome (see ``Genome``).

  Raises:
    UserError: a setting is out of range.
  """

  resolutions: Sequence[int] = (224,)
  frame_counts: Sequence[int] = (32,)
  frame_strides: Sequence[int] = (1, 2, 4)
  stems: Sequence[str] = ("rgb", "rgb", "flow", "flow")
  nodes_per_level: Sequence[Sequence[int]] = ((2, 4), (2, 4), (1, 2), (1, 1))
  filters: Sequence[Sequence[int]] = ((32,), (64,), (128, 256), (512,))
  dilations: Sequence[int] = DILATIONS
  level_strides: Sequence[int] = (1, 2, 2, 2)
  connection_prob: float = 0.5
  depth: int = 50
  level_widths: Sequence[int] = PUBLISHED_LEVEL_WIDTHS
  stem_width: int = 128
  combine: str = "sigmoid"
  attention: str = "none"

  def __post_init__(self):
    for name in ("resolutions", "frame_counts", "frame_strides", "stems", "dilations"):
      value = getattr(self, name)
      if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise UserError(
          f"AssembleNetSearchSpace.{name} must be a non-empty list of choices, got {value!r}"
        )
      object.__setattr__(self, name, tuple(value))
    for name in ("nodes_per_level", "filters", "level_strides"):
      value = getattr(self, name)
      if not isinstance(value, Sequence) or len(value) != NUM_LEVELS:
        raise UserError(
          f"AssembleNetSearchSpace.{name} needs one entry per level ({NUM_LEVELS}), got {value!r}"
        )
    object.__setattr__(self, "nodes_per_level", tuple(tuple(n) for n in self.nodes_per_level))
    object.__setattr__(self, "filters", tuple(tuple(f) for f in self.filters))
    for level, (low, high) in enumerate(self.nodes_per_level):
      if not 1 <= low <= high:
        raise UserError(
          "AssembleNetSearchSpace.nodes_per_level needs 1 <= "
          f"min <= max at level {level}, got ({low}, {high})"
        )
    if not 0.0 <= self.connection_prob <= 1.0:
      raise UserError(
        f"AssembleNetSearchSpace.connection_prob must be in [0, 1], got {self.connection_prob}"
      )
    # Every choice must make a valid genome: check them on a probe.
    try:
      probe_genome(self)
      for dilation in self.dilations:
        Stem("rgb", dilation)
      for level, choices in enumerate(self.filters):
        for f in choices:
          Block(level, (0,), f, 1, self.level_strides[level])
    except InvalidGenomeError as e:
      raise UserError(f"AssembleNetSearchSpace holds an invalid choice: {e}") from None


def probe_genome(space: AssembleNetSearchSpace) -> Genome:
  """A one-node-per-level genome built from the space's first choices."""
  nodes = [Stem(kind, space.dilations[0]) for kind in space.stems]
  for level in range(NUM_LEVELS):
    nodes.append(
      Block(
        level,
        (len(nodes) - 1,),
        space.filters[level][0],
        space.dilations[0],
        space.level_strides[level],
      )
    )
  return genome_in_space(
    space, nodes, space.resolutions[0], space.frame_counts[0], space.frame_strides[0]
  )


def genome_in_space(
  space: AssembleNetSearchSpace, nodes, resolution: int, num_frames: int, frame_stride: int
) -> Genome:
  return Genome(
    nodes=tuple(nodes),
    num_frames=num_frames,
    resolution=resolution,
    frame_stride=frame_stride,
    depth=space.depth,
    level_widths=tuple(space.level_widths),
    stem_width=space.stem_width,
    combine=space.combine,
    attention=space.attention,
  )
