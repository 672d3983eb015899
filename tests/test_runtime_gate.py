"""The runtime gate inside a search: over-limit children are measured, recorded and never trained."""

import os
import time

import gin
import numpy as np
import pytest
import tensorflow as tf

from vsearch import configurables  # noqa: F401  (registers every gin configurable)
from vsearch.data import clips as clips_lib
from vsearch.deploy import latency, profile_tflite, quantize
from vsearch.methods import registry
from vsearch.search import fitness
from vsearch.search.runner import Search
from vsearch.search.store import RecordStore

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _search(tmp_path, *bindings):
  gin.add_config_file_search_path(REPO)
  gin.parse_config_files_and_bindings(
    [os.path.join(REPO, "tests", "data", "tiny_search.gin")],
    [
      f"load_dataset.data_dir = '{tmp_path / 'data'}'",
      "Search.runtime_gate = @RuntimeGate()",
      "LatencySettings.warmup = 1",
      "LatencySettings.runs = 3",
      "RuntimeGate.num_calibration_clips = 4",
      *bindings,
    ],
  )
  search = Search(workdir=str(tmp_path / "work"))
  search.run()
  return RecordStore(str(tmp_path / "work")).read_all()


def test_children_over_the_latency_limit_are_measured_but_never_trained(tmp_path):
  records = _search(tmp_path, "Search.num_candidates = 2", "RuntimeGate.max_latency_ms = 1e-6")
  assert [r.status for r in records] == ["over_limit", "over_limit"]
  for record in records:
    assert record.metrics["latency_ms"] > 0
    assert "> limit" in record.reason
    assert record.metrics["latency"]["settings"]["runs"] == 3
    assert record.metrics["tflite"]["fully_int8"]
    assert "accuracy" not in record.metrics and "train_s" not in record.timings
    assert record.fitness is None


def test_parameter_cap_rejects_before_any_conversion(tmp_path):
  [record] = _search(tmp_path, "Search.num_candidates = 1", "RuntimeGate.max_params = 10")
  assert record.status == "over_limit" and "parameters > cap 10" in record.reason
  assert "latency_ms" not in record.metrics and record.metrics["num_params"] > 10


@pytest.mark.slow
def test_a_child_within_limits_trains_and_is_scored_on_its_int8_accuracy(tmp_path):
  [record] = _search(
    tmp_path,
    "Search.num_candidates = 1",
    "RuntimeGate.max_latency_ms = 1e6",
    "Search.fitness = @accuracy_fitness",
    "accuracy_fitness.key = 'accuracy_int8'",
  )
  assert record.status == "ok"
  metrics = record.metrics
  assert 0.0 <= metrics["accuracy_int8"] <= 1.0 and metrics["num_int8_eval_clips"] == 16
  assert record.fitness == metrics["accuracy_int8"]
  assert metrics["latency_ms"] > 0 and "accuracy" in metrics
  assert {"gate_s", "train_s", "deployed_evaluate_s"} <= set(record.timings)


def _litert_interpreter(path: str, threads: int, use_xnnpack: bool):
  """A .tflite file loaded as a user would, with LiteRT's own Python
  interpreter and none of vsearch's runner code, its input set."""
  from ai_edge_litert import interpreter as litert

  resolver = litert.OpResolverType.AUTO
  if not use_xnnpack:
    resolver = litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
  model = litert.Interpreter(
    model_path=path, num_threads=threads, experimental_op_resolver_type=resolver
  )
  model.allocate_tensors()
  [detail] = model.get_input_details()
  values = np.random.default_rng(0).integers(-100, 100, detail["shape"])
  model.set_tensor(detail["index"], values.astype(detail["dtype"]))
  return model


def _alternate_invokes(first, second, seconds: float = 0.2, runs: int = 400):
  """Invoke times (ms) of two interpreters, invoked in turn after a warm-up
  of each, so whatever else the machine does hits both alike."""
  warm_until = time.perf_counter() + seconds
  while time.perf_counter() < warm_until:
    first.invoke()
    second.invoke()
  times = ([], [])
  for _ in range(runs):
    for interpreter, samples in zip((first, second), times):
      start = time.perf_counter_ns()
      interpreter.invoke()
      samples.append((time.perf_counter_ns() - start) / 1e6)
  return times


@pytest.mark.slow
def test_the_gates_latency_is_what_a_user_measures_on_the_exported_file(tmp_path):
  """A child the gate timed inside a search, converted again to the file a user
  ships: the interpreter the gate's runner makes of it (same threads, XNNPACK
  setting and input fill) and LiteRT's own, invoked in turn in one process,
  agree within 10 %, so a limit set from a user's own timing means the same
  in a search; the runner's own timing of the file is within that range."""
  [record] = _search(
    tmp_path,
    "Search.num_candidates = 1",
    "RuntimeGate.max_latency_ms = 1e-6",
    "TvnSearchSpace.filters = (32,)",
    "LatencySettings.warmup = 5",
    "LatencySettings.runs = 100",
  )
  assert record.status == "over_limit" and record.metrics["latency_ms"] > 0
  method = registry.method(record.method)
  model = method.build(method.genome_from_dict(record.genome), record.metrics["num_classes"])
  calibration = np.random.default_rng(0).uniform(-1, 1, (4, *model.input_shape[1:]))
  converted = quantize.to_tflite(model, quantize.INT8, calibration.astype(np.float32))
  # The file holds the very graph the gate timed.
  assert converted.summary()["op_counts"] == record.metrics["tflite"]["op_counts"]
  path = str(tmp_path / "model_int8.tflite")
  converted.save(path)
  settings = latency.LatencySettings(**record.metrics["latency"]["settings"])
  gates = profile_tflite.make_interpreter(path, settings.threads, settings.use_xnnpack)
  profile_tflite.fill_inputs(gates)
  users = _litert_interpreter(path, settings.threads, settings.use_xnnpack)
  # Alternate invokes, not rounds: on 2 shared cores (the suite runs tests in
  # parallel) one round's fastest invoke moved by up to 1.4x between rounds.
  gate_ms, user_ms = _alternate_invokes(gates, users)
  assert abs(np.median(gate_ms) / np.median(user_ms) - 1.0) <= 0.10, (gate_ms, user_ms)
  # The runner (a process of its own, as in the search) times the same file.
  runner_ms = latency.measure_latency(path, settings).min_ms
  assert 0.5 <= runner_ms / min(user_ms) <= 2.0, (runner_ms, min(user_ms))


def test_latency_tradeoff_fitness():
  metrics = {"accuracy": 0.8, "latency_ms": 20.0}
  assert fitness.latency_tradeoff_fitness(metrics, target_ms=20.0) == pytest.approx(0.8)
  slower = fitness.latency_tradeoff_fitness(metrics, target_ms=10.0)
  faster = fitness.latency_tradeoff_fitness(metrics, target_ms=40.0)
  assert slower < 0.8 < faster
  assert slower == pytest.approx(0.8 * 2.0**-0.07)
  with pytest.raises(ValueError):
    fitness.latency_tradeoff_fitness(metrics, target_ms=0.0)


def test_take_clips_of_dict_batches_keeps_every_input():
  inputs = {
    "clips": np.zeros((5, 2, 4, 4, 3), np.float32),
    "objects": np.ones((5, 2, 4, 4, 2), np.float32),
  }
  data = tf.data.Dataset.from_tensor_slices((inputs, np.arange(5))).batch(2)
  clips, labels = clips_lib.take_clips(data, 3)
  assert {name: c.shape for name, c in clips.items()} == {
    "clips": (3, 2, 4, 4, 3),
    "objects": (3, 2, 4, 4, 2),
  }
  assert list(labels) == [0, 1, 2]
