"""The runtime gate: a candidate's deployed runtime, measured before it trains.

Tiny Video Networks are searched under a runtime limit on the device that
will run them, and what runs there is the quantized TFLite model, so that is
what is measured (``vsearch.quantize`` converts, ``vsearch.latency`` times it
through LiteRT in a subprocess). Latency does not depend on the weights: the
untrained child is converted and timed first, and a child over the runtime
limit or the parameter cap is recorded with its numbers and never trained,
which is where most of a constrained search's time is saved. After training,
the same format's accuracy is measured through LiteRT beside the float
accuracy, so the fitness can use either.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, Optional

import gin
import numpy as np
import tensorflow as tf

from vsearch import latency as latency_lib
from vsearch import quantize
from vsearch.errors import VsearchError


class OverLimitError(VsearchError):
  """A candidate breaks a runtime or parameter limit; it is not trained.

  Attributes:
    metrics: what was measured, recorded with the candidate.
  """

  def __init__(self, message: str, metrics: dict[str, Any]):
    super().__init__(message)
    self.metrics = metrics


@gin.configurable
@dataclasses.dataclass(frozen=True)
class RuntimeGate:
  """What the deployment target allows, and how its runtime is measured.

  Attributes:
    max_latency_ms: the runtime limit per clip (median), or None for none.
    max_params: the parameter cap, or None for none.
    format: the TFLite format the target runs: 'int8' (full-integer) or
      'float'. Int8 is not faster everywhere (x86 without VNNI, say): choose
      what the target device deploys.
    settings: threads, delegate, warm-up and runs of the measurement.
    num_calibration_clips: training clips that calibrate int8 conversion.
    max_eval_clips: validation clips the TFLite accuracy is measured on.
    require_fully_int8: an int8 model with ops left in float is a failure
      (scoring it would time a model the target cannot run as intended).
  """

  max_latency_ms: Optional[float] = None
  max_params: Optional[int] = None
  format: str = quantize.INT8
  settings: latency_lib.LatencySettings = dataclasses.field(
      default_factory=latency_lib.LatencySettings)
  num_calibration_clips: int = 16
  max_eval_clips: int = 512
  require_fully_int8: bool = True

  def check(self, model_fn: Callable[[], tf.keras.Model],
            calibration: tf.data.Dataset) -> dict[str, Any]:
    """Measures an untrained model against the limits.

    Args:
      model_fn: builds the candidate's model (weights do not matter).
      calibration: training batches of (clips, labels) for int8 calibration.

    Returns:
      Metrics: num_params, latency_ms and the latency's details, the TFLite
      summary.

    Raises:
      OverLimitError: the model breaks a limit; carries what was measured.
      CandidateError: conversion or measurement failed.
    """
    model = model_fn()
    metrics: dict[str, Any] = {"num_params": int(model.count_params())}
    if self.max_params is not None and metrics["num_params"] > self.max_params:
      raise OverLimitError(
          f"{metrics['num_params']:,} parameters > cap {self.max_params:,}", metrics)
    converted = self._convert(model, calibration)
    measured = latency_lib.measure_latency(converted, self.settings)
    metrics.update(latency_ms=measured.median_ms, latency=measured.to_dict(),
                   tflite=converted.summary())
    if self.max_latency_ms is not None and measured.median_ms > self.max_latency_ms:
      raise OverLimitError(
          f"latency {measured.median_ms:.2f} ms > limit {self.max_latency_ms:g} ms",
          metrics)
    return metrics

  def evaluate(self, model: tf.keras.Model, calibration: tf.data.Dataset,
               validation: tf.data.Dataset) -> dict[str, Any]:
    """Accuracy of the trained model in the deployed format, through LiteRT."""
    converted = self._convert(model, calibration)
    clips, labels = take_clips(validation, self.max_eval_clips)
    result = latency_lib.evaluate_tflite(converted, clips, labels, self.settings)
    return {f"accuracy_{self.format}": result["accuracy"],
            f"num_{self.format}_eval_clips": int(labels.shape[0])}

  def _convert(self, model, calibration) -> quantize.TfliteModel:
    converted = quantize.to_tflite(model, self.format, calibration,
                                   num_calibration_clips=self.num_calibration_clips)
    if self.format == quantize.INT8 and self.require_fully_int8:
      converted.require_fully_int8()
    return converted


def take_clips(dataset: tf.data.Dataset, limit: int) -> tuple[np.ndarray, np.ndarray]:
  """Up to ``limit`` clips and labels of a batched dataset, as arrays."""
  clips, labels, count = [], [], 0
  for batch_clips, batch_labels in dataset:
    clips.append(batch_clips.numpy())
    labels.append(batch_labels.numpy())
    count += len(labels[-1])
    if count >= limit:
      break
  return np.concatenate(clips)[:limit], np.concatenate(labels)[:limit]
