"""The search report: what a search found, as one self-contained HTML page.

``write_report(workdir)`` reads the records of a finished search, or of one a
search is still writing to, and writes ``report.html`` with its plots embedded
(it opens from the file system, no server, no network) and the same plots as
PNG files beside it:

* best-so-far fitness and accuracy against candidates evaluated and wall time;
* accuracy against measured latency with the Pareto front, the runtime limit
  and the published zoo models; accuracy against parameters with its front;
* the lineage of the best candidate: its ancestors and each mutation;
* the top-k candidates with their genomes, metrics and links to their records;
* method-specific drawings of the best genome (``register_method_figure``).

Records it cannot read (truncated, not JSON, an older format) are listed in
the report with the reason instead of stopping it. The report only reads the
workdir, so it is safe to run while the search writes.
"""

import base64
import dataclasses
import datetime
import html
import io
import json
import os
import re
from collections.abc import Callable, Sequence
from typing import Any, Optional

import matplotlib
import matplotlib.ticker
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from vsearch import store as store_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from vsearch.errors import UserError  # pylint: disable=g-import-not-at-top,wrong-import-position
from vsearch.progress import format_duration  # pylint: disable=g-import-not-at-top,wrong-import-position
from vsearch.search import best_record  # pylint: disable=g-import-not-at-top,wrong-import-position
from vsearch.store import Record  # pylint: disable=g-import-not-at-top,wrong-import-position

# The file in a workdir that places published models on the latency plot: the
# JSON that ``benchmarks/latency.py --json`` writes, or a list of
# {"name", "latency_ms", "accuracy" (optional)}.
ZOO_LATENCY_FILE = "zoo_latency.json"

_FIGURE_DPI = 110
_PALETTE = {"ok": "#1f77b4", "front": "#d62728", "best": "#ff7f0e", "limit": "#7f7f7f",
            "over": "#9467bd", "zoo": "#2ca02c"}


@dataclasses.dataclass
class SearchData:
  """What the report knows about one workdir.

  Attributes:
    workdir: the search's workdir.
    records: the readable records, in id order.
    skipped: (file, why) for every record file that could not be read.
    config: the text of ``config.gin``; empty when there is none.
    zoo: published models measured for the latency plot (name, latency_ms,
      and accuracy when it was measured).
  """

  workdir: str
  records: list[Record]
  skipped: list[tuple[str, str]]
  config: str = ""
  zoo: list[dict[str, Any]] = dataclasses.field(default_factory=list)

  @property
  def ok(self) -> list[Record]:
    return [r for r in self.records if r.ok]

  def by_id(self) -> dict[str, Record]:
    return {r.id: r for r in self.records}


# ---------------------------------------------------------------- reading


def load_search(workdir: str, zoo_latency: Optional[str] = None) -> SearchData:
  """Reads every record of ``workdir``, skipping (and listing) unreadable ones.

  Args:
    workdir: a search workdir (local or ``gs://``).
    zoo_latency: a zoo latency JSON file; None reads ``<workdir>/zoo_latency.json``
      when it exists.

  Raises:
    UserError: the workdir does not exist or holds no ``candidates`` folder.
  """
  if not tf.io.gfile.isdir(workdir):
    raise UserError(f"No such workdir: {workdir}. Pass the --workdir a search "
                    "was started with.")
  if not tf.io.gfile.isdir(os.path.join(workdir, "candidates")):
    raise UserError(f"{workdir} has no candidates/ folder, so it is not a search "
                    "workdir (or its search has not started yet).")
  store = store_lib.RecordStore(workdir)
  records, skipped = [], []
  for record_id in sorted(store.ids()):
    path = store.path(record_id)
    try:
      with tf.io.gfile.GFile(path, "r") as f:
        data = json.load(f)
      if isinstance(data, dict) and data.get("format", store_lib.RECORD_FORMAT) > store_lib.RECORD_FORMAT:
        raise ValueError(f"record format {data['format']} is newer than this "
                         f"vsearch reads ({store_lib.RECORD_FORMAT})")
      record = Record.from_dict(data)
      if record.id != record_id:
        raise ValueError(f"its id {record.id!r} does not match the file name")
      if not isinstance(record.genome, dict):
        raise ValueError("its genome is not a JSON object")
    except (ValueError, TypeError, tf.errors.OpError, OSError) as e:
      skipped.append((path, str(e) or type(e).__name__))
      continue
    records.append(record)
  config = _read_text(os.path.join(workdir, "config.gin"))
  zoo_path = zoo_latency or os.path.join(workdir, ZOO_LATENCY_FILE)
  zoo = read_zoo_latency(zoo_path, _latency_format(config)) if (
      zoo_latency or tf.io.gfile.exists(zoo_path)) else []
  return SearchData(workdir=workdir, records=records, skipped=skipped, config=config, zoo=zoo)


def read_zoo_latency(path: str, column: str = "int8_1t") -> list[dict[str, Any]]:
  """Published models' latencies from ``path``.

  Reads the rows ``benchmarks/latency.py --json`` writes (``name`` and, per
  format and thread count, ``<format>_<threads>t.median_ms``) or plain rows
  with ``name``, ``latency_ms`` and optionally ``accuracy``.

  Args:
    path: the JSON file.
    column: which measurement of a benchmark row to read, e.g. ``int8_1t``.

  Raises:
    UserError: the file is missing or not a list of rows.
  """
  text = _read_text(path)
  if not text:
    raise UserError(f"Cannot read the zoo latency file {path}: missing or empty.")
  try:
    rows = json.loads(text)
    if not isinstance(rows, list):
      raise ValueError("not a list")
    zoo = []
    for row in rows:
      latency = row.get("latency_ms")
      if latency is None and isinstance(row.get(column), dict):
        latency = row[column].get("median_ms")
      if latency is None:
        continue
      zoo.append({"name": str(row["name"]), "latency_ms": float(latency),
                  "accuracy": _number(row.get("accuracy"))})
  except (ValueError, KeyError, TypeError, AttributeError) as e:
    raise UserError(f"The zoo latency file {path} is not a list of rows with name "
                    f"and latency ({e}); write it with benchmarks/latency.py --json.") from e
  return zoo


def _read_text(path: str) -> str:
  try:
    with tf.io.gfile.GFile(path, "r") as f:
      return f.read()
  except (tf.errors.OpError, OSError):
    return ""


def _config_value(config: str, name: str) -> Optional[str]:
  """The value bound to ``name`` in a gin config text, or None."""
  match = re.search(rf"^{re.escape(name)}\s*=\s*(.+)$", config, re.MULTILINE)
  return match.group(1).strip() if match else None


def _latency_format(config: str) -> str:
  fmt = (_config_value(config, "RuntimeGate.format") or "'int8'").strip("'\"")
  threads = _config_value(config, "LatencySettings.threads") or "1"
  return f"{fmt}_{threads}t"


def runtime_limit_ms(config: str) -> Optional[float]:
  """The runtime limit a search ran under, from its gin config; None if none."""
  gate = _config_value(config, "Search.runtime_gate")
  limit = _config_value(config, "RuntimeGate.max_latency_ms")
  if not gate or gate == "None" or limit in (None, "None"):
    return None
  try:
    return float(limit)
  except ValueError:
    return None


# ---------------------------------------------------------------- analysis


def _number(value: Any) -> Optional[float]:
  """``value`` as a float, or None when it is missing or not a number."""
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    return None
  return float(value)


def metric(record: Record, key: str) -> Optional[float]:
  """A numeric metric of a record, or None (missing, or not a number)."""
  return _number(record.metrics.get(key)) if isinstance(record.metrics, dict) else None


def accuracy_key(records: Sequence[Record]) -> str:
  """``accuracy_int8`` when the search measured the deployed model, else ``accuracy``."""
  return "accuracy_int8" if any(metric(r, "accuracy_int8") is not None for r in records) else "accuracy"


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
  """Indices of the points no other point beats on both cost and accuracy.

  A point (cost, accuracy) is dominated when another point costs no more and
  is no less accurate, and is strictly better in one of the two. Equal points
  do not dominate each other, so both stay on the front.

  Args:
    points: (cost, accuracy) pairs; lower cost and higher accuracy are better.

  Returns:
    The indices of the front, by increasing cost (then decreasing accuracy).
  """
  order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
  front, best_accuracy, best_cost = [], float("-inf"), None
  for i in order:
    cost, accuracy = points[i]
    if accuracy > best_accuracy:
      front.append(i)
      best_accuracy, best_cost = accuracy, cost
    elif accuracy == best_accuracy and cost == best_cost:
      front.append(i)  # A duplicate of a front point.
  return front


def gate_savings(records: Sequence[Record]) -> Optional[dict[str, float]]:
  """What the runtime gate saved: training time not spent on over-limit children.

  A child over a limit is measured and recorded untrained, so it saves
  roughly what a trained candidate spends after its gate: the median of the
  trained candidates' training, evaluation and deployed evaluation. None
  when no candidate went through a gate.

  Returns:
    ``{'over_limit', 'gated', 'median_training_s', 'saved_s', 'gate_s'}``:
    rejected and measured candidate counts, the per-candidate estimate, the
    time saved, and the time all gate measurements took.
  """
  gated = [r for r in records if "gate_s" in r.timings or r.status == store_lib.STATUS_OVER_LIMIT]
  if not gated:
    return None
  trained = [sum(r.timings.get(k, 0.0) for k in ("train_s", "evaluate_s", "deployed_evaluate_s"))
             for r in records if r.ok and "train_s" in r.timings]
  median = float(np.median(trained)) if trained else 0.0
  over = sum(r.status == store_lib.STATUS_OVER_LIMIT for r in records)
  return {"over_limit": over, "gated": len(gated), "median_training_s": median,
          "saved_s": over * median,
          "gate_s": float(sum(r.timings.get("gate_s", 0.0) for r in gated))}


def best_so_far(records: Sequence[Record],
                value: Callable[[Record], Optional[float]] = lambda r: r.fitness
                ) -> list[Optional[float]]:
  """For each record in order, the best ``value`` of the successful ones so far.

  Failed and over-limit candidates count as evaluated (they spent budget) but
  do not raise the best. None until the first success.
  """
  best, curve = None, []
  for record in records:
    current = value(record) if record.ok else None
    if current is not None and (best is None or current > best):
      best = current
    curve.append(best)
  return curve


def top_k(records: Sequence[Record], k: int) -> list[Record]:
  """The ``k`` fittest successful records, fittest first (earliest among equals)."""
  return sorted((r for r in records if r.ok), key=lambda r: (-r.fitness, r.index))[:k]


def lineage(records: Sequence[Record], record_id: str) -> tuple[list[Record], Optional[str]]:
  """The ancestors of ``record_id``, oldest first, ending with the record itself.

  Returns:
    The chain, and the id of a parent whose record is missing or unreadable
    (where the chain was cut), or None when it reaches a random genome.
  """
  by_id = {r.id: r for r in records}
  chain, current, seen = [], by_id.get(record_id), set()
  while current is not None and current.id not in seen:
    seen.add(current.id)
    chain.append(current)
    if not current.parent:
      return chain[::-1], None
    if current.parent not in by_id:
      return chain[::-1], current.parent
    current = by_id[current.parent]
  return chain[::-1], None


def elapsed_hours(records: Sequence[Record]) -> list[Optional[float]]:
  """Hours from the search's start to when each record was written.

  The start is the earliest ``finished_at`` minus that candidate's own time.
  None for a record without a readable ``finished_at``.
  """
  times = []
  for r in records:
    try:
      times.append(datetime.datetime.fromisoformat(r.finished_at).timestamp())
    except (TypeError, ValueError):
      times.append(None)
  known = [(t, r) for t, r in zip(times, records) if t is not None]
  if not known:
    return [None] * len(records)
  start = min(t - (_number(r.timings.get("total_s")) or 0.0) for t, r in known)
  return [None if t is None else (t - start) / 3600 for t in times]


# ---------------------------------------------------------------- figures

# method name -> function drawing the best genome of that method (AssembleNet:
# the graph with its learned edge weights; EvaNet: the ensemble). It returns
# a figure and a caption, or None when it has nothing to draw.
MethodFigure = Callable[[Record, SearchData], Optional[tuple[Any, str]]]
_METHOD_FIGURES: dict[str, MethodFigure] = {}


def register_method_figure(method: str) -> Callable[[MethodFigure], MethodFigure]:
  """Decorator: ``draw`` makes the method-specific figure of a best candidate."""

  def register(draw: MethodFigure) -> MethodFigure:
    _METHOD_FIGURES[method] = draw
    return draw

  return register


def _new_figure(width: float = 7.5, height: float = 4.2):
  fig, ax = plt.subplots(figsize=(width, height), dpi=_FIGURE_DPI)
  ax.grid(True, alpha=0.3)
  return fig, ax


def plot_progress(data: SearchData):
  """Best-so-far fitness and accuracy against candidates evaluated and wall time."""
  records, key = data.records, accuracy_key(data.records)
  fig, (by_count, by_time) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=_FIGURE_DPI)
  fitness_curve = best_so_far(records)
  accuracy_curve = best_so_far(records, lambda r: metric(r, key))
  count = list(range(1, len(records) + 1))
  hours = elapsed_hours(records)
  for ax, xs, label in ((by_count, count, "candidates evaluated"),
                        (by_time, [None if h is None else h * 60 for h in hours],
                         "wall time (minutes)")):
    points = [(x, r) for x, r in zip(xs, records) if x is not None and r.ok]
    ax.scatter([x for x, _ in points], [r.fitness for _, r in points], s=14,
               color=_PALETTE["ok"], alpha=0.45, label="candidate fitness")
    lines = [(fitness_curve, _PALETTE["front"], "best fitness so far", "-")]
    if accuracy_curve == fitness_curve:
      lines[0] = (fitness_curve, _PALETTE["front"], f"best fitness (= {key}) so far", "-")
    else:
      lines.append((accuracy_curve, _PALETTE["best"], f"best {key} so far", "--"))
    for curve, color, name, style in lines:
      line = [(x, y) for x, y in zip(xs, curve) if x is not None and y is not None]
      if line:
        ax.step([x for x, _ in line], [y for _, y in line], where="post", color=color,
                linewidth=2, linestyle=style, label=name)
    ax.set_xlabel(label)
    ax.grid(True, alpha=0.3)
  by_count.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
  by_count.set_ylabel("fitness / accuracy")
  by_count.set_title("Search progress by candidates")
  by_time.set_title("Search progress by wall time")
  by_count.legend(loc="lower right", fontsize=8)
  fig.tight_layout()
  return fig


def plot_tradeoff(data: SearchData, cost_key: str, cost_label: str,
                  limit: Optional[float] = None, zoo: Sequence[dict[str, Any]] = ()):
  """Accuracy against a cost (latency, parameters) with the Pareto front marked.

  Returns None when no successful candidate has the cost measured.
  """
  key = accuracy_key(data.records)
  measured = [r for r in data.ok if metric(r, cost_key) is not None and metric(r, key) is not None]
  over = [r for r in data.records if r.status == store_lib.STATUS_OVER_LIMIT
          and metric(r, cost_key) is not None]
  if not measured:
    return None
  fig, ax = _new_figure(9.5, 4.4)
  points = [(metric(r, cost_key), metric(r, key)) for r in measured]
  ax.scatter([p[0] for p in points], [p[1] for p in points], s=18, color=_PALETTE["ok"],
             alpha=0.6, label="candidates")
  front = [points[i] for i in pareto_front(points)]
  ax.step([p[0] for p in front], [p[1] for p in front], where="post", color=_PALETTE["front"],
          linewidth=1.5, marker="o", markersize=6, label="Pareto front")
  best = best_record(data.records)
  if best in measured:
    ax.scatter([metric(best, cost_key)], [metric(best, key)], s=160, marker="*",
               color=_PALETTE["best"], zorder=5, label=f"best fitness ({best.id})")
  low = min(p[1] for p in points)
  if over:
    ax.scatter([metric(r, cost_key) for r in over], [low] * len(over), marker="x",
               color=_PALETTE["over"], label="over limit (not trained)")
  if limit is not None:
    ax.axvline(limit, color=_PALETTE["limit"], linestyle="--", label=f"runtime limit {limit:g}")
  for n, model in enumerate(zoo):
    label = "published models (zoo)" if n == 0 else None
    if model["accuracy"] is not None:
      ax.scatter([model["latency_ms"]], [model["accuracy"]], marker="D", color=_PALETTE["zoo"],
                 label=label)
      ax.annotate(model["name"], (model["latency_ms"], model["accuracy"]),
                  textcoords="offset points", xytext=(4, 4), fontsize=8, color=_PALETTE["zoo"])
    else:
      # Measured latency but no accuracy on this dataset: a labelled vertical line.
      ax.axvline(model["latency_ms"], color=_PALETTE["zoo"], linestyle=":", label=label)
      ax.text(model["latency_ms"], 0.98, f" {model['name']}", rotation=90, va="top", ha="right",
              fontsize=8, color=_PALETTE["zoo"], transform=ax.get_xaxis_transform())
  costs = [p[0] for p in points] + [metric(r, cost_key) for r in over] + [
      m["latency_ms"] for m in zoo]
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
  ax.plot([x for x, y in zip(xs, ys) if y is not None], [y for y in ys if y is not None],
          marker="o", color=_PALETTE["front"])
  ax.set_xticks(xs)
  ax.set_xticklabels([r.id for r in chain], rotation=45, ha="right", fontsize=8)
  ax.set_xlabel("generation (ancestor id)")
  ax.set_ylabel("fitness")
  ax.set_title("Lineage of the best candidate")
  fig.tight_layout()
  return fig


def _png(fig) -> bytes:
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=_FIGURE_DPI)
  plt.close(fig)
  return buffer.getvalue()


# ---------------------------------------------------------------- HTML

_STYLE = """
body { font-family: sans-serif; max-width: 1150px; margin: 1em auto; color: #222; }
table { border-collapse: collapse; font-size: 13px; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
img { max-width: 100%; border: 1px solid #ddd; }
pre { font-size: 12px; background: #f7f7f7; padding: 6px; overflow-x: auto; }
.note { color: #8a4b00; }
"""


def _fmt(value: Optional[float], digits: int = 3) -> str:
  if value is None:
    return "–"
  if abs(value) >= 1000 and float(value).is_integer():
    return f"{int(value):,}"
  return f"{value:.{digits}f}"


def _genome_text(genome: dict[str, Any]) -> str:
  return json.dumps(genome, sort_keys=True, indent=1)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
  body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
  return f"<table><tr>{head}</tr>{body}</table>"


def _record_link(record: Record, data: SearchData, out_dir: str) -> str:
  """A link to the record's JSON file, relative so the report folder can move with the workdir."""
  path = os.path.join(data.workdir, "candidates", f"{record.id}.json")
  href = path if "://" in path else os.path.relpath(path, out_dir)
  return f'<a href="{html.escape(href)}">{record.id}</a>'


@dataclasses.dataclass
class Report:
  """What ``write_report`` wrote.

  Attributes:
    html_path: the report page.
    png_paths: the plots, one file each.
    best: the best candidate, or None when none finished successfully.
    notes: what the report could not show, and why.
  """

  html_path: str
  png_paths: list[str]
  best: Optional[Record]
  notes: list[str]


def write_report(workdir: str, out_dir: Optional[str] = None, top: int = 10,
                 zoo_latency: Optional[str] = None) -> Report:
  """Writes ``report.html`` and its PNG plots for the search in ``workdir``.

  Args:
    workdir: the search's workdir; may still be being written to.
    out_dir: where the report goes; default ``<workdir>/report``.
    top: how many candidates the top table lists.
    zoo_latency: a zoo latency JSON to place published models on the latency
      plot (default ``<workdir>/zoo_latency.json`` when it exists).

  Raises:
    UserError: the workdir is missing or not a search workdir.
  """
  data = load_search(workdir, zoo_latency)
  out_dir = out_dir or os.path.join(workdir, "report")
  tf.io.gfile.makedirs(out_dir)
  notes = [f"Skipped unreadable record {html.escape(path)}: {html.escape(why)}"
           for path, why in data.skipped]
  figures: list[tuple[str, str, Any]] = []  # (file name, caption, figure)
  sections = []
  best = best_record(data.records)
  key = accuracy_key(data.records)
  statuses = {}
  for r in data.records:
    statuses[r.status] = statuses.get(r.status, 0) + 1
  summary = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) or "none"
  methods = sorted({r.method for r in data.records}) or ["–"]
  if best:
    headline = (f"Best candidate: <b>{_record_link(best, data, out_dir)}</b> fitness "
                f"{_fmt(best.fitness)}, {key} {_fmt(metric(best, key))}, "
                f"{_fmt(metric(best, 'num_params'), 0)} parameters"
                + (f", {_fmt(metric(best, 'latency_ms'))} ms" if metric(best, "latency_ms") else ""))
  else:
    headline = "No candidate has finished successfully yet."
  sections.append(f"<p>{headline}</p><p>Records: {len(data.records)} readable ({summary}); "
                  f"{len(data.skipped)} unreadable. Method: {', '.join(methods)}.</p>")
  saved = gate_savings(data.records)
  if saved:
    sections.append(
        f"<p>Runtime gate: {saved['over_limit']} of {saved['gated']} measured candidates were "
        f"over a limit and not trained, saving about {format_duration(saved['saved_s'])} of "
        f"training ({saved['over_limit']} &times; the median "
        f"{format_duration(saved['median_training_s'])} a trained candidate took); the "
        f"measurements themselves took {format_duration(saved['gate_s'])}.</p>")

  if data.records:
    figures.append(("progress.png", "Best fitness so far against candidates evaluated and "
                    "against wall time (dots: each successful candidate).", plot_progress(data)))
  limit = runtime_limit_ms(data.config)
  latency_fig = plot_tradeoff(data, "latency_ms", "latency (ms per clip)", limit, data.zoo)
  if latency_fig:
    figures.append(("pareto_latency.png", f"{key} against measured latency; the front holds "
                    "the candidates no other is both faster and more accurate than.", latency_fig))
  else:
    notes.append("No successful candidate has a measured latency (the search ran without a "
                 "runtime gate: Search.runtime_gate = @RuntimeGate()), so there is no latency plot.")
  params_fig = plot_tradeoff(data, "num_params", "parameters")
  if params_fig:
    figures.append(("pareto_params.png", f"{key} against parameters, with the Pareto front.",
                    params_fig))

  lineage_html = ""
  if best:
    chain, cut = lineage(data.records, best.id)
    rows = []
    for r in chain:
      change = "random genome" if not r.parent else f"child of {r.parent}: {r.mutation}"
      rows.append([_record_link(r, data, out_dir), html.escape(change), _fmt(r.fitness),
                   _fmt(metric(r, key))])
    if cut:
      notes.append(f"The lineage stops at {cut}: its record is missing or unreadable.")
    lineage_html = ("<h2>Lineage of the best candidate</h2>"
                    + _table(["candidate", "what changed", "fitness", key], rows))
    if len(chain) > 1:
      figures.append(("lineage.png", "Fitness along the lineage of the best candidate.",
                      plot_lineage(chain)))
    draw = _METHOD_FIGURES.get(best.method)
    if draw:
      drawn = draw(best, data)
      if drawn:
        figures.append((f"{best.method}_best.png", drawn[1], drawn[0]))

  png_paths, images = [], []
  for name, caption, fig in figures:
    content = _png(fig)
    path = os.path.join(out_dir, name)
    with tf.io.gfile.GFile(path, "wb") as f:
      f.write(content)
    png_paths.append(path)
    images.append(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
                  f'{base64.b64encode(content).decode()}"><figcaption>{html.escape(caption)} '
                  f'({html.escape(name)})</figcaption></figure>')

  # Cost columns that no successful candidate has (e.g. latency without a gate) are left out.
  cost_keys = [(k, label) for k, label in (("latency_ms", "latency ms"), ("num_params", "params"),
                                           ("flops", "FLOPs"))
               if any(metric(r, k) is not None for r in data.ok)]
  top_rows = []
  for rank, r in enumerate(top_k(data.records, top), 1):
    cells = [str(rank), _record_link(r, data, out_dir), _fmt(r.fitness), _fmt(metric(r, "accuracy"))]
    if key != "accuracy":
      cells.append(_fmt(metric(r, key)))
    cells += [_fmt(metric(r, k), 3 if k == "latency_ms" else 0) for k, _ in cost_keys]
    cells.append(f"<details><summary>genome</summary><pre>{html.escape(_genome_text(r.genome))}"
                 "</pre></details>")
    top_rows.append(cells)
  header = ["#", "candidate", "fitness", "accuracy"] + ([key] if key != "accuracy" else []) + [
      label for _, label in cost_keys] + ["genome"]
  top_html = (f"<h2>Top {top}</h2>" + _table(header, top_rows)) if top_rows else ""

  failed_rows = [[_record_link(r, data, out_dir), html.escape(r.status),
                  html.escape(r.reason or "")] for r in data.records if not r.ok]
  failed_html = ("<h2>Not trained or failed</h2>" + _table(["candidate", "status", "reason"],
                                                            failed_rows)) if failed_rows else ""
  notes_html = "".join(f'<p class="note">{n}</p>' for n in notes)
  config_html = (f"<details><summary>config.gin</summary><pre>{html.escape(data.config)}</pre>"
                 "</details>") if data.config else ""
  written = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
  page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Search report: "
          f"{html.escape(workdir)}</title><style>{_STYLE}</style></head><body>"
          f"<h1>Search report</h1><p>{html.escape(workdir)} — written {written}</p>"
          + "".join(sections) + notes_html + "".join(images) + lineage_html + top_html
          + failed_html + config_html + "</body></html>")
  html_path = os.path.join(out_dir, "report.html")
  with tf.io.gfile.GFile(html_path, "w") as f:
    f.write(page)
  return Report(html_path=html_path, png_paths=png_paths, best=best,
                notes=[html.unescape(re.sub("<[^>]+>", "", n)) for n in notes])
