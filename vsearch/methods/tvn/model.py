"""The Keras builder of Tiny Video Networks.

Follows the public TVN release (``tiny_video_net.py``) op for op, so the
published architectures keep their shapes and parameter counts, in the
(B·T, H, W, C) layout of ``vsearch.nn.layers``: no 3-D op anywhere, which keeps
every model fully int8-convertible for TFLite.

One repeat of a block, in order:

1. inverted bottleneck only: 1×1 conv to ``filters·expand`` + BN-ReLU (the
   release hard-codes ReLU here, whatever the activation fields say);
2. spatial op, skipped when the kernel is 1: 'conv' = 1×1 conv + BN-act then
   k×k conv (stride s) + BN-act; 'depthwise' = 1×1 conv + BN-act then k×k
   depthwise (stride s) + BN-act; pools = k×k pool (stride s). Convs run at
   ``filters`` channels, or at the expanded width in an inverted bottleneck
   (which therefore has two 1×1 convs in a row, as published);
3. temporal op, skipped when the kernel is 1, when one frame is left, and in
   odd repeats: 'conv' = (k, 1) conv (stride t) + BN-act at the same width as
   the spatial convs; pools = (k, 1) pool;
4. not inverted: 1×1 conv to ``filters·expand`` + BN, no activation;
5. squeeze-excitation, then context gating, each over the whole clip;
6. inverted bottleneck only: 1×1 projection to ``filters`` + BN;
7. ``skip`` and the frame count unchanged: add a 1×1 conv + BN shortcut of
   the repeat's input (strided like the spatial op if the size changed);
8. the output activation.

Repeat 0 uses the block's strides; later repeats use stride 1.
Head: mean over (T, H, W) → dropout → dense logits (no softmax). With
``Genome.head_pool = 'max_space'`` the pool is a max over (H, W) per frame, then a mean
over T: on motion data a mean over the whole clip dilutes the sparse responses
of direction-selective units, and most genomes learn several times slower
(benchmarks/README.md, "What the smoke space learns"). With 'soft_max_time'
(the release's Charades head) each frame's (H, W) mean gets its own logits,
soft max-pooled over time (``layers.SoftMaxOverTime``).
"""

import dataclasses
import json
import math
from typing import Any, Optional

import tensorflow as tf

from vsearch.methods.tvn.genome import Block, Genome
from vsearch.nn import layers

# The kinds of stage, in the order a repeat applies them. 'shortcut' reads
# the repeat's input; 'add' sums its output into the main path.
STAGE_OPS = (
  "expand",
  "spatial",
  "temporal",
  "expand",
  "se",
  "cg",
  "project",
  "shortcut",
  "add",
  "activation",
  "head",
)


@dataclasses.dataclass(frozen=True)
class Stage:
  """One op of a TVN as the builder applies it, with its input shape.

  A model is a fixed sequence of stages; ``build_model`` builds each with
  ``apply_stage`` and ``vsearch.methods.tvn.latency_table`` times each one alone, so
  both read the same plan (``genome_stages``).

  Attributes:
    op: one of ``STAGE_OPS``.
    frames, size, channels: the input, (B·frames, size, size, channels).
    params: what else fixes the op, as sorted (name, value) pairs.
    name: the Keras layer name prefix (not part of the stage's identity).
  """

  op: str
  frames: int
  size: int
  channels: int
  params: tuple[tuple[str, Any], ...] = ()
  name: str = dataclasses.field(default="", compare=False)

  def param(self, key: str) -> Any:
    return dict(self.params)[key]

  def key(self) -> str:
    """A canonical string that names this op and input, e.g. in a table."""
    return json.dumps(
      {"op": self.op, "in": [self.frames, self.size, self.channels], **dict(self.params)},
      sort_keys=True,
      separators=(",", ":"),
    )

  def describe(self) -> str:
    """One line: the op, its parameters and input shape."""
    params = ", ".join(f"{k}={v}" for k, v in self.params)
    return (
      f"{self.op}({params}) on {self.frames} frames x "
      f"{self.size}x{self.size} x {self.channels} channels"
    )


def _stage(op, frames, size, channels, name, **params) -> Stage:
  return Stage(op, frames, size, channels, tuple(sorted(params.items())), name)


def repeat_stages(
  block: Block, repeat: int, frames: int, size: int, channels: int, prefix: str
) -> tuple[list[Stage], int, int, int]:
  """The stages of one repeat of ``block`` on (B·frames, size, size, channels).

  Returns:
    The stages and the output (frames, size, channels).
  """
  first = repeat == 0
  stages = []

  def add(op: str, name: str, **params) -> None:
    # The stage of ``op`` on the current (frames, size, channels).
    stages.append(_stage(op, frames, size, channels, name, **params))

  frames_in, size_in, channels_in = frames, size, channels
  if block.inverted_bottleneck:
    # The release hard-codes ReLU here, whatever the activation fields say.
    add("expand", f"{prefix}_expand", width=block.expanded_width, act=layers.RELU)
    channels = width = block.expanded_width
  else:
    width = block.filters

  def add_op(op: str, stride: int, act: Optional[str]) -> None:
    # The block's spatial or temporal op.
    kind, kernel = getattr(block, f"{op}_type"), getattr(block, f"{op}_kernel")
    add(op, prefix, type=kind, kernel=kernel, stride=stride, width=width, act=act)

  stride = block.spatial_stride if first else 1
  if block.spatial_kernel > 1:
    add_op("spatial", stride, block.spatial_activation)
    size = math.ceil(size / stride)
    if block.spatial_type in ("conv", "depthwise"):
      channels = width
  if repeat % 2 == 0 and frames > 1 and block.temporal_kernel > 1:
    t_stride = block.temporal_stride if first else 1
    act = block.temporal_activation if block.temporal_type == "conv" else None
    add_op("temporal", t_stride, act)
    frames = layers.temporal_frames(frames, t_stride)
    if block.temporal_type == "conv":
      channels = width
  if not block.inverted_bottleneck:
    add("expand", f"{prefix}_expand", width=block.expanded_width, act=None)
    channels = block.expanded_width
  if block.squeeze > 0:
    # Identified by its bottleneck width, which is all the ratio sets.
    add("se", f"{prefix}_se", bottleneck=max(int(channels * block.squeeze), 8))
  if block.context_gate:
    add("cg", f"{prefix}_cg")
  if block.inverted_bottleneck:
    add("project", f"{prefix}_project", width=block.filters)
    channels = block.filters
  if block.skip and frames == frames_in:
    shortcut_stride = stride if size != size_in else 1
    stages.append(
      _stage(
        "shortcut",
        frames_in,
        size_in,
        channels_in,
        f"{prefix}_shortcut",
        width=channels,
        stride=shortcut_stride,
      )
    )
    add("add", f"{prefix}_add")
  add("activation", f"{prefix}_out", kind=block.output_activation)
  return stages, frames, size, channels


def genome_stages(genome: Genome, num_classes: int) -> list[Stage]:
  """Every stage of ``genome``'s model, in order, the head last.

  A 'mean' head keeps the key it always had; another pool is a parameter of
  the head stage, so latency tables tell them apart.
  """
  frames, size, channels = genome.num_frames, genome.resolution, 3
  stages = []
  for i, block in enumerate(genome.blocks):
    for r in range(block.repeats):
      repeat, frames, size, channels = repeat_stages(
        block, r, frames, size, channels, prefix=f"block{i}_rep{r}"
      )
      stages.extend(repeat)
  pool = {} if genome.head_pool == "mean" else {"pool": genome.head_pool}
  stages.append(_stage("head", frames, size, channels, "head", num_classes=num_classes, **pool))
  return stages


def apply_stage(x, stage: Stage, shortcut: Optional[Any] = None, dropout_rate: float = 0.0):
  """Builds ``stage`` on (B·frames, H, W, C) frames ``x``.

  Args:
    x: the main path.
    stage: what to build; its ``name`` prefixes the layer names.
    shortcut: for 'add', the tensor added to ``x``.
    dropout_rate: for 'head', dropout before the classifier.

  Returns:
    The output; logits (B, classes) for 'head'.
  """
  op, name, p = stage.op, stage.name, dict(stage.params)
  if op in ("expand", "project"):
    return layers.conv_bn(x, p["width"], 1, 1, p.get("act"), name=name)
  if op == "shortcut":
    return layers.conv_bn(x, p["width"], 1, p["stride"], None, name=name)
  if op == "spatial":
    kind, kernel, stride = p["type"], p["kernel"], p["stride"]
    if kind in ("conv", "depthwise"):
      x = layers.conv_bn(x, p["width"], 1, 1, p["act"], name=f"{name}_spatial_pointwise")
      if kind == "conv":
        return layers.conv_bn(x, p["width"], kernel, stride, p["act"], name=f"{name}_spatial_conv")
      return layers.depthwise_bn(x, kernel, stride, p["act"], name=f"{name}_spatial_depthwise")
    return layers.pool2d(x, kind, kernel, stride, name=f"{name}_spatial_{kind}")
  if op == "temporal":
    kind = p["type"]
    if kind == "conv":
      x, _ = layers.temporal_conv(
        x,
        stage.frames,
        p["width"],
        p["kernel"],
        p["stride"],
        p["act"],
        name=f"{name}_temporal_{kind}",
      )
    else:
      x, _ = layers.temporal_pool(
        x, stage.frames, kind, p["kernel"], p["stride"], name=f"{name}_temporal_{kind}"
      )
    return x
  if op == "se":
    # The ratio that gives this bottleneck width: int(C * ratio) == width.
    ratio = (p["bottleneck"] + 0.5) / stage.channels
    return layers.squeeze_excite(x, stage.frames, ratio, name=name)
  if op == "cg":
    return layers.context_gate(x, stage.frames, name=name)
  if op == "add":
    return tf.keras.layers.Add(name=name)([x, shortcut])
  if op == "activation":
    return layers.activation(x, p["kind"], name=name)
  if op == "head":
    if p.get("pool") == "soft_max_time":
      frames = layers.frame_means(x, stage.frames, name="head_pool")
      return layers.soft_max_time_logits(frames, p["num_classes"], dropout_rate)
    if p.get("pool", "mean") == "max_space":
      x = layers.space_max_time_mean(x, stage.frames, name="head_pool")
    else:
      x = layers.clip_mean(x, stage.frames, name="head_pool")
    x = tf.keras.layers.Dropout(dropout_rate, name="head_dropout")(x)
    return tf.keras.layers.Dense(
      p["num_classes"],
      name="logits",
      kernel_initializer=tf.keras.initializers.RandomNormal(stddev=0.01),
    )(x)
  raise ValueError(f"unknown stage op {op!r}")


def build_model(
  genome: Genome, num_classes: int, dropout_rate: float = 0.5, name: str = "tvn"
) -> tf.keras.Model:
  """Builds the Keras model of ``genome``.

  Layers are named ``block{i}_rep{r}_<op>`` with ``i`` the index in
  ``genome.blocks`` (0-based, like the genome paths ``blocks[i]``) and ``r``
  the repeat; ``block{i}_rep{r}_out`` ends each repeat.

  Args:
    genome: the architecture.
    num_classes: width of the logits.
    dropout_rate: dropout before the classifier (the release keeps 0.5).
    name: the model's name.

  Returns:
    A model from float32 clips (B, T, H, W, 3) to logits (B, num_classes).
  """
  size = genome.resolution
  clips = tf.keras.Input(shape=(genome.num_frames, size, size, 3), name="clips")
  x = shortcut_input = layers.fold_time(clips)
  for stage in genome_stages(genome, num_classes):
    if stage.op == "shortcut":
      shortcut = apply_stage(shortcut_input, stage)
    elif stage.op == "add":
      x = apply_stage(x, stage, shortcut=shortcut)
    else:
      x = apply_stage(x, stage, dropout_rate=dropout_rate)
    if stage.op == "activation":
      shortcut_input = x  # The end of a repeat: the next one's input.
  return tf.keras.Model(clips, x, name=name)
