r"""Profiles a target device once, so a search elsewhere can predict its latency.

On a host with vsearch, write a TFLite file of every stage the gin search
space can build (int8 and float), a manifest and the device script:

  python -m launch.profile_device prepare --gin_file=gin/tvn/smoke.gin \
      --num_classes=4 --out=workdirs/phone_table

Copy the folder to the device (Python with `ai-edge-litert` and numpy; no
TensorFlow, no vsearch) and time it there:

  python profile_tflite.py . --threads=1     # writes latency_table.json

(`python -m launch.profile_device profile --out=DIR` does the same here, when
this machine is the target.) Then search with the table as latency source:
`RuntimeGate.latency_source = 'table'`, `RuntimeGate.latency_table =
'workdirs/phone_table/latency_table.json'` (see gin/tvn/smoke_latency_table.gin).

--zoo, --genome and --num_sampled cover only those genomes instead of the
whole space (a real-scale space has too many stages to enumerate).
"""

import os
import subprocess
import sys

from absl import app, flags

from launch import common, console

flags.DEFINE_string("out", None, "The folder to write (prepare) or time (profile).")
flags.DEFINE_integer(
  "num_classes",
  None,
  "Classes of the searched models (the classifier head is a stage of the table).",
)
flags.DEFINE_list("formats", ["int8", "float"], "TFLite formats to prepare.")
flags.DEFINE_list("zoo", [], "Cover these zoo genomes only, e.g. tvn1,tvn2.")
flags.DEFINE_multi_string("genome", [], "Cover this JSON genome file only (repeatable).")
flags.DEFINE_integer("num_sampled", 0, "Cover this many genomes sampled from the space only.")
flags.DEFINE_integer(
  "num_fit_genomes", 8, "Whole genomes of the space the fixed cost and scale are fitted on."
)
flags.DEFINE_integer("seed", 0, "Seed of the sampled and fit genomes.")
flags.DEFINE_integer("max_entries", 20000, "Refuse to prepare more stage files than this.")
flags.DEFINE_integer("threads", 1, "profile: interpreter threads.")
flags.DEFINE_bool("xnnpack", True, "profile: use the XNNPACK delegate.")
flags.DEFINE_integer("rounds", 3, "profile: passes over all files.")
flags.DEFINE_integer("runs", 10, "profile: timed invokes per file and round.")
flags.mark_flag_as_required("out")
flags.adopt_module_key_flags(common)  # --help lists the shared flags too.
FLAGS = flags.FLAGS

_USAGE = "usage: python -m launch.profile_device prepare|profile --out=DIR ..."


def _genomes():
  """The genomes --zoo, --genome and --num_sampled name, or None for all."""
  import numpy as np

  from vsearch.methods import genome_source
  from vsearch.methods.tvn import TvnMethod

  genomes = [genome_source.resolve(zoo_name=n).genome for n in FLAGS.zoo]
  genomes += [genome_source.resolve(genome_file=f).genome for f in FLAGS.genome]
  rng = np.random.default_rng(FLAGS.seed)
  method = TvnMethod()
  genomes += [method.sample(rng) for _ in range(FLAGS.num_sampled)]
  return genomes or None


def prepare():
  from vsearch.errors import UserError
  from vsearch.methods.tvn import TvnSearchSpace, latency_table

  if not FLAGS.num_classes or FLAGS.num_classes < 1:
    raise UserError(
      "prepare needs --num_classes, the classes of the searched "
      "models (e.g. 4 for gin/tvn/smoke.gin, 101 for UCF101)."
    )
  latency_table.prepare(
    FLAGS.out,
    TvnSearchSpace(),
    FLAGS.num_classes,
    formats=FLAGS.formats,
    genomes=_genomes(),
    num_fit_genomes=FLAGS.num_fit_genomes,
    seed=FLAGS.seed,
    max_entries=FLAGS.max_entries,
  )
  print(
    f"Now copy {FLAGS.out} to the device and run there: python "
    "profile_tflite.py . (needs ai-edge-litert and numpy)"
  )


def profile():
  script = os.path.join(FLAGS.out, "profile_tflite.py")
  if not os.path.isfile(script):
    from vsearch.errors import UserError

    raise UserError(
      f"{FLAGS.out} has no profile_tflite.py: run `python -m launch.profile_device prepare` first."
    )
  command = [
    sys.executable,
    script,
    FLAGS.out,
    f"--threads={FLAGS.threads}",
    f"--rounds={FLAGS.rounds}",
    f"--runs={FLAGS.runs}",
  ]
  if not FLAGS.xnnpack:
    command.append("--no_xnnpack")
  sys.exit(subprocess.run(command, check=False).returncode)


def main(argv):
  if len(argv) != 2 or argv[1] not in ("prepare", "profile"):
    raise app.UsageError(_USAGE)
  if argv[1] == "profile":
    with common.user_errors():
      profile()
    return
  with common.started(argv[:1]):
    prepare()


def run():
  """The `vsearch-profile-device` console script."""
  console.run(main, __name__)


if __name__ == "__main__":
  run()
