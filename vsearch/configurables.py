"""Imports every module that registers gin configurables.

Gin can only bind names it has seen; launchers import this module before
parsing configs. It is the one module above every layer: the methods come
from their registry (a new method registers through it), the rest is listed
here by layer.
"""

# ruff: noqa: F401
from vsearch.data import clips, datasets, sequence_example, synthetic_motion, video_folder
from vsearch.deploy import latency
from vsearch.jobs import export, qat
from vsearch.methods import registry
from vsearch.search import claims, early_stopping, evolution, fitness, runner, runtime_gate
from vsearch.train import full_training, strategy, trainer
