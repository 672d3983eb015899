r"""Builds, scores and exports the diverse ensemble of a finished EvaNet search.

  python -m launch.ensemble --workdir=/tmp/evanet_smoke --gin_file=gin/evanet/smoke.gin

Picks the best records of --workdir that are pairwise far enough apart
(`Ensemble.size`, `.min_distance`), trains each on every stream in
`Ensemble.streams`, and writes WORKDIR/ensemble/saved_model and ensemble.json
with every member's accuracy and the ensemble's.
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
    from vsearch import ensemble  # pylint: disable=g-import-not-at-top
    from vsearch import genome_source  # pylint: disable=g-import-not-at-top
    from vsearch import strategy  # pylint: disable=g-import-not-at-top
    from vsearch import training  # pylint: disable=g-import-not-at-top
    from vsearch.errors import UserError  # pylint: disable=g-import-not-at-top
    from vsearch.store import RecordStore  # pylint: disable=g-import-not-at-top
    records = RecordStore(FLAGS.workdir).read_all()
    if not records:
      raise UserError(f"{FLAGS.workdir} holds no search records.")
    ensemble.Ensemble()(
        workdir=FLAGS.workdir, method=genome_source.method_named(records[0].method),
        records=records, strategy=strategy.resolve(FLAGS.strategy, FLAGS.tpu),
        train_config=training.TrainConfig())


if __name__ == "__main__":
  app.run(main)
