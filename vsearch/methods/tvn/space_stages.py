"""The stages a TVN latency table times: every one a search space can build.

A stage (``vsearch.methods.tvn.model.Stage``) is one op of a repeat with its
input shape. ``enumerate_space`` walks a ``TvnSearchSpace`` block by block
from every clip size to find each stage a genome of it can contain;
``genome_entries`` lists those of given genomes. ``latency_table`` converts
each to a TFLite file of its own.
"""

import dataclasses
import itertools
from collections.abc import Iterable

import numpy as np

from vsearch.errors import UserError
from vsearch.methods.tvn.genome import Block, Genome
from vsearch.methods.tvn.model import Stage, genome_stages, repeat_stages

# Block fields and the search-space attribute holding their choices.
_FIELD_CHOICES = (
  ("spatial_type", "spatial_types"),
  ("spatial_kernel", "spatial_kernels"),
  ("spatial_stride", "spatial_strides"),
  ("temporal_type", "temporal_types"),
  ("temporal_kernel", "temporal_kernels"),
  ("temporal_stride", "temporal_strides"),
  ("repeats", "repeats"),
  ("filters", "filters"),
  ("expand", "expands"),
  ("skip", "skips"),
  ("squeeze", "squeeze_ratios"),
  ("context_gate", "context_gates"),
  ("inverted_bottleneck", "inverted_bottlenecks"),
  ("spatial_activation", "activations"),
  ("temporal_activation", "activations"),
  ("output_activation", "activations"),
)


def is_timed(stage: Stage) -> bool:
  """Whether a stage costs time of its own (a ReLU ending a repeat is fused)."""
  return not (stage.op == "activation" and stage.param("kind") == "relu")


def _block_configs(space) -> list[Block]:
  """Every distinct block the space can draw (kernel-1 ops canonical)."""
  choices = [tuple(dict.fromkeys(getattr(space, attr))) for _, attr in _FIELD_CHOICES]
  count = int(np.prod([len(c) for c in choices], dtype=np.float64))
  if count > 2_000_000:
    raise UserError(
      f"TvnSearchSpace has {count:,} block configurations, too many to "
      "enumerate for a latency table: narrow its choices, or prepare a "
      "table for given genomes (--genomes / --zoo / --num_sampled)."
    )
  blocks = set()
  for values in itertools.product(*choices):
    fields = dict(zip((f for f, _ in _FIELD_CHOICES), values))
    for op, types in (("spatial", space.spatial_types), ("temporal", space.temporal_types)):
      if fields[f"{op}_kernel"] == 1:  # No op: type and stride do not matter.
        fields[f"{op}_type"], fields[f"{op}_stride"] = types[0], 1
    blocks.add(Block(**fields))
  return sorted(blocks, key=repr)


def enumerate_space(space, num_classes: int) -> dict[str, Stage]:
  """Every timed stage a genome of ``space`` can contain, by key.

  Walks the (frames, size, channels) states block by block from every clip
  size, as ``Genome.block_shapes`` does, so only reachable inputs count.
  The head is counted after ``min_blocks`` to ``max_blocks`` blocks.
  """
  blocks = _block_configs(space)
  stages: dict[str, Stage] = {}
  next_states: dict[tuple[int, int, int], set[tuple[int, int, int]]] = {}

  def expand(state):
    """Adds every stage of every block on ``state``; returns its outputs."""
    outputs = set()
    for block in blocks:
      if block.spatial_kernel > 1 and state[1] < block.spatial_stride:
        continue  # Collapses the map: no valid genome holds it here.
      frames, size, channels = state
      for r in range(block.repeats):
        repeat, frames, size, channels = repeat_stages(block, r, frames, size, channels, prefix="")
        for stage in repeat:
          if is_timed(stage):
            stages.setdefault(stage.key(), stage)
      outputs.add((frames, size, channels))
    return outputs

  frontier = {(f, r, 3) for f in space.frame_counts for r in space.resolutions}
  for depth in range(space.max_blocks + 1):
    if depth >= space.min_blocks:
      for frames, size, channels in frontier:
        for pool in space.head_pools:
          params = {"num_classes": num_classes, **({} if pool == "mean" else {"pool": pool})}
          head = Stage("head", frames, size, channels, tuple(sorted(params.items())))
          stages[head.key()] = head
    if depth == space.max_blocks:
      break
    following = set()
    for state in frontier:
      if state not in next_states:
        next_states[state] = expand(state)
      following |= next_states[state]
    frontier = following
  return dict(sorted(stages.items()))


def genome_entries(genomes: Iterable[Genome], num_classes: int) -> dict[str, Stage]:
  """The timed stages of the given genomes, by key."""
  stages = {}
  for genome in genomes:
    for stage in genome_stages(genome, num_classes):
      if is_timed(stage):
        stages.setdefault(stage.key(), dataclasses.replace(stage, name=""))
  return dict(sorted(stages.items()))
