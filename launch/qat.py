r"""Quantization-aware fine-tuning of a trained model, compared with post-training int8.

  python -m launch.qat --workdir=runs/c15 --out=exports/c15_qat --gin_file=gin/tvn/train_smoke.gin

Needs the [qat] extra (pip install -e ".[qat]"). Writes model_int8.tflite
(post-training), model_qat_int8.tflite and qat.json, and prints both int8
models' validation accuracy, latency and size.
"""

from absl import flags

from launch import common, console

flags.DEFINE_string("out", None, "Where the TFLite files and qat.json go.")
flags.mark_flags_as_required(["workdir", "out"])
flags.adopt_module_key_flags(common)  # --help lists the shared flags too.
FLAGS = flags.FLAGS


def main(argv):
  with common.started(argv):
    from vsearch.jobs import qat

    qat.run(workdir=FLAGS.workdir, out_dir=FLAGS.out)


def run():
  """The `vsearch-qat` console script."""
  console.run(main, __name__)


if __name__ == "__main__":
  run()
