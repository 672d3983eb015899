"""Frees what TensorFlow keeps of a candidate's graphs, so a search's memory stays flat.

``tf.keras.backend.clear_session()`` and ``gc.collect()`` after each
candidate are not enough: every ``tf.function`` trace of a training step
leaves its FuncGraphs (and their Operations) alive for good, 20 to 120 MB a
candidate. The referrer is TensorFlow's global gradient registry. Keras 3's
optimizer sums the gradients across replicas with
``ReplicaContext.all_reduce`` (under every strategy, the default one too),
which is a ``tf.custom_gradient``; in graph mode each use registers a gradient
function under a new name (``CustomGradient-<n>``) in that registry, which is
never cleared, and the function holds the traced tensors, hence their whole
graph.

``candidate_graphs_freed()`` removes, when a candidate is over, the names
registered while it ran. Nothing else refers to them: each name is unique and
only the candidate's own graphs, dropped with it, use it.
"""

import contextlib
import functools
import gc
import logging
from collections.abc import Iterator
from typing import Optional

import tensorflow as tf
from tensorflow.python.framework import ops

# The prefix tf.custom_gradient gives the gradient functions it registers in graph mode.
_CUSTOM_GRADIENT = "CustomGradient-"


@functools.cache
def _gradient_registry() -> Optional[dict]:
  """TensorFlow's registry of gradient functions by name, or None if it moved."""
  registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
  if not isinstance(registry, dict):
    logging.warning(
      "This TensorFlow keeps its gradient registry elsewhere; the memory of each candidate's "
      "graphs is not freed, and a long search grows."
    )
    return None
  return registry


@contextlib.contextmanager
def candidate_graphs_freed() -> Iterator[None]:
  """Runs one candidate; on leaving, frees every graph it traced.

  Clears the Keras session, removes the custom gradients registered inside
  the block and collects garbage. Use it around code whose models and
  ``tf.function``s are not used afterwards.
  """
  registry = _gradient_registry()
  before = set(registry) if registry is not None else set()
  try:
    yield
  finally:
    tf.keras.backend.clear_session()
    if registry is not None:
      for name in [n for n in registry if n.startswith(_CUSTOM_GRADIENT) and n not in before]:
        del registry[name]
    gc.collect()
