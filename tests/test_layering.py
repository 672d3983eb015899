"""The layering of the package: imports run downhill, with no circles (ARCHITECTURE.md)."""

import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Each folder (or module) of the tree and its layer, lowest first. A module may
# import from its own group and from groups of a lower layer, never from a
# group of its own layer or above. The longest matching prefix names a
# module's group, so each method package is a group of its own.
LAYERS = {
  "vsearch": 0,  # errors, progress, quiet, files, record
  "vsearch.nn": 1,
  "vsearch.data": 2,
  "vsearch.train": 3,
  "vsearch.deploy": 3,
  "vsearch.methods": 4,  # base, checks: what every method shares
  "vsearch.methods.tvn": 5,
  "vsearch.methods.evanet": 5,
  "vsearch.methods.assemblenet": 5,
  "vsearch.methods.registry": 6,
  "vsearch.methods.zoo": 7,
  "vsearch.methods.genome_source": 8,
  "vsearch.search": 9,
  "vsearch.report": 10,
  "vsearch.jobs": 11,
  "vsearch.configurables": 12,
  "launch": 13,
}


def _modules() -> dict[str, str]:
  """Every module of vsearch/ and launch/: dotted name -> file."""
  modules = {}
  for top in ("vsearch", "launch"):
    for folder, _, names in os.walk(os.path.join(REPO, top)):
      for name in names:
        if name.endswith(".py"):
          path = os.path.join(folder, name)
          dotted = os.path.relpath(path, REPO)[: -len(".py")].replace(os.sep, ".")
          modules[dotted.removesuffix(".__init__")] = path
  return modules


MODULES = _modules()


def _group(module: str) -> str:
  parts = module.split(".")
  for n in range(len(parts), 0, -1):
    if ".".join(parts[:n]) in LAYERS:
      return ".".join(parts[:n])
  raise AssertionError(f"{module} is in no layer: add its folder to LAYERS and ARCHITECTURE.md")


def _imports(module: str) -> set[str]:
  """The vsearch and launch modules ``module`` imports, anywhere in its file."""
  with open(MODULES[module], encoding="utf-8") as f:
    tree = ast.parse(f.read())
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      for alias in node.names:
        child = f"{node.module}.{alias.name}"
        found.add(child if child in MODULES else node.module)
  return {name for name in found if name in MODULES and name != module}


def test_every_module_has_a_layer():
  for module in MODULES:
    _group(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_downhill(module):
  group = _group(module)
  uphill = []
  for target in sorted(_imports(module)):
    target_group = _group(target)
    if target_group != group and LAYERS[target_group] >= LAYERS[group]:
      uphill.append(f"{target} (layer {LAYERS[target_group]}, {target_group})")
  assert not uphill, (
    f"{module} (layer {LAYERS[group]}, {group}) imports from its own "
    f"layer or above: {', '.join(uphill)}"
  )


def test_no_import_circles():
  graph = {module: _imports(module) for module in MODULES}
  # Package __init__ files re-export their modules; a module importing a
  # sibling through its package is not a circle.
  for module in graph:
    graph[module] = {t for t in graph[module] if not module.startswith(t + ".")}
  state: dict[str, int] = {}
  path: list[str] = []

  def visit(module):
    state[module] = 1
    path.append(module)
    for target in sorted(graph[module]):
      if state.get(target) == 1:
        raise AssertionError("import circle: " + " -> ".join(path[path.index(target) :] + [target]))
      if target not in state:
        visit(target)
    path.pop()
    state[module] = 2

  for module in sorted(graph):
    if module not in state:
      visit(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module):
  with open(MODULES[module], encoding="utf-8") as f:
    lines = sum(1 for _ in f)
  assert lines <= 500, f"{MODULES[module]} has {lines} lines; split it by what it does"
