"""The search report: Pareto front, lineage, and report.html on real and hand-made workdirs."""

import dataclasses
import json
import os
import subprocess
import sys
import time

import matplotlib.pyplot as plt
import pytest

from vsearch import report
from vsearch.errors import UserError
from vsearch.record import Record, format_id
from vsearch.report import analysis, load, plots
from vsearch.search.store import RecordStore

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(REPO, "tests", "data", "tiny_search.gin")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _record(index, fitness, parent=None, status="ok", **metrics):
  ok = status == "ok"
  timings = {"total_s": 10.0}
  if "latency_ms" in metrics:  # measured by a runtime gate
    timings.update(gate_s=2.0, train_s=11.0, evaluate_s=1.0) if ok else timings.update(gate_s=2.0)
  return Record(
    id=format_id(index),
    method="tvn",
    genome={"blocks": [], "width": index},
    status=status,
    parent=None if parent is None else format_id(parent),
    mutation="random" if parent is None else f"width {parent} -> {index}",
    metrics={"accuracy": fitness, **metrics} if ok else metrics,
    fitness=fitness if ok else None,
    reason=None if ok else "latency 2.00 ms > limit 0.5 ms",
    timings=timings,
    finished_at=f"2026-11-25T10:{index:02d}:00+00:00",
  )


def _assert_report_files(written):
  with open(written.html_path, encoding="utf-8") as f:
    page = f.read()
  assert page.count('src="data:image/png;base64,') == len(written.png_paths)
  assert "http://" not in page and "https://" not in page  # opens offline
  for path in written.png_paths:
    with open(path, "rb") as f:
      assert f.read(8) == PNG_MAGIC
  return page


def test_pareto_front_on_hand_made_points():
  # (cost, accuracy): lower cost and higher accuracy are better.
  points = [
    (1.0, 0.5),
    (2.0, 0.7),
    (1.5, 0.4),
    (3.0, 0.7),
    (0.5, 0.2),
    (2.0, 0.7),
    (4.0, 0.9),
    (2.5, 0.65),
  ]
  front = analysis.pareto_front(points)
  # (1.5, 0.4) is beaten by (1.0, 0.5); (3.0, 0.7) by (2.0, 0.7); (2.5, 0.65) by (2.0, 0.7);
  # the two equal (2.0, 0.7) points both stay.
  assert front == [4, 0, 1, 5, 6]
  assert analysis.pareto_front([]) == []
  assert analysis.pareto_front([(1.0, 0.1)]) == [0]


def test_best_so_far_counts_failures_as_spent_budget():
  records = [
    _record(0, None, status="over_limit"),
    _record(1, 0.3),
    _record(2, 0.2),
    _record(3, None, status="failed"),
    _record(4, 0.5),
  ]
  assert analysis.best_so_far(records) == [None, 0.3, 0.3, 0.3, 0.5]


def test_lineage_follows_parents_and_says_where_it_is_cut():
  records = [
    _record(0, 0.3),
    _record(1, 0.4, parent=0),
    _record(3, 0.5, parent=1),
    _record(5, 0.6, parent=4),
  ]
  chain, cut = analysis.lineage(records, "000003")
  assert [r.id for r in chain] == ["000000", "000001", "000003"] and cut is None
  chain, cut = analysis.lineage(records, "000005")
  assert [r.id for r in chain] == ["000005"] and cut == "000004"


def test_report_of_a_hand_made_runtime_limited_search(tmp_path, monkeypatch):
  drawn = []

  def draw_genome(best, data):  # what AssembleNet and EvaNet register
    drawn.append((best.id, len(data.records)))
    fig, ax = plt.subplots()
    ax.bar(range(len(best.genome)), [1] * len(best.genome))
    return fig, "the best genome"

  monkeypatch.setitem(plots.METHOD_FIGURES, "tvn", draw_genome)
  workdir = str(tmp_path / "work")
  store = RecordStore(workdir)
  latency = {"latency_ms": 0.2, "num_params": 3000}
  for record in [
    _record(0, 0.30, accuracy_int8=0.30, **latency),
    _record(1, 0.35, accuracy_int8=0.35, latency_ms=0.4, num_params=9000),
    _record(2, None, status="over_limit", latency_ms=2.0, num_params=40000),
    _record(3, 0.45, parent=1, accuracy_int8=0.45, latency_ms=0.3, num_params=5000),
    _record(4, 0.25, parent=0, accuracy_int8=0.25, latency_ms=0.35, num_params=8000),
    _record(5, 0.50, parent=3, accuracy_int8=0.50, latency_ms=0.45, num_params=6000),
  ]:
    store.write(record)
  candidates = os.path.join(workdir, "candidates")
  with open(os.path.join(candidates, "000006.json"), "w") as f:
    f.write('{"id": "000006", "genome": {')  # truncated
  with open(os.path.join(candidates, "000007.json"), "w") as f:
    json.dump({"format": 0, "id": "000007", "arch": {}}, f)  # an older format
  with open(os.path.join(workdir, "config.gin"), "w") as f:
    f.write("Search.runtime_gate = @RuntimeGate()\nRuntimeGate.max_latency_ms = 0.5\n")
  with open(os.path.join(workdir, load.ZOO_LATENCY_FILE), "w") as f:
    json.dump(
      [
        {"name": "tvn1", "int8_1t": {"median_ms": 0.9}},
        {"name": "mine", "latency_ms": 0.25, "accuracy": 0.4},
      ],
      f,
    )

  written = report.write_report(workdir, top=3)

  assert written.best.id == "000005"
  assert {os.path.basename(p) for p in written.png_paths} == {
    "progress.png",
    "pareto_latency.png",
    "pareto_params.png",
    "lineage.png",
    "tvn_best.png",
  }
  assert drawn == [("000005", 6)]
  assert os.path.dirname(written.html_path) == os.path.join(workdir, "report")
  page = _assert_report_files(written)
  assert 'Best candidate: <b><a href="../candidates/000005.json">000005</a>' in page
  assert "child of 000003: width 3 -&gt; 5" in page  # the lineage says what changed
  assert "000006.json" in page and "000007.json" in page  # skipped files are named
  assert any("000007.json" in n and "missing fields" in n for n in written.notes)
  assert "latency 2.00 ms &gt; limit 0.5 ms" in page
  assert (
    "Runtime gate: 1 of 6 measured candidates were over a limit and not trained, "
    "saving about 12s of training"
  ) in page
  data = load.load_search(workdir)
  assert load.runtime_limit_ms(data.config) == 0.5
  assert [m["name"] for m in data.zoo] == ["tvn1", "mine"] and data.zoo[0]["latency_ms"] == 0.9


def test_gate_savings_are_the_rejected_count_times_the_median_training():
  def gated(index, status="ok", train_s=0.0):
    record = _record(index, 0.3 if status == "ok" else None, status=status)
    timings = (
      {"gate_s": 1.0, "train_s": train_s, "evaluate_s": 1.0} if status == "ok" else {"gate_s": 0.5}
    )
    return dataclasses.replace(record, timings=timings)

  records = [
    gated(0, train_s=9.0),
    gated(1, train_s=19.0),
    gated(2, train_s=29.0),
    gated(3, "over_limit"),
    gated(4, "over_limit"),
  ]
  assert analysis.gate_savings(records) == {
    "over_limit": 2,
    "gated": 5,
    "median_training_s": 20.0,
    "saved_s": 40.0,
    "gate_s": 4.0,
  }
  assert analysis.gate_savings([_record(0, 0.3)]) is None  # no gate ran


def test_report_on_empty_missing_and_non_search_workdirs(tmp_path):
  with pytest.raises(UserError, match="No such workdir"):
    report.write_report(str(tmp_path / "missing"))
  with pytest.raises(UserError, match="not a search workdir"):
    report.write_report(str(tmp_path))
  RecordStore(str(tmp_path / "empty"))
  written = report.write_report(str(tmp_path / "empty"))
  assert written.best is None and written.png_paths == []
  with open(written.html_path, encoding="utf-8") as f:
    assert "No candidate has finished successfully yet" in f.read()


def test_every_record_field_is_escaped_and_a_string_fitness_is_unreadable(tmp_path):
  store = RecordStore(str(tmp_path))
  evil = "<script>alert(1)</script>"
  best = dataclasses.replace(_record(0, 0.9), method=evil, mutation=evil, parent="000007")
  failed = dataclasses.replace(_record(1, 0.5), status=evil, fitness=None, reason=evil)
  store.write(best)
  store.write(failed)
  child = dataclasses.replace(_record(2, 0.95, parent=0), genome={"x": evil}, mutation=evil)
  store.write(child)
  with open(store.path("000003"), "w") as f:
    json.dump(_record(3, 0.99).to_dict() | {"fitness": "0.99", "method": evil}, f)
  os.makedirs(os.path.join(store.directory, "unreadable"))
  open(
    os.path.join(store.directory, "unreadable", "000004.<img src=x onerror=1>.json"), "w"
  ).close()
  written = report.write_report(str(tmp_path))
  page = _assert_report_files(written)
  assert "<script" not in page and "&lt;script&gt;" in page
  assert page.count("<img") == len(written.png_paths)  # the plots', none from a file name
  assert written.best.id == "000002"  # the string fitness did not win, nor crash the report
  assert any("000003.json" in note and "fitness" in note for note in written.notes)
  assert any("set aside" in note for note in written.notes)


def test_launcher_reports_a_missing_workdir_in_one_line(tmp_path):
  result = subprocess.run(
    [sys.executable, "-m", "launch.report", f"--workdir={tmp_path / 'missing'}"],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert result.returncode == 2, result.stderr[-2000:]
  assert result.stderr.strip().splitlines()[-1].startswith("error: No such workdir")


@pytest.mark.slow
def test_report_while_a_real_search_runs_and_after_it_finishes(tmp_path):
  workdir, data_dir = str(tmp_path / "work"), str(tmp_path / "data")
  candidates = os.path.join(workdir, "candidates")
  search = subprocess.Popen(
    [
      sys.executable,
      "-m",
      "launch.search",
      f"--workdir={workdir}",
      f"--gin_file={TINY}",
      f"--gin_bindings=load_dataset.data_dir='{data_dir}'",
      "--gin_bindings=Search.num_candidates=4",
    ],
    cwd=REPO,
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
  )
  live_counts = []
  deadline = time.monotonic() + 400
  while search.poll() is None and time.monotonic() < deadline:
    count = len(load.load_search(workdir).records) if os.path.isdir(candidates) else 0
    if count and (not live_counts or count > live_counts[-1]):
      written = report.write_report(workdir, out_dir=str(tmp_path / f"live{count}"))
      _assert_report_files(written)
      assert written.best is not None
      live_counts.append(count)
    time.sleep(0.2)
  output = search.communicate(timeout=60)[0]
  assert search.returncode == 0, output[-3000:]
  assert live_counts and min(live_counts) < 4, "no report was written while the search ran"

  written = report.write_report(workdir)
  page = _assert_report_files(written)
  assert {os.path.basename(p) for p in written.png_paths} >= {"progress.png", "pareto_params.png"}
  # The report and the search agree on the winner.
  assert f"Best: {written.best.id}" in output
  assert f"{written.best.id}</a></b> fitness" in page
  assert len(load.load_search(workdir).records) == 4


def test_chance_level_and_standard_error_come_from_the_records():
  four = [
    Record(
      id=format_id(i),
      method="tvn",
      genome={},
      status="ok",
      fitness=0.9,
      metrics={
        "accuracy": 0.9,
        "num_eval_clips": 400,
        "num_classes": 4,
        "accuracy_int8": 0.5,
        "num_int8_eval_clips": 100,
      },
    )
    for i in range(2)
  ]
  assert analysis.chance_level(four) == 0.25
  assert analysis.chance_level([_record(0, 0.3)]) is None  # written before num_classes
  assert four[0].standard_error() == pytest.approx(0.015)  # sqrt(0.9 * 0.1 / 400)
  assert four[0].standard_error("accuracy_int8") == pytest.approx(0.05)
  assert _record(0, 0.3).standard_error() is None
