"""The AssembleNet genome (arXiv:1905.13209, 2008.08072): a multi-stream graph.

A network is a list of nodes in topological order, as the public release
writes it (reference/methods.md §2.2): first the stems, which read the input
(RGB frames, optical flow computed from them, or per-frame object
segmentation maps), then block nodes. A block node is a group of (2+1)-D
bottleneck residual units at one of four levels (ResNet stages conv2..conv5)
that fuses the outputs of earlier, lower-level nodes. The classifier reads
every level-3 node. ``model.py`` builds the Keras model and ``method.py``
holds sampling and mutation.

AssembleNet++lite (``unit='inverted_bottleneck'``, §2.6) builds its blocks
from 3-D inverted bottleneck units instead; each of its blocks gives its
widths as a triple ``(expand, middle, out)``, as the release writes them
(``[27, 27, 12]``), where the other genomes give one int.

Differences from the published list encoding, for reading:

==============================  ===========================================
published                       here
==============================  ===========================================
``[-1, d]`` / ``[-2, d]`` /     ``Stem('rgb', d)`` / ``Stem('flow', d)`` /
``[-3, d]``                     ``Stem('object', d)``
``[level, inputs, filters,      ``Block(level, inputs, filters, dilation,
dilation, stride, 0]``          stride, weights)``
separate per-node weight lists  ``Block.weights`` (after sigmoid), ``None``
(``[]`` = learned)              = learned from N(0, 0.01) logits
``model_id`` 50 / 101           ``Genome.depth``
lite's ``[e, m, o]`` filters    ``Block.filters = (e, m, o)`` and
                                ``Genome.unit = 'inverted_bottleneck'``
==============================  ===========================================

Rules a genome must follow, checked on construction (the message names the
node, e.g. ``nodes[7].inputs``):

* stems come before blocks, and there is at least one RGB or flow stem;
* every block's filters are one int, or with ``unit`` 'inverted_bottleneck'
  a triple; such a genome has no object stem (the release's lite builder
  does not wire one);
* a block's inputs are earlier nodes (so the graph has no cycle), each of a
  lower level (stems are level -1), none repeated;
* given weights match the inputs one to one and lie in (0, 1);
* there is at least one level-3 node, and all level-3 nodes have the same
  width (the head averages them);
* every input of a block max-pools exactly to the smallest input's size
  (sizes halve with ceil rounding at each stride, so this holds for every
  resolution; the check guards the builder's pooling rule).
"""

import dataclasses
import math
import numbers
from typing import Any, Optional, Union

from vsearch.errors import InvalidGenomeError
from vsearch.methods import checks

STEM_KINDS = ("rgb", "flow", "object")
DILATIONS = (1, 2, 4, 8)
STRIDES = (1, 2)
NUM_LEVELS = 4
# Bottleneck units per block group by level, for each published depth.
DEPTHS = {
  26: (2, 2, 2, 2),
  38: (2, 4, 4, 2),
  50: (3, 4, 6, 3),
  68: (3, 4, 12, 3),
  77: (3, 4, 15, 3),
  101: (3, 4, 23, 3),
  # AssembleNet++lite's units (run_asn.py): not a published depth, named as
  # the others are, 3 convs a unit + 2 (3 * 26 + 2).
  80: (3, 5, 11, 7),
}
# Width of the 3x3 conv of every unit, per level, as published.
PUBLISHED_LEVEL_WIDTHS = (64, 128, 256, 512)
COMBINES = ("sigmoid", "concat")
# The residual unit of every block: AssembleNet's (2+1)-D bottleneck, or
# AssembleNet++lite's 3-D inverted bottleneck (widths per node, as a triple).
UNITS = ("bottleneck", "inverted_bottleneck")
ATTENTIONS = ("none", "peer", "self")
# A block's output has EXPANSION x filters channels (bottleneck units).
EXPANSION = 4
# Object maps shrink by this factor in their stem (a 4x4 max-pool, stride 4).
_STEM_REDUCTION = 4


def _check_choice(value: Any, field: str, choices: tuple) -> Any:
  if isinstance(value, bool) or value not in choices:
    checks.fail(field, value, "one of " + ", ".join(map(repr, choices)))
  return value


@dataclasses.dataclass(frozen=True)
class Stem:
  """A stem: reads one modality of the clip.

  Attributes:
    kind: 'rgb' (7x7 conv /2, temporal conv k=5 at ``dilation``, 3x3 max-pool
      /2), 'flow' (optical flow computed from the RGB frames, 7x7 conv /2,
      2x2 max-pool /2; the dilation is kept but unused, as published) or
      'object' (per-frame segmentation maps, 4x4 max-pool /4). In an
      inverted-bottleneck genome (lite) RGB and flow stems are both a 3x3
      conv /2 and a temporal conv k=3 at ``dilation``.
    dilation: temporal dilation, one of 1, 2, 4, 8.
  """

  kind: str
  dilation: int = 1

  level = -1  # Below every block level: any block may read a stem.

  def __post_init__(self):
    _check_choice(self.kind, "kind", STEM_KINDS)
    _check_choice(self.dilation, "dilation", DILATIONS)

  def describe(self) -> str:
    return f"{self.kind} stem d{self.dilation}"

  def to_dict(self) -> dict[str, Any]:
    return {"stem": self.kind, "dilation": self.dilation}


@dataclasses.dataclass(frozen=True)
class Block:
  """A block node: fuses its inputs, then runs a group of bottleneck units.

  Attributes:
    level: 0-3 (ResNet stages conv2..conv5); sets the units and 3x3 width.
    inputs: indices of earlier nodes of lower levels (a tuple; a list is
      converted).
    filters: entry width of each bottleneck unit; the node outputs
      ``4 * filters`` channels. Or (inverted bottleneck units) the triple
      (expand, middle, out): the widths of the unit's entry 1x1x1 conv, its
      middle conv and its exit 1x1x1 conv; the node outputs ``out``.
    dilation: temporal dilation of the unit's temporal convs (1, 2, 4, 8).
    stride: spatial stride of the group's first unit (1 or 2).
    weights: the connection weight of each input after the sigmoid, in
      (0, 1), fixed in the model; None: learned, from N(0, 0.01) logits.
  """

  level: int
  inputs: tuple[int, ...]
  filters: Union[int, tuple[int, int, int]]
  dilation: int = 1
  stride: int = 2
  weights: Optional[tuple[float, ...]] = None

  def __post_init__(self):
    _check_choice(self.level, "level", tuple(range(NUM_LEVELS)))
    if not isinstance(self.inputs, (list, tuple)) or not self.inputs:
      checks.fail("inputs", self.inputs, "a non-empty list of node indices")
    inputs = tuple(checks.check_int(i, "inputs", 0) for i in self.inputs)
    if len(set(inputs)) != len(inputs):
      checks.fail("inputs", list(inputs), "each node at most once")
    object.__setattr__(self, "inputs", inputs)
    if isinstance(self.filters, (list, tuple)):
      if len(self.filters) != 3:
        checks.fail(
          "filters", list(self.filters), "an int >= 1, or [expand, middle, out] ints >= 1"
        )
      filters = tuple(checks.check_int(f, "filters") for f in self.filters)
    else:
      filters = checks.check_int(self.filters, "filters")
    object.__setattr__(self, "filters", filters)
    _check_choice(self.dilation, "dilation", DILATIONS)
    _check_choice(self.stride, "stride", STRIDES)
    if self.weights is not None:
      if not isinstance(self.weights, (list, tuple)):
        checks.fail("weights", self.weights, "null (learned) or a list of numbers")
      if len(self.weights) != len(inputs):
        checks.fail(
          "weights",
          list(self.weights),
          f"one weight per input: {len(inputs)} for inputs {list(inputs)}, or null to learn them",
        )
      for w in self.weights:
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not 0.0 < w < 1.0:
          checks.fail(
            "weights", list(self.weights), "numbers in (0, 1) (weights after the sigmoid)"
          )
      object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))

  @property
  def inverted(self) -> bool:
    """Whether the filters are an inverted bottleneck's (expand, middle, out)."""
    return isinstance(self.filters, tuple)

  @property
  def channels(self) -> int:
    """Channels the node outputs."""
    return self.filters[-1] if self.inverted else EXPANSION * self.filters

  def divided(self, divisor: int) -> "Block":
    """This block with every width divided by ``divisor`` (at least 1)."""
    shrink = lambda f: max(f // divisor, 1)
    filters = tuple(map(shrink, self.filters)) if self.inverted else shrink(self.filters)
    return dataclasses.replace(self, filters=filters)

  def describe(self) -> str:
    filters = list(self.filters) if self.inverted else self.filters
    text = (
      f"L{self.level} <- {list(self.inputs)}, {filters} filters, d{self.dilation}, /{self.stride}"
    )
    if self.weights is not None:
      text += " w=" + ",".join(f"{w:.2f}" for w in self.weights)
    return text

  def to_dict(self) -> dict[str, Any]:
    return {
      "level": self.level,
      "inputs": list(self.inputs),
      "filters": list(self.filters) if self.inverted else self.filters,
      "dilation": self.dilation,
      "stride": self.stride,
      "weights": None if self.weights is None else list(self.weights),
    }


Node = Union[Stem, Block]
_STEM_KEYS = ("stem", "dilation")
_BLOCK_KEYS = ("level", "inputs", "filters", "dilation", "stride", "weights")
_GENOME_KEYS = (
  "nodes",
  "num_frames",
  "resolution",
  "frame_stride",
  "depth",
  "level_widths",
  "stem_width",
  "combine",
  "attention",
  "unit",
)
_REQUIRED_KEYS = tuple(k for k in _GENOME_KEYS if k != "unit")  # Older genomes have no unit.


@dataclasses.dataclass(frozen=True)
class Genome:
  """A whole AssembleNet: its clip, its graph and its global settings.

  Attributes:
    nodes: stems, then blocks, in topological order.
    num_frames: frames per clip; every node sees all of them (AssembleNet
      never strides over time; dilation emulates the frame rate).
    resolution: side of the square frames.
    frame_stride: distance between sampled frames in the source video.
    depth: 26, 38, 50, 68, 77, 80 (lite) or 101: units per level (``DEPTHS``).
    level_widths: width of the 3x3 conv per level; published (64, 128, 256,
      512); small searches shrink it. Unused by inverted bottleneck units
      (their blocks give their own middle width).
    stem_width: channels shared by the RGB and flow stems (each gets
      ``stem_width // count``); published 128 (lite: 24 a stem).
    combine: 'sigmoid' (weighted sum) or 'concat' fusion of a node's inputs.
    attention: 'none', 'peer' (AssembleNet++ peer-attention) or 'self'.
    unit: 'bottleneck' ((2+1)-D, AssembleNet and ++) or
      'inverted_bottleneck' (3-D, AssembleNet++lite: blocks give (expand,
      middle, out) widths, lite stems and head). ``to_dict`` writes it only
      when it is not 'bottleneck', so older genomes read and write as before.
  """

  nodes: tuple[Node, ...]
  num_frames: int
  resolution: int
  frame_stride: int = 1
  depth: int = 50
  level_widths: tuple[int, ...] = PUBLISHED_LEVEL_WIDTHS
  stem_width: int = 128
  combine: str = "sigmoid"
  attention: str = "none"
  unit: str = "bottleneck"

  def __post_init__(self):
    for field in ("num_frames", "resolution", "frame_stride", "stem_width"):
      object.__setattr__(self, field, checks.check_int(getattr(self, field), field))
    _check_choice(self.depth, "depth", tuple(DEPTHS))
    _check_choice(self.combine, "combine", COMBINES)
    _check_choice(self.attention, "attention", ATTENTIONS)
    _check_choice(self.unit, "unit", UNITS)
    if self.attention != "none" and self.combine != "sigmoid":
      checks.fail(
        "attention",
        self.attention,
        "'none' with combine 'concat' (attention gates weighted inputs)",
      )
    widths = self.level_widths
    if not isinstance(widths, (list, tuple)) or len(widths) != NUM_LEVELS:
      checks.fail("level_widths", widths, f"{NUM_LEVELS} ints, one per level")
    object.__setattr__(
      self, "level_widths", tuple(checks.check_int(w, "level_widths") for w in widths)
    )
    if not isinstance(self.nodes, (list, tuple)) or not self.nodes:
      checks.fail("nodes", self.nodes, "a non-empty list of stems and blocks")
    object.__setattr__(self, "nodes", tuple(self.nodes))
    self._check_graph()
    if self.stem_width < self.num_convolved_stems:
      checks.fail(
        "stem_width",
        self.stem_width,
        f"at least one channel per RGB/flow stem ({self.num_convolved_stems})",
      )
    self.node_sizes()  # Raises where fusion cannot match input sizes.

  def _check_graph(self):
    seen_block = False
    for i, node in enumerate(self.nodes):
      where = f"nodes[{i}]"
      if isinstance(node, Stem):
        if seen_block:
          raise InvalidGenomeError(f"{where}: a stem after a block; list the stems first")
        continue
      if not isinstance(node, Block):
        checks.fail(where, node, "an assemblenet Stem or Block")
      seen_block = True
      if node.inverted != self.inverted:
        wanted = "[expand, middle, out] ints" if self.inverted else "one int"
        raise InvalidGenomeError(
          f"{where}.filters: got {node.filters!r}; a genome of unit {self.unit!r} gives {wanted}"
        )
      for j in node.inputs:
        if j >= len(self.nodes):
          raise InvalidGenomeError(
            f"{where}.inputs: node {j} does not exist (the genome has "
            f"{len(self.nodes)} nodes, 0-{len(self.nodes) - 1})"
          )
        if j >= i:
          raise InvalidGenomeError(
            f"{where}.inputs: node {j} is not earlier than node {i}; inputs "
            "must be earlier nodes, or the graph has a cycle"
          )
        source = self.nodes[j]
        if source.level >= node.level:
          raise InvalidGenomeError(
            f"{where}.inputs: node {j} is at level {source.level}, not below "
            f"this level-{node.level} node; edges go from lower to higher "
            "levels only"
          )
    if self.inverted and any(isinstance(n, Stem) and n.kind == "object" for n in self.nodes):
      raise InvalidGenomeError(
        "nodes: an object stem in an inverted-bottleneck (lite) genome; the lite "
        "builder has none (the release leaves it unwired)"
      )
    if not any(isinstance(n, Stem) and n.kind != "object" for n in self.nodes):
      raise InvalidGenomeError("nodes: no RGB or flow stem; add Stem('rgb') (stems read the clip)")
    top = [
      i for i, n in enumerate(self.nodes) if isinstance(n, Block) and n.level == NUM_LEVELS - 1
    ]
    if not top:
      raise InvalidGenomeError(
        "nodes: no level-3 node; the classifier reads the level-3 nodes, add at least one"
      )
    widths = {self.nodes[i].filters for i in top}
    if len(widths) > 1:
      raise InvalidGenomeError(
        f"nodes {top}: level-3 nodes have different filters "
        f"{sorted(widths)}; the head averages them, give them one width"
      )

  @property
  def inverted(self) -> bool:
    """Whether blocks are AssembleNet++lite's inverted bottleneck units."""
    return self.unit == "inverted_bottleneck"

  @property
  def stems(self) -> list[int]:
    return [i for i, n in enumerate(self.nodes) if isinstance(n, Stem)]

  @property
  def blocks(self) -> list[int]:
    return [i for i, n in enumerate(self.nodes) if isinstance(n, Block)]

  @property
  def outputs(self) -> list[int]:
    """The level-3 nodes the classifier reads."""
    return [i for i in self.blocks if self.nodes[i].level == NUM_LEVELS - 1]

  @property
  def num_convolved_stems(self) -> int:
    return sum(1 for n in self.nodes if isinstance(n, Stem) and n.kind != "object")

  @property
  def stem_channels(self) -> int:
    """Channels of each RGB / flow stem."""
    return self.stem_width // self.num_convolved_stems

  @property
  def units(self) -> tuple[int, ...]:
    """Bottleneck units per level."""
    return DEPTHS[self.depth]

  def channels(self, index: int, object_classes: int) -> int:
    """Channels node ``index`` outputs (an object stem: its class maps)."""
    node = self.nodes[index]
    if isinstance(node, Block):
      return node.channels
    return object_classes if node.kind == "object" else self.stem_channels

  def consumers(self) -> dict[int, list[int]]:
    """Node index -> the blocks that read it."""
    readers = {i: [] for i in range(len(self.nodes))}
    for i in self.blocks:
      for j in self.nodes[i].inputs:
        readers[j].append(i)
    return readers

  def node_sizes(self) -> list[int]:
    """Spatial size of each node's output, as the builder produces it.

    Raises:
      InvalidGenomeError: a node's inputs do not max-pool to one size.
    """
    stem_size = math.ceil(self.resolution / 2)
    if not self.inverted:  # A max-pool /2 after the strided conv.
      stem_size = math.ceil(stem_size / 2)
    object_size = math.ceil(self.resolution / _STEM_REDUCTION)
    sizes = []
    for i, node in enumerate(self.nodes):
      if isinstance(node, Stem):
        sizes.append(object_size if node.kind == "object" else stem_size)
        continue
      in_sizes = [sizes[j] for j in node.inputs]
      smallest = min(in_sizes)
      for j, size in zip(node.inputs, in_sizes):
        if pooled_size(size, smallest) != smallest:
          raise InvalidGenomeError(
            f"nodes[{i}].inputs: node {j} is {size} px and node "
            f"{node.inputs[in_sizes.index(smallest)]} {smallest} px, which "
            "the fusion's max-pooling cannot match"
          )
      sizes.append(math.ceil(smallest / node.stride))
    return sizes

  def with_learned_weights(self) -> "Genome":
    """The same graph with every connection weight left to be learned."""
    return dataclasses.replace(
      self,
      nodes=tuple(
        dataclasses.replace(n, weights=None) if isinstance(n, Block) else n for n in self.nodes
      ),
    )

  def describe(self) -> str:
    return "; ".join(f"{i}: {n.describe()}" for i, n in enumerate(self.nodes))

  def to_dict(self) -> dict[str, Any]:
    """A JSON-compatible dict that ``Genome.from_dict`` reads back."""
    data = {
      "nodes": [n.to_dict() for n in self.nodes],
      "num_frames": self.num_frames,
      "resolution": self.resolution,
      "frame_stride": self.frame_stride,
      "depth": self.depth,
      "level_widths": list(self.level_widths),
      "stem_width": self.stem_width,
      "combine": self.combine,
      "attention": self.attention,
    }
    if self.unit != "bottleneck":
      data["unit"] = self.unit
    return data

  @classmethod
  def from_dict(cls, data: Any) -> "Genome":
    """Reads a dict written by ``to_dict``.

    Raises:
      InvalidGenomeError: keys are unknown or missing, or a value is of the
        wrong type or out of range; the message names the node and field.
    """
    checks.check_keys(data, _GENOME_KEYS, "genome", required=_REQUIRED_KEYS)
    if not isinstance(data["nodes"], list):
      checks.fail("nodes", data["nodes"], "a list of stem and block objects")
    nodes = []
    for i, node in enumerate(data["nodes"]):
      is_stem = isinstance(node, dict) and "stem" in node
      checks.check_keys(node, _STEM_KEYS if is_stem else _BLOCK_KEYS, f"nodes[{i}]")
      try:
        if is_stem:
          nodes.append(Stem(kind=node["stem"], dilation=node["dilation"]))
        else:
          nodes.append(Block(**node))
      except InvalidGenomeError as e:
        raise InvalidGenomeError(f"nodes[{i}].{e}") from None
    return cls(**{**data, "nodes": tuple(nodes)})


def pooled_size(size: int, target: int) -> int:
  """Size after the fusion's max-pool of a ``size`` map towards ``target``.

  Pool and stride ``ceil(size / target)`` with SAME padding, so a map twice
  (four times ...) as large as the target lands on it exactly.
  """
  factor = math.ceil(size / target)
  return math.ceil(size / factor)
