r"""Trains one architecture fully: a search's winner, a genome file or a zoo model.

  python -m launch.train --workdir=/tmp/tvn_train --candidate=/tmp/tvn_smoke/000015 \
      --gin_file=gin/tvn/train_smoke.gin --gin_bindings='TrainConfig.steps=3000'

Give exactly one of --genome, --candidate and --zoo. Rerunning the same
command on the same workdir resumes from the latest checkpoint; a finished run
only reports its result.
"""

from absl import app
from absl import flags

from launch import common

common.define_genome_flags()
common.define_strategy_flags()
flags.mark_flag_as_required("workdir")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  common.import_vsearch(FLAGS.tf_logs)
  from vsearch import full_training  # pylint: disable=g-import-not-at-top
  from vsearch import genome_source  # pylint: disable=g-import-not-at-top
  from vsearch import strategy  # pylint: disable=g-import-not-at-top
  with common.user_errors():
    common.parse_gin(FLAGS.gin_file, FLAGS.gin_bindings)
    source = genome_source.resolve(FLAGS.genome, FLAGS.candidate, FLAGS.zoo)
    strategy.pin_cpus(FLAGS.cpus)
    full_training.FullTraining(
        workdir=FLAGS.workdir, source=source,
        strategy=strategy.resolve(FLAGS.strategy, FLAGS.tpu)).run()


if __name__ == "__main__":
  app.run(main)
