"""Trains and evaluates one model under a ``tf.distribute`` strategy.

One custom loop serves every strategy (the default CPU strategy, GPUs,
multi-worker, TPU): ``strategy.run`` inside a ``tf.function`` that runs
``steps_per_call`` steps per call, with ``optimizer.apply_gradients``. Keras
``fit`` is not used: it fails under MultiWorkerMirroredStrategy with Keras 3
on TF 2.21, and a loop this small is easy to read whole.
"""

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any, Optional

import gin
import numpy as np
import tensorflow as tf

from vsearch.errors import CandidateError, PreemptedError, UserError
from vsearch.train import checkpoints


@gin.configurable
@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How a candidate trains.

  Attributes:
    steps: optimizer steps (the search budget of one candidate).
    batch_size: global batch size, split across replicas.
    learning_rate: peak learning rate of the cosine schedule.
    warmup_steps: linear warm-up steps before the cosine decay.
    weight_decay: decoupled weight decay (AdamW).
    label_smoothing: label smoothing of the cross-entropy.
    steps_per_call: steps run inside one ``tf.function`` call; larger
      amortises the Python overhead (essential on TPU).
    eval_batch_size: batch size of evaluation.
    per_replica_batch: True reads ``batch_size`` and ``eval_batch_size`` as
      per-replica sizes: the global batch grows with the replicas (8 TPU
      cores train on 8x the batch) and the learning rate with it (the
      linear scaling rule). See ``for_replicas``.
    jit_compile: compile each training step with XLA.
  """

  steps: int = 100
  batch_size: int = 16
  learning_rate: float = 3e-3
  warmup_steps: int = 10
  weight_decay: float = 1e-4
  label_smoothing: float = 0.0
  steps_per_call: int = 10
  eval_batch_size: int = 32
  per_replica_batch: bool = False
  jit_compile: bool = False

  def __post_init__(self):
    sizes = ("steps", "batch_size", "steps_per_call", "eval_batch_size")
    for name in sizes:
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"TrainConfig.{name} must be a whole number >= 1, got {value!r}")
    if self.warmup_steps < 0:
      raise UserError(f"TrainConfig.warmup_steps must be >= 0, got {self.warmup_steps}")
    if not self.learning_rate > 0 or self.weight_decay < 0 or not 0 <= self.label_smoothing < 1:
      raise UserError(
        "TrainConfig needs learning_rate > 0, weight_decay >= 0 and 0 <= label_smoothing < 1, "
        f"got {self.learning_rate}, {self.weight_decay} and {self.label_smoothing}"
      )

  def for_replicas(self, num_replicas: int) -> "TrainConfig":
    """The config with global sizes for ``num_replicas`` replicas in sync."""
    if not self.per_replica_batch or num_replicas == 1:
      return self
    return dataclasses.replace(
      self,
      batch_size=self.batch_size * num_replicas,
      eval_batch_size=self.eval_batch_size * num_replicas,
      learning_rate=self.learning_rate * num_replicas,
      per_replica_batch=False,
    )


def make_optimizer(config: TrainConfig) -> tf.keras.optimizers.Optimizer:
  """AdamW with linear warm-up into cosine decay."""
  decay_steps = max(config.steps - config.warmup_steps, 1)
  schedule = tf.keras.optimizers.schedules.CosineDecay(
    initial_learning_rate=0.0 if config.warmup_steps else config.learning_rate,
    decay_steps=decay_steps,
    warmup_target=config.learning_rate if config.warmup_steps else None,
    warmup_steps=config.warmup_steps,
  )
  return tf.keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)


class Trainer:
  """Trains one model with a distributed custom loop.

  Args:
    strategy: where to train.
    model_fn: builds the model; called inside ``strategy.scope()``.
    config: the training budget and hyper-parameters.
  """

  def __init__(
    self,
    strategy: tf.distribute.Strategy,
    model_fn: Callable[[], tf.keras.Model],
    config: TrainConfig,
  ):
    self.strategy = strategy
    self.config = config
    with strategy.scope():
      self.model = model_fn()
      self.optimizer = make_optimizer(config)
      # Slots made lazily inside the replica context of a tf.function fail
      # under MirroredStrategy with Keras 3 optimizers; make them here.
      self.optimizer.build(self.model.trainable_variables)
    self._train_steps = None
    self._eval_step = None

  def _loss(self, labels, logits):
    num_classes = logits.shape[-1]
    if is_multi_label(labels):
      per_example = tf.keras.losses.binary_crossentropy(
        tf.cast(labels, tf.float32),
        logits,
        from_logits=True,
        label_smoothing=self.config.label_smoothing,
      )
    else:
      per_example = tf.keras.losses.categorical_crossentropy(
        tf.one_hot(labels, num_classes),
        logits,
        from_logits=True,
        label_smoothing=self.config.label_smoothing,
      )
    return tf.nn.compute_average_loss(per_example, global_batch_size=self.config.batch_size)

  def _build_train_steps(self):
    model, optimizer, strategy = self.model, self.optimizer, self.strategy

    def step(batch):
      clips, labels = batch
      with tf.GradientTape() as tape:
        logits = model(clips, training=True)
        loss = self._loss(labels, tf.cast(logits, tf.float32))
        if model.losses:
          loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
      grads = tape.gradient(loss, model.trainable_variables)
      optimizer.apply_gradients(zip(grads, model.trainable_variables))
      return loss

    if self.config.jit_compile:
      step = tf.function(step, jit_compile=True)

    @tf.function
    def train_steps(iterator, num_steps):
      total = tf.constant(0.0)
      for _ in tf.range(num_steps):
        per_replica = strategy.run(step, args=(next(iterator),))
        total += strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
      return total / tf.cast(num_steps, tf.float32)

    return train_steps

  def train(
    self,
    dataset: tf.data.Dataset,
    on_progress: Callable[[int, float], None] | None = None,
    initial_step: int = 0,
  ) -> float:
    """Runs steps ``initial_step`` .. ``config.steps`` on a repeating dataset.

    Args:
      dataset: batches of (clips, labels) with the global batch size.
      on_progress: called after each call with (steps done, mean loss).
      initial_step: steps already done (a run resumed from a checkpoint);
        the learning rate follows the optimizer's own step counter.

    Returns:
      The mean training loss of the last call.

    Raises:
      CandidateError: the loss became NaN or infinite.
    """
    if self._train_steps is None:
      self._train_steps = self._build_train_steps()
    iterator = iter(self.strategy.experimental_distribute_dataset(dataset))
    done, loss = initial_step, float("nan")
    while done < self.config.steps:
      n = min(self.config.steps_per_call, self.config.steps - done)
      loss = float(self._train_steps(iterator, tf.constant(n)))
      done += n
      if not math.isfinite(loss):
        raise CandidateError(f"training loss became {loss} by step {done}")
      if on_progress:
        on_progress(done, loss)
    return loss

  def _build_eval_step(self):
    model, strategy = self.model, self.strategy

    def step(batch):
      clips, labels = batch
      if _clips(clips).shape.rank == 6 or is_multi_label(labels):
        return _video_scores(model, clips, labels)
      logits = tf.cast(model(clips, training=False), tf.float32)
      correct = tf.reduce_sum(
        tf.cast(
          tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tf.cast(labels, tf.int32)),
          tf.float32,
        )
      )
      loss = tf.reduce_sum(
        tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
      )
      return tf.stack([correct, loss, tf.cast(tf.shape(labels)[0], tf.float32)])

    # Built once per trainer, so periodic validation does not retrace.
    @tf.function(reduce_retracing=True)
    def eval_step(batch):
      result = strategy.run(step, args=(batch,))
      if isinstance(result, tuple):  # per-video scores and labels
        return tuple(strategy.gather(x, axis=0) for x in result)
      return strategy.reduce(tf.distribute.ReduceOp.SUM, result, axis=None)

    return eval_step

  def evaluate(self, dataset: tf.data.Dataset) -> dict[str, float]:
    """Top-1 accuracy and mean loss over one pass of ``dataset``.

    Batches are (clips, labels), where clips may be a dict of a model's
    named inputs (``vsearch.data.clips.ClipSpec.extra_inputs``).

    Multi-label data (multi-hot labels [B, C]) adds ``mAP``, the mean
    average precision; its ``accuracy`` is the share of clips whose top
    class is one of their labels. Several clips per video (clips [B, K, T,
    H, W, 3]) are scored by their mean class probabilities.
    """
    if self._eval_step is None:
      self._eval_step = self._build_eval_step()
    strategy, eval_step = self.strategy, self._eval_step
    clips_spec, labels_spec = dataset.element_spec
    if _clips(clips_spec).shape.rank == 6 or is_multi_label(labels_spec):
      scores, labels = [], []
      for batch in strategy.experimental_distribute_dataset(dataset):
        batch_scores, batch_labels = eval_step(batch)
        scores.append(batch_scores.numpy())
        labels.append(batch_labels.numpy())
      if not scores:
        raise CandidateError("the validation split yielded no clips")
      return score_videos(np.concatenate(scores), np.concatenate(labels))
    totals = tf.zeros([3])
    for batch in strategy.experimental_distribute_dataset(dataset):
      totals += eval_step(batch)
    correct, loss, count = (float(x) for x in totals.numpy())
    if count == 0:
      raise CandidateError("the validation split yielded no clips")
    return {"accuracy": correct / count, "loss": loss / count, "num_eval_clips": int(count)}


def _clips(inputs):
  """The clips of a batch's model inputs (a tensor, or a dict of them)."""
  return inputs["clips"] if isinstance(inputs, dict) else inputs


def is_multi_label(labels: tf.Tensor | tf.TensorSpec) -> bool:
  """Whether a batch of labels is multi-hot [B, C] rather than indices [B]."""
  return labels.shape.rank == 2


def _video_scores(
  model: tf.keras.Model, clips: tf.Tensor, labels: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
  """Class probabilities [B, C] of each video, and its labels.

  Probabilities are softmax for single-label and sigmoid for multi-label
  data; a video with several clips [B, K, T, H, W, 3] gets their mean.
  """
  if _clips(clips).shape.rank == 6:
    videos, per_video = tf.shape(_clips(clips))[0], tf.shape(_clips(clips))[1]
    flat = tf.nest.map_structure(
      lambda x: tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0)), clips
    )
    logits = tf.cast(model(flat, training=False), tf.float32)
    logits = tf.reshape(logits, [videos, per_video, -1])
  else:
    logits = tf.cast(model(clips, training=False), tf.float32)[:, None]
  activation = tf.sigmoid if is_multi_label(labels) else tf.nn.softmax
  return tf.reduce_mean(activation(logits), axis=1), labels


def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
  """Mean over classes of the average precision of ranking by score.

  The average precision of a class is the mean, over its positive clips, of
  the precision among the clips scored at least as high as that positive
  (ties count against it). Classes without a positive clip have no average
  precision and are left out, as Charades' mAP does.

  Args:
    scores: float [N, C], higher means more likely.
    labels: {0, 1} [N, C].

  Returns:
    The mAP in [0, 1]; NaN when no class has a positive clip.
  """
  precisions = []
  for column in range(scores.shape[1]):
    positives = labels[:, column] > 0
    if not positives.any():
      continue
    score = scores[:, column]
    # Clips scored at least as high as each positive, and the positives among them.
    ranked = score[None, :] >= score[positives][:, None]
    hits = (ranked & positives[None, :]).sum(axis=1)
    precisions.append(float(np.mean(hits / ranked.sum(axis=1))))
  return float(np.mean(precisions)) if precisions else float("nan")


def score_videos(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
  """Accuracy and loss (and mAP for multi-hot labels) of class probabilities.

  Args:
    probabilities: float [N, C]: softmax for class indices, sigmoid for
      multi-hot labels.
    labels: int [N] class indices, or {0, 1} [N, C].
  """
  count = len(probabilities)
  eps = 1e-7
  probabilities = np.clip(probabilities.astype(np.float64), eps, 1 - eps)
  top = probabilities.argmax(axis=1)
  if labels.ndim == 2:
    positives = labels > 0
    loss = -np.mean(np.where(positives, np.log(probabilities), np.log1p(-probabilities)), axis=1)
    return {
      "accuracy": float(positives[np.arange(count), top].mean()),
      "mAP": mean_average_precision(probabilities, positives),
      "loss": float(loss.mean()),
      "num_eval_clips": count,
    }
  loss = -np.log(probabilities[np.arange(count), labels])
  return {
    "accuracy": float((top == labels).mean()),
    "loss": float(loss.mean()),
    "num_eval_clips": count,
  }


def train_and_evaluate(
  strategy: tf.distribute.Strategy,
  model_fn: Callable[[], tf.keras.Model],
  train_data: Callable[[int], tf.data.Dataset] | tf.data.Dataset,
  eval_data: tf.data.Dataset,
  config: TrainConfig,
  checkpoint_dir: Optional[str] = None,
  checkpoint_every: int = 0,
  resume_from: Optional[str] = None,
  on_progress: Callable[[int, float], None] | None = None,
  probe_step: int = 0,
  on_probe: Callable[[int, dict[str, Any]], None] | None = None,
  should_stop: Callable[[], bool] | None = None,
) -> tuple[dict[str, Any], dict[str, float], tf.keras.Model]:
  """Builds, trains and evaluates one model, resuming from a checkpoint if any.

  Args:
    strategy: where to train.
    model_fn: builds the model (inside the strategy's scope).
    train_data: the training batches, or a function from the step training
      starts at to them (so a resumed run can draw a stream it has not seen).
    eval_data: the validation batches.
    config: the training budget.
    checkpoint_dir: where to save the model and optimizer every
      ``checkpoint_every`` steps and to resume from (local or ``gs://``);
      None saves nothing. A checkpoint that cannot be restored (corrupt,
      or of another model) is moved aside with a warning naming where, and
      training starts from step 0.
    checkpoint_every: steps between checkpoints (saved when a multiple is
      crossed, at the end of a ``steps_per_call`` call); 0 saves none.
    resume_from: a folder to resume from when ``checkpoint_dir`` holds no
      checkpoint (the one an earlier claim of the child saved into).
    on_progress: called after each call with (steps done, mean loss); it may
      raise to abandon the training.
    probe_step: validate once when this step is crossed (before the last
      call) and pass the metrics to ``on_probe``; 0 never does.
    on_probe: called with (steps done, validation metrics); it may raise to
      stop the training there (early stopping).
    should_stop: asked after each call; True (SIGTERM) saves a checkpoint
      of the step reached (with ``checkpoint_dir``) and raises
      PreemptedError.

  Returns:
    (metrics, timings, model): metrics has accuracy, loss, train_loss and
    num_params; timings has build_s, train_s, evaluate_s and, for a resumed
    run, resumed_from_step; model is the trained model.
  """
  start = time.perf_counter()
  make = lambda: Trainer(strategy, model_fn, config)
  trainer, start_step, save = make(), 0, None
  if checkpoint_dir:
    trainer, start_step, save = checkpoints.restore(
      make, trainer, checkpoint_dir, config.steps, resume_from
    )
  built = time.perf_counter()

  last, saved = [start_step], [start_step]

  def after_call(done: int, loss: float) -> None:
    before, last[0] = last[0], done
    if on_progress:
      on_progress(done, loss)
    if on_probe and probe_step and before < probe_step <= done < config.steps:
      on_probe(done, trainer.evaluate(eval_data))
    if (
      save and checkpoint_every and done < config.steps and crossed(before, done, checkpoint_every)
    ):
      save(done)
      saved[0] = done
    if should_stop and should_stop():
      if save and saved[0] != done:
        save(done)
      raise PreemptedError(
        f"training stopped at step {done} of {config.steps}", step=done, checkpointed=bool(save)
      )

  data = train_data(start_step) if callable(train_data) else train_data
  train_loss = trainer.train(data, after_call, initial_step=start_step)
  trained = time.perf_counter()
  metrics = trainer.evaluate(eval_data)
  evaluated = time.perf_counter()
  metrics.update(train_loss=train_loss, num_params=int(trainer.model.count_params()))
  timings = {
    "build_s": built - start,
    "train_s": trained - built,
    "evaluate_s": evaluated - trained,
  }
  if start_step:
    timings["resumed_from_step"] = start_step
  return metrics, timings, trainer.model


def crossed(before: int, after: int, every: int) -> bool:
  """Whether a multiple of ``every`` lies in (before, after]."""
  return after // every > before // every
