"""AssembleNet's own Keras layers: connection weights, peer-attention mix, representation flow."""

import math
from typing import Optional

import tensorflow as tf

from vsearch.methods.assemblenet.genome import Genome, Stem
from vsearch.nn import flow as flow_lib


def weights_layer_name(index: int) -> str:
  """Name of the ``ConnectionWeights`` layer of node ``index``."""
  return f"node{index}_weights"


def _logit(weight: float) -> float:
  return -math.log(1.0 / weight - 1.0)


@tf.keras.utils.register_keras_serializable(package="vsearch")
class ConnectionWeights(tf.keras.layers.Layer):
  """Scales each of a node's inputs by its connection weight σ(w_i).

  Args:
    num_inputs: how many inputs the node fuses.
    initial: the weights after the sigmoid, fixed (not trained); None:
      trainable logits drawn from N(0, 0.01), as the release learns them.
  """

  def __init__(self, num_inputs: int, initial: Optional[list[float]] = None, **kwargs):
    super().__init__(**kwargs)
    self.num_inputs = num_inputs
    self.initial = None if initial is None else [float(w) for w in initial]
    if self.initial is None:
      init = tf.keras.initializers.RandomNormal(stddev=0.01)
    else:
      init = tf.keras.initializers.Constant([_logit(w) for w in self.initial])
    self.logits = self.add_weight(
      name="logits", shape=(num_inputs,), initializer=init, trainable=self.initial is None
    )

  def call(self, inputs):
    weights = tf.sigmoid(self.logits)
    return [x * tf.cast(weights[i], x.dtype) for i, x in enumerate(inputs)]

  def compute_output_shape(self, input_shape):
    return list(input_shape)

  def get_config(self):
    return {**super().get_config(), "num_inputs": self.num_inputs, "initial": self.initial}


@tf.keras.utils.register_keras_serializable(package="vsearch")
class SoftmaxMix(tf.keras.layers.Layer):
  """A learned softmax-weighted sum of equally shaped inputs.

  AssembleNet++ peer-attention mixes the pooled features of every candidate
  peer with it; the softmax logits start from N(0, 0.01), so training
  decides which peers a connection's attention listens to.
  """

  def __init__(self, num_inputs: int, **kwargs):
    super().__init__(**kwargs)
    self.num_inputs = num_inputs
    self.logits = self.add_weight(
      name="logits",
      shape=(num_inputs,),
      initializer=tf.keras.initializers.RandomNormal(stddev=0.01),
    )

  def call(self, inputs):
    mix = tf.nn.softmax(self.logits)
    # A chain of two-input adds, not add_n: TFLite's ADD runs in int8, its
    # ADD_N only in float.
    total = inputs[0] * tf.cast(mix[0], inputs[0].dtype)
    for i, x in enumerate(inputs[1:], start=1):
      total = total + x * tf.cast(mix[i], x.dtype)
    return total

  def compute_output_shape(self, input_shape):
    return input_shape[0]

  def get_config(self):
    return {**super().get_config(), "num_inputs": self.num_inputs}


@tf.keras.utils.register_keras_serializable(package="vsearch")
class RepresentationFlow(tf.keras.layers.Layer):
  """Optical flow of RGB clips inside the network (Piergiovanni & Ryoo 2019).

  The TV-L1 solver of ``vsearch.nn.flow`` unrolled ``num_iterations`` times,
  with its step sizes τ, λ, θ as variables (trained when ``trainable_params``;
  the release keeps them fixed at 0.25, 0.15, 0.3). Frames are averaged to
  grey and min-max normalised to 0-255 per clip, flow runs between
  consecutive frames and the last pair's flow is repeated to keep T frames.
  Output: (B, T, H, W, 2) displacements clipped to ±``flow.MAX_FLOW``
  pixels and divided by it.

  The solver is element-wise divisions, square roots and selects: costly
  (its share of a model's cost is in ``flow_cost``) and not quantization
  friendly. Int8 conversion keeps it as a float island
  (``tflite_float_island``, see ``vsearch.deploy.quantize``); a model that
  reads pipeline flow instead is int8 throughout.
  """

  tflite_float_island = True  # Int8 TFLite keeps this layer's ops in float.

  def __init__(
    self,
    num_iterations: int = 40,
    trainable_params: bool = False,
    tau: float = 0.25,
    lam: float = 0.15,
    theta: float = 0.3,
    **kwargs,
  ):
    super().__init__(**kwargs)
    self.num_iterations = num_iterations
    self.trainable_params = trainable_params
    self.initial = {"tau": tau, "lam": lam, "theta": theta}
    self.params = {
      key: self.add_weight(
        name=key,
        shape=(),
        trainable=trainable_params,
        initializer=tf.keras.initializers.Constant(value),
      )
      for key, value in self.initial.items()
    }

  def call(self, clips):
    clips = tf.cast(clips, tf.float32)
    shape = tf.shape(clips)
    frames, height, width = clips.shape[1], shape[2], shape[3]
    gray = tf.reduce_mean(clips, axis=-1)  # (B, T, H, W)
    low = tf.reduce_min(gray, axis=[1, 2, 3], keepdims=True)
    high = tf.reduce_max(gray, axis=[1, 2, 3], keepdims=True)
    gray = 255.0 * (gray - low) / tf.maximum(high - low, 1e-6)
    first = tf.reshape(gray[:, :-1], [-1, height, width])
    second = tf.reshape(gray[:, 1:], [-1, height, width])
    pairs = flow_lib.tvl1_flow(
      first,
      second,
      self.num_iterations,
      tau=self.params["tau"],
      lam=self.params["lam"],
      theta=self.params["theta"],
    )
    pairs = tf.reshape(pairs, [-1, frames - 1, height, width, 2])
    flow = tf.concat([pairs, pairs[:, -1:]], axis=1)
    return tf.clip_by_value(flow, -flow_lib.MAX_FLOW, flow_lib.MAX_FLOW) / flow_lib.MAX_FLOW

  def compute_output_shape(self, input_shape):
    return (*input_shape[:-1], 2)

  def get_config(self):
    return {
      **super().get_config(),
      "num_iterations": self.num_iterations,
      "trainable_params": self.trainable_params,
      **self.initial,
    }


def flow_cost(genome: Genome, num_iterations: int) -> dict[str, float]:
  """Element-wise operations of the representation-flow layer per clip.

  Counted from ``vsearch.nn.flow.tvl1_flow``: about 60 element-wise ops per
  pixel per iteration (residual, threshold select, two flow components each
  with divergence, forward gradient, norm and dual update). Zero without a
  flow stem. Reported beside the conv FLOPs because TFLite's int8 path
  cannot quantize it.
  """
  if not any(isinstance(n, Stem) and n.kind == "flow" for n in genome.nodes):
    return {"flow_elementwise_ops": 0.0}
  pixels = genome.resolution**2 * (genome.num_frames - 1)
  return {"flow_elementwise_ops": float(60 * pixels * num_iterations)}
