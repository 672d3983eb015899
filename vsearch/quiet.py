"""Keeping native libraries' log lines off a person's console.

TensorFlow's and the TFLite converter's C++ code write straight to file
descriptor 2 (CUDA probing, absl pre-initialisation warnings, MLIR dumps),
where no Python log level reaches. This module imports no TensorFlow, so
launchers can use it before TensorFlow starts.
"""

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def silenced_stderr(enabled: bool = True) -> Iterator[None]:
  """Sends file descriptor 2 to /dev/null while the block runs.

  Process-wide while it lasts: other threads' stderr is lost too. Python
  exceptions raised inside are printed after the descriptor is restored, so
  none is lost.

  Args:
    enabled: False makes this a no-op (for a ``--tf_logs``-style switch).
  """
  if not enabled:
    yield
    return
  sys.stderr.flush()
  saved = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  try:
    os.dup2(devnull, 2)
    yield
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)
