"""The full training of one genome: checkpointed, resumable, summarised.

``FullTraining`` trains a single architecture (from a genome file, a search
record or the zoo) for the ``TrainConfig`` schedule, validating every
``eval_every`` steps and checkpointing every ``checkpoint_every`` steps into
``<workdir>/checkpoints``. A run killed at any moment and started again with
the same command resumes from its latest checkpoint: weights, optimizer
slots and the step (so the learning-rate schedule continues); a finished run
started again only reports. Every path goes through ``tf.io.gfile`` (or
TensorFlow's checkpoint and summary writers, which use it), so the workdir
may be on ``gs://``.

Workdir layout::

  genome.json          the genome (``--genome`` reads it back)
  config.gin           the parsed gin config; operative_config.gin once built
  checkpoints/         tf.train.CheckpointManager
  tensorboard/train    loss, learning_rate, steps_per_sec
  tensorboard/validation  accuracy, loss
  final.weights.h5     the trained weights (``model.save_weights``)
  result.json          written last: the run is finished when it exists

``result.json`` holds the final validation accuracy and loss, the last
training loss, steps, parameters, ``wall_s`` (time in training and
checkpointing summed over every run of the job, validation excluded), the
source description, the genome and the dataset.

Under MultiWorkerMirroredStrategy every worker trains, validates and saves
(those are collective), but only the chief writes the workdir.
"""

import datetime
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any, Optional, Protocol

import gin
import tensorflow as tf

from vsearch import files
from vsearch.data import clips as clips_lib
from vsearch.data import datasets
from vsearch.errors import CandidateError, UserError
from vsearch.progress import Progress, format_duration
from vsearch.train import trainer as trainer_lib

GENOME_FILE = "genome.json"
WEIGHTS_FILE = "final.weights.h5"
RESULT = "result.json"


class Source(Protocol):
  """What full training needs of the architecture it trains.

  ``vsearch.methods.base.Source`` is one: a genome with the method that builds
  it. Training knows no method, so it asks for no more than this.
  """

  description: str

  @property
  def method(self) -> Any:
    """Has ``name``, ``build(genome, num_classes)`` and ``clip_spec(genome)``."""

  @property
  def genome(self) -> Any:
    """Has ``to_dict()``."""


@gin.configurable
class FullTraining:
  """Trains one genome to the end of its schedule, resuming where it stopped.

  Args:
    workdir: where checkpoints, summaries and results go (local or gs://).
    source: the genome and the method that builds it.
    strategy: the ``tf.distribute`` strategy to train under.
    train_config: steps, batch size and learning-rate schedule.
    checkpoint_every: steps between checkpoints (rounded up to a multiple of
      ``train_config.steps_per_call``, where the loop can stop).
    eval_every: steps between validations during training; 0 validates only
      at the end.
    max_checkpoints: checkpoints kept.
    seed: seed of the initial weights and the clip stream.
    load_dataset: returns the ``VideoDataset`` to train and validate on.
  """

  def __init__(
    self,
    workdir: str,
    source: Source,
    strategy: tf.distribute.Strategy,
    train_config: Optional[trainer_lib.TrainConfig] = None,
    checkpoint_every: int = 500,
    eval_every: int = 1000,
    max_checkpoints: int = 3,
    seed: int = 0,
    load_dataset: Callable[[], datasets.VideoDataset] = datasets.load_dataset,
  ):
    if checkpoint_every < 1 or eval_every < 0:
      raise UserError(
        f"FullTraining needs checkpoint_every >= 1 and eval_every >= 0, "
        f"not {checkpoint_every} and {eval_every}."
      )
    self.workdir = workdir
    self.source = source
    self.strategy = strategy
    self.config = (train_config or trainer_lib.TrainConfig()).for_replicas(
      strategy.num_replicas_in_sync
    )
    self.checkpoint_every = checkpoint_every
    self.eval_every = eval_every
    self.max_checkpoints = max_checkpoints
    self.seed = seed
    self.load_dataset = load_dataset

  def run(self) -> dict[str, Any]:
    """Trains (or resumes, or only reports) and returns the result.

    Returns:
      The contents of ``result.json``.

    Raises:
      UserError: the workdir holds another genome's run, the dataset or
        settings are unusable, or the training loss became NaN or infinite.
    """
    result_path = os.path.join(self.workdir, RESULT)
    if tf.io.gfile.exists(result_path):
      with tf.io.gfile.GFile(result_path, "r") as f:
        result = json.load(f)
      print(f"Already finished ({result_path}):", flush=True)
      _report(result)
      return result
    chief = _is_chief(self.strategy)
    if chief:
      tf.io.gfile.makedirs(self.workdir)
      self._save_genome()
      _save_text(os.path.join(self.workdir, "config.gin"), gin.config_str())
    dataset = self.load_dataset()
    tf.keras.utils.set_random_seed(self.seed)
    trainer = trainer_lib.Trainer(
      self.strategy,
      lambda: self.source.method.build(self.source.genome, dataset.num_classes),
      self.config,
    )
    if chief:
      _save_text(os.path.join(self.workdir, "operative_config.gin"), gin.operative_config_str())
    manager, step, wall_s = self._restore(trainer, chief)
    start_step = int(step.numpy())

    spec = self.source.method.clip_spec(self.source.genome)
    clips_lib.check_inputs(spec, dataset.object_classes)
    # A resumed run draws a stream it has not seen rather than replaying the
    # first batches of the run that was killed.
    train_data = _shard_by_data(
      clips_lib.make_clips(
        dataset.train,
        spec,
        batch_size=self.config.batch_size,
        training=True,
        seed=self.seed + start_step,
      )
    )
    eval_data = _shard_by_data(
      clips_lib.make_clips(
        dataset.validation, spec, batch_size=self.config.eval_batch_size, training=False
      )
    )
    loop = _Loop(self, trainer, eval_data, manager, step, wall_s, start_step, chief)
    try:
      train_loss = trainer.train(train_data, loop.on_progress, initial_step=start_step)
      if start_step < self.config.steps:
        loop.save()
      metrics = loop.validate(self.config.steps)
    except CandidateError as e:
      # A search skips such a candidate; here it is the whole job.
      raise UserError(
        f"{e}; the checkpoints before it are kept. Lower "
        "TrainConfig.learning_rate and run the same command again."
      ) from e
    finally:
      for writer in loop.writers.values():
        writer.close()
      if not chief:
        tf.io.gfile.rmtree(manager.directory)
    result = {
      "accuracy": metrics["accuracy"],
      "loss": metrics["loss"],
      # NaN when a run killed after its last checkpoint had nothing left to train.
      "train_loss": train_loss if math.isfinite(train_loss) else None,
      "steps": int(step.numpy()),
      "num_params": int(trainer.model.count_params()),
      "wall_s": float(wall_s.numpy()),
      "num_eval_clips": metrics["num_eval_clips"],
      "source": self.source.description,
      "method": self.source.method.name,
      "genome": self.source.genome.to_dict(),
      "dataset": dataset.name,
      "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if chief:
      self._save_weights(trainer.model)
      # Last, so its presence means every other output is complete.
      _save_text(result_path, json.dumps(result, indent=2, sort_keys=True))
      _report(result)
    return result

  def _restore(self, trainer: trainer_lib.Trainer, chief: bool):
    """The checkpoint manager, step and wall time, restored if a checkpoint exists."""
    with self.strategy.scope():
      step = tf.Variable(0, dtype=tf.int64, trainable=False)
      wall_s = tf.Variable(0.0, dtype=tf.float64, trainable=False)
    checkpoint = tf.train.Checkpoint(
      model=trainer.model, optimizer=trainer.optimizer, step=step, wall_s=wall_s
    )
    directory = os.path.join(self.workdir, "checkpoints")
    latest = tf.train.latest_checkpoint(directory)
    if not chief:
      # Every worker saves (saving is collective), but only the chief's
      # checkpoints are kept; the others write to a scratch folder.
      directory = tempfile.mkdtemp(prefix="vsearch-worker-checkpoints-")
    manager = tf.train.CheckpointManager(checkpoint, directory, self.max_checkpoints)
    if latest:
      checkpoint.restore(latest).assert_existing_objects_matched()
      print(f"Resuming from step {int(step.numpy())} ({latest})", flush=True)
    else:
      print(
        f"Training {self.source.description} for {self.config.steps} steps "
        f"({trainer.model.count_params():,} parameters)",
        flush=True,
      )
    return manager, step, wall_s

  def _save_genome(self) -> None:
    path = os.path.join(self.workdir, GENOME_FILE)
    text = json.dumps(self.source.genome.to_dict(), indent=2, sort_keys=True)
    if tf.io.gfile.exists(path):
      with tf.io.gfile.GFile(path, "r") as f:
        if json.loads(f.read()) != json.loads(text):
          raise UserError(
            f"{self.workdir} already trains another genome ({path}); give a new --workdir."
          )
      return
    _save_text(path, text)

  def _save_weights(self, model: tf.keras.Model) -> None:
    # Keras writes h5 to local files only; copying through gfile reaches gs://.
    with tempfile.TemporaryDirectory() as local:
      path = os.path.join(local, WEIGHTS_FILE)
      model.save_weights(path)
      tf.io.gfile.copy(path, os.path.join(self.workdir, WEIGHTS_FILE), overwrite=True)


class _Loop:
  """What happens between training calls: summaries, validation, checkpoints."""

  def __init__(
    self,
    job: FullTraining,
    trainer: trainer_lib.Trainer,
    eval_data: tf.data.Dataset,
    manager: tf.train.CheckpointManager,
    step: tf.Variable,
    wall_s: tf.Variable,
    start_step: int,
    chief: bool,
  ):
    self.job, self.trainer, self.eval_data = job, trainer, eval_data
    self.manager, self.step, self.wall_s = manager, step, wall_s
    self.writers = {
      name: (
        tf.summary.create_file_writer(os.path.join(job.workdir, "tensorboard", name))
        if chief
        else tf.summary.create_noop_writer()
      )
      for name in ("train", "validation")
    }
    self.progress = Progress(job.config.steps, done=start_step)
    self.last = (start_step, time.monotonic())
    self.val_acc: Optional[float] = None

  def on_progress(self, done: int, loss: float) -> None:
    before, then = self.last
    now = time.monotonic()
    self.last = (done, now)
    self.wall_s.assign_add(now - then)
    self.step.assign(done)
    with self.writers["train"].as_default(step=done):
      tf.summary.scalar("loss", loss)
      tf.summary.scalar("learning_rate", float(self.trainer.optimizer.learning_rate))
      tf.summary.scalar("steps_per_sec", (done - before) / max(now - then, 1e-9))
    job = self.job
    # The end of the schedule is validated and saved once, by FullTraining.run.
    if done < job.config.steps:
      if job.eval_every and trainer_lib.crossed(before, done, job.eval_every):
        self.validate(done)
      if trainer_lib.crossed(before, done, job.checkpoint_every):
        self.save()
    for _ in range(done - before):
      self.progress.step()
    val = f" | val acc {self.val_acc:.2f}" if self.val_acc is not None else ""
    self.progress.print(f"loss {loss:.3f}{val}")

  def validate(self, done: int) -> dict[str, float]:
    metrics = self.trainer.evaluate(self.eval_data)
    self.val_acc = metrics["accuracy"]
    with self.writers["validation"].as_default(step=done):
      tf.summary.scalar("accuracy", metrics["accuracy"])
      tf.summary.scalar("loss", metrics["loss"])
    # Validation is not training time; keep it out of steps/sec and wall_s.
    self.last = (self.last[0], time.monotonic())
    return metrics

  def save(self) -> None:
    self.manager.save(checkpoint_number=int(self.step.numpy()))
    for writer in self.writers.values():
      writer.flush()


def check_finished(workdir: str) -> None:
  """Raises a UserError unless ``workdir`` holds a finished run's weights."""
  if not tf.io.gfile.exists(os.path.join(workdir, WEIGHTS_FILE)):
    raise UserError(
      f"{workdir} has no trained weights ({WEIGHTS_FILE}); is it a finished launch.train run?"
    )


def load_weights(model: tf.keras.Model, workdir: str) -> None:
  """Loads the trained weights of the finished run in ``workdir`` into ``model``.

  Raises:
    UserError: ``workdir`` is not a finished run.
  """
  check_finished(workdir)
  # Keras reads h5 from local files only; the workdir may be on gs://.
  with tempfile.TemporaryDirectory() as local:
    path = os.path.join(local, WEIGHTS_FILE)
    tf.io.gfile.copy(os.path.join(workdir, WEIGHTS_FILE), path)
    model.load_weights(path)


def _is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this worker writes the run's outputs (always, outside multi-worker)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  if resolver.task_type == "chief":
    return True
  has_chief = "chief" in resolver.cluster_spec().as_dict()
  return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def _shard_by_data(data: tf.data.Dataset) -> tf.data.Dataset:
  """Splits batches, not files, between workers: a TFDS split may be one file."""
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
  return data.with_options(options)


def _save_text(path: str, text: str) -> None:
  """Writes ``text`` under a temporary name and renames it into place."""
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path, "r") as f:
      if f.read() == text:
        return
    if path.endswith(".gin"):
      logging.warning("%s differs from this run's config; overwriting it.", path)
  files.write_atomically(path, text)


def _report(result: dict[str, Any]) -> None:
  print(
    f"Done: {result['steps']} steps in {format_duration(result['wall_s'])}: "
    f"validation accuracy {result['accuracy']:.4f}, loss {result['loss']:.4f} "
    f"({result['num_params']:,} parameters, {result['source']})",
    flush=True,
  )
