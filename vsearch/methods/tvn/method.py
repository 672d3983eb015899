"""Tiny Video Networks (arXiv:1910.06961) as a search method.

The TVN search evolves whole compact video networks: the clip (resolution,
frames, frame stride) and per block the spatial and temporal ops, kernels,
strides, width, repeats, squeeze-excitation, context gating and skip. This
module holds the search space and ``TvnMethod`` (sampling and mutation); the
genome is in ``genome``, the builder in ``model``.
"""

import dataclasses
from collections.abc import Sequence
from typing import Any, Optional

import gin
import numpy as np

from vsearch.data.clips import ClipSpec
from vsearch.errors import InvalidGenomeError, UserError
from vsearch.methods import base
from vsearch.methods.tvn.genome import SPATIAL_TYPES, TEMPORAL_TYPES, Block, Genome
from vsearch.methods.tvn.model import build_model
from vsearch.nn import layers

# Block field -> the search-space attribute holding its choices.
_BLOCK_CHOICES = {
  "spatial_type": "spatial_types",
  "spatial_kernel": "spatial_kernels",
  "spatial_stride": "spatial_strides",
  "temporal_type": "temporal_types",
  "temporal_kernel": "temporal_kernels",
  "temporal_stride": "temporal_strides",
  "repeats": "repeats",
  "filters": "filters",
  "expand": "expands",
  "skip": "skips",
  "squeeze": "squeeze_ratios",
  "context_gate": "context_gates",
  "inverted_bottleneck": "inverted_bottlenecks",
  "spatial_activation": "activations",
  "temporal_activation": "activations",
  "output_activation": "activations",
}
_GLOBAL_CHOICES = {
  "resolution": "resolutions",
  "num_frames": "frame_counts",
  "frame_stride": "frame_strides",
  "head_pool": "head_pools",
}

# How often each kind of mutation is drawn (among those possible).
_MUTATION_WEIGHTS = {"block": 0.6, "global": 0.2, "add": 0.1, "remove": 0.1}


@gin.configurable
@dataclasses.dataclass(frozen=True)
class TvnSearchSpace:
  """The values a TVN search draws from, one tuple of choices per field.

  The published ranges are not known (reference §5), so the defaults span
  the values the found TVNs use, a little wider: resolutions 128-256
  (published 128, 160, 224, 256), 2-8 frames, frame strides 1-8 (1, 2, 4,
  7), 2-8 blocks (2-7), kernels 1-5, spatial strides 1-4, temporal strides
  1-3, 1-6 repeats, 32-1024 filters, expansion 1-8, SE ratios 0-1 on a grid
  (the published ones are arbitrary reals). The mobile extras are off; bind
  ``inverted_bottlenecks = (False, True)`` and ``activations = ('relu',
  'hswish')`` for a TVN-Mobile-like search. A kernel-1 op always has stride
  1, whatever the stride choices. ``head_pools`` is the published mean head
  alone; ``('max_space',)`` gives every genome the max-over-space head,
  ``('soft_max_time',)`` the soft max-pool over time of per-frame logits for
  long clips (see ``Genome.head_pool``), and several let the search choose.
  ``min_output_size`` keeps genomes whose last maps are narrower out of the
  space (on small frames a third stride-2 op leaves 2x2 maps, and such
  genomes mostly failed to learn motion in short budgets); 1 allows all.

  Raises:
    UserError: a choice list is empty or holds a value no genome allows.
  """

  resolutions: Sequence[int] = (128, 160, 192, 224, 256)
  frame_counts: Sequence[int] = (2, 4, 6, 8)
  frame_strides: Sequence[int] = (1, 2, 3, 4, 5, 6, 7, 8)
  min_blocks: int = 2
  max_blocks: int = 8
  spatial_types: Sequence[str] = SPATIAL_TYPES
  spatial_kernels: Sequence[int] = (1, 2, 3, 4, 5)
  spatial_strides: Sequence[int] = (1, 2, 3, 4)
  temporal_types: Sequence[str] = TEMPORAL_TYPES
  temporal_kernels: Sequence[int] = (1, 2, 3, 4, 5)
  temporal_strides: Sequence[int] = (1, 2, 3)
  repeats: Sequence[int] = (1, 2, 3, 4, 5, 6)
  filters: Sequence[int] = (32, 64, 128, 256, 512, 1024)
  expands: Sequence[int] = (1, 2, 3, 4, 5, 6, 7, 8)
  squeeze_ratios: Sequence[float] = (0.0, 0.0625, 0.125, 0.25, 0.5, 0.75, 1.0)
  context_gates: Sequence[bool] = (False, True)
  skips: Sequence[bool] = (False, True)
  inverted_bottlenecks: Sequence[bool] = (False,)
  activations: Sequence[str] = (layers.RELU,)
  head_pools: Sequence[str] = ("mean",)
  min_output_size: int = 1

  def __post_init__(self):
    for f in dataclasses.fields(self):
      value = getattr(self, f.name)
      if f.name in ("min_blocks", "max_blocks", "min_output_size"):
        continue
      if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise UserError(
          f"TvnSearchSpace.{f.name} must be a non-empty list of choices, got {value!r}"
        )
      object.__setattr__(self, f.name, tuple(value))
    if (
      isinstance(self.min_output_size, bool)
      or not isinstance(self.min_output_size, int)
      or self.min_output_size < 1
    ):
      raise UserError(
        f"TvnSearchSpace.min_output_size must be an int >= 1, got {self.min_output_size!r}"
      )
    counts = (self.min_blocks, self.max_blocks)
    if (
      not all(isinstance(n, int) and not isinstance(n, bool) for n in counts)
      or not 1 <= self.min_blocks <= self.max_blocks
    ):
      raise UserError(
        "TvnSearchSpace needs 1 <= min_blocks <= max_blocks, got "
        f"{self.min_blocks} and {self.max_blocks}"
      )
    # Every choice must be a valid field value: check it on a real genome.
    for field, attr in {**_BLOCK_CHOICES, **_GLOBAL_CHOICES}.items():
      for value in getattr(self, attr):
        try:
          if field in _GLOBAL_CHOICES:
            dataclasses.replace(_PROBE, **{field: value})
          else:
            dataclasses.replace(_PROBE.blocks[0], **{field: value})
        except InvalidGenomeError as e:
          raise UserError(f"TvnSearchSpace.{attr} holds an invalid choice: {e}") from None


# A minimal valid genome whose fields the space's choices are tried on.
_PROBE = Genome(
  resolution=1024,
  num_frames=2,
  frame_stride=1,
  blocks=(
    Block(
      spatial_type="conv",
      spatial_kernel=2,
      spatial_stride=1,
      temporal_type="conv",
      temporal_kernel=2,
      temporal_stride=1,
      repeats=1,
      filters=8,
      expand=1,
    ),
  ),
)


@gin.configurable
class TvnMethod:
  """Tiny Video Networks: sampling, mutation and building of TVN genomes.

  Args:
    space: the choices genomes are drawn from; ``TvnSearchSpace()`` if None.
    dropout_rate: dropout before the classifier of every built model.
    max_attempts: draws before ``sample`` or ``mutate`` give up on finding a
      valid genome (the spatial-collapse check rejects some draws).
  """

  name = "tvn"

  def __init__(
    self,
    space: Optional[TvnSearchSpace] = None,
    dropout_rate: float = 0.5,
    max_attempts: int = 1000,
  ):
    self.space = space if space is not None else TvnSearchSpace()
    self.dropout_rate = dropout_rate
    self.max_attempts = max_attempts

  def sample_block(self, rng: np.random.Generator) -> Block:
    """A random block; a kernel-1 op gets stride 1."""
    values = {f: base.choice(rng, getattr(self.space, attr)) for f, attr in _BLOCK_CHOICES.items()}
    for op in ("spatial", "temporal"):
      if values[f"{op}_kernel"] == 1:
        values[f"{op}_stride"] = 1
    return Block(**values)

  def sample(self, rng: np.random.Generator) -> Genome:
    """A random valid genome from the space.

    Raises:
      UserError: no valid genome turned up in ``max_attempts`` draws.
    """
    space = self.space
    for _ in range(self.max_attempts):
      num_blocks = int(rng.integers(space.min_blocks, space.max_blocks + 1))
      try:
        genome = Genome(
          resolution=base.choice(rng, space.resolutions),
          num_frames=base.choice(rng, space.frame_counts),
          frame_stride=base.choice(rng, space.frame_strides),
          blocks=tuple(self.sample_block(rng) for _ in range(num_blocks)),
          # One choice draws nothing: a seed samples the genomes it always did.
          head_pool=(
            space.head_pools[0]
            if len(space.head_pools) == 1
            else base.choice(rng, space.head_pools)
          ),
        )
      except InvalidGenomeError:
        continue  # The strides collapsed the resolution; draw again.
      if self._big_enough(genome):
        return genome
    raise UserError(
      f"No valid TVN genome in {self.max_attempts} draws from "
      "TvnSearchSpace: its spatial strides shrink the frames "
      f"below {max(space.min_output_size, 1)} pixel(s); allow stride 1, fewer blocks, larger "
      "resolutions or a smaller min_output_size."
    )

  def mutate(
    self, genome: Genome, rng: np.random.Generator, progress: float = 0.0
  ) -> tuple[Genome, str]:
    """A valid child that differs from ``genome`` in one change.

    The change is one of: a field of one block, a global field (resolution,
    frames, frame stride), a new block, or a block removed (within the
    space's block counts). New values come from the space; the parent need
    not be in it (a zoo genome mutates too). Block fields that cannot change
    the model (the temporal op of a block that sees one frame, the stride of
    a kernel-1 op ...) are left alone while other fields can change. TVN
    mutates at the same rate throughout, so ``progress`` is unused; the
    other arguments are as ``Method.mutate`` says.

    Returns:
      The child and what changed, e.g. "blocks[1].temporal_kernel 3 -> 5".

    Raises:
      UserError: the space offers no change that gives a valid child.
    """
    del progress
    base.expect_genome(genome, Genome, "TvnMethod")
    kinds = {"block": self._mutate_block, "global": self._mutate_global}
    if len(genome.blocks) < self.space.max_blocks:
      kinds["add"] = self._add_block
    if len(genome.blocks) > max(self.space.min_blocks, 1):
      kinds["remove"] = self._remove_block
    names = list(kinds)
    weights = np.array([_MUTATION_WEIGHTS[k] for k in names])
    for _ in range(self.max_attempts):
      kind = names[int(rng.choice(len(names), p=weights / weights.sum()))]
      proposal = kinds[kind](genome, rng)
      if proposal is None:
        continue
      change, description = proposal
      try:
        child = change()
      except InvalidGenomeError:
        continue
      # A parent already below min_output_size (a zoo genome) may have
      # children below it too; otherwise children stay in the space.
      if child != genome and (self._big_enough(child) or not self._big_enough(genome)):
        return child, description
    raise UserError(f"TvnSearchSpace offers no valid mutation of {genome}.")

  def _big_enough(self, genome: Genome) -> bool:
    """Whether the last block's maps are at least ``min_output_size`` wide."""
    return genome.block_shapes()[-1][1] >= self.space.min_output_size

  def _mutate_block(self, genome: Genome, rng: np.random.Generator):
    i = int(rng.integers(len(genome.blocks)))
    block = genome.blocks[i]
    frames_in = genome.block_shapes()[i - 1][0] if i else genome.num_frames
    options = {
      f: [v for v in getattr(self.space, attr) if v != getattr(block, f)]
      for f, attr in _BLOCK_CHOICES.items()
    }
    fields = [f for f in _live_fields(block, frames_in) if options[f]]
    fields = fields or [f for f in _BLOCK_CHOICES if options[f]]
    if not fields:
      return None
    field = base.choice(rng, fields)
    value = base.choice(rng, options[field])
    changes = {field: value}
    description = f"blocks[{i}].{field} {getattr(block, field)!r} -> {value!r}"
    stride = field.replace("_kernel", "_stride")
    if field.endswith("_kernel") and value == 1 and getattr(block, stride) != 1:
      changes[stride] = 1  # A kernel-1 op has no stride.
      description += f" ({stride} {getattr(block, stride)} -> 1)"

    def change():
      blocks = list(genome.blocks)
      blocks[i] = dataclasses.replace(block, **changes)
      return dataclasses.replace(genome, blocks=tuple(blocks))

    return change, description

  def _mutate_global(self, genome: Genome, rng: np.random.Generator):
    options = {
      f: [v for v in getattr(self.space, attr) if v != getattr(genome, f)]
      for f, attr in _GLOBAL_CHOICES.items()
    }
    fields = [f for f in _GLOBAL_CHOICES if options[f]]
    if not fields:
      return None
    field = base.choice(rng, fields)
    value = base.choice(rng, options[field])
    return (
      lambda: dataclasses.replace(genome, **{field: value}),
      f"{field} {getattr(genome, field)!r} -> {value!r}",
    )

  def _add_block(self, genome: Genome, rng: np.random.Generator):
    at = int(rng.integers(len(genome.blocks) + 1))
    block = self.sample_block(rng)
    blocks = genome.blocks[:at] + (block,) + genome.blocks[at:]
    return (
      lambda: dataclasses.replace(genome, blocks=blocks),
      f"add block at {at}: {block.describe()}",
    )

  def _remove_block(self, genome: Genome, rng: np.random.Generator):
    at = int(rng.integers(len(genome.blocks)))
    blocks = genome.blocks[:at] + genome.blocks[at + 1 :]
    return (
      lambda: dataclasses.replace(genome, blocks=blocks),
      f"remove block at {at}: {genome.blocks[at].describe()}",
    )

  def genome_from_dict(self, data: dict[str, Any]) -> Genome:
    """Reads a ``Genome.to_dict`` dict; raises InvalidGenomeError."""
    return Genome.from_dict(data)

  def clip_spec(self, genome: Genome) -> ClipSpec:
    """The clips ``genome``'s model reads."""
    return ClipSpec(
      num_frames=genome.num_frames, frame_stride=genome.frame_stride, resolution=genome.resolution
    )

  def build(self, genome: Genome, num_classes: int):
    """The Keras model: clips (B, T, H, W, 3) float32 -> logits (B, classes)."""
    return build_model(genome, num_classes, dropout_rate=self.dropout_rate)


def _live_fields(block: Block, frames_in: int) -> list[str]:
  """Fields of ``block`` whose change changes the model."""
  spatial = block.spatial_kernel > 1
  temporal = frames_in > 1 and block.temporal_kernel > 1
  live = {
    "spatial_type": spatial,
    "spatial_stride": spatial,
    "spatial_activation": spatial and block.spatial_type in ("conv", "depthwise"),
    "temporal_kernel": frames_in > 1,
    "temporal_type": temporal,
    "temporal_stride": temporal,
    "temporal_activation": temporal and block.temporal_type == "conv",
  }
  return [f for f in _BLOCK_CHOICES if live.get(f, True)]
