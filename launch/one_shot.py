r"""AssembleNet's one-shot connection search: over-connect, train, keep, retrain.

  python -m launch.one_shot --workdir=/tmp/asn_one_shot --zoo=assemblenet50 \
      --gin_file=gin/assemblenet/one_shot_smoke.gin

Give exactly one of --genome (an AssembleNet genome file), --candidate and
--zoo: its nodes are kept and every block reads every lower node. Writes the
kept graph, with its learned weights fixed, to WORKDIR/genome.json. Rerunning
the same command resumes.
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
  from vsearch import genome_source  # pylint: disable=g-import-not-at-top
  from vsearch import one_shot  # pylint: disable=g-import-not-at-top
  from vsearch import strategy  # pylint: disable=g-import-not-at-top
  with common.user_errors():
    common.parse_gin(FLAGS.gin_file, FLAGS.gin_bindings)
    source = genome_source.resolve(FLAGS.genome, FLAGS.candidate, FLAGS.zoo,
                                   method="assemblenet")
    strategy.pin_cpus(FLAGS.cpus)
    one_shot.OneShotSearch(
        workdir=FLAGS.workdir, source=source,
        strategy=strategy.resolve(FLAGS.strategy, FLAGS.tpu)).run()


if __name__ == "__main__":
  app.run(main)
