"""The form of a model that is converted to TFLite: trainable layers swapped for their export form.

Some layers are built for training and have a simpler form for inference
with the same outputs: EvaNet's iTGM conv synthesizes its 3-D kernel from a
few parameters on every call, and its ``SpaceTimeConv3D`` stores a 5-D
kernel that it stacks for a 2-D conv. A converter freezes the variables and
must then fold those computations into constants; above a size limit it does
not, and the int8 quantizer then treats the kernel as an activation
(asymmetric, so LiteRT's int8 conv refuses the file). Such a layer says what
it becomes:

* ``export_layer()``: an unbuilt layer with the same name, computing the
  same function from weights stored as its ops use them;
* ``export_weights()``: those weights (numpy arrays).

``export_form(model)`` swaps every top-level layer that has them and copies
all other weights unchanged. A nested model is not looked into: whoever
assembles one (the EvaNet ensemble) converts its members first.
"""

import tensorflow as tf


def _exportable(layer) -> bool:
  return hasattr(layer, "export_layer") and hasattr(layer, "export_weights")


def export_form(model: tf.keras.Model) -> tf.keras.Model:
  """``model`` with each layer that has an export form replaced by it.

  Returns ``model`` itself when no layer has one (no copy, no cost), else a
  copy of the same inputs, outputs, layer names and function.
  """
  if not any(_exportable(layer) for layer in model.layers):
    return model

  def clone(layer):
    if _exportable(layer):
      return layer.export_layer()
    return layer.__class__.from_config(layer.get_config())

  copy = tf.keras.models.clone_model(model, clone_function=clone)
  originals = {layer.name: layer for layer in model.layers}
  for layer in copy.layers:
    original = originals.get(layer.name)
    if original is None or not original.weights:  # Inputs: renamed by cloning, no weights.
      continue
    layer.set_weights(
      original.export_weights() if _exportable(original) else original.get_weights()
    )
  return copy
