"""Measured runtime and accuracy of TFLite models, through LiteRT.

The runtime a TVN is scored on is measured, not estimated: the model runs in
``vsearch.deploy.litert_runner``, a subprocess that imports LiteRT and numpy but not
TensorFlow, with a fixed thread count and a fixed choice of the XNNPACK
delegate (which alone changes CPU latency several times). After ``warmup``
invokes it times ``runs`` more; the median and spread are kept with the
settings, the host and the LiteRT version, so a latency in a record says what
it was measured on.

A runner that crashes, prints no result or runs past ``timeout_s`` raises a
``CandidateError`` saying which: the search records it and goes on. This
module imports no TensorFlow either.
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from typing import Any, Optional, Union

import gin
import numpy as np

from vsearch.errors import CandidateError, UserError

RUNNER_MODULE = "vsearch.deploy.litert_runner"
_BAD_REQUEST_EXIT = 3  # vsearch.deploy.litert_runner.BAD_REQUEST_EXIT, not imported:
# importing the runner here would load LiteRT into the caller's process.

ModelLike = Union[bytes, str, os.PathLike, Any]


@gin.configurable
@dataclasses.dataclass(frozen=True)
class LatencySettings:
  """How a TFLite model is run and timed.

  Attributes:
    threads: interpreter threads (CPU kernels and XNNPACK's pool).
    use_xnnpack: apply LiteRT's default XNNPACK delegate.
    warmup: untimed invokes first (caches, XNNPACK packing), and at least
      ``profile_tflite.MIN_WARMUP_S`` of them.
    runs: timed invokes; the median of these is the latency.
    timeout_s: a runner still going after this long is killed; it bounds
      the whole subprocess, evaluation of every clip included.
  """

  threads: int = 1
  use_xnnpack: bool = True
  warmup: int = 5
  runs: int = 30
  timeout_s: float = 300.0

  def __post_init__(self):
    for name, minimum in (("threads", 1), ("warmup", 0), ("runs", 1)):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"LatencySettings.{name} must be an int >= {minimum}, got {value!r}")
    if not isinstance(self.use_xnnpack, bool):
      raise UserError(
        f"LatencySettings.use_xnnpack must be true or false, got {self.use_xnnpack!r}"
      )
    if not self.timeout_s > 0:
      raise UserError(f"LatencySettings.timeout_s must be positive, got {self.timeout_s!r}")

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Latency:
  """One latency measurement, in milliseconds per batch-1 invoke.

  Attributes:
    median_ms: the latency.
    p10_ms, p90_ms: 10th and 90th percentiles of the timed runs.
    min_ms: the fastest run.
    mean_ms: the mean run.
    settings: the ``LatencySettings`` used, as a dict.
    host: CPU, usable cores, instruction-set flags, Python and LiteRT
      versions of the machine that measured.
    model: what was run: input dtype, size, format (when known) and how
      many graph partitions the delegate took (0 without XNNPACK).
  """

  median_ms: float
  p10_ms: float
  p90_ms: float
  min_ms: float
  mean_ms: float
  settings: dict[str, Any]
  host: dict[str, Any]
  model: dict[str, Any]

  @property
  def litert_version(self) -> str:
    return self.host["litert"]

  def to_dict(self) -> dict[str, Any]:
    """A JSON-compatible dict for a record."""
    return dataclasses.asdict(self)


def _model_bytes(model: ModelLike) -> bytes:
  content = getattr(model, "content", model)  # A quantize.TfliteModel.
  if isinstance(content, (bytes, bytearray)):
    return bytes(content)
  if isinstance(content, (str, os.PathLike)):
    with open(content, "rb") as f:
      return f.read()
  raise TypeError(f"Expected TFLite bytes, a path or a TfliteModel, got {type(model).__name__}")


def _model_format(model: ModelLike) -> Optional[str]:
  # Only a quantize.TfliteModel knows its format (a str path has .format too).
  return getattr(model, "format", None) if hasattr(model, "content") else None


def _runner_env() -> dict[str, str]:
  # The runner must import vsearch even when it is not installed.
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
  return env


def _last_line(text: str) -> str:
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  return lines[-1] if lines else ""


def _exit_reason(returncode: int) -> str:
  if returncode < 0:
    try:
      return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
      return f"killed by signal {-returncode}"
  return f"exit status {returncode}"


def run_runner(
  request: dict[str, Any], timeout_s: float, command: Optional[list[str]] = None
) -> dict[str, Any]:
  """Runs the LiteRT runner on ``request`` and returns its JSON result.

  Args:
    request: what the runner reads (see ``vsearch.deploy.litert_runner``).
    timeout_s: the runner is killed after this long.
    command: the program to run instead of ``python -m
      vsearch.deploy.litert_runner``; it gets the request file as last argument.

  Raises:
    CandidateError: the runner crashed, hung or printed no JSON result.
    UserError: the runner refused the request (it does not fit the model).
  """
  command = command or [sys.executable, "-m", RUNNER_MODULE]
  with tempfile.TemporaryDirectory(prefix="vsearch_request_") as tmp:
    path = os.path.join(tmp, "request.json")
    with open(path, "w", encoding="utf-8") as f:
      json.dump(request, f)
    try:
      done = subprocess.run(
        command + [path],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=_runner_env(),
        check=False,
      )
    except subprocess.TimeoutExpired:
      raise CandidateError(
        f"LiteRT runner hung: no result after {timeout_s:g} s (LatencySettings.timeout_s), killed"
      ) from None
  if done.returncode == _BAD_REQUEST_EXIT:
    raise UserError(f"LiteRT runner: {_last_line(done.stderr)[:300]}")
  if done.returncode != 0:
    detail = _last_line(done.stderr)[:300]
    raise CandidateError(
      f"LiteRT runner crashed ({_exit_reason(done.returncode)})" + (f": {detail}" if detail else "")
    )
  last = _last_line(done.stdout)
  try:
    result = json.loads(last)
  except json.JSONDecodeError:
    result = None
  if not isinstance(result, dict) or result.get("ok") is not True:
    raise CandidateError(f"LiteRT runner printed no result; its last line was {last[:100]!r}")
  return result


def measure_latency(tflite_model: ModelLike, settings: Optional[LatencySettings] = None) -> Latency:
  """Median and spread of batch-1 invokes of a TFLite model through LiteRT.

  Args:
    tflite_model: flatbuffer bytes, a .tflite path or a
      ``quantize.TfliteModel``; int8 or float, run as it is. A model of
      several inputs gets uniform [-1, 1] values in each.
    settings: threads, delegate, warm-up, runs, timeout; defaults from gin.

  Raises:
    CandidateError: the runner crashed, hung or printed no result.
  """
  settings = settings or LatencySettings()
  content = _model_bytes(tflite_model)
  with tempfile.TemporaryDirectory(prefix="vsearch_latency_") as tmp:
    path = os.path.join(tmp, "model.tflite")
    with open(path, "wb") as f:
      f.write(content)
    result = run_runner(
      {
        "task": "latency",
        "model": path,
        "threads": settings.threads,
        "use_xnnpack": settings.use_xnnpack,
        "warmup": settings.warmup,
        "runs": settings.runs,
      },
      settings.timeout_s,
    )
  samples = np.asarray(result["samples_ms"], dtype=np.float64)
  if samples.size != settings.runs or not np.all(np.isfinite(samples)):
    raise CandidateError(f"LiteRT runner returned {samples.size} timings for {settings.runs} runs")
  p10, median, p90 = np.percentile(samples, [10, 50, 90])
  return Latency(
    median_ms=float(median),
    p10_ms=float(p10),
    p90_ms=float(p90),
    min_ms=float(samples.min()),
    mean_ms=float(samples.mean()),
    settings=settings.to_dict(),
    host=result["host"],
    model={
      "format": _model_format(tflite_model),
      "input_dtype": result["input_dtype"],
      "size_bytes": len(content),
      "delegate_partitions": result["delegate_partitions"],
    },
  )


def evaluate_tflite(
  tflite_model: ModelLike,
  clips: Union[np.ndarray, Mapping[str, np.ndarray]],
  labels: np.ndarray,
  settings: Optional[LatencySettings] = None,
  *,
  return_logits: bool = False,
) -> dict[str, Any]:
  """Accuracy of a TFLite model on clips, run through LiteRT at batch 1.

  An int8 model with int8 input and output gets its clips quantized and its
  logits dequantized with the scales stored in the model.

  Args:
    tflite_model: flatbuffer bytes, a .tflite path or a
      ``quantize.TfliteModel``.
    clips: float32 [N, T, H, W, 3] in [-1, 1]; for a model of several inputs
      a dict ``{input_name: float32 [N, ...]}`` keyed by the Keras input
      names, which the runner matches to the TFLite inputs by name.
    labels: int [N].
    settings: threads and delegate (warm-up and runs are not used); its
      ``timeout_s`` bounds the whole pass.
    return_logits: also return the float32 logits [N, classes] under
      'logits' (a numpy array, not JSON).

  Returns:
    ``{'accuracy', 'num_clips', 'input_dtype', 'settings'}``, plus 'logits'.

  Raises:
    UserError: clips and labels disagree in number, or the clips do not fit
      the model's inputs.
    CandidateError: the runner crashed, hung or printed no result.
  """
  settings = settings or LatencySettings()
  named = isinstance(clips, Mapping)
  arrays = (
    {str(name): np.asarray(value, dtype=np.float32) for name, value in clips.items()}
    if named
    else {"clips": np.asarray(clips, dtype=np.float32)}
  )
  labels = np.asarray(labels).reshape(-1)
  shapes = {name: array.shape for name, array in arrays.items()}
  if (
    not arrays
    or not len(labels)
    or any(array.ndim < 2 or len(array) != len(labels) for array in arrays.values())
  ):
    got = shapes if named else shapes.get("clips")
    raise UserError(
      f"evaluate_tflite needs as many clips as labels (at least "
      f"one): got clips {got}, labels {labels.shape}"
    )
  with tempfile.TemporaryDirectory(prefix="vsearch_eval_") as tmp:
    model_path = os.path.join(tmp, "model.tflite")
    output_path = os.path.join(tmp, "logits.npy")
    with open(model_path, "wb") as f:
      f.write(_model_bytes(tflite_model))
    inputs = {}
    for i, (name, array) in enumerate(arrays.items()):
      # Numbered files: input names need not be valid file names.
      inputs[name] = os.path.join(tmp, f"clips{i if named else ''}.npy")
      np.save(inputs[name], array)
    request = {
      "task": "logits",
      "model": model_path,
      "output": output_path,
      "threads": settings.threads,
      "use_xnnpack": settings.use_xnnpack,
    }
    if named:
      request["inputs"] = inputs
    else:
      request["clips"] = inputs["clips"]
    result = run_runner(request, settings.timeout_s)
    logits = np.load(output_path)
  if logits.shape[0] != len(labels):
    raise CandidateError(f"LiteRT runner returned {logits.shape[0]} logits for {len(labels)} clips")
  metrics = {
    "accuracy": float(np.mean(np.argmax(logits, axis=-1) == labels)),
    "num_clips": int(len(labels)),
    "input_dtype": result["input_dtype"],
    "settings": settings.to_dict(),
  }
  if return_logits:
    metrics["logits"] = logits
  return metrics
