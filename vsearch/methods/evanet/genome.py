"""The EvaNet genome (arXiv:1811.10636): space-time modules of a residual net.

EvaNet keeps a fixed ResNet-like meta-architecture (stem, four residual
stages separated by max-pools, a pooled classifier) and evolves what runs
inside the stages: how many residual units each stage repeats, and which
parallel branches every unit of the stage holds. ``model`` builds the Keras
model; ``method`` holds the search space, sampling and mutation; ``inception``
the second, I3D-like meta-architecture, which reuses ``Branch``.

Names follow the public ``inception_cell_spec.proto`` (reference §1.2),
spelled out:

==========================  =============================================
published                   here
==========================  =============================================
``convop1``, ``time1``      ``Genome.stem_conv_type``, ``.stem_time``
``max_pool1_time`` ...      ``pool1_time`` (also pool 2, as published),
                            ``pool3_time``, ``pool4_time``
``blocks``                  ``stages`` (exactly 4: res2..res5)
``layer_type`` 0/1/2/3      ``Branch.type`` '1x1'/'conv'/'conv2'/'maxpool'
ConvType 0/1/2              '3d'/'itgm'/'2plus1d'
``time``, ``time2``         ``Branch.time``, ``.time2``
==========================  =============================================

``dilation`` and ``use_nl`` are dropped: the published builder ignores them.
``to_dict`` also writes ``meta_architecture: 'resnet'``; a dict without it
(written before the I3D-like meta-architecture of ``inception`` existed) is
read as this one.
Widths are part of the genome (``stem_filters``, ``Stage.filters``), so a
genome alone says what model it is; the published nets use 64 and
256/512/1024/2048, a search on a laptop uses far fewer.

Rules, checked on construction (``InvalidGenomeError`` names the field):

* conv types are '3d', '2plus1d' or 'itgm'; temporal lengths (branches, stem,
  pools) are in {1, 3, 5, 7, 9, 11};
* a branch carries exactly the fields its type uses: '1x1' none, 'maxpool'
  ``time`` (its pool's temporal size), 'conv' ``conv_type`` and ``time``,
  'conv2' all four; the others are None (absent in JSON);
* a stage has at least one branch, and its ``filters`` are split evenly
  across its branches (``filters // len(branches)`` each, the remainder
  dropped, as published). Each branch needs enough channels for its inner
  convs: 1 for '1x1' and 'maxpool', 2 for 'conv' (its 1×1 runs at half
  width), 4 for 'conv2' (quarter width); a stage that would give a branch
  fewer is rejected here, before any build.
"""

import dataclasses
import numbers
from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar, Optional

from vsearch.errors import InvalidGenomeError
from vsearch.methods import checks

CONV_TYPES = ("3d", "2plus1d", "itgm")
BRANCH_TYPES = ("1x1", "conv", "conv2", "maxpool")
TEMPORAL_LENGTHS = (1, 3, 5, 7, 9, 11)
NUM_STAGES = 4
# The two meta-architectures EvaNet evolves modules in: this module's
# residual one (the public release) and the I3D-like one of ``inception``.
META_ARCHITECTURES = ("resnet", "inception")

# Which optional Branch fields each branch type uses.
BRANCH_FIELDS = {
  "1x1": (),
  "maxpool": ("time",),
  "conv": ("conv_type", "time"),
  "conv2": ("conv_type", "time", "conv_type2", "time2"),
}
# Channels a branch needs: its narrowest inner conv runs at width // divisor.
MIN_BRANCH_WIDTH = {"1x1": 1, "maxpool": 1, "conv": 2, "conv2": 4}

_PUBLISHED_CONV_NAMES = {
  "0": "3d",
  "1": "itgm",
  "2": "2plus1d",
  "tgm": "itgm",
  "(2+1)d": "2plus1d",
  "2+1d": "2plus1d",
}


def check_time(value: Any, field: str) -> int:
  if (
    isinstance(value, bool)
    or not isinstance(value, numbers.Integral)
    or value not in TEMPORAL_LENGTHS
  ):
    checks.fail(field, value, "a temporal length in " + ", ".join(map(str, TEMPORAL_LENGTHS)))
  return int(value)


def check_conv_type(value: Any, field: str) -> str:
  if not isinstance(value, str) or value not in CONV_TYPES:
    hint = ""
    if str(value).lower() in _PUBLISHED_CONV_NAMES:
      hint = f" (the published {value!r} is {_PUBLISHED_CONV_NAMES[str(value).lower()]!r})"
    checks.fail(field, value, "one of " + ", ".join(map(repr, CONV_TYPES)) + hint)
  return value


@dataclasses.dataclass(frozen=True)
class Branch:
  """One parallel branch of a residual unit (f = the branch's channels).

  Attributes:
    type: '1x1' (1×1×1 conv → f, BN); 'conv' (1×1×1 → f/2, BN-ReLU, then a
      ``conv_type`` (time, 3, 3) conv → f, BN); 'conv2' (1×1×1 → f/4,
      BN-ReLU, ``conv_type`` (time, 3, 3) → f/2, BN-ReLU, ``conv_type2``
      (time2, 3, 3) → f, BN); 'maxpool' ((time, 3, 3) max-pool, stride 1,
      then 1×1×1 → f, BN).
    conv_type: '3d', '2plus1d' or 'itgm' ('conv', 'conv2'; else None).
    time: temporal length of the first conv or of the pool (else None).
    conv_type2: the second conv of 'conv2' (else None).
    time2: temporal length of the second conv of 'conv2' (else None).
  """

  type: str
  conv_type: Optional[str] = None
  time: Optional[int] = None
  conv_type2: Optional[str] = None
  time2: Optional[int] = None

  def __post_init__(self):
    if not isinstance(self.type, str) or self.type not in BRANCH_TYPES:
      checks.fail("type", self.type, "one of " + ", ".join(map(repr, BRANCH_TYPES)))
    used = BRANCH_FIELDS[self.type]
    for field in ("conv_type", "time", "conv_type2", "time2"):
      value = getattr(self, field)
      if field not in used:
        if value is not None:
          checks.fail(field, value, f"null (absent) for a {self.type!r} branch")
        continue
      if value is None:
        checks.fail(field, value, f"a value: a {self.type!r} branch uses " + ", ".join(used))
      check = check_time if field.startswith("time") else check_conv_type
      object.__setattr__(self, field, check(value, field))

  def describe(self) -> str:
    """E.g. '1x1', 'maxpool t7', 'conv itgm t11', 'conv2 3d t1 -> 2plus1d t9'."""
    if self.type == "1x1":
      return "1x1"
    if self.type == "maxpool":
      return f"maxpool t{self.time}"
    first = f"{self.conv_type} t{self.time}"
    if self.type == "conv":
      return f"conv {first}"
    return f"conv2 {first} -> {self.conv_type2} t{self.time2}"

  def to_dict(self) -> dict[str, Any]:
    return {"type": self.type, **{f: getattr(self, f) for f in BRANCH_FIELDS[self.type]}}


def check_branches(branches: Any, filters: int) -> tuple[Branch, ...]:
  """``branches`` as a tuple, if it is a non-empty list of ``Branch``es that
  ``filters`` channels, split evenly, give each the width it needs.

  Raises:
    InvalidGenomeError: naming ``branches`` (or ``branches[i]``).
  """
  if not isinstance(branches, (list, tuple)) or not branches:
    checks.fail(
      "branches", branches, "a non-empty list of branches (a stage without branches has no output)"
    )
  for i, branch in enumerate(branches):
    if not isinstance(branch, Branch):
      checks.fail(f"branches[{i}]", branch, "an evanet.Branch")
  need = max(MIN_BRANCH_WIDTH[b.type] for b in branches)
  width = filters // len(branches)
  if width < need:
    widest = max(branches, key=lambda b: MIN_BRANCH_WIDTH[b.type]).type
    raise InvalidGenomeError(
      f"branches: {len(branches)} branches share filters={filters}, {width} channel(s) each, but "
      f"a {widest!r} branch needs at least {need}; use fewer branches or more filters"
    )
  return tuple(branches)


def branches_from_dicts(data: Any, path: str) -> tuple[Branch, ...]:
  """The branches of a ``to_dict`` list found at ``path`` (for messages)."""
  if not isinstance(data, list):
    checks.fail(f"{path}.branches", data, "a list of branch objects")
  branches = []
  for j, branch in enumerate(data):
    checks.check_keys(
      branch, ("type",) + tuple(BRANCH_FIELDS["conv2"]), f"{path}.branches[{j}]", required=("type",)
    )
    try:
      branches.append(Branch(**branch))
    except InvalidGenomeError as e:
      raise InvalidGenomeError(f"{path}.branches[{j}].{e}") from None
  return tuple(branches)


def branches_distance(a: Sequence[Branch], b: Sequence[Branch]) -> int:
  """The size of the symmetric difference of two branch multisets (order ignored)."""
  left, right = Counter(a), Counter(b)
  return sum(((left - right) + (right - left)).values())


@dataclasses.dataclass(frozen=True)
class Stage:
  """One residual stage: ``repeats`` units, each running ``branches`` in parallel.

  Attributes:
    repeats: residual units in the stage (the first has a projection
      shortcut, the others an identity one).
    branches: the parallel branches (a tuple; a list is converted).
    filters: channels the stage would have with one branch; each of n
      branches gets ``filters // n``, so the stage outputs ``branch_width *
      n`` channels.
  """

  repeats: int
  branches: tuple[Branch, ...]
  filters: int

  def __post_init__(self):
    object.__setattr__(self, "repeats", checks.check_int(self.repeats, "repeats"))
    object.__setattr__(self, "filters", checks.check_int(self.filters, "filters"))
    object.__setattr__(self, "branches", check_branches(self.branches, self.filters))

  @property
  def branch_width(self) -> int:
    """Channels of each branch: ``filters // len(branches)``."""
    return self.filters // len(self.branches)

  @property
  def width(self) -> int:
    """Channels the stage outputs (``filters`` less the split's remainder)."""
    return self.branch_width * len(self.branches)

  def describe(self) -> str:
    return (
      f"{self.repeats}x [" + " | ".join(b.describe() for b in self.branches) + f"] {self.width} ch"
    )

  def to_dict(self) -> dict[str, Any]:
    return {
      "repeats": self.repeats,
      "filters": self.filters,
      "branches": [b.to_dict() for b in self.branches],
    }


@dataclasses.dataclass(frozen=True)
class Genome:
  """A whole EvaNet of the ResNet-like meta-architecture: stem, pool sizes
  and the four residual stages.

  Attributes:
    stem_conv_type: the stem conv, (stem_time, 7, 7), stride 2 in T, H, W.
    stem_time: its temporal length.
    pool1_time: temporal size of max-pool 1 ((t, 3, 3), stride 2 in T, H,
      W, after the stem) and of max-pool 2 ((t, 3, 3), stride (1, 2, 2),
      after stage 1): the published builder reuses one field for both.
    pool3_time: temporal size of max-pool 3 ((t, 2, 2), stride (1, 2, 2)).
    pool4_time: temporal size of max-pool 4 (same shape).
    stages: exactly four stages (res2..res5).
    stem_filters: channels of the stem conv.
  """

  meta_architecture: ClassVar[str] = "resnet"

  stem_conv_type: str
  stem_time: int
  pool1_time: int
  pool3_time: int
  pool4_time: int
  stages: tuple[Stage, ...]
  stem_filters: int = 64

  def __post_init__(self):
    check_conv_type(self.stem_conv_type, "stem_conv_type")
    for field in ("stem_time", "pool1_time", "pool3_time", "pool4_time"):
      object.__setattr__(self, field, check_time(getattr(self, field), field))
    object.__setattr__(
      self, "stem_filters", checks.check_int(self.stem_filters, "stem_filters", minimum=2)
    )
    if not isinstance(self.stages, (list, tuple)) or len(self.stages) != NUM_STAGES:
      checks.fail("stages", self.stages, f"a list of exactly {NUM_STAGES} stages")
    for i, stage in enumerate(self.stages):
      if not isinstance(stage, Stage):
        checks.fail(f"stages[{i}]", stage, "an evanet.Stage")
    object.__setattr__(self, "stages", tuple(self.stages))

  @property
  def blocks(self) -> tuple[Stage, ...]:
    """What evolves, block by block: the stages."""
    return self.stages

  def block_label(self, i: int) -> str:
    """The name of block ``i`` in mutation descriptions and layers: 'res2'..'res5'."""
    return f"res{i + 2}"

  def with_blocks(self, blocks) -> "Genome":
    """This genome with other stages."""
    return dataclasses.replace(self, stages=tuple(blocks))

  def describe(self) -> str:
    """A multi-line summary: stem, pools and one line per stage."""
    lines = [
      f"stem {self.stem_conv_type} t{self.stem_time} "
      f"{self.stem_filters} ch; pool times {self.pool1_time}/"
      f"{self.pool1_time}/{self.pool3_time}/{self.pool4_time}"
    ]
    lines += [f"res{i + 2}: {s.describe()}" for i, s in enumerate(self.stages)]
    return "\n".join(lines)

  def to_dict(self) -> dict[str, Any]:
    """A JSON-compatible dict that ``Genome.from_dict`` reads back."""
    return {
      "meta_architecture": self.meta_architecture,
      **{field: getattr(self, field) for field in _GLOBAL_FIELDS},
      "stages": [s.to_dict() for s in self.stages],
    }

  @classmethod
  def from_dict(cls, data: Any) -> "Genome":
    """Reads a dict written by ``to_dict``; one without ``meta_architecture``
    (written before there were two) is of this ResNet-like one.

    Raises:
      InvalidGenomeError: keys are unknown or missing, or a value is of the
        wrong type or out of range; the message names the field's path.
    """
    check_meta_architecture(data, cls.meta_architecture)
    optional = ("meta_architecture", "stem_filters")
    checks.check_keys(
      data, _GENOME_KEYS, "genome", required=tuple(k for k in _GENOME_KEYS if k not in optional)
    )
    if not isinstance(data["stages"], list):
      checks.fail("stages", data["stages"], "a list of stage objects")
    stages = []
    for i, stage in enumerate(data["stages"]):
      path = f"stages[{i}]"
      checks.check_keys(stage, ("repeats", "filters", "branches"), path)
      branches = branches_from_dicts(stage["branches"], path)
      try:
        stages.append(Stage(repeats=stage["repeats"], filters=stage["filters"], branches=branches))
      except InvalidGenomeError as e:
        raise InvalidGenomeError(f"{path}.{e}") from None
    fields = {k: data[k] for k in _GLOBAL_FIELDS if k in data}
    return cls(stages=tuple(stages), **fields)


def meta_architecture_of(data: Any) -> str:
  """The meta-architecture a genome dict names; 'resnet' when it names none.

  Raises:
    InvalidGenomeError: it names one that does not exist.
  """
  value = data.get("meta_architecture", "resnet") if isinstance(data, dict) else "resnet"
  if value not in META_ARCHITECTURES:
    checks.fail("meta_architecture", value, "one of " + ", ".join(map(repr, META_ARCHITECTURES)))
  return value


def check_meta_architecture(data: Any, expected: str) -> None:
  """Raises InvalidGenomeError unless the dict ``data`` is a genome of ``expected``."""
  if not isinstance(data, dict):
    return  # ``checks.check_keys`` says what it should be.
  found = meta_architecture_of(data)
  if found != expected:
    raise InvalidGenomeError(
      f"meta_architecture: got {found!r}, but this reader builds {expected!r} genomes; "
      "read EvaNet genomes with EvanetMethod.genome_from_dict, which picks the right one"
    )


# The genome's fields other than its stages.
_GLOBAL_FIELDS = (
  "stem_conv_type",
  "stem_time",
  "pool1_time",
  "pool3_time",
  "pool4_time",
  "stem_filters",
)
_GENOME_KEYS = ("meta_architecture", *_GLOBAL_FIELDS, "stages")


def genome_distance(a: Genome, b: Genome) -> int:
  """How many edits turn one architecture into the other; a metric.

  The distance adds up, for the global fields, one per field that differs
  (stem conv type, stem time, each pool time, stem width), and for each of
  the four stages: the difference in repeats, plus the size of the symmetric
  difference of the two branch multisets (branches are compared whole, and
  order does not matter, since parallel branches are concatenated), plus one
  if the stage width differs. So changing one branch's temporal length costs
  2 (one branch removed, one added), adding a branch costs 1, and two
  genomes at distance 0 build the same model up to the order of channels.
  Each term is a metric, so the sum is one too.
  """
  distance = sum(getattr(a, f) != getattr(b, f) for f in _GLOBAL_FIELDS)
  for x, y in zip(a.stages, b.stages):
    distance += abs(x.repeats - y.repeats) + (x.filters != y.filters)
    distance += branches_distance(x.branches, y.branches)
  return int(distance)
