"""The two published EvaNet architectures as genomes.

Decoded from the two base64 ``DNASpec`` protobufs of the EvaNet release
(``run_evanet.py``), reference §1.3. The release runs each on RGB and on
optical flow, an ensemble of 4 (``vsearch.methods.evanet.ensemble``). Widths are the
published 64 and 256/512/1024/2048, split across each stage's branches.
"""

from vsearch.methods.evanet.genome import Branch, Genome, Stage

_WIDTHS = (256, 512, 1024, 2048)


def _pool(time: int) -> Branch:
  return Branch("maxpool", time=time)


def _conv(conv_type: str, time: int) -> Branch:
  return Branch("conv", conv_type=conv_type, time=time)


def _conv2(conv_type: str, time: int, conv_type2: str, time2: int) -> Branch:
  return Branch("conv2", conv_type=conv_type, time=time, conv_type2=conv_type2, time2=time2)


_1X1 = Branch("1x1")


def _genome(pool_times, stages) -> Genome:
  return Genome(
    stem_conv_type="2plus1d",
    stem_time=3,
    pool1_time=pool_times[0],
    pool3_time=pool_times[1],
    pool4_time=pool_times[2],
    stem_filters=64,
    stages=tuple(
      Stage(repeats=r, branches=tuple(b), filters=w) for (r, b), w in zip(stages, _WIDTHS)
    ),
  )


EVANET_A = _genome(
  (1, 1, 9),
  [
    (2, [_conv("3d", 1), _pool(7)]),
    (4, [_pool(3), _1X1, _conv("3d", 1), _1X1, _conv("3d", 5)]),
    (5, [_pool(7), _1X1, _conv("itgm", 11), _pool(11)]),
    (3, [_pool(11), _conv("3d", 1), _conv("itgm", 3)]),
  ],
)

EVANET_B = _genome(
  (1, 3, 9),
  [
    (2, [_pool(1), _pool(3), _conv2("itgm", 1, "2plus1d", 9), _pool(1), _1X1]),
    (
      3,
      [
        _pool(1),
        _pool(7),
        _conv2("2plus1d", 5, "3d", 1),
        _conv2("itgm", 1, "2plus1d", 11),
        _1X1,
        _conv2("2plus1d", 11, "3d", 1),
      ],
    ),
    (5, [_pool(5), _1X1, _pool(9)]),
    (4, [_conv("2plus1d", 1), _pool(5)]),
  ],
)

GENOMES = {"evanet_a": EVANET_A, "evanet_b": EVANET_B}

DESCRIPTIONS = {
  "evanet_a": "EvaNet-A: released RGB #1 / flow #1, stages of 2/4/5/3 units "
  "with iTGM t11 and t3 branches (Kinetics-400)",
  "evanet_b": "EvaNet-B: released RGB #2 / flow #2, stages of 2/3/5/4 units "
  "with many max-pool branches (Kinetics-400)",
}
