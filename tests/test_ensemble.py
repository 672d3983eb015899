"""Diverse ensemble: selection respects the distance; one model averages logits."""

import numpy as np
import tensorflow as tf

from vsearch.methods import evanet
from vsearch.methods.evanet import ensemble
from vsearch.nn import flow
from vsearch.record import Record


def _method():
  space = evanet.EvanetSearchSpace(
    repeats=(1,), max_branches=2, stem_filters=4, stage_filters=(8, 8, 8, 8)
  )
  return evanet.EvanetMethod(space=space, num_frames=4, resolution=16, dropout_rate=0.0)


def _records(method, count, seed=0):
  rng = np.random.default_rng(seed)
  records = []
  for i in range(count):
    records.append(
      Record(
        id=f"{i:06d}",
        method="evanet",
        status="ok",
        genome=method.sample(rng).to_dict(),
        fitness=float(rng.uniform()),
        metrics={"accuracy": 0.5},
      )
    )
  records.append(
    Record(
      id=f"{count:06d}", method="evanet", status="failed", genome=records[0].genome, reason="nan"
    )
  )
  return records


def test_selection_respects_the_distance_and_prefers_fitness():
  method = _method()
  records = _records(method, 30)
  genome_of = lambda r: method.genome_from_dict(r.genome)
  distances = {}
  for min_distance in (0, 6, 12):
    chosen = ensemble.select_diverse(
      records, genome_of, method.distance, size=4, min_distance=min_distance
    )
    assert chosen and all(r.ok for r in chosen)
    genomes = [genome_of(r) for r in chosen]
    pairs = [method.distance(a, b) for i, a in enumerate(genomes) for b in genomes[i + 1 :]]
    assert all(d >= min_distance for d in pairs)
    distances[min_distance] = min(pairs) if pairs else None
    # The best record always leads; each later pick is the fittest record
    # far enough from the picks before it.
    ranked = sorted((r for r in records if r.ok), key=lambda r: -r.fitness)
    assert chosen[0] is ranked[0]
    for k, pick in enumerate(chosen[1:], start=1):
      skipped = ranked[ranked.index(chosen[k - 1]) + 1 : ranked.index(pick)]
      for r in skipped:
        assert min(method.distance(genome_of(r), g) for g in genomes[:k]) < min_distance
  assert len(ensemble.select_diverse(records, genome_of, method.distance, 4, min_distance=0)) == 4
  # Identical genomes (distance 0) are never picked twice for min_distance 1.
  twins = [
    Record(id=f"{i:06d}", method="evanet", status="ok", fitness=1.0 - i, genome=records[0].genome)
    for i in range(3)
  ]
  assert len(ensemble.select_diverse(twins, genome_of, method.distance, 3, min_distance=1)) == 1


def test_ensemble_model_averages_rgb_and_flow_members():
  tf.keras.backend.clear_session()
  method = _method()
  rng = np.random.default_rng(0)
  records = _records(method, 2)
  members = []
  for i, stream in enumerate(("rgb", "flow")):
    genome = method.genome_from_dict(records[i].genome)
    model = method.with_stream(stream).build(genome, 3, name=f"m{i}_{stream}")
    members.append(ensemble.Member(records[i], stream, model, {}))
  combined = ensemble.ensemble_model(members, (4, 16, 16, 3))
  clips = rng.uniform(-1, 1, size=(2, 4, 16, 16, 3)).astype(np.float32)
  expected = (members[0].model(clips) + members[1].model(flow.clip_flow(clips))) / 2
  np.testing.assert_allclose(combined(clips), expected, rtol=1e-4, atol=1e-5)
  dataset = tf.data.Dataset.from_tensor_slices((clips, np.array([0, 1], np.int32))).batch(2)
  singles, mean = ensemble.evaluate_members(members, dataset)
  assert len(singles) == 2 and 0.0 <= mean <= 1.0
  logits = np.stack([members[0].model(clips), members[1].model(flow.clip_flow(clips))])
  assert mean == np.mean(logits.mean(0).argmax(-1) == [0, 1])
