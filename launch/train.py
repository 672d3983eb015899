r"""Trains one architecture fully: a search's winner, a genome file or a zoo model.

  python -m launch.train --workdir=/tmp/tvn_train --candidate=/tmp/tvn_smoke/000015 \
      --gin_file=gin/tvn/train_smoke.gin --gin_bindings='TrainConfig.steps=3000'

Give exactly one of --genome, --candidate and --zoo. Rerunning the same
command on the same workdir resumes from the latest checkpoint; a finished run
only reports its result.
"""

from absl import flags

from launch import common, console

common.define_flags(genome=True, strategy=True, required=["workdir"])
flags.adopt_module_key_flags(common)  # --help lists the shared flags too.
FLAGS = flags.FLAGS


def main(argv):
  with common.started(argv):
    from vsearch.train.full_training import FullTraining

    source = common.genome_source()
    FullTraining(workdir=FLAGS.workdir, source=source, strategy=common.strategy()).run()


def run():
  """The `vsearch-train` console script."""
  console.run(main, __name__)


if __name__ == "__main__":
  run()
