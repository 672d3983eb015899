"""Each finished candidate reaches TensorBoard's HParams dashboard: genome fields and results."""

import os

import gin
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util

from vsearch import configurables  # noqa: F401  (registers every gin configurable)
from vsearch.record import Record
from vsearch.search import summaries
from vsearch.search.runner import Search

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

GENOME = {
  "resolution": 16,
  "num_frames": 4,
  "frame_stride": 2,
  "head_pool": "max_space",
  "blocks": [
    {"filters": 8, "spatial_type": "conv", "squeeze": 0.25, "skip": True},
    {"filters": 32, "spatial_type": "depthwise", "squeeze": 0.0, "skip": False},
  ],
}


def _read(run_dir):
  """What TensorBoard's own reader finds in a candidate's run: hparams and metric values."""
  events = event_accumulator.EventAccumulator(run_dir, size_guidance={"tensors": 0})
  events.Reload()
  content = events.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
  data = plugin_data_pb2.HParamsPluginData.FromString(
    content[hparams_metadata.SESSION_START_INFO_TAG]
  )
  start = data.session_start_info
  hparams = {}
  for name, value in start.hparams.items():
    kind = value.WhichOneof("kind")
    hparams[name] = getattr(value, kind)
  metrics = {
    tag: tensor_util.make_ndarray(events.Tensors(tag)[-1].tensor_proto).item()
    for tag in events.Tags()["tensors"]
    if not tag.startswith("_hparams_")
  }
  return start, hparams, metrics


def test_a_finished_candidate_names_its_genome_fields_and_metrics(tmp_path):
  record = Record(
    id="000007",
    method="tvn",
    genome=GENOME,
    status="ok",
    parent="000003",
    mutation="blocks[1].filters 16 -> 32",
    metrics={"accuracy": 0.75, "accuracy_int8": 0.5, "latency_ms": 0.25, "num_params": 1234},
    fitness=0.5,
    timings={"total_s": 10.0},
    finished_at="2026-01-02T03:04:05+00:00",
  )
  summaries.write_hparams(str(tmp_path), record)
  start, hparams, metrics = _read(str(tmp_path / "tensorboard" / "hparams" / "000007"))
  assert start.group_name == "000007"
  assert hparams == {
    "method": "tvn",
    "status": "ok",
    "parent": "000003",
    "resolution": 16,
    "num_frames": 4,
    "frame_stride": 2,
    "head_pool": "max_space",
    "len(blocks)": 2,
    "blocks[0].filters": 8,
    "blocks[0].spatial_type": "conv",
    "blocks[0].squeeze": 0.25,
    "blocks[0].skip": True,
    "blocks[1].filters": 32,
    "blocks[1].spatial_type": "depthwise",
    "blocks[1].squeeze": 0.0,
    "blocks[1].skip": False,
  }
  assert metrics == pytest.approx(
    {"fitness": 0.5, "accuracy": 0.75, "accuracy_int8": 0.5, "latency_ms": 0.25, "num_params": 1234}
  )
  assert start.start_time_secs == pytest.approx(1767323045.0 - 10.0)


def test_flatten_genome_turns_lists_of_values_into_text_and_drops_empty_fields():
  genome = {"nodes": [{"inputs": [0, 1], "stem": None}], "stems": ("rgb", "flow")}
  assert summaries.flatten_genome(genome) == {
    "len(nodes)": 1,
    "nodes[0].inputs": "[0, 1]",
    "stems": '["rgb", "flow"]',
  }


def test_a_search_writes_every_candidate_it_records_for_the_dashboard(tmp_path):
  # The cheapest search: a parameter cap rejects the child before conversion.
  gin.add_config_file_search_path(REPO)
  gin.parse_config_files_and_bindings(
    [os.path.join(REPO, "tests", "data", "tiny_search.gin")],
    [
      f"load_dataset.data_dir = '{tmp_path / 'data'}'",
      "Search.runtime_gate = @RuntimeGate()",
      "Search.num_candidates = 1",
      "RuntimeGate.max_params = 10",
    ],
  )
  workdir = tmp_path / "work"
  Search(workdir=str(workdir)).run()
  _, hparams, metrics = _read(str(workdir / "tensorboard" / "hparams" / "000000"))
  assert hparams["status"] == "over_limit" and hparams["method"] == "tvn"
  assert "blocks[0].filters" in hparams and "resolution" in hparams
  assert set(metrics) == {"num_params"} and metrics["num_params"] > 10
