"""The search report's page: what a search found, as one self-contained HTML page.

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
import json
import os
import re
from collections.abc import Sequence
from typing import Any, Optional

import tensorflow as tf

from vsearch.progress import format_duration
from vsearch.record import Record, best_record
from vsearch.report import analysis, load, plots
from vsearch.report.load import SearchData

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


class _Html(str):
  """Markup built here from escaped parts; any other text is escaped where it is placed."""


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
  body = "".join(
    "<tr>" + "".join(f"<td>{_escaped(cell)}</td>" for cell in row) + "</tr>" for row in rows
  )
  return f"<table><tr>{head}</tr>{body}</table>"


def _escaped(text: str) -> str:
  return text if isinstance(text, _Html) else html.escape(str(text))


def _record_link(record: Record, data: SearchData, out_dir: str) -> _Html:
  """A link to the record's JSON file, relative so the report folder can move with the workdir."""
  path = os.path.join(data.workdir, "candidates", f"{record.id}.json")
  href = path if "://" in path else os.path.relpath(path, out_dir)
  return _Html(f'<a href="{html.escape(href)}">{html.escape(record.id)}</a>')


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


def write_report(
  workdir: str, out_dir: Optional[str] = None, top: int = 10, zoo_latency: Optional[str] = None
) -> Report:
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
  data = load.load_search(workdir, zoo_latency)
  out_dir = out_dir or os.path.join(workdir, "report")
  tf.io.gfile.makedirs(out_dir)
  notes = [
    f"Skipped unreadable record {html.escape(path)}: {html.escape(why)}"
    for path, why in data.skipped
  ]
  notes += [
    f"Unreadable record set aside by the search (its candidate ran again): {html.escape(path)}"
    for path in data.set_aside
  ]
  figures: list[tuple[str, str, Any]] = []  # (file name, caption, figure)
  sections = []
  best = best_record(data.records)
  key = analysis.accuracy_key(data.records)
  statuses = {}
  for r in data.records:
    statuses[r.status] = statuses.get(r.status, 0) + 1
  summary = html.escape(", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) or "none")
  methods = [html.escape(m) for m in sorted({r.method for r in data.records})] or ["–"]
  if best:
    headline = (
      f"Best candidate: <b>{_record_link(best, data, out_dir)}</b> fitness "
      f"{_fmt(best.fitness)}, {html.escape(key)} {_fmt(analysis.metric(best, key))}, "
      f"{_fmt(analysis.metric(best, 'num_params'), 0)} parameters"
      + (
        f", {_fmt(analysis.metric(best, 'latency_ms'))} ms"
        if analysis.metric(best, "latency_ms")
        else ""
      )
    )
  else:
    headline = "No candidate has finished successfully yet."
  sections.append(
    f"<p>{headline}</p><p>Records: {len(data.records)} readable ({summary}); "
    f"{len(data.skipped)} unreadable. Method: {', '.join(methods)}.</p>"
  )
  saved = analysis.gate_savings(data.records)
  if saved:
    sections.append(
      f"<p>Runtime gate: {saved['over_limit']} of {saved['gated']} measured candidates were "
      f"over a limit and not trained, saving about {format_duration(saved['saved_s'])} of "
      f"training ({saved['over_limit']} &times; the median "
      f"{format_duration(saved['median_training_s'])} a trained candidate took); the "
      f"measurements themselves took {format_duration(saved['gate_s'])}.</p>"
    )

  if data.records:
    figures.append(
      (
        "progress.png",
        "Best fitness so far against candidates evaluated and against wall time; dots are "
        "each successful candidate's accuracy with a bar of one standard error, and the "
        "dotted line is chance.",
        plots.plot_progress(data),
      )
    )
  limit = load.runtime_limit_ms(data.config)
  latency_fig = plots.plot_tradeoff(data, "latency_ms", "latency (ms per clip)", limit, data.zoo)
  if latency_fig:
    figures.append(
      (
        "pareto_latency.png",
        f"{key} against measured latency; the front holds "
        "the candidates no other is both faster and more accurate than.",
        latency_fig,
      )
    )
  else:
    notes.append(
      "No successful candidate has a measured latency (the search ran without a "
      "runtime gate: Search.runtime_gate = @RuntimeGate()), so there is no latency plot."
    )
  params_fig = plots.plot_tradeoff(data, "num_params", "parameters")
  if params_fig:
    figures.append(
      ("pareto_params.png", f"{key} against parameters, with the Pareto front.", params_fig)
    )

  lineage_html = ""
  if best:
    chain, cut = analysis.lineage(data.records, best.id)
    rows = []
    for r in chain:
      change = "random genome" if not r.parent else f"child of {r.parent}: {r.mutation}"
      rows.append(
        [
          _record_link(r, data, out_dir),
          change,
          _fmt(r.fitness),
          _fmt(analysis.metric(r, key)),
        ]
      )
    if cut:
      notes.append(
        f"The lineage stops at {html.escape(str(cut))}: its record is missing or unreadable."
      )
    lineage_html = "<h2>Lineage of the best candidate</h2>" + _table(
      ["candidate", "what changed", "fitness", key], rows
    )
    if len(chain) > 1:
      figures.append(
        (
          "lineage.png",
          "Fitness along the lineage of the best candidate.",
          plots.plot_lineage(chain),
        )
      )
    draw = plots.METHOD_FIGURES.get(best.method)
    if draw:
      drawn = draw(best, data)
      if drawn:
        figures.append((f"{best.method}_best.png", drawn[1], drawn[0]))

  png_paths, images = [], []
  for name, caption, fig in figures:
    content = plots.png(fig)
    path = os.path.join(out_dir, name)
    with tf.io.gfile.GFile(path, "wb") as f:
      f.write(content)
    png_paths.append(path)
    images.append(
      f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
      f'{base64.b64encode(content).decode()}"><figcaption>{html.escape(caption)} '
      f"({html.escape(name)})</figcaption></figure>"
    )

  # Cost columns that no successful candidate has (e.g. latency without a gate) are left out.
  cost_keys = [
    (k, label)
    for k, label in (("latency_ms", "latency ms"), ("num_params", "params"), ("flops", "FLOPs"))
    if any(analysis.metric(r, k) is not None for r in data.ok)
  ]
  top_rows = []
  for rank, r in enumerate(analysis.top_k(data.records, top), 1):
    cells = [
      str(rank),
      _record_link(r, data, out_dir),
      _fmt(r.fitness),
      _fmt(analysis.metric(r, "accuracy")),
    ]
    if key != "accuracy":
      cells.append(_fmt(analysis.metric(r, key)))
    cells += [_fmt(analysis.metric(r, k), 3 if k == "latency_ms" else 0) for k, _ in cost_keys]
    cells.append(
      _Html(
        f"<details><summary>genome</summary><pre>{html.escape(_genome_text(r.genome))}"
        "</pre></details>"
      )
    )
    top_rows.append(cells)
  header = (
    ["#", "candidate", "fitness", "accuracy"]
    + ([key] if key != "accuracy" else [])
    + [label for _, label in cost_keys]
    + ["genome"]
  )
  top_html = (f"<h2>Top {top}</h2>" + _table(header, top_rows)) if top_rows else ""

  failed_rows = [
    [_record_link(r, data, out_dir), r.status, r.reason or ""] for r in data.records if not r.ok
  ]
  failed_html = (
    ("<h2>Not trained or failed</h2>" + _table(["candidate", "status", "reason"], failed_rows))
    if failed_rows
    else ""
  )
  notes_html = "".join(f'<p class="note">{n}</p>' for n in notes)
  config_html = (
    (f"<details><summary>config.gin</summary><pre>{html.escape(data.config)}</pre></details>")
    if data.config
    else ""
  )
  written = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
  page = (
    f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Search report: "
    f"{html.escape(workdir)}</title><style>{_STYLE}</style></head><body>"
    f"<h1>Search report</h1><p>{html.escape(workdir)} — written {written}</p>"
    + "".join(sections)
    + notes_html
    + "".join(images)
    + lineage_html
    + top_html
    + failed_html
    + config_html
    + "</body></html>"
  )
  html_path = os.path.join(out_dir, "report.html")
  with tf.io.gfile.GFile(html_path, "w") as f:
    f.write(page)
  return Report(
    html_path=html_path,
    png_paths=png_paths,
    best=best,
    notes=[html.unescape(re.sub("<[^>]+>", "", n)) for n in notes],
  )
