"""vsearch: evolutionary architecture search for video classification networks.

The package is organised by what each piece does:

* ``vsearch.methods`` — one module per search method (genome, search space,
  sampling, mutation, Keras builder).
* ``vsearch.layers`` — video layers shared by the methods.
* ``vsearch.zoo`` — the published architectures, by name.
* ``vsearch.data`` — TFDS datasets and the clip pipeline.
* the search loop: ``store`` (records), ``evolution`` (selection),
  ``training`` (train/evaluate under a strategy), ``fitness``, ``search``.
"""

__version__ = "0.1.0"
