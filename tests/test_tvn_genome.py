"""TVN genome: validation, JSON round trip, search space, sampling, mutation."""

import collections
import dataclasses
import json
import re

import gin
import numpy as np
import pytest

from vsearch.errors import InvalidGenomeError, UserError
from vsearch.methods import tvn, zoo
from vsearch.methods.tvn import method as tvn_method

# Block field -> search-space attribute, to check values against the space.
_BLOCK_CHOICES = tvn_method._BLOCK_CHOICES


def _block(**changes):
  fields = dict(
    spatial_type="conv",
    spatial_kernel=3,
    spatial_stride=2,
    temporal_type="conv",
    temporal_kernel=3,
    temporal_stride=1,
    repeats=2,
    filters=8,
    expand=2,
  )
  fields.update(changes)
  return tvn.Block(**fields)


def _genome(blocks=None, **changes):
  fields = dict(
    resolution=32,
    num_frames=4,
    frame_stride=2,
    blocks=(_block(), _block(temporal_type="maxpool")) if blocks is None else blocks,
  )
  fields.update(changes)
  return tvn.Genome(**fields)


def _tiny_space(**changes):
  fields = dict(
    resolutions=(16, 32),
    frame_counts=(1, 2, 4),
    frame_strides=(1, 2),
    min_blocks=1,
    max_blocks=3,
    spatial_kernels=(1, 3),
    spatial_strides=(1, 2),
    temporal_kernels=(1, 2, 3),
    temporal_strides=(1, 2),
    repeats=(1, 2),
    filters=(4, 8),
    expands=(1, 2),
    squeeze_ratios=(0.0, 0.5),
    inverted_bottlenecks=(False, True),
    activations=("relu", "hswish"),
  )
  fields.update(changes)
  return tvn.TvnSearchSpace(**fields)


@pytest.mark.parametrize(
  "field,value,allowed",
  [
    ("spatial_type", "std", "'conv'"),
    ("temporal_type", "1d", "'maxpool'"),
    ("spatial_type", None, "'depthwise'"),
    ("spatial_kernel", 0, ">= 1"),
    ("temporal_kernel", 2.0, "an int"),
    ("filters", True, "an int"),
    ("repeats", "2", "an int"),
    ("squeeze", 1.5, "[0, 1]"),
    ("squeeze", -0.1, "[0, 1]"),
    ("skip", 1, "true or false"),
    ("context_gate", "yes", "true or false"),
    ("output_activation", "swish", "'hswish'"),
  ],
)
def test_block_errors_name_the_field_and_what_is_allowed(field, value, allowed):
  with pytest.raises(InvalidGenomeError, match=re.escape(field)) as e:
    _block(**{field: value})
  assert allowed in str(e.value)


def test_published_names_get_a_hint():
  with pytest.raises(InvalidGenomeError, match="published 'depth' is 'depthwise'"):
    _block(spatial_type="depth")


@pytest.mark.parametrize("op", ["spatial", "temporal"])
def test_a_kernel_one_op_cannot_stride(op):
  with pytest.raises(InvalidGenomeError, match=f"{op}_stride"):
    _block(**{f"{op}_kernel": 1, f"{op}_stride": 2})
  assert getattr(_block(**{f"{op}_kernel": 1, f"{op}_stride": 1}), f"{op}_kernel") == 1


@pytest.mark.parametrize(
  "field,value",
  [
    ("resolution", 0),
    ("num_frames", 2.5),
    ("frame_stride", None),
    ("blocks", ()),
    ("blocks", "abc"),
  ],
)
def test_genome_errors_name_the_field(field, value):
  with pytest.raises(InvalidGenomeError, match=field):
    _genome(**{field: value})


def test_blocks_must_be_blocks():
  with pytest.raises(InvalidGenomeError, match=r"blocks\[1\]"):
    _genome(blocks=(_block(), {"filters": 8}))


def test_spatial_collapse_is_rejected_and_names_the_block():
  four = _block(spatial_stride=4, spatial_kernel=4)
  # 32 -> 8 -> 2: a third stride of 4 would collapse the 2x2 map.
  assert _genome(blocks=(four, four)).block_shapes()[-1] == (4, 2)
  with pytest.raises(InvalidGenomeError, match=r"blocks\[2\]\.spatial_stride.*32 -> 8 -> 2"):
    _genome(blocks=(four, four, four))
  # A stride equal to the size still leaves one pixel.
  assert _genome(blocks=(four, four, _block(spatial_stride=2))).block_shapes()[-1][1] == 1


def test_block_shapes_follow_strides_and_skip_temporal_ops_at_one_frame():
  genome = _genome(
    num_frames=8,
    blocks=(
      _block(spatial_stride=2, temporal_stride=2),  # 8x32 -> 4x16
      _block(spatial_stride=3, temporal_stride=3),  # -> 2x6 (ceil)
      _block(spatial_kernel=1, spatial_stride=1, temporal_stride=3),  # 1x6
      _block(temporal_stride=2),  # 1x3: one frame, no op
    ),
  )
  assert genome.block_shapes() == [(4, 16), (2, 6), (1, 6), (1, 3)]


def test_json_round_trip():
  genomes = [zoo.genome(n) for n in zoo.names("tvn")]
  method = tvn.TvnMethod()
  genomes += [method.sample(np.random.default_rng(s)) for s in range(20)]
  for genome in genomes:
    text = json.dumps(genome.to_dict())
    again = tvn.Genome.from_dict(json.loads(text))
    assert again == genome
    assert json.dumps(again.to_dict()) == text
  assert isinstance(
    tvn.TvnMethod().genome_from_dict(json.loads(json.dumps(genomes[0].to_dict()))), tvn.Genome
  )


def test_from_dict_names_unknown_and_missing_keys():
  data = _genome().to_dict()
  data["image_size"] = 224
  with pytest.raises(InvalidGenomeError, match="unknown keys.*image_size"):
    tvn.Genome.from_dict(data)
  data = _genome().to_dict()
  del data["blocks"][1]["expand"]
  data["blocks"][1]["non_local"] = 0
  with pytest.raises(
    InvalidGenomeError,
    match=r"blocks\[1\]: unknown keys \['non_local'\] and "
    r"missing keys \['expand'\]",
  ):
    tvn.Genome.from_dict(data)
  del data["blocks"]
  with pytest.raises(InvalidGenomeError, match=r"missing keys \['blocks'\]"):
    tvn.Genome.from_dict(data)


@pytest.mark.parametrize(
  "path,value,message",
  [
    (("blocks", 1, "spatial_kernel"), "3", r"blocks\[1\]\.spatial_kernel"),
    (("blocks", 0, "skip"), 0, r"blocks\[0\]\.skip.*true or false"),
    (("resolution",), 32.0, "resolution"),
    (("blocks",), {"a": 1}, "blocks"),
    (("blocks", 0), [1, 2], r"blocks\[0\]"),
  ],
)
def test_from_dict_rejects_wrong_types_with_the_path(path, value, message):
  data = _genome().to_dict()
  target = data
  for key in path[:-1]:
    target = target[key]
  target[path[-1]] = value
  with pytest.raises(InvalidGenomeError, match=message):
    tvn.Genome.from_dict(data)


def test_from_dict_rejects_a_non_object():
  with pytest.raises(InvalidGenomeError, match="genome"):
    tvn.Genome.from_dict([1, 2])


def test_space_rejects_invalid_choices():
  with pytest.raises(UserError, match="spatial_types"):
    tvn.TvnSearchSpace(spatial_types=("conv", "std"))
  with pytest.raises(UserError, match="filters"):
    tvn.TvnSearchSpace(filters=())
  with pytest.raises(UserError, match="min_blocks"):
    tvn.TvnSearchSpace(min_blocks=4, max_blocks=3)


def test_space_is_gin_configurable():
  gin.parse_config("""
      TvnSearchSpace.resolutions = [48]
      TvnSearchSpace.max_blocks = 3
      TvnMethod.space = @TvnSearchSpace()
  """)
  method = tvn.TvnMethod()
  assert method.space.resolutions == (48,)
  assert method.sample(np.random.default_rng(0)).resolution == 48


def test_head_pool_is_read_written_and_checked():
  genome = zoo.genome("tvn1")
  assert genome.head_pool == "mean" and "head_pool" not in genome.to_dict()
  max_head = dataclasses.replace(genome, head_pool="max_space")
  assert max_head.to_dict()["head_pool"] == "max_space"
  assert tvn.Genome.from_dict(max_head.to_dict()) == max_head
  with pytest.raises(InvalidGenomeError, match="head_pool: got 'sum'"):
    dataclasses.replace(genome, head_pool="sum")


def test_a_space_of_both_heads_samples_and_mutates_both():
  method = tvn.TvnMethod(_tiny_space(head_pools=("mean", "max_space")))
  heads = {method.sample(np.random.default_rng(s)).head_pool for s in range(40)}
  assert heads == {"mean", "max_space"}
  # One choice draws nothing from the generator: the same seed, the same blocks.
  one = tvn.TvnMethod(_tiny_space(head_pools=("max_space",))).sample(np.random.default_rng(3))
  plain = tvn.TvnMethod(_tiny_space()).sample(np.random.default_rng(3))
  assert dataclasses.replace(one, head_pool="mean") == plain
  changes = [method.mutate(plain, np.random.default_rng(s))[1] for s in range(200)]
  assert any(c.startswith("head_pool 'mean' -> 'max_space'") for c in changes)


def _assert_in_space(genome, space):
  assert space.min_blocks <= len(genome.blocks) <= space.max_blocks
  assert genome.resolution in space.resolutions
  assert genome.num_frames in space.frame_counts
  assert genome.frame_stride in space.frame_strides
  for block in genome.blocks:
    for field, attr in _BLOCK_CHOICES.items():
      value = getattr(block, field)
      kernel_one = (
        field.endswith("_stride") and getattr(block, field.replace("stride", "kernel")) == 1
      )
      assert value in getattr(space, attr) or (kernel_one and value == 1)


@pytest.mark.parametrize("space", [tvn.TvnSearchSpace(), _tiny_space()], ids=["default", "tiny"])
def test_samples_are_valid_and_in_the_space(space):
  method = tvn.TvnMethod(space)
  genomes = [method.sample(np.random.default_rng(s)) for s in range(200)]
  for genome in genomes:
    _assert_in_space(genome, space)
    assert tvn.Genome.from_dict(genome.to_dict()) == genome
  assert len({json.dumps(g.to_dict()) for g in genomes}) > 150
  assert method.sample(np.random.default_rng(7)) == genomes[7]


def test_sampling_gives_up_with_a_clear_error():
  method = tvn.TvnMethod(
    _tiny_space(resolutions=(2,), spatial_kernels=(3,), spatial_strides=(2,), min_blocks=3),
    max_attempts=20,
  )
  with pytest.raises(UserError, match="No valid TVN genome"):
    method.sample(np.random.default_rng(0))


def _kind(description):
  if description.startswith(("add block", "remove block")):
    return description.split()[0]
  return "block" if description.startswith("blocks[") else "global"


def _check_child(parent, child, description):
  assert isinstance(child, tvn.Genome) and child != parent and description
  assert tvn.Genome.from_dict(json.loads(json.dumps(child.to_dict()))) == child
  found = re.match(r"blocks\[(\d+)\]\.(\w+) (\S+) -> (\S+)", description)
  if found:  # The description says what really changed.
    i, field, old, new = found.groups()
    assert repr(getattr(parent.blocks[int(i)], field)) == old
    assert repr(getattr(child.blocks[int(i)], field)) == new
  found = re.match(r"(resolution|num_frames|frame_stride) (\S+) -> (\S+)", description)
  if found:
    assert repr(getattr(child, found.group(1))) == found.group(3)
  if description.startswith("add block"):
    assert len(child.blocks) == len(parent.blocks) + 1
  if description.startswith("remove block"):
    assert len(child.blocks) == len(parent.blocks) - 1


@pytest.mark.parametrize("space", [tvn.TvnSearchSpace(), _tiny_space()], ids=["default", "tiny"])
def test_mutation_is_valid_differs_and_covers_every_kind(space):
  method = tvn.TvnMethod(space)
  kinds = collections.Counter()
  parent = method.sample(np.random.default_rng(0))
  for seed in range(300):
    rng = np.random.default_rng(seed)
    child, description = method.mutate(parent, rng, progress=seed / 300)
    _check_child(parent, child, description)
    _assert_in_space(child, space)
    assert space.min_blocks <= len(child.blocks) <= space.max_blocks
    kinds[_kind(description)] += 1
    parent = child  # Walk, so parents of every size are mutated.
  assert set(kinds) == {"block", "global", "add", "remove"}, kinds


def test_mutation_is_deterministic_given_the_generator():
  method = tvn.TvnMethod()
  parent = zoo.genome("tvn3")
  first = method.mutate(parent, np.random.default_rng(5), 0.0)
  assert method.mutate(parent, np.random.default_rng(5), 0.0) == first


@pytest.mark.parametrize("name", zoo.names("tvn"))
@pytest.mark.parametrize("space", [tvn.TvnSearchSpace(), _tiny_space()], ids=["default", "tiny"])
def test_zoo_genomes_mutate_even_outside_the_space(name, space):
  method = tvn.TvnMethod(space)
  parent = zoo.genome(name)
  for seed in range(30):
    child, description = method.mutate(parent, np.random.default_rng(seed), 0.0)
    _check_child(parent, child, description)


def test_mutation_respects_the_block_counts():
  block_count = tvn.TvnMethod(_tiny_space(min_blocks=2, max_blocks=2))
  parent = block_count.sample(np.random.default_rng(0))
  for seed in range(50):
    child, description = block_count.mutate(parent, np.random.default_rng(seed))
    assert len(child.blocks) == 2, description


def test_mutation_leaves_dead_temporal_fields_alone():
  # One frame: no temporal op can run, so temporal fields are not mutated.
  method = tvn.TvnMethod(_tiny_space(frame_counts=(1,)))
  parent = _genome(num_frames=1)
  changed = collections.Counter()
  for seed in range(100):
    _, description = method.mutate(parent, np.random.default_rng(seed))
    changed[re.match(r"(\S+)", description).group(1)] += 1
  assert not [c for c in changed if c.startswith("blocks[") and "temporal" in c]
  assert sum(c.startswith("blocks[") for c in changed) > 5, changed


def test_mutation_gives_up_when_the_space_allows_no_change():
  genome = _genome(blocks=(_block(),))
  block = genome.blocks[0]
  space = tvn.TvnSearchSpace(
    **{attr: (getattr(block, field),) for field, attr in _BLOCK_CHOICES.items()},
    resolutions=(32,),
    frame_counts=(4,),
    frame_strides=(2,),
    min_blocks=1,
    max_blocks=1,
  )
  with pytest.raises(UserError, match="no valid mutation"):
    tvn.TvnMethod(space, max_attempts=50).mutate(genome, np.random.default_rng(0))


def test_kernel_one_mutation_drops_the_stride():
  method = tvn.TvnMethod(_tiny_space())
  seen = False
  for seed in range(300):
    parent = _genome(blocks=(_block(spatial_stride=2),))
    child, description = method.mutate(parent, np.random.default_rng(seed))
    if description.startswith("blocks[0].spatial_kernel 3 -> 1"):
      assert child.blocks[0].spatial_stride == 1
      assert "spatial_stride 2 -> 1" in description
      seen = True
  assert seen


def test_clip_spec():
  spec = tvn.TvnMethod().clip_spec(_genome(resolution=48, num_frames=6, frame_stride=3))
  assert (spec.num_frames, spec.frame_stride, spec.resolution) == (6, 3, 48)
  assert spec.input_shape == (6, 48, 48, 3)


def test_genomes_are_immutable_and_hashable():
  genome = _genome()
  with pytest.raises(dataclasses.FrozenInstanceError):
    genome.resolution = 64
  assert isinstance(genome.blocks, tuple)
  assert len({genome, _genome()}) == 1


def test_min_output_size_keeps_narrow_genomes_out_of_samples_and_children():
  space = _tiny_space(resolutions=(16,), spatial_strides=(2,), min_output_size=3, max_blocks=3)
  method = tvn.TvnMethod(space)
  for seed in range(50):
    genome = method.sample(np.random.default_rng(seed))
    assert genome.block_shapes()[-1][1] >= 3
    child, _ = method.mutate(genome, np.random.default_rng(seed))
    assert child.block_shapes()[-1][1] >= 3
  with pytest.raises(UserError, match="min_output_size"):
    _tiny_space(min_output_size=0)
