"""The published architectures, by name, as genomes of their search method.

Each entry knows its method, so the same four calls serve every family:

  >>> from vsearch import zoo
  >>> zoo.names()
  ['tvn1', 'tvn2', ...]
  >>> zoo.genome('tvn1')                # a tvn.Genome
  >>> zoo.method_for('tvn1')            # a TvnMethod, e.g. to mutate it
  >>> zoo.build('tvn1', num_classes=5)  # Keras model at the published size

A family adds a module with a ``GENOMES`` dict (and ``DESCRIPTIONS``) and one
``_add_family`` line below; the API does not change.
"""

import dataclasses
from collections.abc import Callable

from vsearch.errors import UserError
from vsearch.methods import Genome, Method
from vsearch.methods import assemblenet as assemblenet_method
from vsearch.methods import evanet as evanet_method
from vsearch.methods import tvn as tvn_method
from vsearch.zoo import assemblenet as assemblenet_zoo
from vsearch.zoo import evanet as evanet_zoo
from vsearch.zoo import tvn as tvn_zoo


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


_ENTRIES: dict[str, Entry] = {}


def _add_family(method: str, genomes: dict[str, Genome],
                descriptions: dict[str, str],
                make_method: Callable[[], Method]):
  for name, genome in genomes.items():
    if name in _ENTRIES:
      raise ValueError(f"zoo name {name!r} is registered twice")
    _ENTRIES[name] = Entry(name, method, genome, descriptions[name],
                           make_method)


_add_family("tvn", tvn_zoo.GENOMES, tvn_zoo.DESCRIPTIONS,
            tvn_method.TvnMethod)
_add_family("evanet", evanet_zoo.GENOMES, evanet_zoo.DESCRIPTIONS,
            evanet_method.EvanetMethod)
_add_family("assemblenet", assemblenet_zoo.GENOMES,
            assemblenet_zoo.DESCRIPTIONS, assemblenet_method.AssembleNetMethod)


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
    raise UserError(f"Unknown zoo architecture {name!r}; known: "
                    f"{', '.join(_ENTRIES)}.") from None


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
