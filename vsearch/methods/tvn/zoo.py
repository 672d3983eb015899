"""The published Tiny Video Networks as genomes.

Transcribed field by field from ``found_tvns.py`` of the TVN release
(google-research/tiny_video_nets), renamed as ``vsearch.methods.tvn.genome``
documents ('std' -> 'conv', 'depth' -> 'depthwise', '1d' -> 'conv', 0/1 ->
bools). The squeeze ratios keep every published digit: SE widths are
``int(width * ratio)``, so rounding them would change the models.

TVN-Mobile-1/2 are published as one-stream "multi-stream" configs whose
second block reads the first block's output, i.e. a plain chain of blocks at
2 frames × 224², frame stride 1.
"""

from vsearch.methods.tvn.genome import Block, Genome


def _block(spatial, temporal, repeats, filters, expand, **fields) -> Block:
  """A block from (type, kernel, stride) triples, as the tables read."""
  ops = {
    f"{op}_{part}": value
    for op, triple in (("spatial", spatial), ("temporal", temporal))
    for part, value in zip(("type", "kernel", "stride"), triple)
  }
  return Block(**ops, repeats=repeats, filters=filters, expand=expand, **fields)


# The published tables, one block per line as they read.
# fmt: off
TVN1 = Genome(resolution=224, num_frames=2, frame_stride=4, blocks=(
    _block(("conv", 4, 2), ("maxpool", 2, 2), 2, 64, 4, context_gate=True),
    _block(("maxpool", 3, 2), ("conv", 1, 1), 1, 128, 4,
           squeeze=0.9067600752736579),
    _block(("depthwise", 5, 3), ("avgpool", 1, 1), 2, 128, 4,
           context_gate=True, skip=True),
    _block(("conv", 3, 2), ("avgpool", 1, 1), 2, 256, 8,
           squeeze=0.7265534208526172, context_gate=True),
))

TVN2 = Genome(resolution=256, num_frames=2, frame_stride=7, blocks=(
    _block(("depthwise", 5, 3), ("conv", 2, 1), 3, 64, 4,
           squeeze=0.06667482492426025, context_gate=True, skip=True),
    _block(("conv", 4, 2), ("maxpool", 2, 2), 5, 128, 4,
           squeeze=0.693452618624749, context_gate=True, skip=True),
    _block(("depthwise", 4, 1), ("conv", 1, 1), 6, 1024, 1),
    _block(("avgpool", 3, 2), ("conv", 1, 1), 1, 256, 4, context_gate=True),
    _block(("avgpool", 4, 3), ("conv", 1, 1), 6, 512, 4,
           squeeze=0.9472192794783585),
    _block(("depthwise", 3, 3), ("maxpool", 1, 1), 4, 512, 4),
    # 348 (not 384) filters, as published.
    _block(("maxpool", 2, 1), ("maxpool", 1, 1), 1, 348, 6, context_gate=True),
))

TVN3 = Genome(resolution=160, num_frames=8, frame_stride=2, blocks=(
    _block(("depthwise", 3, 2), ("conv", 5, 2), 2, 64, 3,
           squeeze=0.6457257964198263, context_gate=True),
    _block(("depthwise", 3, 2), ("conv", 1, 1), 4, 256, 5,
           squeeze=0.9061418818635367, skip=True),
    _block(("depthwise", 5, 4), ("maxpool", 3, 2), 4, 256, 2, skip=True),
    _block(("conv", 3, 2), ("maxpool", 3, 3), 4, 512, 5, context_gate=True),
))

TVN4 = Genome(resolution=128, num_frames=8, frame_stride=4, blocks=(
    _block(("conv", 5, 2), ("conv", 3, 2), 5, 64, 4,
           squeeze=0.4775900391242449, skip=True),
    _block(("depthwise", 5, 2), ("maxpool", 2, 2), 4, 256, 6,
           context_gate=True),
    _block(("depthwise", 5, 3), ("conv", 1, 1), 4, 256, 8,
           squeeze=0.25309102981899967, context_gate=True),
))

_MOBILE_SQUEEZE_1 = 0.004598785768716973  # Below the floor: 8 SE channels.
_MOBILE_SQUEEZE_2 = 0.8589741047143076


def _mobile(first_spatial_activation: str, second_repeats: int) -> Genome:
  return Genome(resolution=224, num_frames=2, frame_stride=1, blocks=(
      _block(("depthwise", 5, 4), ("conv", 2, 1), 4, 32, 3,
             squeeze=_MOBILE_SQUEEZE_1,
             spatial_activation=first_spatial_activation),
      _block(("depthwise", 5, 4), ("maxpool", 2, 1), second_repeats, 128, 6,
             squeeze=_MOBILE_SQUEEZE_2, inverted_bottleneck=True,
             spatial_activation="hswish", temporal_activation="hswish"),
  ))


TVN_MOBILE1 = _mobile("relu", second_repeats=4)
TVN_MOBILE2 = _mobile("hswish", second_repeats=3)
# fmt: on

GENOMES = {
  "tvn1": TVN1,
  "tvn2": TVN2,
  "tvn3": TVN3,
  "tvn4": TVN4,
  "tvn_mobile1": TVN_MOBILE1,
  "tvn_mobile2": TVN_MOBILE2,
}

DESCRIPTIONS = {
  "tvn1": "TVN-1: 2 frames x 224^2, 4 blocks (37 ms CPU per clip, published)",
  "tvn2": "TVN-2: 2 frames x 256^2, 7 blocks (65 ms CPU per clip, published)",
  "tvn3": "TVN-3: 8 frames x 160^2, 4 blocks",
  "tvn4": "TVN-4: 8 frames x 128^2, 3 blocks",
  "tvn_mobile1": "TVN-Mobile-1: 2 frames x 224^2, 2 blocks, inverted "
  "bottleneck and hard-swish (on TF-Hub as mobile_1)",
  "tvn_mobile2": "TVN-Mobile-2: TVN-Mobile-1 with a hard-swish spatial op in "
  "block 0 and 3 repeats of block 1",
}
