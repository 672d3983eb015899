"""Every launcher's --help names every flag it takes, as a module and as a console script.

The launchers define their flags at import time and ``--help`` imports no
TensorFlow, so each check is a subprocess of a fraction of a second.
"""

import ast
import glob
import json
import os
import re
import subprocess
import sys
import tomllib

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCHERS = sorted(
  os.path.basename(path)[:-3]
  for path in glob.glob(os.path.join(REPO, "launch", "*.py"))
  if os.path.basename(path) not in ("__init__.py", "common.py", "console.py")
)

# Lists the flags launch.<name> defines itself and takes from launch.common.
_LIST_FLAGS = """
import importlib, json, sys
from absl import flags
importlib.import_module("launch." + sys.argv[1])
by_module = flags.FLAGS.flags_by_module_dict()
names = {f.name for m in ("launch." + sys.argv[1], "launch.common") for f in by_module.get(m, [])}
print(json.dumps(sorted(names)))
"""


# What the `vsearch-<name>` console script pip writes does: import, then run().
_CONSOLE_SCRIPT = """
import sys
sys.argv[0] = "vsearch-" + sys.argv[1].replace("_", "-")
name = sys.argv.pop(1)
getattr(__import__("launch." + name).__dict__[name], "run")()
"""


def _run(args):
  return subprocess.run(
    [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
  )


def test_every_launcher_is_checked():
  assert {"search", "train", "export", "report", "prepare_data", "qat"} <= set(LAUNCHERS)


@pytest.mark.parametrize("form", ["module", "console_script"])
@pytest.mark.parametrize("name", LAUNCHERS)
def test_help_names_every_flag_the_launcher_takes(name, form):
  listed = _run(["-c", _LIST_FLAGS, name])
  assert listed.returncode == 0, listed.stderr[-2000:]
  taken = json.loads(listed.stdout)
  assert {"workdir", "gin_file", "gin_bindings", "tf_logs"} <= set(taken)

  if form == "module":
    shown = _run(["-m", f"launch.{name}", "--help"])
  else:
    shown = _run(["-c", _CONSOLE_SCRIPT, name, "--help"])
  # absl ends --help with exit status 1 (1.x) or 0 (newer releases).
  assert shown.returncode in (0, 1) and "Traceback" not in shown.stderr, shown.stderr[-2000:]
  missing = [flag for flag in taken if not re.search(rf"--(\[no\])?{flag}:", shown.stdout)]
  assert not missing, f"launch.{name} --help does not name {missing}"
  assert "tensorflow" not in shown.stderr.lower()
  # The launcher's own docstring comes first, with its example command.
  assert f"launch.{name}" in shown.stdout.split("flags:")[0]


def test_every_launcher_is_a_console_script_with_a_run_function():
  with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
    scripts = tomllib.load(f)["project"]["scripts"]
  targets = {}
  for script, target in scripts.items():
    module, function = target.split(":")
    assert module.startswith("launch.") and function == "run", target
    targets[module[len("launch.") :]] = script
  assert sorted(targets) == LAUNCHERS
  for name, script in targets.items():
    assert script == "vsearch-" + name.replace("_", "-")
    with open(os.path.join(REPO, "launch", f"{name}.py"), encoding="utf-8") as f:
      tree = ast.parse(f.read())
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert "run" in functions and not functions["run"].args.args, name
    # run() is what `python -m launch.<name>` runs too.
    assert "console.run(main, __name__)" in ast.unparse(functions["run"]), name
