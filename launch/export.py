r"""Exports a model as a SavedModel, float and int8 TFLite, with export.json.

  python -m launch.export --zoo=tvn1 --out=exports/tvn1
  python -m launch.export --workdir=runs/train_tvn --out=exports/winner
  python -m launch.export --candidate=workdirs/tvn_smoke/000015 --out=exports/c15

--workdir reads a `launch.train` run (its genome and trained weights); the other
sources export untrained weights, calibrated and timed all the same, so a
published architecture can be measured on this machine in one command.

--workdir and --candidate export the model as its run built it: the run's
config.gin (dataset, method settings) is parsed first, then --gin_file and
--gin_bindings on top.
"""

from absl import flags

from launch import common, console

flags.DEFINE_string(
  "out", None, "Folder for saved_model/, model_float.tflite, model_int8.tflite and export.json."
)
common.define_flags(genome=True, required=["out"])
flags.adopt_module_key_flags(common)  # --help lists the shared flags too.
FLAGS = flags.FLAGS


def main(argv):
  with common.started(argv, parse=False):
    from vsearch.jobs import export

    own = export.source_config(FLAGS.workdir, FLAGS.candidate)
    common.parse_gin(own + FLAGS.gin_file, FLAGS.gin_bindings)
    export.run(
      out_dir=FLAGS.out,
      workdir=FLAGS.workdir,
      genome_file=FLAGS.genome,
      candidate=FLAGS.candidate,
      zoo_name=FLAGS.zoo,
    )


def run():
  """The `vsearch-export` console script."""
  console.run(main, __name__)


if __name__ == "__main__":
  run()
