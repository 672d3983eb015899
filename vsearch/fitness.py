"""Fitness: the one number selection compares, computed from a candidate's metrics.

A fitness function takes the metrics that evaluation measured (a dict) and
returns a float, larger is better. It is chosen in gin
(``Search.fitness = @accuracy_fitness``), so a runtime-aware fitness is a
new function here, not a change to the search loop.
"""

from typing import Any

import gin


@gin.configurable
def accuracy_fitness(metrics: dict[str, Any], key: str = "accuracy") -> float:
  """Validation accuracy: the fitness of EvaNet and AssembleNet.

  Args:
    metrics: what evaluation measured.
    key: which metric to read.
  """
  return float(metrics[key])
