"""AssembleNet's one-shot connection search end to end, on a tiny graph:
over-connect, train, keep the edges the training weighed up, fix their
weights, retrain."""

import json
import os

import gin
import numpy as np
import pytest
import tensorflow as tf

from vsearch import configurables  # noqa: F401  (registers every gin configurable)
from vsearch.methods import assemblenet as an
from vsearch.methods import genome_source
from vsearch.methods.assemblenet import Block, Genome, Stem, one_shot

CONFIG = """
load_dataset.name = 'synthetic_motion'
synthetic_motion_config.num_classes = 2
synthetic_motion_config.num_frames = 4
synthetic_motion_config.resolution = 32
synthetic_motion_config.train_per_class = 4
synthetic_motion_config.validation_per_class = 2
FullTraining.train_config = @TrainConfig()
FullTraining.eval_every = 0
TrainConfig.steps = 4
TrainConfig.steps_per_call = 2
TrainConfig.batch_size = 4
TrainConfig.eval_batch_size = 4
TrainConfig.learning_rate = 0.5
TrainConfig.warmup_steps = 0
AssembleNetMethod.dropout_rate = 0.0
AssembleNetMethod.bn_momentum = 0.9
OneShotSearch.keep_threshold = 0.5
"""


@pytest.mark.slow
def test_one_shot_keeps_the_edges_training_weighed_up_and_retrains(tmp_path):
  gin.parse_config(CONFIG + f"load_dataset.data_dir = '{tmp_path / 'data'}'")
  sparse = Genome(
    nodes=(
      Stem("rgb", 1),
      Stem("rgb", 2),
      Block(0, (0,), 2, 1, 1),
      Block(0, (1,), 2, 2, 1),
      Block(1, (2,), 4),
      Block(2, (3,), 4),
      Block(3, (5,), 4),
    ),
    num_frames=4,
    resolution=32,
    depth=26,
    level_widths=(4, 4, 4, 4),
    stem_width=8,
  )
  genome_file = tmp_path / "genome.json"
  genome_file.write_text(json.dumps(sparse.to_dict()))
  source = genome_source.resolve(str(genome_file), method="assemblenet")
  workdir = str(tmp_path / "work")
  result = one_shot.OneShotSearch(workdir, source, tf.distribute.get_strategy()).run()

  with open(os.path.join(workdir, "learned.json")) as f:
    learned = json.load(f)["connection_weights"]
  dense = an.over_connected(sparse)
  # Every multi-input node of the over-connected graph learned its weights,
  # and training moved them off their start.
  assert set(learned) == {str(i) for i in dense.blocks if len(dense.nodes[i].inputs) > 1}
  assert any(abs(w - 0.5) > 1e-3 for ws in learned.values() for w in ws)
  kept = Genome.from_dict(result["genome"])
  with open(os.path.join(workdir, "genome.json")) as f:
    assert Genome.from_dict(json.load(f)) == kept
  assert kept == an.one_shot_genome(dense, learned, keep_threshold=0.5)
  # Kept edges carry their learned weights, fixed; no edge below 0.5 is kept
  # unless it is its node's strongest.
  for i in kept.blocks:
    node = kept.nodes[i]
    if node.weights is not None:
      assert len(node.weights) == len(node.inputs) > 1
      assert min(node.weights) >= 0.5
  assert len(kept.nodes) <= len(dense.nodes)
  for stage in ("over_connected", "final"):
    metrics = result[stage]
    assert 0.0 <= metrics["accuracy"] <= 1.0 and np.isfinite(metrics["loss"])
    assert os.path.exists(os.path.join(workdir, stage, "final.weights.h5"))
