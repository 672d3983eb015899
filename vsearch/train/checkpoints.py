"""A child's training checkpoints: restored to resume it, set aside when unusable."""

import logging
import time
from collections.abc import Callable
from typing import Any, Optional

import tensorflow as tf


def restore(
  make: Callable[[], Any],
  trainer: Any,
  checkpoint_dir: str,
  max_step: int,
  resume_from: Optional[str] = None,
) -> tuple[Any, int, Callable[[int], str]]:
  """Resumes ``trainer`` from the latest checkpoint in ``checkpoint_dir``, or
  in ``resume_from`` when ``checkpoint_dir`` has none; saves into ``checkpoint_dir``.

  A checkpoint that does not restore (corrupt, missing files, another
  model's variables, more steps than the budget) is renamed aside, never
  deleted, with a warning naming where, and a fresh trainer from ``make``
  starts at step 0 (a partial restore may have set some variables).

  Args:
    make: builds a fresh trainer (with ``model`` and ``optimizer``).
    trainer: the trainer to restore into, built by ``make``.
    checkpoint_dir: where the child's checkpoints go (local or ``gs://``).
    max_step: the training budget; a checkpoint beyond it is unusable.
    resume_from: another folder to resume from (an earlier claim's); it is
      only read, or set aside when unusable.

  Returns:
    (trainer, step, save): the trainer to train, the step it resumes from
    (0 for a fresh start) and a function saving a checkpoint of a step.
  """
  checkpoint = tf.train.Checkpoint(model=trainer.model, optimizer=trainer.optimizer)
  source = checkpoint_dir
  try:
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=1)
    latest = manager.latest_checkpoint
    if not latest and resume_from and tf.io.gfile.isdir(resume_from):
      source, latest = resume_from, tf.train.latest_checkpoint(resume_from)
    step = 0
    if latest:
      checkpoint.restore(latest).assert_existing_objects_matched()
      step = int(trainer.optimizer.iterations.numpy())
      if not 0 < step <= max_step:
        raise ValueError(f"it holds step {step}, outside this budget of {max_step} steps")
  except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError):
    raise  # the storage is unreachable for now: the checkpoint may be fine
  except Exception as e:  # whatever is wrong with it, it cannot be resumed from
    aside = set_aside(source)
    message = str(e).strip().splitlines()[0] if str(e).strip() else ""
    logging.warning(
      "The child's checkpoint in %s cannot be restored (%s: %s); moved it to %s and "
      "training the child from step 0.",
      source,
      type(e).__name__,
      message,
      aside,
    )
    trainer = make()
    checkpoint = tf.train.Checkpoint(model=trainer.model, optimizer=trainer.optimizer)
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=1)
    step = 0
  return trainer, step, lambda done: manager.save(checkpoint_number=done)


def set_aside(checkpoint_dir: str) -> str:
  """Renames ``checkpoint_dir`` to ``<checkpoint_dir>.unusable-<time>``; returns the new name."""
  aside = f"{checkpoint_dir.rstrip('/')}.unusable-{time.strftime('%Y%m%d-%H%M%S')}"
  suffix = 0
  while tf.io.gfile.exists(aside if not suffix else f"{aside}-{suffix}"):
    suffix += 1
  aside = aside if not suffix else f"{aside}-{suffix}"
  tf.io.gfile.rename(checkpoint_dir, aside)
  return aside
