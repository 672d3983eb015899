"""Checks a search's settings before anything trains.

A setting no candidate can succeed under (a fitness that reads a metric no
candidate will measure, an empty split) would otherwise surface only after
the first child trained, or fail every child one by one. These checks turn
it into one ``UserError`` line before any training.
"""

from collections.abc import Callable
from typing import Any, Optional

import tensorflow as tf

from vsearch.data import datasets
from vsearch.errors import UserError

# What evaluation and the trainer measure for every candidate.
_TRAINED = ("accuracy", "loss", "num_eval_clips", "train_loss", "num_params", "num_classes")


def expected_metrics(dataset: datasets.VideoDataset, gate: Optional[Any]) -> dict[str, Any]:
  """Plausible values of every metric a trained candidate's record will hold."""
  metrics: dict[str, Any] = dict.fromkeys(_TRAINED, 0.5)
  metrics.update(num_eval_clips=dataset.num_validation, num_classes=dataset.num_classes)
  metrics["num_params"] = 1000
  if is_multi_label(dataset):
    metrics["mAP"] = 0.5
  if gate is not None:
    metrics.update(latency_ms=1.0, latency_source="measured", latency={})
    metrics[f"accuracy_{gate.format}"] = 0.5
    metrics[f"num_{gate.format}_eval_clips"] = dataset.num_validation
  return metrics


def is_multi_label(dataset: datasets.VideoDataset) -> bool:
  """Whether the dataset's labels are multi-hot vectors rather than class indices."""
  spec = dataset.train.element_spec
  label = spec.get("label") if isinstance(spec, dict) else None
  return isinstance(label, tf.TensorSpec) and label.shape.rank == 1


def check(
  dataset: datasets.VideoDataset,
  fitness: Callable[[dict[str, Any]], float],
  gate: Optional[Any] = None,
) -> None:
  """Raises UserError when no candidate could get a record with a fitness.

  Args:
    dataset: what candidates train on.
    fitness: ``Search.fitness``.
    gate: ``Search.runtime_gate`` (it adds the deployed format's metrics).
  """
  if dataset.num_train < 1 or dataset.num_validation < 1:
    raise UserError(
      f"The dataset {dataset.name} has {dataset.num_train} training and "
      f"{dataset.num_validation} validation clips; a search needs both."
    )
  metrics = expected_metrics(dataset, gate)
  name = getattr(fitness, "__name__", type(fitness).__name__)
  try:
    value = fitness(metrics)
    float(value)
  except KeyError as e:
    # gin appends "In call to configurable ..." lines to the message.
    key = str(e.args[0] if e.args else e).splitlines()[0].strip().strip("'\"")
    hint = ""
    if gate is None and key.startswith(("accuracy_", "latency")):
      hint = (
        " It is measured by a runtime gate: set Search.runtime_gate = @RuntimeGate(), "
        "or read 'accuracy'."
      )
    elif gate is not None:
      hint = f" The runtime gate measures format {gate.format!r} (RuntimeGate.format)."
    raise UserError(
      f"Search.fitness ({name}) reads the metric {key!r}, which candidates will not have: "
      f"they measure {', '.join(sorted(metrics))}.{hint}"
    ) from e
  except UserError:
    raise
  except (ValueError, TypeError, ArithmeticError) as e:
    message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UserError(f"Search.fitness ({name}) cannot score a candidate: {message}") from e
