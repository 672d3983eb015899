"""The package's metadata, its pinned versions, and CI running the README's test command."""

import os
import re
import runpy
import tomllib
from unittest import mock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(name):
  with open(os.path.join(REPO, name), encoding="utf-8") as f:
    return f.read()


def _setup_arguments():
  """What setup.py passes to setuptools.setup, without building anything."""
  with mock.patch("setuptools.setup") as setup:
    runpy.run_path(os.path.join(REPO, "setup.py"))
  return setup.call_args.kwargs


def _name(requirement):
  return re.split(r"[<>=!~ ;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_dependencies_are_ranges_and_constraints_pin_each_one():
  arguments = _setup_arguments()
  requirements = arguments["install_requires"] + [
    r for extra in arguments["extras_require"].values() for r in extra
  ]
  pinned = {}
  for line in _read("constraints.txt").splitlines():
    if line.strip() and not line.startswith("#"):
      name, version = line.split("==")
      pinned[_name(name)] = version
  for requirement in requirements:
    name = _name(requirement)
    if name != "ruff":  # the formatter's output changes between releases
      assert "==" not in requirement, requirement
    if name == "absl-py":  # <2 with [qat], 2.x without: CI tests both
      assert name not in pinned
      continue
    assert name in pinned, f"constraints.txt does not pin {name}"
  assert pinned["tensorflow"].startswith("2.21.")


def test_project_metadata():
  project = tomllib.loads(_read("pyproject.toml"))["project"]
  assert project["name"] == "vsearch" and project["license"] == "Apache-2.0"
  assert project["requires-python"] == ">=3.11,<3.14"
  assert set(project["dynamic"]) == {"dependencies", "optional-dependencies"}
  versions = {c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if "Python :: 3." in c}
  assert versions == {"3.11", "3.12", "3.13"}
  assert os.path.isfile(os.path.join(REPO, project["readme"]))


def test_ci_runs_the_readme_test_command():
  readme = _read("README.md")
  block = re.search(r"Set up and run the tests:\s*```sh\n(.*?)\n```", readme, re.S)
  assert block, "the README's test command"
  steps = [step.strip() for step in block.group(1).split("&&")]
  assert "-c constraints.txt" in block.group(1)
  ci_lines = [
    line.replace("pip install -q ", "pip install ") for line in _read(".ci/run").splitlines()
  ]
  for step in steps:
    if step.startswith("python3 -m venv"):
      step = step.replace("python3 -m venv", "python3 -m venv --clear")
    assert step in ci_lines, f".ci/run lacks {step!r}"
