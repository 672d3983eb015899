"""The zoo: published architectures by name, built at their published size."""

import json

import numpy as np
import pytest
import tensorflow as tf

from vsearch.errors import UserError
from vsearch.methods import tvn, zoo

CLASSES = 5

# Parameters with a 5-class head, computed once by this builder (regression
# values, not published numbers: the TVN paper's counts were not at hand).
PARAMS = {
  "tvn1": 25_748_275,
  "tvn2": 108_848_873,
  "tvn3": 66_919_767,
  "tvn4": 43_027_775,
  "tvn_mobile1": 7_330_385,
  "tvn_mobile2": 5_501_374,
}

# (frames, size) after each block: reference/methods.md §3.4, "out T×H".
PUBLISHED_SHAPES = {
  "tvn1": [(1, 112), (1, 56), (1, 19), (1, 10)],
  "tvn2": [(2, 86), (1, 43), (1, 43), (1, 22), (1, 8), (1, 3), (1, 3)],
  "tvn3": [(4, 80), (4, 40), (2, 10), (1, 5)],
  "tvn4": [(4, 64), (2, 32), (2, 11)],
  "tvn_mobile1": [(2, 56), (2, 14)],
  "tvn_mobile2": [(2, 56), (2, 14)],
}

PUBLISHED_CLIPS = {  # (frames, resolution, frame stride)
  "tvn1": (2, 224, 4),
  "tvn2": (2, 256, 7),
  "tvn3": (8, 160, 2),
  "tvn4": (8, 128, 4),
  "tvn_mobile1": (2, 224, 1),
  "tvn_mobile2": (2, 224, 1),
}


def test_names():
  assert zoo.names("tvn") == list(PARAMS)


@pytest.mark.parametrize("name", list(PARAMS))
def test_published_model_builds_with_its_shapes_and_parameters(name):
  tf.keras.backend.clear_session()
  genome = zoo.genome(name)
  frames, resolution, stride = PUBLISHED_CLIPS[name]
  assert (genome.num_frames, genome.resolution, genome.frame_stride) == (frames, resolution, stride)
  assert genome.block_shapes() == PUBLISHED_SHAPES[name]

  model = zoo.build(name, CLASSES)
  assert model.input_shape == (None, frames, resolution, resolution, 3)
  clip = np.random.default_rng(0).uniform(size=(1,) + model.input_shape[1:])
  logits = model(clip.astype(np.float32), training=False)
  assert logits.shape == (1, CLASSES)
  assert np.all(np.isfinite(logits))
  assert model.count_params() == PARAMS[name]
  for i, (_, size) in enumerate(genome.block_shapes()):
    last = genome.blocks[i].repeats - 1
    shape = model.get_layer(f"block{i}_rep{last}_out").output.shape
    assert shape == (None, size, size, genome.blocks[i].output_width)
  tf.keras.backend.clear_session()


def test_mobile_models_use_their_extras():
  first, second = zoo.genome("tvn_mobile1").blocks
  assert second.inverted_bottleneck and not first.inverted_bottleneck
  assert second.spatial_activation == "hswish"
  assert first.spatial_activation == "relu"
  assert zoo.genome("tvn_mobile2").blocks[0].spatial_activation == "hswish"
  assert [b.repeats for b in zoo.genome("tvn_mobile2").blocks] == [4, 3]


def test_entries_know_their_method():
  for name in zoo.names("tvn"):
    found = zoo.entry(name)
    assert found.method == "tvn" and found.description
    method = zoo.method_for(name)
    assert isinstance(method, tvn.TvnMethod)
    genome = zoo.genome(name)
    assert method.genome_from_dict(json.loads(json.dumps(genome.to_dict()))) == genome


def test_unknown_name_lists_the_known_ones():
  with pytest.raises(UserError, match="'tvn9'.*tvn1, tvn2.*tvn_mobile2"):
    zoo.genome("tvn9")
  with pytest.raises(UserError, match="known"):
    zoo.build("resnet50", CLASSES)
