"""EvaNet's second meta-architecture: I3D with evolved Inception modules.

The paper (arXiv:1811.10636) evolves the modules of two meta-architectures,
an Inception-like one and the ResNet-like one of ``genome``; only the
ResNet-like builder was released. This is the Inception-like one,
reconstructed from I3D (Carreira & Zisserman 2017, arXiv:1705.07750, the
inflated Inception-v1 that the paper builds on): a fixed skeleton whose nine
Inception modules are each an evolved module of parallel branches,
concatenated on channels. ``inception_model`` builds it.

What comes from where:

* paper: the two meta-architectures; a module is parallel layers of 1×1×1
  convs, 3-D / (2+1)-D / iTGM convs of temporal length 1-11 and 3-D
  max-pools, concatenated; the same mutations (layer type, temporal length,
  add or remove a layer).
* I3D: the skeleton: a (t, 7, 7) stem conv, stride 2; a (1, 3, 3) max-pool,
  stride (1, 2, 2); a 1×1×1 conv; a 3×3×3 conv; a (1, 3, 3) max-pool; modules
  3b, 3c; a 3×3×3 max-pool, stride 2; 4b-4f; a 2×2×2 max-pool, stride 2; 5b,
  5c; the pooled 1×1×1 classifier. Widths 64 and 192 in the stem, and per
  module I3D's output channels (``I3D_MODULE_FILTERS``).
* ours (not published; marked so in docs/methods/evanet.md): a branch is one
  of the released proto's four kinds (``genome.Branch``: 1×1; 1×1 then a
  space-time conv; 1×1 then two; max-pool then 1×1), which are exactly
  Inception's branch shapes; a module's width is split evenly across its
  branches, as the released ResNet-like builder does; the stem's conv type
  (for both its space-time convs) and its first conv's temporal length
  evolve, as the ResNet-like genome's do; the pools stay I3D's; and no
  residual units, so no repeats and no alternation of temporal lengths.

``to_dict`` writes ``meta_architecture: 'inception'``;
``EvanetMethod.genome_from_dict`` reads either meta-architecture by it.
"""

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import gin

from vsearch.errors import InvalidGenomeError, UserError
from vsearch.methods import checks
from vsearch.methods.evanet.genome import (
  BRANCH_TYPES,
  CONV_TYPES,
  TEMPORAL_LENGTHS,
  Branch,
  branches_distance,
  branches_from_dicts,
  check_branches,
  check_conv_type,
  check_meta_architecture,
  check_time,
)

# I3D's Inception modules, in order, and their output channels there.
MODULE_NAMES = ("3b", "3c", "4b", "4c", "4d", "4e", "4f", "5b", "5c")
NUM_MODULES = len(MODULE_NAMES)
I3D_MODULE_FILTERS = (256, 480, 512, 512, 512, 528, 832, 832, 1024)
# After which modules a max-pool follows: 3c (3×3×3, stride 2) and 4f
# (2×2×2, stride 2); layer names 'pool3' and 'pool4'.
POOL_AFTER = {"3c": "pool3", "4f": "pool4"}


@dataclasses.dataclass(frozen=True)
class Module:
  """One evolved Inception module: ``branches`` in parallel, concatenated.

  Attributes:
    branches: the parallel branches (a tuple; a list is converted).
    filters: the module's channels with one branch; each of n branches gets
      ``filters // n`` (the remainder dropped), as in a ``genome.Stage``.
  """

  branches: tuple[Branch, ...]
  filters: int

  def __post_init__(self):
    object.__setattr__(self, "filters", checks.check_int(self.filters, "filters"))
    object.__setattr__(self, "branches", check_branches(self.branches, self.filters))

  @property
  def branch_width(self) -> int:
    """Channels of each branch: ``filters // len(branches)``."""
    return self.filters // len(self.branches)

  @property
  def width(self) -> int:
    """Channels the module outputs (``filters`` less the split's remainder)."""
    return self.branch_width * len(self.branches)

  def describe(self) -> str:
    return "[" + " | ".join(b.describe() for b in self.branches) + f"] {self.width} ch"

  def to_dict(self) -> dict[str, Any]:
    return {"filters": self.filters, "branches": [b.to_dict() for b in self.branches]}


@dataclasses.dataclass(frozen=True)
class InceptionGenome:
  """A whole EvaNet of the I3D-like meta-architecture.

  Attributes:
    stem_conv_type: the type of both stem space-time convs: the first
      (stem_time, 7, 7), stride 2 in T, H, W, and the (3, 3, 3) one after the
      stem's 1×1×1 conv.
    stem_time: the temporal length of the first (I3D: 7).
    modules: exactly nine modules, I3D's 3b, 3c, 4b-4f, 5b, 5c.
    stem_filters: channels of the first conv and of the 1×1×1 conv (I3D: 64).
    stem_out_filters: channels of the (3, 3, 3) conv (I3D: 192).
  """

  meta_architecture: ClassVar[str] = "inception"

  stem_conv_type: str
  stem_time: int
  modules: tuple[Module, ...]
  stem_filters: int = 64
  stem_out_filters: int = 192

  def __post_init__(self):
    check_conv_type(self.stem_conv_type, "stem_conv_type")
    object.__setattr__(self, "stem_time", check_time(self.stem_time, "stem_time"))
    for field in ("stem_filters", "stem_out_filters"):
      object.__setattr__(self, field, checks.check_int(getattr(self, field), field, minimum=2))
    if not isinstance(self.modules, (list, tuple)) or len(self.modules) != NUM_MODULES:
      checks.fail(
        "modules",
        self.modules,
        f"a list of exactly {NUM_MODULES} modules ({', '.join(MODULE_NAMES)})",
      )
    for i, module in enumerate(self.modules):
      if not isinstance(module, Module):
        checks.fail(f"modules[{i}]", module, "an evanet.inception.Module")
    object.__setattr__(self, "modules", tuple(self.modules))

  @property
  def blocks(self) -> tuple[Module, ...]:
    """What evolves, block by block: the modules."""
    return self.modules

  def block_label(self, i: int) -> str:
    """The name of module ``i`` in mutation descriptions and layers: 'mixed_3b'..'mixed_5c'."""
    return f"mixed_{MODULE_NAMES[i]}"

  def with_blocks(self, blocks) -> "InceptionGenome":
    """This genome with other modules."""
    return dataclasses.replace(self, modules=tuple(blocks))

  def describe(self) -> str:
    """A multi-line summary: the stem and one line per module."""
    lines = [
      f"inception stem {self.stem_conv_type} t{self.stem_time} "
      f"{self.stem_filters}/{self.stem_out_filters} ch"
    ]
    lines += [f"{self.block_label(i)}: {m.describe()}" for i, m in enumerate(self.modules)]
    return "\n".join(lines)

  def to_dict(self) -> dict[str, Any]:
    """A JSON-compatible dict that ``InceptionGenome.from_dict`` reads back."""
    return {
      "meta_architecture": self.meta_architecture,
      **{field: getattr(self, field) for field in _GLOBAL_FIELDS},
      "modules": [m.to_dict() for m in self.modules],
    }

  @classmethod
  def from_dict(cls, data: Any) -> "InceptionGenome":
    """Reads a dict written by ``to_dict``.

    Raises:
      InvalidGenomeError: keys are unknown or missing, ``meta_architecture``
        is not 'inception', or a value is of the wrong type or out of range;
        the message names the field's path.
    """
    check_meta_architecture(data, cls.meta_architecture)
    checks.check_keys(data, _KEYS, "genome")
    if not isinstance(data["modules"], list):
      checks.fail("modules", data["modules"], "a list of module objects")
    modules = []
    for i, module in enumerate(data["modules"]):
      path = f"modules[{i}]"
      checks.check_keys(module, ("filters", "branches"), path)
      branches = branches_from_dicts(module["branches"], path)
      try:
        modules.append(Module(branches=branches, filters=module["filters"]))
      except InvalidGenomeError as e:
        raise InvalidGenomeError(f"{path}.{e}") from None
    return cls(modules=tuple(modules), **{k: data[k] for k in _GLOBAL_FIELDS})


_GLOBAL_FIELDS = ("stem_conv_type", "stem_time", "stem_filters", "stem_out_filters")
_KEYS = ("meta_architecture", *_GLOBAL_FIELDS, "modules")


def inception_distance(a: InceptionGenome, b: InceptionGenome) -> int:
  """How many edits turn one architecture into the other; a metric.

  As ``genome.genome_distance``: one per differing stem field, and per
  module the size of the symmetric difference of the branch multisets plus
  one if its width differs.
  """
  distance = sum(getattr(a, f) != getattr(b, f) for f in _GLOBAL_FIELDS)
  for x, y in zip(a.modules, b.modules):
    distance += (x.filters != y.filters) + branches_distance(x.branches, y.branches)
  return int(distance)


@gin.configurable
@dataclasses.dataclass(frozen=True)
class InceptionSearchSpace:
  """The values an EvaNet search of the I3D-like meta-architecture draws from.

  Branch, conv types and temporal lengths as ``EvanetSearchSpace``; the
  branch counts are ours (I3D's modules have 4, the defaults span 1-6, as
  the ResNet-like space's). Widths are fixed by the meta-architecture, not
  searched: I3D's by default.

  Raises:
    UserError: a choice list is empty or holds an invalid value.
  """

  branch_types: Sequence[str] = BRANCH_TYPES
  conv_types: Sequence[str] = CONV_TYPES
  temporal_lengths: Sequence[int] = TEMPORAL_LENGTHS
  min_branches: int = 1
  max_branches: int = 6
  stem_filters: int = 64
  stem_out_filters: int = 192
  module_filters: Sequence[int] = I3D_MODULE_FILTERS

  def __post_init__(self):
    for name, allowed in (
      ("branch_types", BRANCH_TYPES),
      ("conv_types", CONV_TYPES),
      ("temporal_lengths", TEMPORAL_LENGTHS),
      ("module_filters", None),
    ):
      object.__setattr__(
        self, name, checks.check_choices("InceptionSearchSpace", name, getattr(self, name), allowed)
      )
    if len(self.module_filters) != NUM_MODULES:
      raise UserError(
        f"InceptionSearchSpace.module_filters needs {NUM_MODULES} widths "
        f"({', '.join(MODULE_NAMES)}), got {self.module_filters}"
      )
    if not 1 <= self.min_branches <= self.max_branches:
      raise UserError(
        "InceptionSearchSpace needs 1 <= min_branches <= max_branches, got "
        f"{self.min_branches} and {self.max_branches}"
      )
