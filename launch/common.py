"""What every launcher shares: flags, quiet logs, gin parsing, clean errors.

Every launcher's ``main`` starts the same way::

  def main(argv):
    with common.started(argv):
      ...  # vsearch imported, gin parsed; a UserError becomes one line

This module does not import TensorFlow, so ``--help`` is instant and log
settings are in place before TensorFlow starts.
"""

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence

from absl import app, flags
from absl import logging as absl_logging

from vsearch import quiet

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_string(
  "workdir", None, "Where the job reads and writes its state (local path or gs://)."
)
flags.DEFINE_multi_string("gin_file", [], "Gin config files, applied in order.")
flags.DEFINE_multi_string(
  "gin_bindings",
  [],
  "Gin bindings applied after the files, e.g. --gin_bindings='Search.num_candidates=8'.",
)
flags.DEFINE_bool("tf_logs", False, "Show TensorFlow's C++ and Python logs.")
FLAGS = flags.FLAGS


def define_flags(
  *, genome: bool = False, strategy: bool = False, required: Sequence[str] = ()
) -> None:
  """Defines what a launcher takes beside the shared flags, and which are required.

  Args:
    genome: ``--genome``, ``--candidate`` and ``--zoo`` (one genome to use).
    strategy: ``--strategy``, ``--tpu`` and ``--cpus`` (where to train).
    required: flags the launcher cannot run without.
  """
  if genome:
    define_genome_flags()
  if strategy:
    define_strategy_flags()
  flags.mark_flags_as_required(list(required))


def define_strategy_flags() -> None:
  """--strategy and --tpu, for launchers that train."""
  flags.DEFINE_enum(
    "strategy",
    "auto",
    ["auto", "tpu", "gpu", "multi_worker", "cpu"],
    "Where to train: auto picks TPU (with --tpu), multi-worker (with TF_CONFIG), GPUs, or the CPU.",
  )
  flags.DEFINE_string("tpu", None, "Cloud TPU name, or 'local' on a TPU VM.")
  flags.DEFINE_string(
    "cpus",
    None,
    "Pin this process to these CPU cores (e.g. 0, "
    "0-3 or 0,2) and size TensorFlow's thread pools to match; "
    "lets several workers share one host without fighting.",
  )


def define_genome_flags() -> None:
  """--genome, --candidate and --zoo: where a launcher's one genome comes from."""
  flags.DEFINE_string("genome", None, "A JSON genome file (as genome.json holds).")
  flags.DEFINE_string(
    "candidate", None, "A search record: WORKDIR/ID (runs/tvn/000015) or the record's path."
  )
  flags.DEFINE_string("zoo", None, "A published architecture, e.g. tvn1.")


def quiet_tensorflow(show_logs: bool) -> None:
  """Silences TensorFlow's log noise unless asked for; call before importing TF."""
  if show_logs:
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
  logging.getLogger("tensorflow").setLevel(logging.ERROR)
  logging.getLogger("absl").setLevel(logging.WARNING)


def import_vsearch(show_logs: bool) -> None:
  """Imports TensorFlow and every gin configurable, quietly unless asked."""
  quiet_tensorflow(show_logs)
  # TensorFlow's native start-up lines come before any log level applies.
  with quiet.silenced_stderr(not show_logs):
    from vsearch import configurables  # noqa: F401  (registers every gin configurable)
  if not show_logs:
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    # app.run set absl's verbosity from --verbosity (INFO by default).
    absl_logging.set_verbosity(absl_logging.WARNING)


def parse_gin(files, bindings) -> None:
  """Parses gin files and bindings after registering every configurable.

  Includes inside gin files resolve against the repository root as well as
  the working directory, so ``include 'gin/data/synthetic.gin'`` works from
  anywhere.

  Raises:
    UserError: a file is missing or a binding is unknown or malformed.
  """
  import gin

  from vsearch import configurables  # noqa: F401  (registers every gin configurable)
  from vsearch.errors import UserError

  gin.add_config_file_search_path(REPO_ROOT)
  # gin logs every path it tries; the error below says it once.
  verbosity = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.FATAL)
  try:
    gin.parse_config_files_and_bindings(files, bindings)
  except (OSError, ValueError, KeyError, SyntaxError) as e:
    message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UserError(f"Bad gin config: {message}") from e
  finally:
    absl_logging.set_verbosity(verbosity)


@contextlib.contextmanager
def started(argv: Sequence[str], parse: bool = True) -> Iterator[None]:
  """The start-up every launcher shares, as a context for the rest of ``main``.

  Refuses stray positional arguments, imports vsearch quietly (unless
  ``--tf_logs``), parses ``--gin_file`` and ``--gin_bindings`` (unless
  ``parse`` is False, for a launcher that adds bindings of its own first),
  and turns a ``UserError`` raised inside into one line and exit status 2.
  """
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  import_vsearch(FLAGS.tf_logs)
  with user_errors():
    if parse:
      parse_gin(FLAGS.gin_file, FLAGS.gin_bindings)
    yield


def genome_source(method: str | None = None):
  """The one genome ``--genome``, ``--candidate`` or ``--zoo`` names, with its method."""
  from vsearch.methods import genome_source as genome_source_lib

  return genome_source_lib.resolve(FLAGS.genome, FLAGS.candidate, FLAGS.zoo, method=method)


def strategy():
  """Pins this process to ``--cpus`` and returns the ``--strategy`` to train under."""
  from vsearch.train import strategy as strategy_lib

  strategy_lib.pin_cpus(FLAGS.cpus)
  return strategy_lib.resolve(FLAGS.strategy, FLAGS.tpu)


@contextlib.contextmanager
def user_errors():
  """Turns a UserError into one line on stderr and exit status 2, and a
  WorkerStopError (SIGTERM, a full disk, failures in a row) into one line and
  its own exit status."""
  from vsearch.errors import UserError, WorkerStopError

  try:
    yield
  except UserError as e:
    # gin appends "In call to configurable ..." lines; the first line says it all.
    print(f"error: {_first_line(e)}", file=sys.stderr, flush=True)
    sys.exit(2)
  except WorkerStopError as e:
    print(f"{e.label}: {_first_line(e)}", file=sys.stderr, flush=True)
    sys.exit(e.exit_status)
  except KeyboardInterrupt:
    print(
      "\nInterrupted; the records written so far are kept, and the same command resumes.",
      file=sys.stderr,
      flush=True,
    )
    sys.exit(130)


def _first_line(error: BaseException) -> str:
  text = str(error).strip()
  return text.splitlines()[0] if text else type(error).__name__
