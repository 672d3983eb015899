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

flags.DEFINE_string("genome", None, "A JSON genome file (as genome.json holds).")
flags.DEFINE_string("candidate", None, "A search record: WORKDIR/ID (runs/tvn/000015) "
                    "or the record's path.")
flags.DEFINE_string("zoo", None, "A published architecture, e.g. tvn1.")
flags.DEFINE_enum("strategy", "auto", ["auto", "tpu", "gpu", "multi_worker", "cpu"],
                  "Where to train: auto picks TPU (with --tpu), multi-worker (with "
                  "TF_CONFIG), GPUs, or the CPU.")
flags.DEFINE_string("tpu", None, "Cloud TPU name, or 'local' on a TPU VM.")
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
    full_training.FullTraining(
        workdir=FLAGS.workdir, source=source,
        strategy=strategy.resolve(FLAGS.strategy, FLAGS.tpu)).run()


if __name__ == "__main__":
  app.run(main)
