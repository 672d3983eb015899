"""vsearch: evolutionary architecture search for video classification networks.

The package is layered; each folder imports only from its own and from those
listed before it (ARCHITECTURE.md has the rule and why):

* loose modules: ``errors``, ``progress``, ``quiet``, ``files`` (atomic
  writes), ``record`` (a candidate's record);
* ``nn``: layers shared by several methods, optical flow, FLOP counting;
* ``data``: TFDS datasets and the clip pipeline;
* ``train``: the distributed training loop, strategies, full training;
  ``deploy``: TFLite conversion, LiteRT latency and evaluation, export;
* ``methods``: the ``Method`` protocol, the registry, the zoo, and one
  package per method (``tvn``, ``evanet``, ``assemblenet``);
* ``search``: the search loop, selection, fitness, the record store, claims
  and the runtime gate;
* ``report``: what a search found, as plots and a page;
* ``jobs``: export and QAT, the procedures launchers run;
* ``configurables``: imports every module that registers gin names.
"""

__version__ = "0.1.0"
