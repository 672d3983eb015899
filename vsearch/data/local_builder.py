"""What vsearch's own TFDS builders share: they build locally and download nothing."""

import tensorflow_datasets as tfds


class LocalBuilder(tfds.core.GeneratorBasedBuilder):
  """A TFDS builder whose data is made here (generated, or read from a folder).

  TFDS announces every build with download sizes, which mean nothing for these;
  ``load_dataset`` and ``launch.prepare_data`` print their own lines instead.
  """

  def _log_download_bytes(self) -> None:
    pass

  def _log_download_done(self) -> None:
    pass
