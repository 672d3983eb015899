r"""AssembleNet's one-shot connection search: over-connect, train, keep, retrain.

  python -m launch.one_shot --workdir=/tmp/asn_one_shot --zoo=assemblenet50 \
      --gin_file=gin/assemblenet/one_shot_smoke.gin

Give exactly one of --genome (an AssembleNet genome file), --candidate and
--zoo: its nodes are kept and every block reads every lower node. Writes the
kept graph, with its learned weights fixed, to WORKDIR/genome.json. Rerunning
the same command resumes.
"""

from absl import flags

from launch import common, console

common.define_flags(genome=True, strategy=True, required=["workdir"])
flags.adopt_module_key_flags(common)  # --help lists the shared flags too.
FLAGS = flags.FLAGS


def main(argv):
  with common.started(argv):
    from vsearch.methods.assemblenet.one_shot import OneShotSearch

    OneShotSearch(
      workdir=FLAGS.workdir,
      source=common.genome_source(method="assemblenet"),
      strategy=common.strategy(),
    ).run()


def run():
  """The `vsearch-one-shot` console script."""
  console.run(main, __name__)


if __name__ == "__main__":
  run()
