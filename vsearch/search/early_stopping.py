"""Early stopping: a child clearly worse than the whole population stops part-way.

Keras Tuner's Hyperband and Optuna's pruners spend less on trials that are
going nowhere; none of the three papers did. Here a child is validated once
part-way through its budget (``at_fraction``), and stops when its accuracy,
even ``margin`` standard errors higher, is still below the worst fitness in
the current population: it could not have entered the population by its
end. It is recorded as ``stopped`` with its partial metrics and never becomes
a parent. Until the population holds ``min_population`` successful members
nothing is stopped, so the first generation always trains in full.
"""

import dataclasses
from collections.abc import Sequence
from typing import Any, Optional

import gin

from vsearch.errors import StoppedEarlyError, UserError
from vsearch.record import Record, standard_error


@gin.configurable
@dataclasses.dataclass(frozen=True)
class EarlyStopping:
  """When a child is validated part-way, and how far below the population it must be to stop.

  Attributes:
    at_fraction: where in the training budget the child is validated.
    margin: standard errors (of an accuracy over the validation clips)
      between the child's accuracy and the population's worst fitness.
    min_population: successful population members needed before any child
      is stopped.
  """

  at_fraction: float = 0.5
  margin: float = 2.0
  min_population: int = 4

  def __post_init__(self):
    if not 0.0 < self.at_fraction < 1.0:
      raise UserError(f"EarlyStopping.at_fraction must be in (0, 1), got {self.at_fraction}")
    if self.margin < 0 or self.min_population < 1:
      raise UserError(
        "EarlyStopping needs margin >= 0 and min_population >= 1, got "
        f"{self.margin} and {self.min_population}"
      )

  def probe_step(self, steps: int) -> int:
    """The step at which a child of ``steps`` steps is validated."""
    return max(int(round(steps * self.at_fraction)), 1)

  def bar(self, population: Sequence[Record]) -> Optional[float]:
    """The worst fitness of the population; None while it is too small to judge by."""
    fitnesses = [r.fitness for r in population if r.ok]
    return min(fitnesses) if len(fitnesses) >= self.min_population else None

  def check(self, step: int, steps: int, metrics: dict[str, Any], bar: Optional[float]) -> None:
    """Raises StoppedEarlyError when the child's partial ``metrics`` are clearly below ``bar``.

    The standard error is the larger of the child's and the bar's over the
    same clips, so a child at 0 accuracy is not judged more sure than the
    evaluation can be.
    """
    if bar is None:
      return
    accuracy, clips = float(metrics["accuracy"]), int(metrics["num_eval_clips"])
    spread = max(standard_error(accuracy, clips), standard_error(bar, clips))
    if accuracy + self.margin * spread < bar:
      raise StoppedEarlyError(
        f"stopped at step {step} of {steps}: validation accuracy {accuracy:.3f} "
        f"± {spread:.3f} is below the population's worst fitness {bar:.3f}",
        {**metrics, "stopped_at_step": step},
      )
