"""Every shipped gin file imports what it binds, so it parses on its own.

A notebook can ``gin.parse_config_file('gin/tvn/smoke.gin')`` without
importing ``vsearch.configurables`` first, and the launchers still parse the
same files.
"""

import glob
import json
import os
import subprocess
import sys

import gin
import pytest
from gin import config_parser

from launch import common
from vsearch import configurables  # noqa: F401  (registers every gin configurable)
from vsearch.jobs import qat
from vsearch.methods import genome_source

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIN_FILES = sorted(
  os.path.relpath(path, REPO)
  for path in glob.glob(os.path.join(REPO, "gin", "**", "*.gin"), recursive=True)
)


class _References(config_parser.ParserDelegate):
  """Collects the configurables a file's values reference (``@Evolution()``)."""

  def __init__(self):
    self.names = set()

  def configurable_reference(self, scoped_configurable_name, evaluate):
    self.names.add(scoped_configurable_name.split("/")[-1])
    return scoped_configurable_name

  def macro(self, macro_name):
    return macro_name


def _statements(path):
  references = _References()
  with open(os.path.join(REPO, path), encoding="utf-8") as f:
    statements = list(config_parser.ConfigParser(f, references))
  return statements, references.names


def test_the_shipped_files_are_found():
  assert "gin/tvn/smoke_latency.gin" in GIN_FILES and len(GIN_FILES) >= 15


@pytest.mark.parametrize("path", GIN_FILES)
def test_a_file_imports_the_module_of_every_configurable_it_names(path):
  statements, referenced = _statements(path)
  imported = {s.module for s in statements if isinstance(s, config_parser.ImportStatement)}
  named = referenced | {
    s.selector for s in statements if isinstance(s, config_parser.BindingStatement)
  }
  for selector in named:
    configurable = gin.config._REGISTRY.get_match(selector)
    assert configurable is not None, f"{path}: unknown configurable {selector}"
    module = configurable.wrapped.__module__
    assert module in imported, f"{path} binds {selector} but does not import {module}"
  # The imports come first, before any include or binding.
  kinds = [isinstance(s, config_parser.ImportStatement) for s in statements]
  assert kinds == sorted(kinds, reverse=True), f"{path}: imports must come first"


_PARSE_ALONE = """
import sys
import gin

gin.add_config_file_search_path(sys.argv[1])
for path in sys.argv[2:]:
  gin.clear_config()
  gin.parse_config_file(path)
  print("parsed", path, flush=True)
assert "vsearch.configurables" not in sys.modules
"""


def test_every_file_parses_in_an_interpreter_that_imported_only_gin():
  # One interpreter for all (each import of TensorFlow costs seconds): the
  # first file, the README's main job, parses from nothing; the test above
  # checks that every file imports what it binds itself.
  first = "gin/tvn/smoke_latency.gin"
  result = subprocess.run(
    [sys.executable, "-c", _PARSE_ALONE, REPO, first, *(f for f in GIN_FILES if f != first)],
    cwd=REPO,
    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    capture_output=True,
    text=True,
    timeout=600,
    check=False,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.count("parsed ") == len(GIN_FILES)


@pytest.mark.parametrize("path", GIN_FILES)
def test_every_file_parses_through_the_launchers(path):
  common.parse_gin([os.path.join(REPO, path)], [])
  assert gin.config_str()


def test_the_qat_child_gets_the_bindings_without_the_imports():
  common.parse_gin([os.path.join(REPO, "gin/tvn/train_smoke.gin")], [])
  config = gin.config_str()
  assert "import vsearch.train.trainer" in config
  stripped = qat._without_imports(config)
  assert "import " not in stripped and "TrainConfig.steps = 1000" in stripped


BASELINES = sorted(glob.glob(os.path.join(REPO, "benchmarks", "baselines", "*.json")))


@pytest.mark.parametrize("path", BASELINES, ids=os.path.basename)
def test_every_hand_made_baseline_is_a_valid_genome_of_its_method(path):
  # The hand-made models the search configs are compared against
  # (benchmarks/README.md) start a search through Search.initial_genomes.
  with open(path, encoding="utf-8") as f:
    method = json.load(f)["method"]
  source = genome_source.resolve(genome_file=path)
  assert source.method.name == method
  assert source.method.genome_from_dict(source.genome.to_dict()) == source.genome
