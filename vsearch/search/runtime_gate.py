"""The runtime gate: a candidate's deployed runtime, measured before it trains.

Tiny Video Networks are searched under a runtime limit on the device that
will run them, and what runs there is the quantized TFLite model, so that is
what is measured (``vsearch.deploy.quantize`` converts, ``vsearch.deploy.latency`` times it
through LiteRT in a subprocess). Latency does not depend on the weights: the
untrained child is converted and timed first, and a child over the runtime
limit or the parameter cap is recorded with its numbers and never trained,
which is where most of a constrained search's time is saved. After training,
the same format's accuracy is measured through LiteRT beside the float
accuracy, so the fitness can use either.

When the search does not run on the target device (a TPU pod's hosts are not
the phone the model ships to), ``latency_source='table'`` predicts the
target's latency from a table profiled on it once (``vsearch.methods.tvn.latency_table``)
instead of converting and timing the child here. Every record says which
source gave its ``latency_ms`` (``latency_source``) and, for a table, which
one (``latency_table``: the SHA-256 of the table file).
"""

import dataclasses
from collections.abc import Callable
from typing import Any, Optional

import gin
import tensorflow as tf

from vsearch.data import clips as clips_lib
from vsearch.deploy import latency as latency_lib
from vsearch.deploy import quantize
from vsearch.errors import MissingEntryError, OverLimitError, UserError
from vsearch.methods import tvn
from vsearch.methods.tvn import latency_table as latency_table_lib

MEASURED = "measured"  # Converted and timed on this machine.
TABLE = "table"  # Predicted from a target device's latency table.
MEASURED_LOCALLY = "measured_locally"  # The table lacked a stage.
LATENCY_SOURCES = (MEASURED, TABLE)
_ON_MISSING = ("error", "measure")


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
    latency_source: 'measured' (convert and time each child on this
      machine) or 'table' (predict the target device's latency from
      ``latency_table``; TVN models only).
    latency_table: path of the ``latency_table.json`` a device wrote.
    table_missing: what a child whose stage the table lacks gets: 'error'
      (a ``MissingEntryError`` naming the stage stops the search) or
      'measure' (timed on this machine; its record says
      ``latency_source='measured_locally'`` and lists the missing stages).
  """

  max_latency_ms: Optional[float] = None
  max_params: Optional[int] = None
  format: str = quantize.INT8
  settings: latency_lib.LatencySettings = dataclasses.field(
    default_factory=latency_lib.LatencySettings
  )
  num_calibration_clips: int = 16
  max_eval_clips: int = 512
  require_fully_int8: bool = True
  latency_source: str = MEASURED
  latency_table: Optional[str] = None
  table_missing: str = "error"

  def __post_init__(self):
    if self.latency_source not in LATENCY_SOURCES:
      raise UserError(
        f"RuntimeGate.latency_source must be one of {LATENCY_SOURCES}, got {self.latency_source!r}"
      )
    if self.latency_source == TABLE and not self.latency_table:
      raise UserError(
        "RuntimeGate.latency_source = 'table' needs "
        "RuntimeGate.latency_table, the latency_table.json a "
        "device wrote (python -m launch.profile_device)."
      )
    if self.table_missing not in _ON_MISSING:
      raise UserError(
        f"RuntimeGate.table_missing must be one of {_ON_MISSING}, got {self.table_missing!r}"
      )

  def check(
    self, model_fn: Callable[[], tf.keras.Model], calibration: tf.data.Dataset, genome: Any = None
  ) -> dict[str, Any]:
    """Measures an untrained model against the limits.

    Args:
      model_fn: builds the candidate's model (weights do not matter).
      calibration: training batches of (clips, labels) for int8 calibration.
      genome: the genome ``model_fn`` builds; a latency table predicts TVN
        genomes only.

    Returns:
      Metrics: num_params, latency_ms and the latency's details,
      latency_source (and latency_table, the table's SHA-256), and for a
      measured latency the TFLite summary.

    Raises:
      OverLimitError: the model breaks a limit; carries what was measured.
      CandidateError: conversion or measurement failed.
    """
    model = model_fn()
    metrics: dict[str, Any] = {"num_params": int(model.count_params())}
    if self.max_params is not None and metrics["num_params"] > self.max_params:
      raise OverLimitError(
        f"{metrics['num_params']:,} parameters > cap {self.max_params:,}", metrics
      )
    if self.latency_source == TABLE:
      metrics.update(self._predict(model, genome))
    if "latency_ms" not in metrics:
      converted = self._convert(model, calibration)
      measured = latency_lib.measure_latency(converted, self.settings)
      metrics.update(
        latency_ms=measured.median_ms, latency=measured.to_dict(), tflite=converted.summary()
      )
      metrics.setdefault("latency_source", MEASURED)
    latency_ms = metrics["latency_ms"]
    if self.max_latency_ms is not None and latency_ms > self.max_latency_ms:
      raise OverLimitError(
        f"latency {latency_ms:.2f} ms > limit {self.max_latency_ms:g} ms "
        f"({metrics['latency_source']})",
        metrics,
      )
    return metrics

  def _predict(self, model: tf.keras.Model, genome: Any) -> dict[str, Any]:
    """The table's latency metrics; without 'latency_ms' where it lacks a stage
    and ``table_missing`` is 'measure' (``check`` then measures here)."""
    if not isinstance(genome, tvn.Genome):
      raise UserError(
        "RuntimeGate.latency_source = 'table' predicts Tiny "
        "Video Networks only; this model was not built from a "
        "TVN genome. Use latency_source = 'measured'."
      )
    table = latency_table_lib.load(self.latency_table)
    num_classes = int(model.outputs[0].shape[-1])
    try:
      predicted = table.predict(genome, self.format, num_classes)
    except MissingEntryError:
      if self.table_missing == "error":
        raise
      return {
        "latency_source": MEASURED_LOCALLY,
        "latency_table": table.sha256,
        "latency_table_missing": [
          f"{latency_table_lib.where(s)}: {s.describe()}"
          for s in table.missing(genome, self.format)
        ],
      }
    return {
      "latency_ms": predicted.latency_ms,
      "latency_source": TABLE,
      "latency_table": table.sha256,
      "latency": {
        **dataclasses.asdict(predicted),
        "format": self.format,
        "table": table.describe(),
      },
    }

  def evaluate(
    self, model: tf.keras.Model, calibration: tf.data.Dataset, validation: tf.data.Dataset
  ) -> dict[str, Any]:
    """Accuracy of the trained model in the deployed format, through LiteRT."""
    converted = self._convert(model, calibration)
    clips, labels = clips_lib.take_clips(validation, self.max_eval_clips)
    result = latency_lib.evaluate_tflite(converted, clips, labels, self.settings)
    return {
      f"accuracy_{self.format}": result["accuracy"],
      f"num_{self.format}_eval_clips": int(labels.shape[0]),
    }

  def _convert(self, model, calibration) -> quantize.TfliteModel:
    converted = quantize.to_tflite(
      model, self.format, calibration, num_calibration_clips=self.num_calibration_clips
    )
    if self.format == quantize.INT8 and self.require_fully_int8:
      converted.require_fully_int8()
    return converted
