"""Latency tables: enumerating a space, the device script, prediction, the gate."""

import itertools
import json
import os
import shutil
import subprocess
import sys

import gin
import numpy as np
import pytest

from vsearch import configurables  # noqa: F401  (registers every gin configurable)
from vsearch.deploy import profile_tflite
from vsearch.errors import MissingEntryError, UserError
from vsearch.methods import tvn
from vsearch.methods.tvn import latency_table, space_stages
from vsearch.methods.tvn.model import genome_stages
from vsearch.search import runtime_gate
from vsearch.search.runner import Search
from vsearch.search.store import RecordStore

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One block: a 1x1 expansion to 8 or 16 channels, with or without a residual.
TINY = dict(
  resolutions=(8,),
  frame_counts=(2,),
  min_blocks=1,
  max_blocks=1,
  spatial_kernels=(1,),
  temporal_kernels=(1,),
  repeats=(1,),
  filters=(8,),
  expands=(1, 2),
  squeeze_ratios=(0.0,),
  context_gates=(False,),
  skips=(False, True),
)

# The search space of the table the end-to-end tests profile: one block, a
# strided depthwise op, a temporal max-pool, an expansion to 8 or 16.
SEARCH_SPACE = dict(
  resolutions=(32,),
  frame_counts=(2,),
  min_blocks=1,
  max_blocks=1,
  spatial_types=("depthwise",),
  spatial_kernels=(3,),
  spatial_strides=(2,),
  temporal_types=("maxpool",),
  temporal_kernels=(2,),
  temporal_strides=(2,),
  repeats=(1,),
  filters=(8,),
  expands=(1, 2),
  squeeze_ratios=(0.0,),
  context_gates=(False,),
  skips=(False,),
  head_pools=("max_space",),
)
CLASSES = 4


def test_a_tiny_space_counts_exactly():
  stages = space_stages.enumerate_space(tvn.TvnSearchSpace(**TINY), CLASSES)
  # Per expansion e in {1, 2}: the 1x1 conv 3 -> 8e, its residual's 1x1
  # shortcut and ADD, the head on 8e channels. The closing ReLU is fused.
  assert sorted(s.op for s in stages.values()) == sorted(["expand", "shortcut", "add", "head"] * 2)
  assert {
    (s.op, s.frames, s.size, s.channels, s.params) for s in stages.values() if s.op == "expand"
  } == {
    ("expand", 2, 8, 3, (("act", None), ("width", 8))),
    ("expand", 2, 8, 3, (("act", None), ("width", 16))),
  }


def test_enumeration_equals_the_stages_of_every_genome_of_a_space():
  space = tvn.TvnSearchSpace(
    **{
      **TINY,
      "max_blocks": 2,
      "spatial_kernels": (1, 3),
      "spatial_strides": (2,),
      "temporal_kernels": (1, 2),
      "temporal_strides": (2,),
    }
  )
  blocks = space_stages._block_configs(space)
  every_genome = [
    tvn.Genome(8, 2, 1, chain) for n in (1, 2) for chain in itertools.product(blocks, repeat=n)
  ]
  assert len(every_genome) == len(blocks) + len(blocks) ** 2 > 1000
  assert set(space_stages.enumerate_space(space, CLASSES)) == set(
    space_stages.genome_entries(every_genome, CLASSES)
  )


def _genome(filters_1=16):
  return tvn.Genome(
    resolution=32,
    num_frames=4,
    frame_stride=1,
    blocks=(
      tvn.Block("conv", 3, 2, "conv", 2, 1, repeats=1, filters=8, expand=1, skip=True, squeeze=0.5),
      tvn.Block(
        "depthwise",
        3,
        2,
        "maxpool",
        2,
        2,
        repeats=2,
        filters=filters_1,
        expand=2,
        context_gate=True,
        output_activation="hswish",
      ),
    ),
  )


def _hand_made_table(path, genomes, medians, fit_name, fit_ms, null_ms=0.01):
  """A latency_table.json whose stage timings are ``medians`` by key."""
  timings = {
    "entries": {"null": {"median_ms": null_ms}},
    "genomes": {fit_name: {"median_ms": fit_ms}},
  }
  timings["entries"].update({k: {"median_ms": v} for k, v in medians.items()})
  table = {
    "version": 1,
    "device": {"cpu": "hand-made"},
    "settings": {"threads": 1},
    "space": {"num_classes": CLASSES},
    "genomes": {
      name: {
        "genome": g.to_dict(),
        "fit": name == fit_name,
        "stages": [s.key() for s in genome_stages(g, CLASSES) if latency_table.is_timed(s)],
      }
      for name, g in genomes.items()
    },
    "timings": {"int8": timings},
  }
  path.write_text(json.dumps(table))
  return latency_table.LatencyTable(str(path))


def test_predictor_reproduces_a_hand_made_table(tmp_path):
  fit, target = _genome(filters_1=8), _genome(filters_1=16)
  keys = sorted(
    {s.key() for g in (fit, target) for s in genome_stages(g, CLASSES) if latency_table.is_timed(s)}
  )
  medians = {k: 0.01 + 0.1 * (i + 1) for i, k in enumerate(keys)}

  def summed(genome):  # Each stage less the 0.01 ms invoke overhead.
    return sum(
      medians[s.key()] - 0.01 for s in genome_stages(genome, CLASSES) if latency_table.is_timed(s)
    )

  fit_ms = summed(fit) + 2.5
  table = _hand_made_table(tmp_path / "t.json", {"fit000": fit}, medians, "fit000", fit_ms)
  predicted = table.predict(target, "int8")
  # One fit genome: no scale, the fixed cost is what its stages leave out.
  assert predicted.fixed_ms == pytest.approx(2.5) and predicted.scale == 1.0
  assert predicted.latency_ms == pytest.approx(2.5 + summed(target))
  assert table.predict(fit, "int8").latency_ms == pytest.approx(fit_ms)
  # A whole model faster than its stages: the fixed cost stays the invoke overhead.
  faster = _hand_made_table(tmp_path / "f.json", {"fit000": fit}, medians, "fit000", 1.0)
  assert faster.fixed_ms("int8") == pytest.approx(0.01)
  # hswish ends block 1's repeats: timed. ReLU ends block 0's: fused.
  ops = [s.op for s in genome_stages(target, CLASSES) if latency_table.is_timed(s)]
  assert predicted.num_stages == len(ops) and ops.count("activation") == 2


@pytest.mark.parametrize("fixed,scale", [(0.5, 0.9), (0.0, 0.8)])
def test_a_whole_model_is_fitted_as_a_fixed_cost_plus_a_scale_of_its_stages(tmp_path, fixed, scale):
  """Whole models that run at a fraction of their stages timed alone (as on a
  CPU whose cache holds their activations) are predicted at that fraction:
  one additive fixed cost would miss the small ones by far."""
  genomes = {f"fit{i:03d}": _genome(filters_1=f) for i, f in enumerate((8, 16, 24, 32, 48))}
  target = _genome(filters_1=64)
  keys = sorted(
    {
      s.key()
      for g in (*genomes.values(), target)
      for s in genome_stages(g, CLASSES)
      if latency_table.is_timed(s)
    }
  )
  medians = {k: 0.01 + 0.1 * (i + 1) for i, k in enumerate(keys)}

  def summed(genome):
    return sum(
      medians[s.key()] - 0.01 for s in genome_stages(genome, CLASSES) if latency_table.is_timed(s)
    )

  _hand_made_table(tmp_path / "t.json", {**genomes, "target": target}, medians, "", 0.0)
  data = json.loads((tmp_path / "t.json").read_text())
  del data["timings"]["int8"]["genomes"][""]
  for name, genome in genomes.items():
    data["genomes"][name]["fit"] = True
    data["timings"]["int8"]["genomes"][name] = {"median_ms": fixed + scale * summed(genome)}
  (tmp_path / "t.json").write_text(json.dumps(data))
  table = latency_table.LatencyTable(str(tmp_path / "t.json"))
  assert table.calibration("int8") == pytest.approx((fixed, scale), abs=1e-9)
  predicted = table.predict(target, "int8")
  assert predicted.scale == pytest.approx(scale) and predicted.stages_ms == pytest.approx(
    summed(target)
  )
  assert predicted.latency_ms == pytest.approx(fixed + scale * summed(target))


def test_a_missing_entry_names_the_block_and_shape(tmp_path):
  genome = _genome()
  stages = [s for s in genome_stages(genome, CLASSES) if latency_table.is_timed(s)]
  spatial = next(s for s in stages if s.op == "spatial" and "block1" in s.name)
  medians = {s.key(): 0.5 for s in stages if s != spatial}
  table = _hand_made_table(tmp_path / "t.json", {"fit000": genome}, medians, "fit000", fit_ms=3.0)
  with pytest.raises(MissingEntryError) as error:
    table.predict(genome, "int8")
  message = str(error.value)
  assert "blocks[1] repeat 0" in message
  assert "spatial(" in message and "type=depthwise" in message
  assert "on 4 frames x 16x16 x 8 channels" in message
  assert table.sha256[:12] in message and "table_missing" in message
  assert [s.key() for s in table.missing(genome, "int8")] == [spatial.key()]
  with pytest.raises(UserError, match="no float timings"):
    table.predict(genome, "float")


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
  """A table of SEARCH_SPACE prepared here and timed by the device script
  in a process where neither TensorFlow nor vsearch can be imported."""
  out = tmp_path_factory.mktemp("table")
  manifest = latency_table.prepare(
    str(out),
    tvn.TvnSearchSpace(**SEARCH_SPACE),
    CLASSES,
    formats=("int8",),
    num_fit_genomes=2,
    log=lambda _: None,
  )
  shim = tmp_path_factory.mktemp("shim")
  for package in ("tensorflow", "vsearch"):
    (shim / package).mkdir()
    (shim / package / "__init__.py").write_text(
      f"raise ImportError('the device script imported {package}')\n"
    )
  env = {**os.environ, "PYTHONPATH": str(shim)}
  probe = subprocess.run(
    [sys.executable, "-c", "import tensorflow"],
    env=env,
    cwd=str(out),
    capture_output=True,
    text=True,
    check=False,
  )
  assert "the device script imported tensorflow" in probe.stderr
  done = subprocess.run(
    [sys.executable, "profile_tflite.py", ".", "--rounds=2", "--runs=3", "--warmup=1"],
    env=env,
    cwd=str(out),
    capture_output=True,
    text=True,
    check=False,
  )
  assert done.returncode == 0, done.stderr
  return manifest, out / latency_table.TABLE


def test_device_script_times_every_file_without_tensorflow(profiled):
  manifest, path = profiled
  # Null, the spatial and temporal op, two expansions, two heads.
  assert len(manifest["entries"]) == 7
  table = json.loads(path.read_text())
  timings = table["timings"]["int8"]
  assert set(timings["entries"]) == set(manifest["entries"])
  assert set(timings["genomes"]) == {"fit000", "fit001"}
  for entry in [*timings["entries"].values(), *timings["genomes"].values()]:
    assert entry["runs"] == 6 and 0 < entry["p10_ms"] <= entry["median_ms"]
  assert table["settings"] == {
    "threads": 1,
    "use_xnnpack": True,
    "warmup": 1,
    "runs": 3,
    "rounds": 2,
  }
  assert table["device"]["litert"] and table["device"]["cpu_count"] >= 1


def test_a_file_litert_cannot_run_is_named_and_the_rest_are_timed(profiled, tmp_path):
  manifest, path = profiled
  folder = tmp_path / "table"
  shutil.copytree(path.parent, folder)
  files = manifest["files"]["int8"]
  fit = tvn.Genome.from_dict(manifest["genomes"]["fit000"]["genome"])
  stage = next(s for s in genome_stages(fit, CLASSES) if latency_table.is_timed(s))
  for relative in (files["genomes"]["fit001"], files["entries"][stage.key()]):
    (folder / relative).write_bytes(b"not a flatbuffer" * 8)
  lines = []
  table = profile_tflite.profile(str(folder), warmup=1, runs=1, rounds=2, log=lines.append)
  [message] = table["failed"]["int8"]["genomes"].values()
  assert list(table["failed"]["int8"]["genomes"]) == ["fit001"] and message
  assert list(table["failed"]["int8"]["entries"]) == [stage.key()]
  assert set(table["timings"]["int8"]["genomes"]) == {"fit000"}
  assert set(table["timings"]["int8"]["entries"]) == set(manifest["entries"]) - {stage.key()}
  assert sum("cannot run" in line and "fit001" in line for line in lines) == 1  # tried once
  (folder / latency_table.TABLE).write_text(json.dumps(table))
  loaded = latency_table.LatencyTable(str(folder / latency_table.TABLE))
  assert set(loaded.measured_genomes("int8")) == {"fit000"}
  with pytest.raises(MissingEntryError, match="the device could not run"):
    loaded.predict(fit, "int8")


def _calibration(genome):
  clips = np.random.default_rng(0).uniform(
    -1, 1, (4, genome.num_frames, genome.resolution, genome.resolution, 3)
  )
  return clips.astype(np.float32)


def test_gate_measures_locally_and_marks_a_genome_the_table_lacks(profiled):
  _, path = profiled
  gate = runtime_gate.RuntimeGate(
    latency_source="table", latency_table=str(path), table_missing="measure"
  )
  method = tvn.TvnMethod(space=tvn.TvnSearchSpace(**SEARCH_SPACE))
  outside = dataclasses_replace_expand(method.sample(np.random.default_rng(0)))
  metrics = gate.check(
    lambda: method.build(outside, CLASSES), _calibration(outside), genome=outside
  )
  assert metrics["latency_source"] == "measured_locally"
  assert metrics["latency_ms"] > 0 and metrics["latency"]["host"]
  assert any("blocks[0] repeat 0: expand(" in m for m in metrics["latency_table_missing"])
  strict = runtime_gate.RuntimeGate(latency_source="table", latency_table=str(path))
  with pytest.raises(MissingEntryError, match="blocks"):
    strict.check(lambda: method.build(outside, CLASSES), _calibration(outside), genome=outside)


def dataclasses_replace_expand(genome):
  """The genome with an expansion the table's space does not hold."""
  import dataclasses

  block = dataclasses.replace(genome.blocks[0], expand=3)
  return dataclasses.replace(genome, blocks=(block,))


def test_search_with_the_table_as_latency_source_says_so(profiled, tmp_path):
  _, path = profiled
  sha256 = latency_table.LatencyTable(str(path)).sha256
  space = [f"TvnSearchSpace.{k} = {v!r}" for k, v in SEARCH_SPACE.items()]
  gin.add_config_file_search_path(REPO)
  gin.parse_config_files_and_bindings(
    [
      os.path.join(REPO, "gin", "tvn", "smoke_latency_table.gin"),
      os.path.join(REPO, "tests", "data", "tiny_search.gin"),
    ],
    [
      f"load_dataset.data_dir = '{tmp_path / 'data'}'",
      "synthetic_motion_config.num_frames = 4",
      "Search.num_candidates = 2",
      "Evolution.population_size = 2",
      "RuntimeGate.max_latency_ms = 1e6",
      "RuntimeGate.num_calibration_clips = 4",
      "RuntimeGate.max_eval_clips = 8",
      f"RuntimeGate.latency_table = '{path}'",
      "RuntimeGate.table_missing = 'error'",
      *space,
    ],
  )
  Search(workdir=str(tmp_path / "work")).run()
  records = RecordStore(str(tmp_path / "work")).read_all()
  assert [r.status for r in records] == ["ok", "ok"]
  for record in records:
    assert record.metrics["latency_source"] == "table"
    assert record.metrics["latency_table"] == sha256
    assert record.metrics["latency"]["table"]["sha256"] == sha256
    assert record.metrics["latency_ms"] > 0
    assert "accuracy_int8" in record.metrics
