"""iTGM: the inflated Temporal Gaussian Mixture convolution of EvaNet.

An iTGM conv is a 3-D convolution whose (L, k, k) kernel is synthesized from
far fewer parameters (reference §1.4): a spatial kernel S (k, k, C_in, C_out)
times, for every (input, output) channel pair, a temporal profile over the L
taps that is a learned mixture of M Cauchy-shaped curves:

* M curves with learned centres μ_m = (L - 1)(tanh(c_m) + 1) / 2 in [0, L-1]
  and widths γ_m = exp(1.5 - 2|tanh(g_m)|) in [e^-0.5, e^1.5], shared by all
  channel pairs; curve m is b_m(t) = 1 / (π γ_m ((t - μ_m) / γ_m)² + 1),
  normalised to sum to 1 over t (the public code found this Cauchy shape to
  converge faster than a Gaussian);
* per pair, mixing weights softmax(A[c_in, c_out, :]) over the M curves.

So the layer has k²·C_in·C_out + M·C_in·C_out + 2M parameters whatever L > 1
is: a long temporal kernel costs no more parameters than a short one (its
compute is that of a dense L×k×k conv). Evolution favoured it for long
kernels. With L = 1 every profile is 1 and the layer is its spatial conv:
as in the public release, it then creates only the spatial kernel
(k²·C_in·C_out parameters), no centres, widths or mixing logits it would
not use.

At export the kernel is synthesized once and the layer becomes a stacked
``SpaceTimeConv3D`` holding it, with identical outputs (``export_layer``,
applied by ``vsearch.nn.export_form``), so converters and quantizers see an
ordinary 2-D conv whose kernel is a constant, quantized as a weight.
"""

import math
from collections.abc import Sequence

import tensorflow as tf

from vsearch.methods.evanet import conv3d as conv3d_lib

DEFAULT_MIXTURES = 4


@tf.keras.utils.register_keras_serializable(package="vsearch")
class ITGMConv3D(tf.keras.layers.Layer):
  """A 3-D conv (SAME, no bias) with an iTGM-synthesized kernel.

  Args:
    filters: output channels.
    kernel_size: (L, k_h, k_w); L is the temporal length.
    strides: (t, h, w) strides.
    num_mixtures: M, the Cauchy curves mixed into each temporal profile.
  """

  def __init__(
    self,
    filters: int,
    kernel_size: Sequence[int],
    strides: Sequence[int] = (1, 1, 1),
    num_mixtures: int = DEFAULT_MIXTURES,
    **kwargs,
  ):
    super().__init__(**kwargs)
    self.filters = int(filters)
    self.kernel_size = tuple(int(k) for k in kernel_size)
    self.strides = tuple(int(s) for s in strides)
    self.num_mixtures = int(num_mixtures)
    if len(self.kernel_size) != 3 or len(self.strides) != 3:
      raise ValueError(
        f"ITGMConv3D needs a 3-D kernel_size and strides, got {kernel_size} and {strides}"
      )

  @property
  def has_mixture(self) -> bool:
    """Whether the kernel has a temporal extent to mix (L > 1)."""
    return self.kernel_size[0] > 1

  def build(self, input_shape):
    channels_in = int(input_shape[-1])
    _, k_h, k_w = self.kernel_size
    mixtures = self.num_mixtures
    # He-normal over the spatial fan-in: the temporal profile sums to 1,
    # so the synthesized kernel keeps a spatial conv's scale.
    self.spatial_kernel = self.add_weight(
      name="spatial_kernel",
      shape=(k_h, k_w, channels_in, self.filters),
      initializer=tf.keras.initializers.HeNormal(),
    )
    if not self.has_mixture:
      return
    self.raw_centers = self.add_weight(
      name="raw_centers",
      shape=(mixtures,),
      initializer=tf.keras.initializers.RandomNormal(stddev=0.5),
    )
    self.raw_widths = self.add_weight(
      name="raw_widths",
      shape=(mixtures,),
      initializer=tf.keras.initializers.RandomNormal(stddev=0.1),
    )
    self.mixing_logits = self.add_weight(
      name="mixing_logits",
      shape=(channels_in, self.filters, mixtures),
      initializer=tf.keras.initializers.TruncatedNormal(stddev=1.0),
    )

  def temporal_curves(self) -> tf.Tensor:
    """The M normalised Cauchy curves over the L taps: (M, L); needs L > 1."""
    length = self.kernel_size[0]
    taps = tf.range(length, dtype=self.raw_centers.dtype)
    centers = (length - 1) * (tf.tanh(self.raw_centers) + 1.0) / 2.0
    widths = tf.exp(1.5 - 2.0 * tf.abs(tf.tanh(self.raw_widths)))
    scaled = (taps[None, :] - centers[:, None]) / widths[:, None]
    curves = 1.0 / (math.pi * widths[:, None] * tf.square(scaled) + 1.0)
    return curves / tf.reduce_sum(curves, axis=1, keepdims=True)

  def temporal_profiles(self) -> tf.Tensor:
    """Each channel pair's profile over time: (L, C_in, C_out)."""
    if not self.has_mixture:
      return tf.ones((1, *self.spatial_kernel.shape[2:]), self.spatial_kernel.dtype)
    weights = tf.nn.softmax(self.mixing_logits, axis=-1)  # (C_in, C_out, M)
    return tf.einsum("iom,ml->lio", weights, self.temporal_curves())

  def kernel(self) -> tf.Tensor:
    """The synthesized Conv3D kernel: (L, k_h, k_w, C_in, C_out)."""
    if not self.has_mixture:
      return self.spatial_kernel[None]
    return self.spatial_kernel[None, :, :, :, :] * self.temporal_profiles()[:, None, None, :, :]

  def call(self, inputs):
    return conv3d_lib.conv3d(inputs, tf.cast(self.kernel(), inputs.dtype), self.strides)

  def compute_output_shape(self, input_shape):
    sizes = [
      None if d is None else math.ceil(d / s) for d, s in zip(input_shape[1:4], self.strides)
    ]
    return (input_shape[0], *sizes, self.filters)

  def get_config(self):
    config = super().get_config()
    config.update(
      filters=self.filters,
      kernel_size=list(self.kernel_size),
      strides=list(self.strides),
      num_mixtures=self.num_mixtures,
    )
    return config

  def export_layer(self) -> conv3d_lib.SpaceTimeConv3D:
    """An unbuilt stacked ``SpaceTimeConv3D`` of the same name (``vsearch.nn.export_form``)."""
    return conv3d_lib.stacked_copy(self)

  def export_weights(self) -> list:
    """The synthesized kernel, stacked as ``export_layer``'s layer holds it."""
    return [conv3d_lib.stack_kernel(self.kernel().numpy())]
