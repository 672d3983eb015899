"""EvaNet genome: validation, JSON round trip, sampling, mutation, schedule, distance."""

import dataclasses
import json

import numpy as np
import pytest

from vsearch.errors import InvalidGenomeError, UserError
from vsearch.methods import evanet, zoo


def _stage(branches=None, repeats=2, filters=16):
  if branches is None:
    branches = (evanet.Branch("1x1"), evanet.Branch("conv", conv_type="itgm", time=5))
  return evanet.Stage(repeats=repeats, filters=filters, branches=branches)


def _genome(**changes):
  fields = dict(
    stem_conv_type="3d",
    stem_time=3,
    pool1_time=1,
    pool3_time=3,
    pool4_time=1,
    stem_filters=8,
    stages=tuple(_stage() for _ in range(4)),
  )
  fields.update(changes)
  return evanet.Genome(**fields)


def _tiny_method(**changes):
  space = dict(repeats=(1, 2, 3), max_branches=4, stem_filters=8, stage_filters=(16, 16, 32, 32))
  space.update(changes)
  return evanet.EvanetMethod(space=evanet.EvanetSearchSpace(**space), num_frames=8, resolution=32)


@pytest.mark.parametrize(
  "make,field",
  [
    (lambda: _genome(stem_conv_type="conv"), "stem_conv_type"),
    (lambda: _genome(stem_conv_type=1), "stem_conv_type"),
    (lambda: _genome(pool3_time=2), "pool3_time"),
    (lambda: _genome(stem_time=13), "stem_time"),
    (lambda: _genome(stages=(_stage(),) * 3), "stages"),
    (lambda: evanet.Branch("conv", conv_type="4d", time=3), "conv_type"),
    (lambda: evanet.Branch("conv", conv_type="3d", time=4), "time"),
    (lambda: evanet.Branch("conv2", conv_type="3d", time=3, conv_type2="3d"), "time2"),
    (lambda: evanet.Branch("1x1", time=3), "time"),
    (lambda: evanet.Branch("pool", time=3), "type"),
    (lambda: _stage(branches=()), "branches"),
    (lambda: _stage(repeats=0), "repeats"),
  ],
)
def test_invalid_fields_are_named(make, field):
  with pytest.raises(InvalidGenomeError, match=rf"^{field}: got"):
    make()


def test_published_conv_names_get_a_hint():
  with pytest.raises(InvalidGenomeError, match="'itgm'"):
    evanet.Branch("conv", conv_type="tgm", time=3)


def test_zero_width_stage_is_rejected_before_any_build():
  # 3 branches sharing 2 channels: 0 each.
  with pytest.raises(
    InvalidGenomeError,
    match=r"^branches: 3 branches share "
    r"filters=2, 0 channel\(s\) each",
  ):
    _stage(branches=[evanet.Branch("1x1")] * 3, filters=2)
  # A conv2 branch needs 4 channels (its first 1x1 runs at a quarter).
  conv2 = evanet.Branch("conv2", conv_type="3d", time=1, conv_type2="3d", time2=1)
  with pytest.raises(InvalidGenomeError, match="'conv2' branch needs at least 4"):
    _stage(branches=[conv2, evanet.Branch("1x1")], filters=7)
  assert _stage(branches=[conv2, evanet.Branch("1x1")], filters=8).width == 8


def test_from_dict_names_the_path_of_a_bad_field():
  data = _genome().to_dict()
  data["stages"][2]["branches"][1]["time"] = 4
  with pytest.raises(
    InvalidGenomeError,
    match=r"^stages\[2\]\.branches\[1\]"
    r"\.time: got 4",
  ):
    evanet.Genome.from_dict(data)
  data = _genome().to_dict()
  data["stages"][0]["branches"] = []
  with pytest.raises(InvalidGenomeError, match=r"^stages\[0\]\.branches: got"):
    evanet.Genome.from_dict(data)
  data = _genome().to_dict()
  data["stages"][1]["branches"][0]["kernel"] = 3
  with pytest.raises(InvalidGenomeError, match=r"unknown keys \['kernel'\]"):
    evanet.Genome.from_dict(data)


@pytest.mark.parametrize("name", ["evanet_a", "evanet_b"])
def test_json_round_trip(name):
  genome = zoo.genome(name)
  text = json.dumps(genome.to_dict())
  assert evanet.Genome.from_dict(json.loads(text)) == genome
  assert zoo.entry(name).method == "evanet"


def test_zoo_entries_have_the_published_widths():
  widths = {n: [s.width for s in zoo.genome(n).stages] for n in ("evanet_a", "evanet_b")}
  assert widths == {"evanet_a": [256, 510, 1024, 2046], "evanet_b": [255, 510, 1023, 2048]}


def test_samples_and_mutations_stay_valid_over_many_seeds():
  method = _tiny_method()
  kinds = set()
  for seed in range(60):
    rng = np.random.default_rng(seed)
    genome = method.sample(rng)
    assert evanet.Genome.from_dict(genome.to_dict()) == genome
    for step in range(5):
      child, change = method.mutate(genome, rng, progress=step / 4)
      assert child != genome and change
      # Re-validates every field and the width rule.
      assert evanet.Genome.from_dict(json.loads(json.dumps(child.to_dict()))) == child
      for stage in child.stages:
        assert 1 <= len(stage.branches) <= 4 and stage.repeats in (1, 2, 3)
      kinds.update(
        c.split(" ")[1] if c.startswith("res") else c.split(" ")[0] for c in change.split("; ")
      )
      genome = child
  # Every kind of change shows up: add/remove branches, repeats, types, times.
  assert {"add", "remove", "repeats", "branch", "stem_time", "pool1_time"} <= kinds


def test_zoo_genomes_mutate_too():
  method = evanet.EvanetMethod()
  rng = np.random.default_rng(0)
  for name in ("evanet_a", "evanet_b"):
    child, _ = method.mutate(zoo.genome(name), rng, progress=0.0)
    assert child != zoo.genome(name)


def test_schedule_mutates_more_early_than_late():
  counts = [
    evanet.mutation_schedule(p, early=5, late=1, decay_until=0.5) for p in (0.0, 0.25, 0.5, 0.9)
  ]
  assert counts == [5, 3, 1, 1]
  method = _tiny_method()
  parent = method.sample(np.random.default_rng(0))
  early = [
    method.mutate(parent, np.random.default_rng(s), 0.0)[1].count("; ") + 1 for s in range(20)
  ]
  late = [
    method.mutate(parent, np.random.default_rng(s), 1.0)[1].count("; ") + 1 for s in range(20)
  ]
  assert set(early) == {4} and set(late) == {1}
  distance = lambda p: np.mean(
    [
      evanet.genome_distance(parent, method.mutate(parent, np.random.default_rng(s), p)[0])
      for s in range(20)
    ]
  )
  assert distance(0.0) > 2 * distance(1.0)


def test_schedule_is_gin_configurable():
  import gin

  gin.parse_config("mutation_schedule.early = 2\nmutation_schedule.late = 2")
  method = _tiny_method()
  parent = method.sample(np.random.default_rng(1))
  _, change = method.mutate(parent, np.random.default_rng(1), progress=0.9)
  assert change.count("; ") == 1


def test_space_rejects_bad_choices():
  with pytest.raises(UserError, match="temporal_lengths"):
    evanet.EvanetSearchSpace(temporal_lengths=(1, 2))
  with pytest.raises(UserError, match="stage_filters"):
    evanet.EvanetSearchSpace(stage_filters=(8, 8))
  with pytest.raises(UserError, match="stream"):
    evanet.EvanetMethod(stream="depth")


def test_distance_is_a_metric_that_counts_edits():
  a = _genome()
  assert evanet.genome_distance(a, a) == 0
  # Branch order does not matter: parallel branches are concatenated.
  stage = a.stages[0]
  swapped = dataclasses.replace(
    a, stages=(dataclasses.replace(stage, branches=stage.branches[::-1]),) + a.stages[1:]
  )
  assert evanet.genome_distance(a, swapped) == 0
  more = dataclasses.replace(
    a,
    stages=(
      dataclasses.replace(stage, repeats=4, branches=stage.branches + (evanet.Branch("1x1"),)),
    )
    + a.stages[1:],
  )
  assert evanet.genome_distance(a, more) == 2 + 1
  other = dataclasses.replace(a, pool4_time=9)
  assert evanet.genome_distance(more, other) == 3 + 1
  ab = evanet.genome_distance(zoo.genome("evanet_a"), zoo.genome("evanet_b"))
  assert ab == evanet.genome_distance(zoo.genome("evanet_b"), zoo.genome("evanet_a")) > 10
