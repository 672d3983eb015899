r"""Writes the report of a search: report.html with its plots, and the plots as PNGs.

  python -m launch.report --workdir=workdirs/tvn_smoke

Works on a finished search and on one still running (rerun it to refresh).
The report goes to WORKDIR/report/ unless --out says otherwise.
"""

from absl import flags

from launch import common, console

flags.mark_flag_as_required("workdir")
flags.DEFINE_string("out", None, "Where report.html and the PNGs go (default WORKDIR/report).")
flags.DEFINE_integer("top", 10, "How many candidates the top table lists.")
flags.DEFINE_string(
  "zoo_latency",
  None,
  "A JSON of published models' latencies "
  "(benchmarks/latency.py --json) to place on the latency plot; "
  "default WORKDIR/zoo_latency.json when it exists.",
)
flags.adopt_module_key_flags(common)  # --help lists the shared flags too.
FLAGS = flags.FLAGS


def main(argv):
  with common.started(argv, parse=False):
    from vsearch.report import write_report

    written = write_report(
      FLAGS.workdir, out_dir=FLAGS.out, top=FLAGS.top, zoo_latency=FLAGS.zoo_latency
    )
    for note in written.notes:
      print(f"note: {note}", flush=True)
    if written.best:
      print(f"Best: {written.best.id} fitness {written.best.fitness:.4f}", flush=True)
    print(f"Wrote {written.html_path} and {len(written.png_paths)} plots.", flush=True)


def run():
  """The `vsearch-report` console script."""
  console.run(main, __name__)


if __name__ == "__main__":
  run()
