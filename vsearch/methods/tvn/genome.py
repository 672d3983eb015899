"""The Tiny Video Network genome (arXiv:1910.06961): blocks and validation.

A TVN is a clip size (resolution, frames, frame stride) and a list of blocks.
Each block is a spatial 2-D op, a temporal op over a (T, H·W) fold, a 1×1
expansion, optional squeeze-excitation / context gating / residual, repeated
``repeats`` times. ``tvn_model.py`` builds the Keras model and ``tvn.py`` holds
the search space, sampling and mutation; ``vsearch.methods.tvn`` re-exports
everything, so users import that one module.

Field names differ from the published ``found_tvns.py`` dicts, for reading:

==========================  =============================================
published                   here
==========================  =============================================
``image_size``              ``Genome.resolution``
``spatial_type`` std/depth  ``spatial_type`` 'conv'/'depthwise'
``temporal_type`` 1d        ``temporal_type`` 'conv'
``skip``, ``context_gate``  bools instead of 0/1
``inv-bottle``              ``inverted_bottleneck``
``spatial_act``             ``spatial_activation``  ('relu' / 'hswish')
``temporal_act``            ``temporal_activation``
``act``                     ``output_activation``
==========================  =============================================

The published bookkeeping fields (``num_blocks``, ``total_layers``,
``current_size``, ``input_size``, ``output_size``) are dropped, and so are
``non_local`` (never implemented, 0 in every found TVN) and the mobile
multi-stream fields (``input_streams``, ``inputs``: both TVN-Mobile models
have one stream and chain their blocks, which a plain genome expresses).

Rules a genome must follow, checked on construction:

* a kernel of 1 means no op: ``spatial_kernel`` 1 skips the spatial op,
  ``temporal_kernel`` 1 the temporal op. Such an op must have stride 1 (the
  public code silently ignored the stride, so a genome that looked like it
  downsampled did not).
* a strided spatial op needs an input at least as large as its stride:
  ``floor(H / s) >= 1``, or the map collapses. Sizes follow SAME padding,
  ``ceil(H / s)``.
* temporal ops are skipped where only one frame is left (not an error), and
  a temporal stride may exceed the frames left (TVN-3 strides 2 frames by 3).
"""

import dataclasses
import math
import numbers
from typing import Any

from vsearch.errors import InvalidGenomeError
from vsearch.methods import checks
from vsearch.nn import layers

SPATIAL_TYPES = ("conv", "depthwise", "maxpool", "avgpool")
TEMPORAL_TYPES = ("conv", "maxpool", "avgpool")
# How the head pools a clip: 'mean' over (T, H, W) as published,
# 'max_space', a max over (H, W) per frame then a mean over T, or
# 'soft_max_time', per-frame logits soft max-pooled over time (Charades).
HEAD_POOLS = ("mean", "max_space", "soft_max_time")
ACTIVATIONS = layers.ACTIVATIONS

_PUBLISHED_NAMES = {"std": "conv", "depth": "depthwise", "1d": "conv"}


def _check_int(obj, field: str, minimum: int = 1):
  object.__setattr__(obj, field, checks.check_int(getattr(obj, field), field, minimum))


def _check_bool(obj, field: str):
  value = getattr(obj, field)
  if not isinstance(value, bool):
    checks.fail(field, value, "true or false")


def _check_choice(obj, field: str, choices: tuple[str, ...]):
  value = getattr(obj, field)
  if not isinstance(value, str) or value not in choices:
    hint = ""
    if isinstance(value, str) and value in _PUBLISHED_NAMES:
      hint = f" (the published {value!r} is {_PUBLISHED_NAMES[value]!r})"
    checks.fail(field, value, "one of " + ", ".join(map(repr, choices)) + hint)


@dataclasses.dataclass(frozen=True)
class Block:
  """One TVN block, repeated ``repeats`` times.

  Repeat 0 applies the strides and the temporal op; later repeats have stride
  1 and switch the temporal op off, on, off, ... (repeat 1 off, 2 on).

  Attributes:
    spatial_type: 'conv' (1×1 conv then k×k conv), 'depthwise' (1×1 conv then
      k×k depthwise), 'maxpool' or 'avgpool' (k×k pool, channels unchanged).
    spatial_kernel: k; 1 means no spatial op.
    spatial_stride: stride of the spatial op; must be 1 if the kernel is 1.
    temporal_type: 'conv' (a (k, 1) conv over time), 'maxpool' or 'avgpool'.
    temporal_kernel: k; 1 means no temporal op.
    temporal_stride: stride over time; must be 1 if the kernel is 1.
    repeats: how many times the block is applied (>= 1).
    filters: width of the spatial and temporal convs; the block's output
      width when ``inverted_bottleneck`` is set.
    expand: the 1×1 expansion goes to ``filters * expand`` channels.
    skip: add a residual (always a 1×1 conv + BN shortcut) in repeats that do
      not stride over time.
    squeeze: squeeze-excitation bottleneck ratio in [0, 1]; 0 is off.
    context_gate: apply context gating.
    inverted_bottleneck: MobileNetV2 order: expand first, run the spatial
      and temporal ops at the expanded width, project back to ``filters``.
    spatial_activation: 'relu' or 'hswish' after the spatial convs.
    temporal_activation: 'relu' or 'hswish' after the temporal conv.
    output_activation: 'relu' or 'hswish' at the end of each repeat.
  """

  spatial_type: str
  spatial_kernel: int
  spatial_stride: int
  temporal_type: str
  temporal_kernel: int
  temporal_stride: int
  repeats: int
  filters: int
  expand: int
  skip: bool = False
  squeeze: float = 0.0
  context_gate: bool = False
  inverted_bottleneck: bool = False
  spatial_activation: str = layers.RELU
  temporal_activation: str = layers.RELU
  output_activation: str = layers.RELU

  def __post_init__(self):
    _check_choice(self, "spatial_type", SPATIAL_TYPES)
    _check_choice(self, "temporal_type", TEMPORAL_TYPES)
    for field in (
      "spatial_kernel",
      "spatial_stride",
      "temporal_kernel",
      "temporal_stride",
      "repeats",
      "filters",
      "expand",
    ):
      _check_int(self, field)
    for field in ("skip", "context_gate", "inverted_bottleneck"):
      _check_bool(self, field)
    for field in ("spatial_activation", "temporal_activation", "output_activation"):
      _check_choice(self, field, ACTIVATIONS)
    squeeze = self.squeeze
    if (
      isinstance(squeeze, bool)
      or not isinstance(squeeze, numbers.Real)
      or not 0.0 <= squeeze <= 1.0
    ):
      checks.fail("squeeze", squeeze, "a number in [0, 1] (0 = off)")
    object.__setattr__(self, "squeeze", float(squeeze))
    for op in ("spatial", "temporal"):
      if getattr(self, f"{op}_kernel") == 1 and getattr(self, f"{op}_stride") != 1:
        checks.fail(
          f"{op}_stride",
          getattr(self, f"{op}_stride"),
          f"1 when {op}_kernel is 1 (a kernel of 1 means no {op} op, so nothing would stride)",
        )

  @property
  def expanded_width(self) -> int:
    """Channels after the 1×1 expansion: ``filters * expand``."""
    return self.filters * self.expand

  @property
  def output_width(self) -> int:
    """Channels the block outputs."""
    return self.filters if self.inverted_bottleneck else self.expanded_width

  def describe(self) -> str:
    """A one-line summary, e.g. 'conv 3x3/2, temporal maxpool 2/2, ...'."""
    parts = []
    if self.spatial_kernel > 1:
      k = self.spatial_kernel
      parts.append(f"{self.spatial_type} {k}x{k}/{self.spatial_stride}")
    if self.temporal_kernel > 1:
      parts.append(f"temporal {self.temporal_type} {self.temporal_kernel}/{self.temporal_stride}")
    parts.append(f"{self.repeats}x {self.filters} filters x{self.expand}")
    if self.inverted_bottleneck:
      parts.append("inverted")
    if self.squeeze:
      parts.append(f"SE {self.squeeze:.3g}")
    if self.context_gate:
      parts.append("CG")
    if self.skip:
      parts.append("skip")
    return ", ".join(parts)


_BLOCK_FIELDS = tuple(f.name for f in dataclasses.fields(Block))


@dataclasses.dataclass(frozen=True)
class Genome:
  """A whole TVN: the clips it reads and its blocks.

  Attributes:
    resolution: side of the square input frames, in pixels.
    num_frames: frames per clip.
    frame_stride: distance between sampled frames in the source video (the
      model does not see it; the clip pipeline does).
    blocks: the blocks, in order (a tuple; a list is converted).
    head_pool: how the head pools the last block's output before the
      classifier: 'mean' over (T, H, W), as every published TVN does, or
      'max_space', a max over (H, W) per frame, then a mean over T, which
      keeps the sparse responses of moving edges (on synthetic_motion it
      learns in 300 steps what the mean head needs 500+ for), or
      'soft_max_time': the release's Charades head, a classifier on each
      frame's (H, W) mean and the softmax-over-time weighted sum of those
      logits (``layers.SoftMaxOverTime``, temperature √T). Written to a
      genome's dict only when it is not 'mean'.
  """

  resolution: int
  num_frames: int
  frame_stride: int
  blocks: tuple[Block, ...]
  head_pool: str = "mean"

  def __post_init__(self):
    for field in ("resolution", "num_frames", "frame_stride"):
      _check_int(self, field)
    if not isinstance(self.head_pool, str) or self.head_pool not in HEAD_POOLS:
      checks.fail("head_pool", self.head_pool, " or ".join(map(repr, HEAD_POOLS)))
    if not isinstance(self.blocks, (list, tuple)) or not self.blocks:
      checks.fail("blocks", self.blocks, "a non-empty list of blocks")
    for i, block in enumerate(self.blocks):
      if not isinstance(block, Block):
        checks.fail(f"blocks[{i}]", block, "a tvn.Block")
    object.__setattr__(self, "blocks", tuple(self.blocks))
    self.block_shapes()  # Raises on a collapsing spatial stride.

  def block_shapes(self) -> list[tuple[int, int]]:
    """(frames, spatial size) after each block, as the builder produces them.

    Raises:
      InvalidGenomeError: a spatial stride is larger than its input.
    """
    frames, size = self.num_frames, self.resolution
    shapes = []
    for i, block in enumerate(self.blocks):
      stride = block.spatial_stride
      if block.spatial_kernel > 1 and stride > 1:
        if size < stride:
          sizes = " -> ".join(map(str, [self.resolution] + [s for _, s in shapes]))
          checks.fail(
            f"blocks[{i}].spatial_stride",
            stride,
            f"at most {size}, the input size of this block (sizes so "
            f"far: {sizes}); a larger stride collapses the map",
          )
        size = math.ceil(size / stride)
      if frames > 1 and block.temporal_kernel > 1:
        frames = layers.temporal_frames(frames, block.temporal_stride)
      shapes.append((frames, size))
    return shapes

  def to_dict(self) -> dict[str, Any]:
    """A JSON-compatible dict that ``Genome.from_dict`` reads back."""
    data = {
      "resolution": self.resolution,
      "num_frames": self.num_frames,
      "frame_stride": self.frame_stride,
      "blocks": [dataclasses.asdict(b) for b in self.blocks],
    }
    if self.head_pool != "mean":  # Genomes of the published head read as before.
      data["head_pool"] = self.head_pool
    return data

  @classmethod
  def from_dict(cls, data: Any) -> "Genome":
    """Reads a dict written by ``to_dict``.

    Raises:
      InvalidGenomeError: keys are unknown or missing, or a value is of the
        wrong type or out of range; the message names the field.
    """
    checks.check_keys(
      data,
      ("resolution", "num_frames", "frame_stride", "blocks", "head_pool"),
      "genome",
      required=("resolution", "num_frames", "frame_stride", "blocks"),
    )
    if not isinstance(data["blocks"], list):
      checks.fail("blocks", data["blocks"], "a list of block objects")
    blocks = []
    for i, block in enumerate(data["blocks"]):
      checks.check_keys(block, _BLOCK_FIELDS, f"blocks[{i}]")
      try:
        blocks.append(Block(**block))
      except InvalidGenomeError as e:
        raise InvalidGenomeError(f"blocks[{i}].{e}") from None
    return cls(
      resolution=data["resolution"],
      num_frames=data["num_frames"],
      frame_stride=data["frame_stride"],
      blocks=tuple(blocks),
      head_pool=data.get("head_pool", "mean"),
    )
