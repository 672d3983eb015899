"""The report's figures: progress, trade-off fronts, lineage, method drawings."""

import io
from collections.abc import Callable, Sequence
from typing import Any, Optional

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from vsearch.record import STATUS_OVER_LIMIT, Record, best_record
from vsearch.report import analysis
from vsearch.report.load import SearchData

_FIGURE_DPI = 110
_PALETTE = {
  "ok": "#1f77b4",
  "front": "#d62728",
  "best": "#ff7f0e",
  "limit": "#7f7f7f",
  "over": "#9467bd",
  "zoo": "#2ca02c",
}


# method name -> function drawing the best genome of that method (AssembleNet:
# the graph with its learned edge weights; EvaNet: the ensemble). It returns
# a figure and a caption, or None when it has nothing to draw.
MethodFigure = Callable[[Record, SearchData], Optional[tuple[Any, str]]]
METHOD_FIGURES: dict[str, MethodFigure] = {}


def register_method_figure(method: str) -> Callable[[MethodFigure], MethodFigure]:
  """Decorator: ``draw`` makes the method-specific figure of a best candidate."""

  def register(draw: MethodFigure) -> MethodFigure:
    METHOD_FIGURES[method] = draw
    return draw

  return register


def _new_figure(width: float = 7.5, height: float = 4.2):
  fig, ax = plt.subplots(figsize=(width, height), dpi=_FIGURE_DPI)
  ax.grid(True, alpha=0.3)
  return fig, ax


def _accuracies(
  ax,
  xs,
  records: Sequence[Record],
  key: str,
  size: float,
  label: str = "candidate {key} (± 1 s.e.)",
) -> None:
  """Each record's ``key`` accuracy at ``xs``, with its standard error as a bar."""
  ys = [analysis.metric(r, key) for r in records]
  errors = [r.standard_error(key) or 0.0 for r in records]
  ax.errorbar(xs, ys, yerr=errors, fmt="none", ecolor=_PALETTE["ok"], alpha=0.35, linewidth=1)
  ax.scatter(xs, ys, s=size, color=_PALETTE["ok"], alpha=0.6, label=label.format(key=key))


def _chance(ax, records: Sequence[Record]) -> None:
  """A dotted line at the accuracy of guessing, when the records say how many classes."""
  chance = analysis.chance_level(records)
  if chance is not None:
    ax.axhline(
      chance, color=_PALETTE["limit"], linestyle=":", linewidth=1.2, label=f"chance ({chance:.2f})"
    )


def plot_progress(data: SearchData):
  """Best-so-far fitness and accuracy against candidates evaluated and wall time.

  Dots are each successful candidate's accuracy with its standard error; a
  dotted line marks chance, so a search that selects on noise shows as dots
  scattered on that line.
  """
  records, key = data.records, analysis.accuracy_key(data.records)
  fig, (by_count, by_time) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=_FIGURE_DPI)
  fitness_curve = analysis.best_so_far(records)
  accuracy_curve = analysis.best_so_far(records, lambda r: analysis.metric(r, key))
  count = list(range(1, len(records) + 1))
  hours = analysis.elapsed_hours(records)
  for ax, xs, label in (
    (by_count, count, "candidates evaluated"),
    (by_time, [None if h is None else h * 60 for h in hours], "wall time (minutes)"),
  ):
    points = [(x, r) for x, r in zip(xs, records) if x is not None and r.ok]
    _accuracies(ax, [x for x, _ in points], [r for _, r in points], key, size=14)
    lines = [(fitness_curve, _PALETTE["front"], "best fitness so far", "-")]
    if accuracy_curve == fitness_curve:
      lines[0] = (fitness_curve, _PALETTE["front"], f"best fitness (= {key}) so far", "-")
    else:
      lines.append((accuracy_curve, _PALETTE["best"], f"best {key} so far", "--"))
    for curve, color, name, style in lines:
      line = [(x, y) for x, y in zip(xs, curve) if x is not None and y is not None]
      if line:
        ax.step(
          [x for x, _ in line],
          [y for _, y in line],
          where="post",
          color=color,
          linewidth=2,
          linestyle=style,
          label=name,
        )
    _chance(ax, records)
    ax.set_xlabel(label)
    ax.grid(True, alpha=0.3)
  by_count.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
  by_count.set_ylabel("fitness / accuracy")
  by_count.set_title("Search progress by candidates")
  by_time.set_title("Search progress by wall time")
  by_count.legend(loc="lower right", fontsize=8)
  fig.tight_layout()
  return fig


def plot_tradeoff(
  data: SearchData,
  cost_key: str,
  cost_label: str,
  limit: Optional[float] = None,
  zoo: Sequence[dict[str, Any]] = (),
):
  """Accuracy against a cost (latency, parameters) with the Pareto front marked.

  Returns None when no successful candidate has the cost measured.
  """
  key = analysis.accuracy_key(data.records)
  measured = [
    r
    for r in data.ok
    if analysis.metric(r, cost_key) is not None and analysis.metric(r, key) is not None
  ]
  over = [
    r
    for r in data.records
    if r.status == STATUS_OVER_LIMIT and analysis.metric(r, cost_key) is not None
  ]
  if not measured:
    return None
  fig, ax = _new_figure(9.5, 4.4)
  points = [(analysis.metric(r, cost_key), analysis.metric(r, key)) for r in measured]
  _accuracies(ax, [p[0] for p in points], measured, key, size=18, label="candidates")
  _chance(ax, data.records)
  front = [points[i] for i in analysis.pareto_front(points)]
  ax.step(
    [p[0] for p in front],
    [p[1] for p in front],
    where="post",
    color=_PALETTE["front"],
    linewidth=1.5,
    marker="o",
    markersize=6,
    label="Pareto front",
  )
  best = best_record(data.records)
  if best in measured:
    ax.scatter(
      [analysis.metric(best, cost_key)],
      [analysis.metric(best, key)],
      s=160,
      marker="*",
      color=_PALETTE["best"],
      zorder=5,
      label=f"best fitness ({best.id})",
    )
  low = min(p[1] for p in points)
  if over:
    ax.scatter(
      [analysis.metric(r, cost_key) for r in over],
      [low] * len(over),
      marker="x",
      color=_PALETTE["over"],
      label="over limit (not trained)",
    )
  if limit is not None:
    ax.axvline(limit, color=_PALETTE["limit"], linestyle="--", label=f"runtime limit {limit:g}")
  for n, model in enumerate(zoo):
    label = "published models (zoo)" if n == 0 else None
    if model["accuracy"] is not None:
      ax.scatter(
        [model["latency_ms"]], [model["accuracy"]], marker="D", color=_PALETTE["zoo"], label=label
      )
      ax.annotate(
        model["name"],
        (model["latency_ms"], model["accuracy"]),
        textcoords="offset points",
        xytext=(4, 4),
        fontsize=8,
        color=_PALETTE["zoo"],
      )
    else:
      # Measured latency but no accuracy on this dataset: a labelled vertical line.
      ax.axvline(model["latency_ms"], color=_PALETTE["zoo"], linestyle=":", label=label)
      ax.text(
        model["latency_ms"],
        0.98,
        f" {model['name']}",
        rotation=90,
        va="top",
        ha="right",
        fontsize=8,
        color=_PALETTE["zoo"],
        transform=ax.get_xaxis_transform(),
      )
  costs = (
    [p[0] for p in points]
    + [analysis.metric(r, cost_key) for r in over]
    + [m["latency_ms"] for m in zoo]
  )
  if min(costs) > 0 and max(costs) / min(costs) > 20:
    ax.set_xscale("log")
  ax.set_xlabel(cost_label)
  ax.set_ylabel(key)
  ax.set_title(f"{key} against {cost_label.split(' (')[0]}")
  ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
  fig.tight_layout()
  return fig


def plot_lineage(chain: Sequence[Record]):
  """Fitness along the best candidate's lineage, each step labelled by its mutation."""
  fig, ax = _new_figure(7.5, 3.6)
  xs = list(range(len(chain)))
  ys = [r.fitness if r.ok else None for r in chain]
  ax.plot(
    [x for x, y in zip(xs, ys) if y is not None],
    [y for y in ys if y is not None],
    marker="o",
    color=_PALETTE["front"],
  )
  ax.set_xticks(xs)
  ax.set_xticklabels([r.id for r in chain], rotation=45, ha="right", fontsize=8)
  ax.set_xlabel("generation (ancestor id)")
  ax.set_ylabel("fitness")
  ax.set_title("Lineage of the best candidate")
  fig.tight_layout()
  return fig


def png(fig) -> bytes:
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=_FIGURE_DPI)
  plt.close(fig)
  return buffer.getvalue()
