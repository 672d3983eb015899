"""Search methods: one package per method, and what they share.

* ``base``: the ``Method`` protocol the search loop talks to, ``Source``
  (a genome with its method) and sampling helpers.
* ``checks``: the field checks every genome runs on what it reads.
* ``tvn/``, ``evanet/``, ``assemblenet/``: a method each, everything only
  it uses inside (genome, search space and mutation, builder, zoo, and its
  own layers and procedures).
* ``registry``: the one list of methods; ``zoo`` (published architectures
  by name) and ``genome_source`` (a launcher's genome from a file, a record
  or the zoo) find methods through it.

Method packages import ``base``, ``checks`` and the layers below
(``nn``, ``data``, ``train``, ``deploy``), never each other.
"""
