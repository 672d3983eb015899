r"""Runs (or resumes) an evolutionary architecture search.

  python -m launch.search --workdir=/tmp/tvn_smoke --gin_file=gin/tvn/smoke.gin

Rerunning the same command on the same workdir resumes the search.
"""

from absl import app
from absl import flags

from launch import common

common.define_strategy_flags()
flags.mark_flag_as_required("workdir")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  common.import_vsearch(FLAGS.tf_logs)
  with common.user_errors():
    common.parse_gin(FLAGS.gin_file, FLAGS.gin_bindings)
    from vsearch import search  # pylint: disable=g-import-not-at-top
    from vsearch import strategy  # pylint: disable=g-import-not-at-top
    search.Search(workdir=FLAGS.workdir,
                  strategy=strategy.resolve(FLAGS.strategy, FLAGS.tpu)).run()


if __name__ == "__main__":
  app.run(main)
