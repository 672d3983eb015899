"""The one list of search methods.

A method is a package under ``vsearch/methods/`` that defines ``METHOD`` (its
``Method`` class, whose ``name`` records and genome files carry) and ``zoo``
(a module with ``GENOMES`` and ``DESCRIPTIONS``, its published architectures),
and imports every module of its own that registers gin configurables. Adding
a method is its folder and one line in ``_PACKAGES``: the zoo, genome files,
records, gin registration and the launchers all find methods here.
"""

from types import ModuleType

from vsearch.errors import UserError
from vsearch.methods import assemblenet, evanet, tvn
from vsearch.methods.base import Method

# The methods, in the order listings show them.
_PACKAGES: tuple[ModuleType, ...] = (tvn, evanet, assemblenet)

_BY_NAME = {package.METHOD.name: package for package in _PACKAGES}


def names() -> list[str]:
  """Every method's name, e.g. ['tvn', 'evanet', 'assemblenet']."""
  return list(_BY_NAME)


def package(name: str) -> ModuleType:
  """The package of the method ``name``.

  Raises:
    UserError: no method has that name; the message lists the known ones.
  """
  if name not in _BY_NAME:
    raise UserError(f"Unknown method {name!r}; known: {', '.join(sorted(_BY_NAME))}.")
  return _BY_NAME[name]


def method(name: str) -> Method:
  """A new instance of the method ``name``, configured by gin like a search's own."""
  return package(name).METHOD()
