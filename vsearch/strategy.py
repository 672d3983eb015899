"""Chooses the ``tf.distribute`` strategy that trains a candidate on this host.

One training loop serves every strategy (see ``vsearch.training``); only this
module knows which hardware is there.
"""

import json
import logging
import os
from typing import Optional

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
    return _tpu_strategy(tpu or "local")
  if name == "multi_worker":
    _check_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == "gpu":
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
      raise UserError("--strategy=gpu but TensorFlow sees no GPU on this host; "
                      "use --strategy=cpu or install a CUDA build of TensorFlow.")
    logging.info("Training on %d GPU(s) with MirroredStrategy.", len(gpus))
    return tf.distribute.MirroredStrategy()
  return tf.distribute.get_strategy()


def _check_tf_config() -> None:
  raw = os.environ.get("TF_CONFIG")
  if not raw:
    raise UserError("--strategy=multi_worker needs the TF_CONFIG environment "
                    "variable describing the cluster and this worker's task.")
  try:
    config = json.loads(raw)
    config["cluster"]["worker"]  # pylint: disable=pointless-statement
    config["task"]["index"]  # pylint: disable=pointless-statement
  except (ValueError, KeyError, TypeError) as e:
    raise UserError(
        f"TF_CONFIG does not parse ({e!r}); it must be JSON like "
        '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": '
        '"worker", "index": 0}}.') from e


def _tpu_strategy(tpu: str) -> tf.distribute.Strategy:
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu="" if tpu == "local" else tpu)
    if tpu != "local":
      # A TPU VM's own chips need no connection; a remote TPU does.
      tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
  except (ValueError, tf.errors.OpError, RuntimeError) as e:
    raise UserError(f"Cannot reach the TPU {tpu!r}: {e}. Check the name with "
                    "`gcloud compute tpus tpu-vm list`.") from e
  return tf.distribute.TPUStrategy(resolver)
