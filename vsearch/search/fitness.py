"""Fitness: the one number selection compares, computed from a candidate's metrics.

A fitness function takes the metrics that evaluation measured (a dict) and
returns a float, larger is better. It is chosen in gin
(``Search.fitness = @accuracy_fitness``), so a runtime-aware fitness is a
new function here, not a change to the search loop.
"""

from typing import Any

import gin

from vsearch.errors import UserError


@gin.configurable
def accuracy_fitness(metrics: dict[str, Any], key: str = "accuracy") -> float:
  """Validation accuracy: the fitness of EvaNet and AssembleNet.

  Args:
    metrics: what evaluation measured.
    key: which metric to read.
  """
  return float(metrics[key])


@gin.configurable
def latency_tradeoff_fitness(
  metrics: dict[str, Any],
  target_ms: float = gin.REQUIRED,
  weight: float = -0.07,
  key: str = "accuracy",
) -> float:
  """Accuracy × (latency / target)^weight: a soft runtime trade-off (MnasNet).

  With ``weight < 0`` a model slower than the target loses fitness smoothly
  and a faster one gains a little, so a search explores the Pareto front of
  accuracy against latency instead of a single limit. MnasNet uses -0.07.

  Args:
    metrics: what evaluation measured; needs ``key`` and ``latency_ms``.
    target_ms: the latency at which the fitness equals the accuracy.
    weight: the exponent; more negative punishes latency harder.
    key: which accuracy to read (``accuracy`` or ``accuracy_int8``).
  """
  if target_ms <= 0:
    raise ValueError(f"target_ms must be positive, got {target_ms}")
  return float(metrics[key]) * (float(metrics["latency_ms"]) / target_ms) ** weight


@gin.configurable
def map_fitness(metrics: dict[str, Any]) -> float:
  """Mean average precision: the fitness of multi-label data (Charades).

  Needs multi-hot labels (``load_sequence_examples.multi_label = True``),
  for which evaluation measures ``mAP``.

  Raises:
    UserError: the metrics have no mAP, i.e. the data is single-label.
  """
  if "mAP" not in metrics:
    raise UserError(
      "map_fitness needs multi-label data (evaluation measured "
      f"only {sorted(metrics)}); set Search.fitness = "
      "@accuracy_fitness or load multi-label data."
    )
  return float(metrics["mAP"])
