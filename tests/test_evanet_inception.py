"""EvaNet's I3D-like meta-architecture: genome, space, mutation, builder, TFLite, gin."""

import dataclasses
import json
import os

import gin
import numpy as np
import pytest
import tensorflow as tf

from vsearch.deploy import latency, quantize
from vsearch.errors import InvalidGenomeError, UserError
from vsearch.methods import evanet, registry, zoo
from vsearch.methods.evanet import inception

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = 5
# Every kind of branch and conv (two a module: 4 channels each at 8 filters).
_BRANCHES = (
  evanet.Branch("1x1"),
  evanet.Branch("maxpool", time=3),
  evanet.Branch("conv", conv_type="3d", time=3),
  evanet.Branch("conv", conv_type="2plus1d", time=5),
  evanet.Branch("conv", conv_type="itgm", time=5),
  evanet.Branch("conv2", conv_type="itgm", time=3, conv_type2="3d", time2=1),
  evanet.Branch("conv2", conv_type="2plus1d", time=3, conv_type2="itgm", time2=5),
)


def _i3d_like(
  filters=16, stem_conv_type="3d", stem_time=7, branches=None
) -> evanet.InceptionGenome:
  """I3D's module shape: 1x1 | 1x1 -> 3x3x3 | 1x1 -> 3x3x3 | pool -> 1x1."""
  branches = branches or (
    evanet.Branch("1x1"),
    evanet.Branch("conv", conv_type="3d", time=3),
    evanet.Branch("conv", conv_type="3d", time=3),
    evanet.Branch("maxpool", time=3),
  )
  modules = tuple(evanet.Module(branches, filters) for _ in range(inception.NUM_MODULES))
  return evanet.InceptionGenome(
    stem_conv_type, stem_time, modules, stem_filters=8, stem_out_filters=12
  )


def _tiny_method(**space):
  space = {
    "max_branches": 3,
    "stem_filters": 8,
    "stem_out_filters": 12,
    "module_filters": (12, 12, 16, 16, 16, 16, 24, 24, 24),
    **space,
  }
  return evanet.EvanetMethod(
    space=evanet.InceptionSearchSpace(**space),
    num_frames=8,
    resolution=32,
    dropout_rate=0.0,
    meta_architecture="inception",
  )


def _out(model, name):
  return tuple(model.get_layer(name).output.shape)


def test_the_model_has_the_i3d_skeleton():
  tf.keras.backend.clear_session()
  genome = _i3d_like()
  model = evanet.build_inception_model(genome, CLASSES, (16, 64, 64, 3), dropout_rate=0.0)
  names = [layer.name for layer in model.layers]
  modules = [n for n in names if n.startswith("mixed_") and n.count("_") == 1]
  assert modules == ["mixed_" + m for m in ("3b", "3c", "4b", "4c", "4d", "4e", "4f", "5b", "5c")]
  # Stem: stride 2 in T, H, W; pools 1 and 2 stride H, W; pool 3 (3x3x3) and
  # pool 4 (2x2x2) stride T, H, W by 2, after modules 3c and 4f.
  assert _out(model, "stem_relu") == (None, 8, 32, 32, 8)
  assert _out(model, "pool1") == (None, 8, 16, 16, 8)
  assert _out(model, "stem_3x3_relu") == (None, 8, 16, 16, 12)
  assert _out(model, "pool2") == (None, 8, 8, 8, 12)
  for name, shape in (("3b", 8), ("3c", 8), ("4b", 4), ("4f", 4), ("5b", 2), ("5c", 2)):
    assert _out(model, f"mixed_{name}") == (None, shape, shape, shape, 16)
  order = lambda name: names.index(name)
  assert order("mixed_3c") < order("pool3") < order("mixed_4b")
  assert order("mixed_4f") < order("pool4") < order("mixed_5b")
  assert model.get_layer("pool3_time").pool_size == (3, 1)
  assert model.get_layer("pool3_space").pool_size == (3, 3)
  assert model.get_layer("pool4_time").pool_size == (2, 1)
  assert model.get_layer("pool4_space").pool_size == (2, 2)
  assert model.get_layer("pool1_space").strides == (2, 2) and "pool1_time" not in names
  # The stem's 3-D convs: (stem_time, 7, 7) and (3, 3, 3); the module's convs (3, 3, 3).
  assert model.get_layer("stem").kernel.shape == (7, 7, 7, 3, 8)
  assert model.get_layer("stem_1x1").kernel.shape == (1, 1, 1, 8, 8)
  assert model.get_layer("stem_3x3").kernel.shape == (3, 3, 3, 8, 12)
  assert model.get_layer("mixed_4b_b1_conv").kernel.shape == (3, 3, 3, 2, 4)
  assert model.get_layer("mixed_4b_b3_pool_time").pool_size == (3, 1)
  # 2-D ops only: no Conv3D or 3-D pooling for TFLite to run in float.
  assert not any(
    isinstance(layer, (tf.keras.layers.Conv3D, tf.keras.layers.MaxPooling3D))
    for layer in model.layers
  )
  assert model.output_shape == (None, CLASSES)
  clip = np.random.default_rng(0).uniform(-1, 1, (2, 16, 64, 64, 3)).astype(np.float32)
  logits = model(clip, training=False)
  assert logits.shape == (2, CLASSES) and np.all(np.isfinite(logits))


def _trainable_params(genome, classes):
  """Trainable parameters counted from the rules alone (3-D convs without
  bias, BN scale and offset; a branch of width w: 1x1 = c*w, conv = c*w/2 +
  27*(w/2)*w, pool = c*w), not from the builder."""
  bn = lambda c: 2 * c
  f0, f1 = genome.stem_filters, genome.stem_out_filters
  total = 7 * 49 * 3 * f0 + bn(f0) + f0 * f0 + bn(f0) + 27 * f0 * f1 + bn(f1)
  c_in = f1
  for module in genome.modules:
    w = module.branch_width
    for branch in module.branches:
      if branch.type == "conv":
        total += c_in * (w // 2) + bn(w // 2) + branch.time * 9 * (w // 2) * w + bn(w)
      else:
        total += c_in * w + bn(w)
    c_in = module.width
  return total + c_in * classes + classes


def test_parameters_follow_from_the_genome():
  tf.keras.backend.clear_session()
  genome = _i3d_like(filters=18)  # 4 branches of 4: two channels dropped per module.
  model = evanet.build_inception_model(genome, CLASSES, (8, 32, 32, 3))
  trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
  assert trainable == _trainable_params(genome, CLASSES)
  assert _out(model, "mixed_5c")[-1] == 16


def test_sampling_and_mutation_stay_in_the_space():
  method = _tiny_method(
    conv_types=("3d", "itgm"), temporal_lengths=(1, 3, 5), branch_types=("1x1", "conv", "maxpool")
  )
  kinds = set()
  for seed in range(40):
    rng = np.random.default_rng(seed)
    genome = method.sample(rng)
    for step in range(5):
      assert isinstance(genome, evanet.InceptionGenome)
      assert genome.stem_conv_type in ("3d", "itgm") and genome.stem_time in (1, 3, 5)
      assert (genome.stem_filters, genome.stem_out_filters) == (8, 12)
      assert [m.filters for m in genome.modules] == list(method.space.module_filters)
      for module in genome.modules:
        assert 1 <= len(module.branches) <= 3
        for b in module.branches:
          assert b.type in ("1x1", "conv", "maxpool")
          assert b.conv_type in (None, "3d", "itgm") and b.time in (None, 1, 3, 5)
      # Re-validates every field and the width rule, through JSON.
      text = json.dumps(genome.to_dict())
      assert method.genome_from_dict(json.loads(text)) == genome
      child, change = method.mutate(genome, rng, progress=step / 4)
      assert child != genome and change
      for c in change.split("; "):
        kinds.add(c.split(" ")[1] if c.startswith("mixed_") else c.split(" ")[0])
      genome = child
  # Branch types, conv types, temporal lengths, add/remove, the stem's;
  # never repeats or pools, which this meta-architecture does not have.
  assert {"add", "remove", "branch", "stem_time", "stem_conv_type"} <= kinds
  assert not {k for k in kinds if "repeats" in k or "pool" in k}


def test_every_mutation_kind_but_repeats_applies():
  method = _tiny_method()
  genome = method.sample(np.random.default_rng(0))
  for kind in ("branch_type", "conv_type", "time", "add_branch", "remove_branch"):
    proposal = None
    for seed in range(20):
      proposal = getattr(method, f"_{kind}")(genome, np.random.default_rng(seed))
      if proposal:
        break
    child = proposal[0]()
    assert isinstance(child, evanet.InceptionGenome) and child != genome, kind


def test_json_round_trip_records_the_meta_architecture():
  genome = _tiny_method().sample(np.random.default_rng(3))
  data = json.loads(json.dumps(genome.to_dict()))
  assert data["meta_architecture"] == "inception" and len(data["modules"]) == 9
  assert evanet.InceptionGenome.from_dict(data) == genome
  # A ResNet-configured method reads (and builds) it by what it records.
  assert evanet.EvanetMethod().genome_from_dict(data) == genome
  resnet = zoo.genome("evanet_a")
  assert resnet.to_dict()["meta_architecture"] == "resnet"
  with pytest.raises(InvalidGenomeError, match="^meta_architecture: got 'inception'"):
    evanet.Genome.from_dict(data)
  with pytest.raises(InvalidGenomeError, match="^meta_architecture: got 'resnet'"):
    evanet.InceptionGenome.from_dict(resnet.to_dict())


def test_old_genome_dicts_without_the_field_load_as_resnet():
  data = zoo.genome("evanet_b").to_dict()
  del data["meta_architecture"]
  method = _tiny_method()  # Even a method searching the other one.
  assert method.genome_from_dict(data) == zoo.genome("evanet_b")
  assert evanet.Genome.from_dict(data) == zoo.genome("evanet_b")
  data["meta_architecture"] = "vgg"
  with pytest.raises(InvalidGenomeError, match="^meta_architecture: got 'vgg'; allowed"):
    method.genome_from_dict(data)


@pytest.mark.parametrize(
  "change,message",
  [
    (lambda d: d["modules"][3]["branches"][0].update(time=4), r"^modules\[3\]\.branches\[0\]"),
    (lambda d: d["modules"].pop(), r"^modules: got"),
    (lambda d: d["modules"][8].update(branches=[]), r"^modules\[8\]\.branches: got"),
    (lambda d: d["modules"][3].update(filters=3), r"^modules\[3\]\.branches: 2 branches share"),
    (lambda d: d.update(stem_time=2), r"^stem_time: got 2"),
    (lambda d: d.update(repeats=2), r"unknown keys \['repeats'\]"),
    (lambda d: d.pop("stem_out_filters"), r"missing keys \['stem_out_filters'\]"),
  ],
)
def test_bad_fields_are_named(change, message):
  branches = (evanet.Branch("1x1"), evanet.Branch("maxpool", time=3))
  data = _i3d_like(branches=branches).to_dict()
  data["modules"][3]["branches"][0] = {"type": "conv", "conv_type": "3d", "time": 3}
  change(data)
  with pytest.raises(InvalidGenomeError, match=message):
    evanet.EvanetMethod().genome_from_dict(data)


def test_the_method_keeps_to_its_meta_architecture():
  with pytest.raises(UserError, match="meta_architecture must be one of"):
    evanet.EvanetMethod(meta_architecture="i3d")
  with pytest.raises(UserError, match="searches an InceptionSearchSpace"):
    evanet.EvanetMethod(space=evanet.EvanetSearchSpace(), meta_architecture="inception")
  with pytest.raises(UserError, match="searches an EvanetSearchSpace"):
    evanet.EvanetMethod(space=evanet.InceptionSearchSpace())
  with pytest.raises(UserError, match="module_filters needs 9"):
    evanet.InceptionSearchSpace(module_filters=(8, 8))
  with pytest.raises(UserError, match="cannot mutate a 'resnet' genome"):
    _tiny_method().mutate(zoo.genome("evanet_a"), np.random.default_rng(0))
  with pytest.raises(UserError, match="cannot mutate a 'inception' genome"):
    evanet.EvanetMethod().mutate(_i3d_like(), np.random.default_rng(0))
  narrow = evanet.EvanetMethod(
    space=evanet.InceptionSearchSpace(min_branches=3, module_filters=(3,) * 9),
    meta_architecture="inception",
    max_attempts=5,
  )
  with pytest.raises(UserError, match="InceptionSearchSpace.module_filters are too small"):
    narrow.sample(np.random.default_rng(0))
  # The default space is I3D's widths; with_stream keeps the meta-architecture.
  method = evanet.EvanetMethod(meta_architecture="inception")
  assert method.space.module_filters == (256, 480, 512, 512, 512, 528, 832, 832, 1024)
  flow = method.with_stream("flow")
  assert flow.meta_architecture == "inception" and flow.clip.input_shape[-1] == 2


def test_distance_counts_edits_and_separates_meta_architectures():
  method = _tiny_method()
  a = method.sample(np.random.default_rng(0))
  assert method.distance(a, a) == 0
  module = a.modules[2]
  more = a.with_blocks(
    a.modules[:2]
    + (dataclasses.replace(module, branches=module.branches[::-1] + (evanet.Branch("1x1"),)),)
    + a.modules[3:]
  )
  # Branch order does not count; adding a branch is 1; the stem's time 1 more.
  assert len(more.modules[2].branches) <= 4
  assert method.distance(a, more) == 1
  other = dataclasses.replace(more, stem_time=11 if more.stem_time != 11 else 1)
  assert method.distance(a, other) == 2 == method.distance(other, a)
  resnet = zoo.genome("evanet_a")
  cross = method.distance(a, resnet)
  # Writing either from nothing: global fields, widths, branches (+ repeats).
  size_a = 4 + sum(1 + len(m.branches) for m in a.modules)
  size_r = 6 + sum(1 + len(s.branches) + s.repeats for s in resnet.stages)
  assert cross == size_a + size_r == method.distance(resnet, a)
  # The triangle inequality, across and within meta-architectures.
  b = method.sample(np.random.default_rng(1))
  for x, y, z in (
    (a, b, resnet),
    (a, resnet, b),
    (resnet, a, b),
    (a, zoo.genome("evanet_b"), resnet),
  ):
    assert method.distance(x, z) <= method.distance(x, y) + method.distance(y, z)


def test_any_method_builds_a_genome_of_either_meta_architecture():
  tf.keras.backend.clear_session()
  genome = _tiny_method().sample(np.random.default_rng(4))
  resnet_method = evanet.EvanetMethod(num_frames=8, resolution=32, dropout_rate=0.0)
  model = resnet_method.build(genome, CLASSES)
  assert "mixed_5c" in [layer.name for layer in model.layers]
  assert model.input_shape == (None, 8, 32, 32, 3) and model.output_shape == (None, CLASSES)
  tf.keras.backend.clear_session()
  flow_model = _tiny_method().with_stream("flow").build(genome, CLASSES)
  assert flow_model.input_shape == (None, 8, 32, 32, 2)


def test_every_branch_and_conv_type_converts_to_float_and_fully_int8_tflite():
  tf.keras.backend.clear_session()
  tf.keras.utils.set_random_seed(0)
  pairs = [(_BRANCHES[i % 7], _BRANCHES[(i + 1) % 7]) for i in range(inception.NUM_MODULES)]
  genome = evanet.InceptionGenome(
    "itgm", 3, tuple(evanet.Module(p, 8) for p in pairs), stem_filters=8, stem_out_filters=8
  )
  model = evanet.build_inception_model(genome, 4, (8, 32, 32, 3), dropout_rate=0.0)
  clips = np.random.default_rng(0).uniform(-1, 1, (8, 8, 32, 32, 3)).astype(np.float32)
  expected = model(clips, training=False).numpy()
  converted = {
    fmt: quantize.to_tflite(model, fmt, clips, num_calibration_clips=8) for fmt in quantize.FORMATS
  }
  float_logits = latency.evaluate_tflite(
    converted["float"], clips, np.zeros(8, np.int64), return_logits=True
  )["logits"]
  np.testing.assert_allclose(float_logits, expected, atol=1e-4)
  int8 = converted["int8"]
  assert int8.input_dtype == "int8" and int8.output_dtype == "int8"
  assert int8.fully_int8, int8.summary()["float_ops"]
  assert {"CONV_2D", "MAX_POOL_2D", "CONCATENATION"} <= {op.name for op in int8.ops}
  tf.keras.backend.clear_session()


def test_gin_selects_the_inception_meta_architecture():
  gin.parse_config_file(os.path.join(REPO, "gin/evanet/inception_smoke.gin"))
  method = registry.method("evanet")  # As a search or a record's reader makes it.
  assert method.meta_architecture == "inception"
  assert isinstance(method.space, evanet.InceptionSearchSpace)
  assert method.space.module_filters == (16, 24, 32, 32, 32, 32, 48, 48, 64)
  genome = method.sample(np.random.default_rng(0))
  assert isinstance(genome, evanet.InceptionGenome)
  child, _ = method.mutate(genome, np.random.default_rng(1))
  assert method.genome_from_dict(child.to_dict()) == child
  gin.clear_config()
  gin.parse_config("EvanetMethod.meta_architecture = 'inception'")
  assert registry.method("evanet").space == evanet.InceptionSearchSpace()
  gin.clear_config()
  assert registry.method("evanet").meta_architecture == "resnet"
