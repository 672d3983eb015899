"""The soft max-pool-over-time head (per-frame logits, softmax-weighted over
time) of TVN and AssembleNet: its limits, its shape, and that it ships."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tests.test_tflite_every_method import CLASSES, _check_ships, _tiny_tvn
from vsearch.errors import UserError
from vsearch.methods import assemblenet as an
from vsearch.methods import tvn, zoo
from vsearch.nn import layers


def _soft_max(logits, temperature):
  weights = np.exp(logits / temperature)
  weights /= weights.sum(axis=1, keepdims=True)
  return (weights * logits).sum(axis=1)


def test_it_is_a_max_when_cold_a_mean_when_hot_and_sqrt_t_by_default():
  logits = np.random.default_rng(0).normal(0, 3, (2, 6, 5)).astype(np.float32)
  cold = layers.SoftMaxOverTime(1e-3)(logits).numpy()
  np.testing.assert_allclose(cold, logits.max(axis=1), atol=1e-4)
  hot = layers.SoftMaxOverTime(1e5)(logits).numpy()
  np.testing.assert_allclose(hot, logits.mean(axis=1), atol=1e-3)
  default = layers.SoftMaxOverTime()(logits).numpy()
  np.testing.assert_allclose(default, _soft_max(logits, np.sqrt(6)), rtol=1e-5, atol=1e-6)
  assert np.all(default > logits.mean(axis=1)) and np.all(default < logits.max(axis=1))


def test_tvn_soft_max_time_head_classifies_every_frame_and_ships():
  method, genome = _tiny_tvn(zoo.genome("tvn4"))  # 8 frames, 2 left at the head.
  genome = dataclasses.replace(genome, head_pool="soft_max_time")
  assert tvn.Genome.from_dict(genome.to_dict()) == genome
  tf.keras.backend.clear_session()
  tf.keras.utils.set_random_seed(0)
  model = method.build(genome, CLASSES)
  assert model.output.shape == (None, CLASSES)
  assert model.get_layer("frame_logits").output.shape == (None, 2, CLASSES)
  _check_ships(model)


def test_tvn_search_space_offers_the_head():
  space = tvn.TvnSearchSpace(
    resolutions=(32,), frame_counts=(4,), filters=(8,), max_blocks=2, head_pools=("soft_max_time",)
  )
  child = tvn.TvnMethod(space).sample(np.random.default_rng(0))
  assert child.head_pool == "soft_max_time"


def _rgb_genome():
  return an.Genome(
    nodes=(
      an.Stem("rgb", 1),
      an.Block(0, (0,), 4, 1, 1),
      an.Block(1, (1,), 4),
      an.Block(2, (2,), 4),
      an.Block(3, (0, 3), 4),
    ),
    num_frames=4,
    resolution=32,
    depth=26,
    level_widths=(8, 8, 8, 8),
    stem_width=8,
  )


def test_assemblenet_soft_max_time_head_is_a_gin_option_and_ships():
  tf.keras.backend.clear_session()
  tf.keras.utils.set_random_seed(0)
  method = an.AssembleNetMethod(dropout_rate=0.0, head="soft_max_time")
  model = method.build(_rgb_genome(), CLASSES)
  assert model.output.shape == (None, CLASSES)
  assert model.get_layer("frame_logits").output.shape == (None, 4, CLASSES)
  mean_head = an.AssembleNetMethod(dropout_rate=0.0).build(_rgb_genome(), CLASSES)
  # One classifier either way: per frame it has the same weights.
  assert model.count_params() == mean_head.count_params()
  _check_ships(model)
  with pytest.raises(UserError, match="head"):
    an.AssembleNetMethod(head="max")
