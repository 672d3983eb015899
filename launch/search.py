r"""Runs (or resumes) an evolutionary architecture search.

  python -m launch.search --workdir=/tmp/tvn_smoke --gin_file=gin/tvn/smoke.gin

Rerunning the same command on the same workdir resumes the search, also after
SIGTERM (a spot VM's preemption notice), which checkpoints the child in
training at its next step boundary and exits with status 143. Several
workers (processes or hosts) can run the same search: give each the same
--workdir and its own --worker_id, e.g. on one 2-core host

  python -m launch.search --workdir=W --gin_file=G --worker_id=a --cpus=0 &
  python -m launch.search --workdir=W --gin_file=G --worker_id=b --cpus=1 &
"""

from absl import flags

from launch import common, console

common.define_flags(strategy=True, required=["workdir"])
flags.DEFINE_string(
  "worker_id",
  None,
  "This worker's name among those sharing the "
  "workdir (default: the host name). Restarted under the same "
  "name, a worker resumes the child it was training.",
)
flags.adopt_module_key_flags(common)  # --help lists the shared flags too.
FLAGS = flags.FLAGS


def main(argv):
  with common.started(argv):
    from vsearch.errors import UserError
    from vsearch.search.runner import Search

    if not FLAGS.gin_file:
      raise UserError(
        "launch.search needs --gin_file, the search's config, e.g. --gin_file=gin/tvn/smoke.gin."
      )

    Search(workdir=FLAGS.workdir, strategy=common.strategy(), worker_id=FLAGS.worker_id).run()


def run():
  """The `vsearch-search` console script."""
  console.run(main, __name__)


if __name__ == "__main__":
  run()
