"""An AssembleNet++ search end to end: object maps and pipeline flow reach
the models, learned weights reach the records, and children drop the edges
their parents weighed low."""

import os
import subprocess
import sys

import pytest

from vsearch.methods import assemblenet as an
from vsearch.search.store import RecordStore

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(REPO, "tests", "data", "tiny_plus_search.gin")


@pytest.mark.slow
def test_plus_search_reads_object_maps_and_pipeline_flow(tmp_path):
  workdir = tmp_path / "work"
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "launch.search",
      f"--workdir={workdir}",
      f"--gin_file={TINY}",
      f"--gin_bindings=load_dataset.data_dir='{tmp_path / 'data'}'",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=900,
    check=False,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  records = RecordStore(str(workdir)).read_all()
  assert len(records) == 2 and all(r.ok for r in records), [r.reason for r in records]
  method = an.AssembleNetMethod(object_classes=8, flow_source="pipeline")
  for record in records:
    genome = an.Genome.from_dict(record.genome)
    kinds = {genome.nodes[i].kind for i in an.live_nodes(genome) if i in genome.stems}
    # The space keeps object and flow stems wherever a node reads them.
    spec = method.clip_spec(genome)
    assert ("objects" in spec.extra_inputs) == ("object" in kinds)
    assert ("flow" in spec.extra_inputs) == ("flow" in kinds)
    assert 0.0 <= record.metrics["accuracy"] <= 1.0
  assert any(
    "object"
    in {an.Genome.from_dict(r.genome).nodes[i].kind for i in an.Genome.from_dict(r.genome).stems}
    for r in records
  )
  children = [r for r in records if r.parent]
  assert children
  for child in children:
    parent = next(r for r in records if r.id == child.parent)
    weights = parent.learned["connection_weights"]
    if weights:  # A parent with a multi-input node: the child dropped edges.
      assert child.mutation.startswith("dropped "), child.mutation
