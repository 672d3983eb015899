"""The published AssembleNet graphs as genomes, with their learned weights.

Transcribed from the public release's ``model_structures.py`` through the
tables of reference/methods.md §2.4 (AssembleNet-50/-101, evolved on
Moments-in-Time) and §2.6 (AssembleNet++-50, found on Charades;
AssembleNet++lite): node by node, with the connection weights after the
sigmoid as published. Nodes with one input have no weight. Clips are 32
frames of 224 px, the Kinetics configuration of the TF Model Garden port
(for lite: the release's ``default_image_size`` 224, and the 32 frames its
README trains on a 16 GB GPU).

Weights are rounded to two digits (as reference §2.4 gives AssembleNet's),
AssembleNet++lite's to three (at two, four of them would round to 1).
AssembleNet++-50's are read from the release's ``full_asnp_structure_weights``
(TF Model Garden ``configs/assemblenet.py``); its node 9 feeds no later
node, as published (its weights never left 0.5), so it is not built.

AssembleNet++lite is ``asnp_lite_structure`` with
``asnp_lite_structure_weights`` and the units per level run_asn.py gives it
([3, 5, 11, 7], ``depth`` 80 here): 3-D inverted bottleneck units, an RGB
and a flow stem of 24 channels each. Where we depart from the release:

* peer-attention is on (``attention='peer'``, what makes it ++); the
  release's demo leaves its ``attention_mode`` flag unset, which builds it
  without attention;
* a fusion lifts its inputs to the widest input's channels, as everywhere
  else; the release's lite fusion (its 5-D mode) takes the target width from
  ``shape[3]``, which in 5-D is a spatial width (e.g. 112 channels for the
  level-0 nodes at 224 px), an indexing slip we do not copy;
* the release's object stem is not wired (it passes ``None``), so a lite
  genome has no object stem;
* the release computes flow with 20 TV-L1 iterations
  (``AssembleNetMethod.flow_iterations = 20``; the default is 40).
"""

from vsearch.methods.assemblenet.genome import Block, Genome, Stem

_FRAMES, _RESOLUTION = 32, 224


def _asn_nodes(level2_filters: int, level3_filters: int):
  return (
    Stem("rgb", 4),
    Stem("rgb", 4),
    Stem("flow", 1),
    Stem("flow", 1),
    Block(0, (1,), 32, 1, 1),
    Block(0, (0,), 32, 4, 1),
    Block(0, (0, 1, 2, 3), 32, 1, 1, (0.14, 0.85, 0.31, 0.29)),
    Block(0, (2, 3), 32, 2, 1, (0.58, 0.61)),
    Block(1, (0, 4, 5, 6, 7), 64, 2, 2, (0.16, 0.89, 0.40, 0.68, 0.53)),
    Block(1, (0, 2, 4, 7), 64, 1, 2, (0.03, 0.10, 0.75, 0.93)),
    Block(1, (0, 5, 7), 64, 4, 2, (0.29, 0.76, 0.40)),
    Block(1, (0, 5), 64, 1, 2, (0.23, 0.78)),
    Block(2, (4, 8, 10, 11), level2_filters, 1, 2, (0.28, 0.95, 0.66, 0.95)),
    Block(2, (8, 9), level2_filters, 4, 2, (0.50, 0.89)),
    Block(3, (12, 13), level3_filters, 2, 2, (0.99, 0.85)),
  )


ASSEMBLENET50 = Genome(
  nodes=_asn_nodes(256, 512), num_frames=_FRAMES, resolution=_RESOLUTION, depth=50
)
ASSEMBLENET101 = Genome(
  nodes=_asn_nodes(192, 256), num_frames=_FRAMES, resolution=_RESOLUTION, depth=101
)

ASSEMBLENET_PLUS50 = Genome(
  nodes=(
    Stem("rgb", 2),
    Stem("rgb", 4),
    Stem("flow", 2),
    Stem("flow", 1),
    Stem("object", 4),
    Block(0, (0, 1, 2, 3, 4), 32, 1, 1, (0.61, 0.71, 0.19, 0.17, 0.72)),
    Block(0, (0, 1, 4), 32, 4, 1, (0.58, 0.56, 0.71)),
    Block(0, (2, 3, 4), 32, 8, 1, (0.27, 0.30, 0.82)),
    Block(0, (2, 3, 4), 32, 1, 1, (0.07, 0.08, 0.88)),
    Block(1, (0, 1, 2, 4, 5, 6, 7, 8), 64, 4, 2, (0.50, 0.50, 0.50, 0.50, 0.50, 0.50, 0.50, 0.50)),
    Block(1, (2, 3, 4, 7, 8), 64, 1, 2, (0.47, 0.47, 0.77, 0.55, 0.45)),
    Block(1, (0, 4, 5, 6, 7), 128, 8, 2, (0.28, 0.81, 0.60, 0.66, 0.59)),
    Block(2, (4, 11), 256, 8, 2, (0.5, 0.5)),
    Block(
      2,
      (2, 3, 4, 5, 6, 7, 8, 10, 11),
      256,
      4,
      2,
      (0.09, 0.08, 0.97, 0.06, 0.08, 0.10, 0.19, 0.24, 0.92),
    ),
    Block(3, (12, 13), 512, 2, 2, (0.42, 0.58)),
  ),
  num_frames=_FRAMES,
  resolution=_RESOLUTION,
  depth=50,
  attention="peer",
)

_L0, _L1, _L2, _L3 = (27, 27, 12), (54, 54, 24), (152, 152, 68), (432, 432, 192)

ASSEMBLENET_PLUS_LITE = Genome(
  nodes=(
    Stem("rgb", 1),
    Stem("flow", 1),
    Block(0, (0, 1), _L0, 1, 2, (0.199, 0.928)),
    Block(0, (0, 1), _L0, 4, 2, (0.011, 0.889)),
    Block(1, (0, 1, 2, 3), _L1, 2, 2, (0.947, 0.630, 0.170, 0.060)),
    Block(1, (0, 1, 2, 3), _L1, 1, 2, (0.956, 0.790, 0.361, 0.073)),
    Block(1, (0, 1, 2, 3), _L1, 4, 2, (0.921, 0.134, 0.837, 0.079)),
    Block(1, (0, 1, 2, 3), _L1, 1, 2, (0.944, 0.944, 0.725, 0.135)),
    Block(2, tuple(range(8)), _L2, 1, 2, (0.996, 0.843, 0.890, 0.110, 0.627, 0.448, 0.613, 0.449)),
    Block(2, tuple(range(8)), _L2, 4, 2, (0.997, 0.711, 0.508, 0.095, 0.624, 0.853, 0.811, 0.786)),
    Block(
      3, tuple(range(2, 10)), _L3, 2, 2, (0.618, 0.119, 0.061, 0.045, 0.056, 0.052, 0.997, 0.999)
    ),
  ),
  num_frames=_FRAMES,
  resolution=_RESOLUTION,
  depth=80,
  stem_width=48,
  attention="peer",
  unit="inverted_bottleneck",
)

GENOMES = {
  "assemblenet50": ASSEMBLENET50,
  "assemblenet101": ASSEMBLENET101,
  "assemblenet_plus50": ASSEMBLENET_PLUS50,
  "assemblenet_plus_lite": ASSEMBLENET_PLUS_LITE,
}

DESCRIPTIONS = {
  "assemblenet50": "AssembleNet-50: 2 RGB + 2 flow stems, 11 blocks, "
  "learned weights (Moments-in-Time), 32 x 224^2",
  "assemblenet101": "AssembleNet-101: AssembleNet-50's graph, [3,4,23,3] "
  "units, narrower levels 2-3",
  "assemblenet_plus50": "AssembleNet++-50: + object stem (151 segmentation "
  "maps) and peer-attention (Charades graph)",
  "assemblenet_plus_lite": "AssembleNet++lite: RGB + flow stems, 9 blocks of 3-D "
  "inverted bottlenecks, peer-attention, 32 x 224^2",
}
