"""EvaNet (arXiv:1811.10636) as a search method.

EvaNet evolves the space-time modules of a fixed residual network: per stage
the number of residual units and the parallel branches of each unit (1×1,
1×1 + space-time conv, 1×1 + two stacked space-time convs, max-pool + 1×1),
with 3-D, (2+1)-D or iTGM convs of temporal length 1-11. Its search mutates
children heavily early on and lightly late (``mutation_schedule``), so the
population explores widely first and then refines several different, similarly
good architectures, which ``ensemble`` then combines.

It does so in either of the paper's two meta-architectures, chosen by
``EvanetMethod.meta_architecture``: 'resnet' (the released one: ``genome``,
``model``, ``EvanetSearchSpace``) or 'inception' (I3D-like, reconstructed:
``inception``, ``inception_model``, ``inception.InceptionSearchSpace``). The
branches, their sampling and the mutations are shared; a genome records its
meta-architecture, so ``genome_from_dict`` and ``build`` rebuild a record's
model whichever the method is configured for.

This module holds the ResNet-like search space and ``EvanetMethod``.
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Optional

import gin
import numpy as np

from vsearch.data.clips import STREAMS, ClipSpec
from vsearch.errors import InvalidGenomeError, UserError
from vsearch.methods import base, checks
from vsearch.methods.evanet.genome import (
  BRANCH_FIELDS,
  BRANCH_TYPES,
  CONV_TYPES,
  META_ARCHITECTURES,
  NUM_STAGES,
  TEMPORAL_LENGTHS,
  Branch,
  Genome,
  Stage,
  genome_distance,
  meta_architecture_of,
)
from vsearch.methods.evanet.inception import (
  InceptionGenome,
  InceptionSearchSpace,
  Module,
  inception_distance,
)
from vsearch.methods.evanet.inception_model import build_inception_model
from vsearch.methods.evanet.model import build_model

MUTATION_KINDS = ("branch_type", "conv_type", "time", "add_branch", "remove_branch", "repeats")

# Per meta-architecture: its genome, the mutations that apply (Inception
# modules have no repeats) and the global fields they change.
_GENOMES = {"resnet": Genome, "inception": InceptionGenome}
_KINDS = {"resnet": MUTATION_KINDS, "inception": MUTATION_KINDS[:-1]}
_GLOBAL_SLOTS = {
  "resnet": ("stem_time", "pool1_time", "pool3_time", "pool4_time", "stem_conv_type"),
  "inception": ("stem_time", "stem_conv_type"),
}


@gin.configurable
@dataclasses.dataclass(frozen=True)
class EvanetSearchSpace:
  """The values an EvaNet search draws from.

  The published search space is the proto's (reference §1.2): every branch
  type, conv type and temporal length in {1, 3, ..., 11}. Repeats and the
  branch counts are not published; the defaults span the released nets (2-5
  repeats, 2-6 branches). Widths are fixed by the meta-architecture, not
  searched: ``stem_filters`` and ``stage_filters`` go into every sampled
  genome (the published 64 and 256/512/1024/2048 by default).

  Raises:
    UserError: a choice list is empty or holds an invalid value.
  """

  branch_types: Sequence[str] = BRANCH_TYPES
  conv_types: Sequence[str] = CONV_TYPES
  temporal_lengths: Sequence[int] = TEMPORAL_LENGTHS
  repeats: Sequence[int] = (1, 2, 3, 4, 5)
  min_branches: int = 1
  max_branches: int = 6
  stem_filters: int = 64
  stage_filters: Sequence[int] = (256, 512, 1024, 2048)

  def __post_init__(self):
    for name, allowed in (
      ("branch_types", BRANCH_TYPES),
      ("conv_types", CONV_TYPES),
      ("temporal_lengths", TEMPORAL_LENGTHS),
      ("repeats", None),
      ("stage_filters", None),
    ):
      choices = checks.check_choices("EvanetSearchSpace", name, getattr(self, name), allowed)
      object.__setattr__(self, name, choices)
    if len(self.stage_filters) != NUM_STAGES:
      raise UserError(
        f"EvanetSearchSpace.stage_filters needs {NUM_STAGES} widths, got {self.stage_filters}"
      )
    if not 1 <= self.min_branches <= self.max_branches:
      raise UserError(
        "EvanetSearchSpace needs 1 <= min_branches <= "
        f"max_branches, got {self.min_branches} and "
        f"{self.max_branches}"
      )


@gin.configurable
def mutation_schedule(
  progress: float, early: int = 4, late: int = 1, decay_until: float = 0.5
) -> int:
  """How many mutations make a child at this point of the search.

  EvaNet mutates "massively" early, for diverse architectures, and little
  late, to refine them. The count falls linearly from ``early`` at progress
  0 to ``late`` at ``decay_until`` and stays there.

  Args:
    progress: fraction of the search done, in [0, 1].
    early: mutations per child at the start.
    late: mutations per child from ``decay_until`` on.
    decay_until: progress at which the count reaches ``late``.
  """
  if early < 1 or late < 1:
    raise UserError(f"mutation_schedule needs early and late >= 1, got {early} and {late}")
  fraction = min(max(progress, 0.0) / decay_until, 1.0) if decay_until > 0 else 1.0
  return int(round(early + (late - early) * fraction))


def _replace_stage(genome, s: int, **changes):
  """``genome`` with stage (or module) ``s`` changed."""
  blocks = list(genome.blocks)
  blocks[s] = dataclasses.replace(blocks[s], **changes)
  return genome.with_blocks(blocks)


def _replace_branch(genome, s: int, j: int, branch: Branch):
  branches = list(genome.blocks[s].branches)
  branches[j] = branch
  return _replace_stage(genome, s, branches=tuple(branches))


def _edits_from_nothing(genome) -> int:
  """Edits that write ``genome`` from scratch: one per global field, and per
  block one for its width, one per branch and one per repeat. Between two
  meta-architectures, the distance is the sum of both genomes' (no edit turns
  one into the other); as an edit changes this count by at most 1, the
  distance stays a metric."""
  fields = len(genome.to_dict()) - 2  # Less meta_architecture and the blocks.
  return fields + sum(1 + len(b.branches) + getattr(b, "repeats", 0) for b in genome.blocks)


@gin.configurable
class EvanetMethod:
  """EvaNet: sampling, mutation and building of EvaNet genomes.

  Args:
    space: the choices genomes are drawn from: an ``EvanetSearchSpace`` for
      the 'resnet' meta-architecture, an ``InceptionSearchSpace`` for
      'inception'; None: that space's defaults (the published widths).
    num_frames, frame_stride, resolution: the clips every model reads (the
      meta-architecture is fixed, so the clip is too).
    stream: 'rgb' (3 channels) or 'flow' (2 channels of optical flow,
      computed by the clip pipeline).
    dropout_rate: dropout before the classifier.
    num_mutations: maps search progress to the mutations per child.
    max_attempts: draws before ``sample`` or ``mutate`` give up.
    meta_architecture: 'resnet' (the released one, the default) or
      'inception' (I3D-like): what ``sample`` draws and ``mutate`` takes.
      ``build`` builds any EvaNet genome, of either.

  Raises:
    UserError: an unknown stream or meta-architecture, or a space of the
      other meta-architecture.
  """

  name = "evanet"

  def __init__(
    self,
    space: Optional[EvanetSearchSpace | InceptionSearchSpace] = None,
    num_frames: int = 32,
    frame_stride: int = 2,
    resolution: int = 224,
    stream: str = "rgb",
    dropout_rate: float = 0.5,
    num_mutations: Callable[[float], int] = mutation_schedule,
    max_attempts: int = 1000,
    meta_architecture: str = "resnet",
  ):
    if stream not in STREAMS:
      raise UserError(f"EvanetMethod.stream must be one of {STREAMS}, got {stream!r}")
    if meta_architecture not in META_ARCHITECTURES:
      raise UserError(
        f"EvanetMethod.meta_architecture must be one of {META_ARCHITECTURES}, "
        f"got {meta_architecture!r}"
      )
    space_type = EvanetSearchSpace if meta_architecture == "resnet" else InceptionSearchSpace
    if space is None:
      space = space_type()
    if not isinstance(space, space_type):
      raise UserError(
        f"EvanetMethod.meta_architecture = {meta_architecture!r} searches an "
        f"{space_type.__name__}, but EvanetMethod.space is a {type(space).__name__}"
      )
    self.meta_architecture = meta_architecture
    self.space = space
    self.clip = ClipSpec(
      num_frames=num_frames, frame_stride=frame_stride, resolution=resolution, stream=stream
    )
    self.stream = stream
    self.dropout_rate = dropout_rate
    self.num_mutations = num_mutations
    self.max_attempts = max_attempts

  def sample_branch(
    self, rng: np.random.Generator, types: Optional[Sequence[str]] = None
  ) -> Branch:
    """A random branch of one of ``types`` (the space's by default)."""
    kind = base.choice(rng, types or self.space.branch_types)
    values = {}
    for field in BRANCH_FIELDS[kind]:
      options = self.space.temporal_lengths if field.startswith("time") else self.space.conv_types
      values[field] = base.choice(rng, options)
    return Branch(type=kind, **values)

  def sample(self, rng: np.random.Generator) -> Genome:
    """A random valid genome from the space.

    Raises:
      UserError: no valid genome in ``max_attempts`` draws (the widths are
        too small for the branch counts).
    """
    space = self.space
    for _ in range(self.max_attempts):
      try:
        if self.meta_architecture == "inception":
          return self._sample_inception(rng)
        stages = []
        for filters in space.stage_filters:
          count = int(rng.integers(space.min_branches, space.max_branches + 1))
          repeats = base.choice(rng, space.repeats)
          branches = tuple(self.sample_branch(rng) for _ in range(count))
          stages.append(Stage(repeats=repeats, filters=filters, branches=branches))
        return Genome(
          stem_conv_type=base.choice(rng, space.conv_types),
          stem_time=base.choice(rng, space.temporal_lengths),
          pool1_time=base.choice(rng, space.temporal_lengths),
          pool3_time=base.choice(rng, space.temporal_lengths),
          pool4_time=base.choice(rng, space.temporal_lengths),
          stages=tuple(stages),
          stem_filters=space.stem_filters,
        )
      except InvalidGenomeError:
        continue
    filters = "stage_filters" if self.meta_architecture == "resnet" else "module_filters"
    raise UserError(
      f"No valid EvaNet genome in {self.max_attempts} draws: "
      f"{type(space).__name__}.{filters} are too small for "
      "max_branches; raise the filters or lower max_branches."
    )

  def _sample_inception(self, rng: np.random.Generator) -> InceptionGenome:
    space, modules = self.space, []
    for filters in space.module_filters:
      count = int(rng.integers(space.min_branches, space.max_branches + 1))
      modules.append(Module(tuple(self.sample_branch(rng) for _ in range(count)), filters))
    return InceptionGenome(
      stem_conv_type=base.choice(rng, space.conv_types),
      stem_time=base.choice(rng, space.temporal_lengths),
      modules=tuple(modules),
      stem_filters=space.stem_filters,
      stem_out_filters=space.stem_out_filters,
    )

  def mutate(
    self, genome: Genome, rng: np.random.Generator, progress: float = 0.0
  ) -> tuple[Genome, str]:
    """A valid child made by ``num_mutations(progress)`` mutations in a row.

    Each mutation is one of ``MUTATION_KINDS``: change a branch's type, a
    conv type (a branch's or the stem's), a temporal length (a branch's, the
    stem's or a pool's), add a branch, remove a branch, or change a stage's
    repeats. Inception modules have no repeats and their pools are fixed, so
    those are not changed there. Every step gives a valid genome, and the
    child differs from the parent.

    Returns:
      The child and what changed, e.g. "res3 add branch 2: maxpool t7;
      res5 repeats 3 -> 2".

    Raises:
      UserError: the space offers no valid change, or the genome is of the
        other meta-architecture.
    """
    if not isinstance(genome, (Genome, InceptionGenome)):
      base.expect_genome(genome, _GENOMES[self.meta_architecture], "EvanetMethod")
    if genome.meta_architecture != self.meta_architecture:
      raise UserError(
        f"EvanetMethod.meta_architecture = {self.meta_architecture!r} cannot mutate a "
        f"{genome.meta_architecture!r} genome; set EvanetMethod.meta_architecture = "
        f"{genome.meta_architecture!r}"
      )
    count = self.num_mutations(progress)
    for _ in range(self.max_attempts):
      child, changes = genome, []
      for _ in range(count):
        child, change = self._mutate_once(child, rng)
        changes.append(change)
      if child != genome:
        return child, "; ".join(changes)
    raise UserError(f"{type(self.space).__name__} offers no valid mutation of {genome}.")

  def _mutate_once(self, genome: Genome, rng: np.random.Generator) -> tuple[Genome, str]:
    for _ in range(self.max_attempts):
      kind = base.choice(rng, _KINDS[genome.meta_architecture])
      proposal = getattr(self, f"_{kind}")(genome, rng)
      if proposal is None:
        continue
      make, description = proposal
      try:
        child = make()
      except InvalidGenomeError:
        continue  # E.g. a new branch type the stage is too narrow for.
      if child != genome:
        return child, description
    raise UserError(f"{type(self.space).__name__} offers no valid mutation of {genome}.")

  def _branch_type(self, genome, rng):
    s = int(rng.integers(len(genome.blocks)))
    j = int(rng.integers(len(genome.blocks[s].branches)))
    old = genome.blocks[s].branches[j]
    types = [t for t in self.space.branch_types if t != old.type]
    if not types:
      return None
    new = self.sample_branch(rng, types)
    # Keep the fields the two types share, so the change is the type alone.
    kept = {f: getattr(old, f) for f in BRANCH_FIELDS[new.type] if getattr(old, f) is not None}
    new = dataclasses.replace(new, **kept)
    return (
      lambda: _replace_branch(genome, s, j, new),
      f"{genome.block_label(s)} branch {j}: {old.describe()} -> {new.describe()}",
    )

  def _slots(self, genome: Genome, prefix: str):
    """(description, getter value, setter) of every field named ``prefix*``."""
    slots = []
    for field in _GLOBAL_SLOTS[genome.meta_architecture]:
      if field.startswith("stem_conv") == (prefix == "conv_type"):
        slots.append(
          (field, getattr(genome, field), lambda v, f=field: dataclasses.replace(genome, **{f: v}))
        )
    for s, stage in enumerate(genome.blocks):
      for j, branch in enumerate(stage.branches):
        for field in BRANCH_FIELDS[branch.type]:
          if field.startswith(prefix):
            slots.append(
              (
                f"{genome.block_label(s)} branch {j} ({branch.describe()}) {field}",
                getattr(branch, field),
                lambda v, s=s, j=j, b=branch, f=field: _replace_branch(
                  genome, s, j, dataclasses.replace(b, **{f: v})
                ),
              )
            )
    return slots

  def _change_slot(self, genome, rng, prefix: str, options: Sequence[Any]):
    slots = [
      (d, old, set_)
      for d, old, set_ in self._slots(genome, prefix)
      if any(o != old for o in options)
    ]
    if not slots:
      return None
    description, old, set_ = base.choice(rng, slots)
    value = base.choice(rng, [o for o in options if o != old])
    return (lambda: set_(value), f"{description} {old!r} -> {value!r}")

  def _conv_type(self, genome, rng):
    return self._change_slot(genome, rng, "conv_type", self.space.conv_types)

  def _time(self, genome, rng):
    return self._change_slot(genome, rng, "time", self.space.temporal_lengths)

  def _add_branch(self, genome, rng):
    stages = [s for s, st in enumerate(genome.blocks) if len(st.branches) < self.space.max_branches]
    if not stages:
      return None
    s = base.choice(rng, stages)
    at = int(rng.integers(len(genome.blocks[s].branches) + 1))
    new = self.sample_branch(rng)
    branches = genome.blocks[s].branches
    return (
      lambda: _replace_stage(genome, s, branches=branches[:at] + (new,) + branches[at:]),
      f"{genome.block_label(s)} add branch {at}: {new.describe()}",
    )

  def _remove_branch(self, genome, rng):
    stages = [
      s for s, st in enumerate(genome.blocks) if len(st.branches) > max(self.space.min_branches, 1)
    ]
    if not stages:
      return None
    s = base.choice(rng, stages)
    branches = genome.blocks[s].branches
    at = int(rng.integers(len(branches)))
    return (
      lambda: _replace_stage(genome, s, branches=branches[:at] + branches[at + 1 :]),
      f"{genome.block_label(s)} remove branch {at}: {branches[at].describe()}",
    )

  def _repeats(self, genome, rng):
    s = int(rng.integers(NUM_STAGES))
    old = genome.stages[s].repeats
    options = [r for r in self.space.repeats if r != old]
    if not options:
      return None
    new = base.choice(rng, options)
    return (lambda: _replace_stage(genome, s, repeats=new), f"res{s + 2} repeats {old} -> {new}")

  def genome_from_dict(self, data: dict[str, Any]) -> Genome | InceptionGenome:
    """Reads a ``to_dict`` dict of either meta-architecture, by its
    ``meta_architecture`` ('resnet' when absent); raises InvalidGenomeError."""
    return _GENOMES[meta_architecture_of(data)].from_dict(data)

  def clip_spec(self, genome: Genome) -> ClipSpec:
    """The clips every EvaNet model of this method reads."""
    del genome  # The meta-architecture fixes the clip.
    return self.clip

  def build(self, genome: Genome | InceptionGenome, num_classes: int, name: str = "evanet"):
    """The Keras model of the genome's meta-architecture: clips (B, T, H, W, C) -> logits."""
    builder = build_inception_model if isinstance(genome, InceptionGenome) else build_model
    return builder(
      genome, num_classes, self.clip.input_shape, dropout_rate=self.dropout_rate, name=name
    )

  def with_stream(self, stream: str) -> "EvanetMethod":
    """This method, reading ``stream`` ('rgb' or 'flow') instead."""
    return EvanetMethod(
      space=self.space,
      num_frames=self.clip.num_frames,
      frame_stride=self.clip.frame_stride,
      resolution=self.clip.resolution,
      stream=stream,
      dropout_rate=self.dropout_rate,
      num_mutations=self.num_mutations,
      max_attempts=self.max_attempts,
      meta_architecture=self.meta_architecture,
    )

  def distance(self, a, b) -> int:
    """Edits between two architectures: ``genome_distance`` or
    ``inception_distance``; between meta-architectures, ``_edits_from_nothing``
    of both."""
    if a.meta_architecture != b.meta_architecture:
      return _edits_from_nothing(a) + _edits_from_nothing(b)
    return (genome_distance if isinstance(a, Genome) else inception_distance)(a, b)
