"""Imports every module that registers gin configurables.

Gin can only bind names it has seen; launchers import this module before
parsing configs. A new method or component adds its module here.
"""

# pylint: disable=unused-import
from vsearch import ensemble
from vsearch import evolution
from vsearch import export
from vsearch import fitness
from vsearch import full_training
from vsearch import latency
from vsearch import one_shot
from vsearch import qat
from vsearch import runtime
from vsearch import search
from vsearch import training
from vsearch.data import datasets
from vsearch.data import sequence_example
from vsearch.methods import assemblenet
from vsearch.methods import evanet
from vsearch.methods import tvn
