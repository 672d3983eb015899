"""The published architectures, by name, as genomes of their search method.

Each entry knows its method, so the same four calls serve every family:

  >>> from vsearch.methods import zoo
  >>> zoo.names()
  ['tvn1', 'tvn2', ...]
  >>> zoo.genome('tvn1')                # a tvn.Genome
  >>> zoo.method_for('tvn1')            # a TvnMethod, e.g. to mutate it
  >>> zoo.build('tvn1', num_classes=5)  # Keras model at the published size

Each method's package holds its family (``<method>/zoo.py``: ``GENOMES`` and
``DESCRIPTIONS``); the registry lists the methods, so a new method's zoo
appears here with no edit.
"""

import dataclasses
from collections.abc import Callable

from vsearch.errors import UserError
from vsearch.methods import registry
from vsearch.methods.base import Genome, Method


@dataclasses.dataclass(frozen=True)
class Entry:
  """One published architecture.

  Attributes:
    name: the zoo name, e.g. 'tvn1'.
    method: the name of the search method it belongs to ('tvn').
    genome: the architecture.
    description: one line for listings.
    make_method: returns a method that can mutate and build ``genome``
      (configured by gin, like the search's own).
  """

  name: str
  method: str
  genome: Genome
  description: str
  make_method: Callable[[], Method]


def _entries() -> dict[str, Entry]:
  entries = {}
  for method in registry.names():
    package = registry.package(method)
    for name, genome in package.zoo.GENOMES.items():
      if name in entries:
        raise ValueError(f"zoo name {name!r} is registered twice")
      entries[name] = Entry(name, method, genome, package.zoo.DESCRIPTIONS[name], package.METHOD)
  return entries


_ENTRIES: dict[str, Entry] = _entries()


def names(method: str | None = None) -> list[str]:
  """Every zoo name (of ``method``'s family, if given), in registration order."""
  return [n for n, e in _ENTRIES.items() if method in (None, e.method)]


def entry(name: str) -> Entry:
  """The zoo entry called ``name``.

  Raises:
    UserError: no entry has that name; the message lists the known names.
  """
  try:
    return _ENTRIES[name]
  except KeyError:
    raise UserError(f"Unknown zoo architecture {name!r}; known: {', '.join(_ENTRIES)}.") from None


def genome(name: str) -> Genome:
  """The genome of the published architecture ``name``."""
  return entry(name).genome


def method_for(name: str) -> Method:
  """A fresh instance of the method ``name`` belongs to."""
  return entry(name).make_method()


def build(name: str, num_classes: int):
  """The Keras model of ``name`` at its published input size, untrained."""
  found = entry(name)
  return found.make_method().build(found.genome, num_classes)
