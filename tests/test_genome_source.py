"""Genome files are read by the method whose genome they hold."""

import json

import pytest

from vsearch.errors import UserError
from vsearch.methods import genome_source, zoo


@pytest.mark.parametrize(
  "name,method", [("tvn2", "tvn"), ("evanet_a", "evanet"), ("assemblenet50", "assemblenet")]
)
def test_a_genome_file_finds_its_method(tmp_path, name, method):
  path = tmp_path / "genome.json"
  path.write_text(json.dumps(zoo.genome(name).to_dict()))
  source = genome_source.resolve(genome_file=str(path))
  assert source.method.name == method and source.genome == zoo.genome(name)
  wrapped = tmp_path / "wrapped.json"
  wrapped.write_text(json.dumps({"method": method, "genome": zoo.genome(name).to_dict()}))
  assert genome_source.resolve(genome_file=str(wrapped)).genome == zoo.genome(name)


def test_a_file_no_method_reads_names_the_bad_field(tmp_path):
  bad = zoo.genome("tvn1").to_dict()
  bad["blocks"][0]["filters"] = -3
  path = tmp_path / "genome.json"
  path.write_text(json.dumps(bad))
  with pytest.raises(UserError, match=r"blocks\[0\]\.filters"):
    genome_source.resolve(genome_file=str(path))
