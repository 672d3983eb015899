"""Video datasets (TFDS builders) and the clip pipeline that feeds models.

* ``datasets``: ``load_dataset`` (gin-configurable) gives a ``VideoDataset``,
  the raw training and validation examples of synthetic_motion or of any TFDS
  video dataset (ucf101, ...); importing it registers synthetic_motion.
* ``synthetic_motion``: the TFDS builder of clips whose class is a direction
  of motion, and its gin-configurable size, ``synthetic_motion_config``.
* ``clips``: ``ClipSpec`` and ``make_clips``, from raw examples to batches of
  clips in [-1, 1].

Nothing is imported here, so that ``vsearch.data.clips`` does not pull in
TFDS.
"""
