"""Runs a launcher as a console script (``vsearch-search``) as ``python -m`` runs it.

pip writes each console script as a small ``__main__`` that imports the
launcher and calls its ``run()``. absl's ``--help`` prints ``__main__``'s
docstring and the key flags of the module named by ``sys.argv[0]``: for that
script, no text and no flags. ``run`` lends the script the launcher's.
"""

import sys
from collections.abc import Callable

from absl import app, flags


def run(main: Callable[[list[str]], None], module_name: str) -> None:
  """``app.run(main)``, with the launcher ``module_name``'s docstring and flags in --help."""
  module = sys.modules[module_name]
  script = sys.modules["__main__"]
  if script is not module:
    script.__doc__ = module.__doc__
    for flag in flags.FLAGS.get_key_flags_for_module(module_name):
      flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  app.run(main)
