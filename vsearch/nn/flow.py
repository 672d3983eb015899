"""Optical flow as TensorFlow ops: an unrolled TV-L1 solver.

Two-stream video models (EvaNet's released ensemble is 2 RGB + 2 flow nets;
AssembleNet has a flow stem) read optical flow beside the frames. This
module computes it with plain TF ops, so it runs in a ``tf.data`` map, inside
a SavedModel, or (with learnable parameters) as AssembleNet's
representation-flow layer, on any device.

``tvl1_flow`` is the TV-L1 scheme of Zach, Pock and Bischof (2007),
linearised once around zero flow (no image pyramid, no re-warping), with a
fixed number of iterations, as the representation-flow layer of
Piergiovanni and Ryoo (2019) unrolls it. Each iteration is a thresholding
step on the linearised brightness-constancy residual and a dual (projected
gradient) step on the total variation of each flow component: only
element-wise ops and one-pixel differences, O(iterations · H · W) per frame
pair. Being linearised at zero, it measures small displacements (about a
pixel or two) well and underestimates large ones, whose direction it still
gets right, which is what a motion feature at low resolution needs; a
pyramid would add accuracy at several times the cost.
"""

import tensorflow as tf

# Flow is clipped to +-MAX_FLOW pixels and divided by it, so it lies in
# [-1, 1] like the RGB clips (the I3D convention clips at 20).
MAX_FLOW = 20.0


def _forward_gradient(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """Forward differences of [N, H, W] along W and H, zero at the far edge."""
  dx = tf.pad(x[:, :, 1:] - x[:, :, :-1], [[0, 0], [0, 0], [0, 1]])
  dy = tf.pad(x[:, 1:, :] - x[:, :-1, :], [[0, 0], [0, 1], [0, 0]])
  return dx, dy


def _divergence(px: tf.Tensor, py: tf.Tensor) -> tf.Tensor:
  """Backward-difference divergence, the negative adjoint of the gradient."""
  div_x = tf.concat([px[:, :, :1], px[:, :, 1:-1] - px[:, :, :-2], -px[:, :, -2:-1]], axis=2)
  div_y = tf.concat([py[:, :1, :], py[:, 1:-1, :] - py[:, :-2, :], -py[:, -2:-1, :]], axis=1)
  return div_x + div_y


def _central_gradient(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """Central differences of [N, H, W] along W and H (edges replicated)."""
  padded = tf.pad(x, [[0, 0], [1, 1], [1, 1]], mode="SYMMETRIC")
  gx = (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]) / 2.0
  gy = (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]) / 2.0
  return gx, gy


def tvl1_flow(
  first: tf.Tensor,
  second: tf.Tensor,
  num_iterations: int = 20,
  tau: float = 0.25,
  lam: float = 0.15,
  theta: float = 0.3,
) -> tf.Tensor:
  """Optical flow from ``first`` to ``second``, in pixels.

  Args:
    first, second: grayscale images [N, H, W] (H, W >= 2) with intensities
      on a 0-255 scale (the scale ``lam`` is tuned for).
    num_iterations: unrolled solver iterations.
    tau: time step of the dual update (<= 0.25 for stability).
    lam: weight of the data term against the smoothness term (larger: less
      smooth flow).
    theta: coupling between the flow and its data-term estimate.

  Returns:
    [N, H, W, 2]: the displacement (along W, along H) that moves each pixel
    of ``first`` to where it is in ``second``.
  """
  first = tf.convert_to_tensor(first, tf.float32)
  second = tf.convert_to_tensor(second, tf.float32)
  grad_x, grad_y = _central_gradient(second)
  grad_sq = tf.square(grad_x) + tf.square(grad_y) + 1e-6
  residual_at_zero = second - first
  zeros = tf.zeros_like(first)
  u = [zeros, zeros]
  p = [[zeros, zeros], [zeros, zeros]]
  step = lam * theta
  for _ in range(num_iterations):
    rho = residual_at_zero + grad_x * u[0] + grad_y * u[1]
    # Thresholding step: the closed-form minimiser of the data term.
    shift = tf.where(
      rho < -step * grad_sq, step, tf.where(rho > step * grad_sq, -step, -rho / grad_sq)
    )
    v = [u[0] + shift * grad_x, u[1] + shift * grad_y]
    for c in range(2):
      u[c] = v[c] + theta * _divergence(*p[c])
      ux, uy = _forward_gradient(u[c])
      norm = 1.0 + (tau / theta) * tf.sqrt(tf.square(ux) + tf.square(uy) + 1e-12)
      p[c] = [(p[c][0] + (tau / theta) * ux) / norm, (p[c][1] + (tau / theta) * uy) / norm]
  return tf.stack(u, axis=-1)


def clip_flow(clips: tf.Tensor, num_iterations: int = 20) -> tf.Tensor:
  """The flow clip of RGB clips, as two-stream models read it.

  Frame t's flow is the displacement from frame t to frame t + 1, computed
  on grayscale; the last frame, which has no successor, repeats the flow of
  the one before, so the clip keeps its T frames. Values are pixels
  clipped to +-``MAX_FLOW`` and divided by it.

  Args:
    clips: float32 [..., T, H, W, 3] in [-1, 1] (as ``make_clips`` makes
      them), T >= 2.
    num_iterations: TV-L1 iterations per frame pair.

  Returns:
    float32 [..., T, H, W, 2] in [-1, 1].
  """
  clips = tf.convert_to_tensor(clips, tf.float32)
  shape = tf.shape(clips)
  frames, height, width = clips.shape[-4], shape[-3], shape[-2]
  if frames is not None and frames < 2:
    raise ValueError(f"clip_flow needs at least 2 frames, got {frames}")
  gray = (tf.reduce_mean(clips, axis=-1) + 1.0) * 127.5  # [..., T, H, W]
  first = tf.reshape(gray[..., :-1, :, :], [-1, height, width])
  second = tf.reshape(gray[..., 1:, :, :], [-1, height, width])
  pairs = tvl1_flow(first, second, num_iterations)
  pairs = tf.reshape(pairs, tf.concat([shape[:-4], [shape[-4] - 1, height, width, 2]], axis=0))
  flow = tf.concat([pairs, pairs[..., -1:, :, :, :]], axis=-4)
  return tf.clip_by_value(flow, -MAX_FLOW, MAX_FLOW) / MAX_FLOW


@tf.keras.utils.register_keras_serializable(package="vsearch")
class ClipFlow(tf.keras.layers.Layer):
  """``clip_flow`` as a layer: RGB clips (B, T, H, W, 3) → flow (B, T, H, W, 2).

  Lets one model (an RGB + flow ensemble) take only RGB clips and compute
  the flow its flow members read exactly as the clip pipeline does. Int8
  TFLite keeps it in float (a float island, ``vsearch.deploy.quantize``):
  an iterative solver of divisions and square roots does not survive int8.
  """

  tflite_float_island = True  # Int8 TFLite keeps this layer's ops in float.

  def __init__(self, num_iterations: int = 20, **kwargs):
    super().__init__(**kwargs)
    self.num_iterations = num_iterations

  def call(self, inputs):
    return clip_flow(inputs, self.num_iterations)

  def compute_output_shape(self, input_shape):
    return (*input_shape[:-1], 2)

  def get_config(self):
    return {**super().get_config(), "num_iterations": self.num_iterations}
