r"""Builds, scores and exports the diverse ensemble of a finished EvaNet search.

  python -m launch.ensemble --workdir=/tmp/evanet_smoke --gin_file=gin/evanet/smoke.gin

Picks the best records of --workdir that are pairwise far enough apart
(`Ensemble.size`, `.min_distance`), trains each on every stream in
`Ensemble.streams`, and writes WORKDIR/ensemble/saved_model and ensemble.json
with every member's accuracy and the ensemble's.
"""

from absl import flags

from launch import common, console

common.define_flags(strategy=True, required=["workdir"])
flags.adopt_module_key_flags(common)  # --help lists the shared flags too.
FLAGS = flags.FLAGS


def main(argv):
  with common.started(argv):
    from vsearch.errors import UserError
    from vsearch.methods import registry
    from vsearch.methods.evanet.ensemble import Ensemble
    from vsearch.search.store import RecordStore
    from vsearch.train.trainer import TrainConfig

    records = RecordStore(FLAGS.workdir).read_all()
    if not records:
      raise UserError(f"{FLAGS.workdir} holds no search records.")
    Ensemble()(
      workdir=FLAGS.workdir,
      method=registry.method(records[0].method),
      records=records,
      strategy=common.strategy(),
      train_config=TrainConfig(),
    )


def run():
  """The `vsearch-ensemble` console script."""
  console.run(main, __name__)


if __name__ == "__main__":
  run()
