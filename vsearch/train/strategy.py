"""Chooses the ``tf.distribute`` strategy that trains a candidate on this host.

One training loop serves every strategy (see ``vsearch.train.trainer``); only this
module knows which hardware is there.
"""

import contextlib
import json
import logging
import os
import re
from typing import Optional

import gin
import tensorflow as tf

from vsearch.errors import UserError

STRATEGIES = ("auto", "tpu", "gpu", "multi_worker", "cpu")


def resolve(name: str = "auto", tpu: Optional[str] = None) -> tf.distribute.Strategy:
  """Returns the strategy for ``--strategy`` and ``--tpu``.

  Args:
    name: ``auto`` picks TPU when ``tpu`` is given, multi-worker when
      ``TF_CONFIG`` is set, all local GPUs when there are any, else the CPU.
    tpu: a Cloud TPU name or ``local`` (a TPU VM's own chips).

  Raises:
    UserError: the name is unknown, or the hardware it asks for is absent.
  """
  if name not in STRATEGIES:
    raise UserError(f"Unknown --strategy={name!r}; choose one of {', '.join(STRATEGIES)}.")
  if name == "auto":
    if tpu:
      name = "tpu"
    elif os.environ.get("TF_CONFIG"):
      name = "multi_worker"
    elif tf.config.list_physical_devices("GPU"):
      name = "gpu"
    else:
      name = "cpu"
  if name == "tpu":
    strategy = _tpu_strategy(tpu or "local")
  elif name == "multi_worker":
    _check_tf_config()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
  elif name == "gpu":
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
      raise UserError(
        "--strategy=gpu but TensorFlow sees no GPU on this host; "
        "use --strategy=cpu or install a CUDA build of TensorFlow."
      )
    logging.info("Training on %d GPU(s) with MirroredStrategy.", len(gpus))
    strategy = tf.distribute.MirroredStrategy()
  else:
    strategy = tf.distribute.get_strategy()
  set_precision(on_tpu=name == "tpu")
  return strategy


def _check_tf_config() -> None:
  raw = os.environ.get("TF_CONFIG")
  if not raw:
    raise UserError(
      "--strategy=multi_worker needs the TF_CONFIG environment "
      "variable describing the cluster and this worker's task."
    )
  try:
    config = json.loads(raw)
    config["cluster"]["worker"]
    config["task"]["index"]
  except (ValueError, KeyError, TypeError) as e:
    raise UserError(
      f"TF_CONFIG does not parse ({e!r}); it must be JSON like "
      '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": '
      '"worker", "index": 0}}.'
    ) from e


def _tpu_strategy(tpu: str) -> tf.distribute.Strategy:
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    if tpu != "local":
      # A TPU VM's own chips need no connection; a remote TPU does.
      tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
  except (ValueError, tf.errors.OpError, RuntimeError, OSError) as e:
    # urllib's URLError (no metadata server: not on Google Cloud) is an OSError.
    reason = str(getattr(e, "reason", e)).strip() or type(e).__name__
    reason = reason.splitlines()[0][:160]
    if tpu == "local":
      raise UserError(
        f"This host has no TPU TensorFlow can use ({reason}). --tpu=local works on "
        "a Cloud TPU VM with TensorFlow's TPU build; see 'Running on Cloud TPU' in "
        "docs/distributed.md."
      ) from e
    raise UserError(
      f"Cannot reach the TPU {tpu!r} ({reason}). Check the name with `gcloud "
      "compute tpus tpu-vm list` and run from a Google Cloud VM (TPU names are "
      "looked up through its metadata server), or use --tpu=local on the TPU VM "
      "itself."
    ) from e
  return tf.distribute.TPUStrategy(resolver)


def pin_cpus(spec: Optional[str]) -> Optional[list[int]]:
  """Pins this process to the CPU cores in ``spec`` and sizes TF's thread pools.

  Two search workers on a 2-core host each pinned to one core (``--cpus=0``
  and ``--cpus=1``) do not fight over caches and threads. Call before
  TensorFlow runs its first op.

  Args:
    spec: cores as a comma-separated list of numbers and ranges, e.g.
      ``"0"``, ``"0-3"`` or ``"0,2,4-5"``; None or empty leaves all as is.

  Returns:
    The cores pinned to, or None.

  Raises:
    UserError: the spec does not parse or names cores this host lacks.
  """
  if not spec:
    return None
  available = sorted(os.sched_getaffinity(0))
  cores = set()
  for part in spec.split(","):
    match = re.fullmatch(r"\s*(\d+)(?:-(\d+))?\s*", part)
    if not match:
      raise UserError(f"--cpus={spec!r} does not parse; give cores like 0 or 0-3 or 0,2,4-5.")
    first, last = match.group(1), match.group(2) or match.group(1)
    cores.update(range(int(first), int(last) + 1))
  missing = sorted(cores - set(available))
  if not cores or missing:
    raise UserError(
      f"--cpus={spec!r} names cores {missing} this process cannot use; available: {available}."
    )
  os.sched_setaffinity(0, cores)
  tf.config.threading.set_intra_op_parallelism_threads(len(cores))
  tf.config.threading.set_inter_op_parallelism_threads(min(len(cores), 2))
  logging.info("Pinned to CPU cores %s.", sorted(cores))
  return sorted(cores)


@gin.configurable
def set_precision(on_tpu: bool, policy: str = "auto") -> str:
  """Sets the Keras dtype policy models are built with; returns it.

  Args:
    on_tpu: whether candidates train on a TPU.
    policy: ``auto`` (``mixed_bfloat16`` on TPU, where the matrix units are
      bfloat16, else ``float32``) or any Keras policy name. Losses and the
      deployed (TFLite) copies are computed in float32 whatever it is.
  """
  if policy == "auto":
    policy = "mixed_bfloat16" if on_tpu else "float32"
  try:
    tf.keras.mixed_precision.set_global_policy(policy)
  except ValueError as e:
    raise UserError(
      f"set_precision.policy={policy!r} is not a Keras dtype policy; "
      "use auto, float32, mixed_bfloat16 or mixed_float16."
    ) from e
  return policy


@contextlib.contextmanager
def float32_policy():
  """Builds models in float32 inside, e.g. the copy converted to TFLite."""
  previous = tf.keras.mixed_precision.global_policy()
  tf.keras.mixed_precision.set_global_policy("float32")
  try:
    yield
  finally:
    tf.keras.mixed_precision.set_global_policy(previous)
