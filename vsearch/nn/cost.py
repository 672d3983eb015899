"""Static cost of a Keras model at batch 1: its frozen graph and its FLOPs.

Batch 1 is what a deployed video model runs, so both the TFLite conversion
(``vsearch.deploy.quantize``) and the FLOP count start from the same graph: the
model's inference function traced for one clip of fixed shape, with its
variables folded into constants.

FLOPs here are **2 × multiply-adds** of the convolutions and matrix products
(Conv2D, DepthwiseConv2dNative, Conv3D, MatMul, BatchMatMul), read from the
static shapes of that graph. Element-wise work (batch norm, which TFLite folds
into the convs anyway, activations, pools, gating multiplies, adds) is not
counted: it is a few percent of a TVN and the convention varies between
papers. Papers that say "FLOPs" but count multiply-adds (X3D, MoViNet) report
half of this number.
"""

import math

import tensorflow as tf
from tensorflow.python.framework import convert_to_constants

# Op type -> function(op) giving its multiply-adds, from static shapes.
_MAC_OPS = {}


def _macs(*op_types):
  def register(fn):
    for op_type in op_types:
      _MAC_OPS[op_type] = fn
    return fn

  return register


def _static(shape: tf.TensorShape, op: tf.Operation) -> list[int]:
  if not shape.is_fully_defined():
    raise ValueError(f"{op.type} op {op.name} has a shape that is not static at batch 1: {shape}")
  return shape.as_list()


def _output_size(op: tf.Operation) -> int:
  return math.prod(_static(op.outputs[0].shape, op))


@_macs("Conv2D", "Conv3D")
def _conv_macs(op: tf.Operation) -> int:
  # Filter [k..., C_in per group, C_out]: each output element sums over the
  # kernel window and the input channels of its group.
  kernel = _static(op.inputs[1].shape, op)
  return _output_size(op) * math.prod(kernel[:-1])


@_macs("DepthwiseConv2dNative")
def _depthwise_macs(op: tf.Operation) -> int:
  # Filter [kh, kw, C_in, multiplier]: one window per output channel.
  kh, kw = _static(op.inputs[1].shape, op)[:2]
  return _output_size(op) * kh * kw


@_macs("MatMul")
def _matmul_macs(op: tf.Operation) -> int:
  a = _static(op.inputs[0].shape, op)
  inner = a[0] if op.get_attr("transpose_a") else a[1]
  return _output_size(op) * inner


@_macs("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
def _batch_matmul_macs(op: tf.Operation) -> int:
  a = _static(op.inputs[0].shape, op)
  inner = a[-2] if op.get_attr("adj_x") else a[-1]
  return _output_size(op) * inner


def input_shapes(model: tf.keras.Model) -> dict[str, tuple]:
  """Each input's name and its shape without the batch axis, in model order.

  The names are the Keras input names ('clips', 'flow', 'objects'): a model
  with several inputs is called with a dict keyed by them, and the exported
  signatures and TFLite inputs carry them.
  """
  return {tensor.name.split(":")[0]: tuple(tensor.shape[1:]) for tensor in model.inputs}


def frozen_function(model: tf.keras.Model, batch_size: int = 1):
  """The model's inference function on a fixed-shape batch, variables frozen.

  Args:
    model: a Keras model whose inputs have static shapes (except the batch).
    batch_size: the batch the function is traced for.

  Returns:
    A ``ConcreteFunction`` with no variables. For one input, ``model(x,
    training=False)`` for ``x`` of shape ``(batch_size, *model.input_shape[1:])``.
    For several, it takes one dict keyed by the input names (see
    ``input_shapes``), each placeholder named after its input, so a TFLite
    model converted from it has a ``serving_default`` signature whose inputs
    are those names.

  Raises:
    ValueError: a dynamic input shape.
  """
  shapes = input_shapes(model)
  dtypes = {name: tensor.dtype for name, tensor in zip(shapes, model.inputs)}
  for name, shape in shapes.items():
    if any(d is None for d in shape):
      raise ValueError(
        f"{model.name} has a dynamic input shape {shape} "
        f"({name}); batch-1 conversion needs every other axis "
        "fixed"
      )
  if len(shapes) == 1:
    (shape,), (dtype,) = shapes.values(), dtypes.values()
    signature = [tf.TensorSpec((batch_size, *shape), dtype)]
  else:
    signature = [
      {
        name: tf.TensorSpec((batch_size, *shape), dtypes[name], name=name)
        for name, shape in shapes.items()
      }
    ]

  @tf.function(input_signature=signature)
  def infer(x):
    return model(x, training=False)

  return convert_to_constants.convert_variables_to_constants_v2(infer.get_concrete_function())


def count_flops(model: tf.keras.Model) -> int:
  """FLOPs of one forward pass at batch 1: 2 × multiply-adds.

  Counts Conv2D, DepthwiseConv2D, Conv3D and dense/matmul ops of the frozen
  inference graph (see the module docstring for what is left out).

  Args:
    model: a Keras model whose inputs have static shapes (one or several).

  Returns:
    2 × the multiply-accumulates of one clip.
  """
  graph = frozen_function(model).graph
  macs = sum(_MAC_OPS[op.type](op) for op in graph.get_operations() if op.type in _MAC_OPS)
  return 2 * int(macs)
