"""Every method ships: each zoo entry and a sampled genome of each method, at a
tiny size, converts to float and int8 TFLite that LiteRT runs.

The float file matches Keras; the int8 file is int8 in every op, or names
the layers it keeps in float (an in-network optical flow) and is int8
everywhere else; and it agrees with float on the top-1 class of most random
clips. One test per model, each a few seconds.
"""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from vsearch.deploy import latency, quantize
from vsearch.errors import InvalidGenomeError
from vsearch.methods import assemblenet as an
from vsearch.methods import evanet, registry, tvn, zoo
from vsearch.nn import cost

CLASSES = 4
CLIPS = 32
OBJECT_CLASSES = 5
FLOW_ITERATIONS = 3


def _tiny_tvn(genome):
  # Two repeats keep the alternation of temporal ops (on, off).
  blocks = tuple(
    dataclasses.replace(
      b, filters=min(b.filters, 8), expand=min(b.expand, 2), repeats=min(b.repeats, 2)
    )
    for b in genome.blocks
  )
  for resolution in (32, 64, 96):  # The smallest its strides leave a map at.
    try:
      genome = dataclasses.replace(genome, resolution=resolution, blocks=blocks)
      break
    except InvalidGenomeError:
      continue
  return tvn.TvnMethod(dropout_rate=0.0), genome


def _evanet_method():
  space = evanet.EvanetSearchSpace(
    repeats=(1, 2), max_branches=3, stem_filters=8, stage_filters=(12, 24, 24, 32)
  )
  return evanet.EvanetMethod(space=space, num_frames=8, resolution=32, dropout_rate=0.0)


def _tiny_evanet(genome):
  # Two units in the first stage keep the second unit's temporal lengths of 1.
  stages = tuple(
    dataclasses.replace(s, repeats=min(s.repeats, 1 + (i == 0)), filters=8 * len(s.branches))
    for i, s in enumerate(genome.stages)
  )
  return _evanet_method(), dataclasses.replace(genome, stem_filters=8, stages=stages)


def _assemblenet_method():
  return an.AssembleNetMethod(
    dropout_rate=0.0, flow_iterations=FLOW_ITERATIONS, object_classes=OBJECT_CLASSES
  )


def _narrow(block, width):
  """``block`` with each of its widths (one, or lite's three) at most ``width``."""
  if block.inverted:
    return dataclasses.replace(block, filters=tuple(min(f, width) for f in block.filters))
  return dataclasses.replace(block, filters=min(block.filters, width))


def _tiny_assemblenet(genome):
  nodes = tuple(_narrow(n, 8) if isinstance(n, an.Block) else n for n in genome.nodes)
  genome = dataclasses.replace(
    genome,
    nodes=nodes,
    num_frames=4,
    resolution=32,
    depth=26,
    level_widths=(8, 8, 8, 8),
    stem_width=16,
  )
  return _assemblenet_method(), genome


# Each method's way to shrink a published genome, and a small space to sample from.
TINY = {"tvn": _tiny_tvn, "evanet": _tiny_evanet, "assemblenet": _tiny_assemblenet}
SAMPLERS = {
  "tvn": lambda: tvn.TvnMethod(
    tvn.TvnSearchSpace(
      resolutions=(32,),
      frame_counts=(4,),
      max_blocks=3,
      filters=(8,),
      expands=(1, 2),
      squeeze_ratios=(0.0, 0.5),
      head_pools=("mean", "max_space"),
    ),
    dropout_rate=0.0,
  ),
  "evanet": _evanet_method,
  "assemblenet": lambda: an.AssembleNetMethod(
    an.AssembleNetSearchSpace(
      resolutions=(32,),
      frame_counts=(4,),
      stems=("rgb", "flow"),
      nodes_per_level=((1, 2), (1, 2), (1, 1), (1, 1)),
      filters=((2, 4), (4,), (4, 8), (8,)),
      depth=26,
      level_widths=(8, 8, 8, 8),
      stem_width=8,
    ),
    dropout_rate=0.0,
    flow_iterations=FLOW_ITERATIONS,
  ),
}


def test_every_method_is_covered():
  assert set(TINY) == set(SAMPLERS) == set(registry.names())


def _inputs(model, rng):
  """Random inputs for every model input: clips and flow in [-1, 1], one-hot objects."""
  data = {}
  for name, shape in cost.input_shapes(model).items():
    if name == "objects":
      labels = rng.integers(0, shape[-1], (CLIPS, *shape[:-1]))
      data[name] = np.eye(shape[-1], dtype=np.float32)[labels]
    else:
      # Noise around a colour of each clip's own: pooled i.i.d. noise looks
      # the same in every clip, and top-1 would then hang on 1e-3 differences.
      colour = rng.uniform(-0.7, 0.7, (CLIPS, *[1] * (len(shape) - 1), shape[-1]))
      data[name] = (colour + rng.uniform(-0.3, 0.3, (CLIPS, *shape))).astype(np.float32)
  return data if len(data) > 1 else next(iter(data.values()))


def _normalise_batch_norms(model, data):
  """Sets every BN's moving statistics to those of ``data``, so an untrained
  model computes features of a trained one's scale (with the initial
  statistics a deep net's logits can shrink to 1e-12, below int8's step)."""
  norms = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.BatchNormalization)]
  for layer in norms:
    layer.momentum = 0.0
  model(data, training=True)
  for layer in norms:
    layer.momentum = 0.9


def _check_ships(model):
  rng = np.random.default_rng(0)
  data = _inputs(model, rng)
  _normalise_batch_norms(model, data)
  expected = model(data, training=False).numpy()
  labels = np.zeros(CLIPS, np.int64)
  frozen = cost.frozen_function(model)  # Once: it takes longer than converting.
  converted = {
    fmt: quantize.to_tflite(model, fmt, data, num_calibration_clips=CLIPS, frozen=frozen)
    for fmt in quantize.FORMATS
  }
  float_logits = latency.evaluate_tflite(converted["float"], data, labels, return_logits=True)
  np.testing.assert_allclose(float_logits["logits"], expected, atol=1e-4)
  int8 = converted["int8"]
  assert int8.input_dtype == "int8" and int8.output_dtype == "int8"
  if int8.float_layers:
    _check_float_island(int8)
  else:
    assert int8.fully_int8, int8.summary()["float_ops"]
  int8_logits = latency.evaluate_tflite(int8, data, labels, return_logits=True)["logits"]
  # An untrained model's logits differ between clips by only ~0.01-0.05, the
  # size of int8's error, so even a right file agrees on top-1 for only ~0.6
  # of the clips and its logits correlate with float's at 0.4-0.9 (measured:
  # tvn3 0.43, tvn2 0.87); a broken one (wrong scales, inputs or order) loses
  # the pattern (correlation ~0 +- 0.09 over 128 logits) and agrees only by
  # chance (1 / CLASSES). Trained models agree far better: the main job's
  # int8 accuracies are within 0.01 of float.
  centred = lambda logits: (logits - logits.mean(0)).ravel()
  correlation = np.corrcoef(centred(int8_logits), centred(expected))[0, 1]
  agree = np.mean(int8_logits.argmax(-1) == expected.argmax(-1))
  assert correlation >= 0.3 and agree >= 1 / CLASSES + 0.15, (correlation, agree)


def _check_float_island(int8):
  """Only an optical-flow solver stays float, entered and left once."""
  assert set(int8.float_layers) <= {"representation_flow", "optical_flow"}
  assert not int8.fully_int8 and int8.int8_outside_float_layers, int8.summary()["float_ops"]
  assert all(op.in_layers(int8.float_layers) for op in int8.float_ops)
  assert {"DIV", "SQRT"} <= {op.name for op in int8.float_ops}  # The TV-L1 solver's ops.
  conversions = [op.name for op in int8.ops if op.name in ("QUANTIZE", "DEQUANTIZE")]
  assert sorted(conversions) == ["DEQUANTIZE", "QUANTIZE"]
  summary = int8.summary()
  assert summary["float_layers"] == list(int8.float_layers)
  assert summary["int8_outside_float_layers"]


def _tiny_zoo(name):
  entry = zoo.entry(name)
  return TINY[entry.method](entry.genome)


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_entry_ships_as_float_and_int8_tflite(name):
  method, genome = _tiny_zoo(name)
  # Entries that differ only in what shrinking erases (AssembleNet-101 is
  # -50's graph, deeper and narrower) are checked once.
  twin = next(n for n in zoo.names() if _tiny_zoo(n)[1] == genome)
  if twin != name:
    pytest.skip(f"at the test's size {name} is the same model as {twin}")
  tf.keras.backend.clear_session()
  tf.keras.utils.set_random_seed(0)
  model = method.build(genome, CLASSES)
  _check_ships(model)
  if name == "assemblenet50":  # In-network flow: the named float island.
    assert quantize.float_island_layers(model) == ("representation_flow",)
  tf.keras.backend.clear_session()


@pytest.mark.parametrize("method_name", sorted(SAMPLERS))
def test_sampled_genome_ships_as_float_and_int8_tflite(method_name):
  tf.keras.backend.clear_session()
  tf.keras.utils.set_random_seed(1)
  method = SAMPLERS[method_name]()
  genome = method.sample(np.random.default_rng(3))
  _check_ships(method.build(genome, CLASSES))
  tf.keras.backend.clear_session()
