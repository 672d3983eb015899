"""Editing AssembleNet graphs: insert, remove and prune nodes, count a level.

The node helpers take and return a list of nodes in level order (stems, then
levels 0, 1, 2, 3) and keep every ``inputs`` index consistent.
"""

import dataclasses

from vsearch.methods.assemblenet.genome import Block, Genome
from vsearch.methods.assemblenet.model import live_nodes


def insert_node(nodes: list, at: int, node) -> list:
  """Inserts ``node`` at index ``at``; later indices shift by one."""
  shift = lambda j: j + 1 if j >= at else j
  out = [
    dataclasses.replace(n, inputs=tuple(shift(j) for j in n.inputs)) if isinstance(n, Block) else n
    for n in nodes
  ]
  out.insert(at, node)
  return out


def remove_nodes(nodes: list, gone: set[int]) -> list:
  """Removes nodes ``gone``; inputs that pointed at them are dropped."""
  index, kept = {}, []
  for i, n in enumerate(nodes):
    if i not in gone:
      index[i] = len(kept)
      kept.append(n)
  return [
    dataclasses.replace(n, inputs=tuple(index[j] for j in n.inputs if j in index))
    if isinstance(n, Block)
    else n
    for n in kept
  ]


def prune(genome: Genome) -> Genome:
  """Drops the nodes no level-3 node depends on."""
  dead = set(range(len(genome.nodes))) - live_nodes(genome)
  if not dead:
    return genome
  return dataclasses.replace(genome, nodes=tuple(remove_nodes(list(genome.nodes), dead)))


def level_count(genome: Genome, level: int) -> int:
  return sum(1 for i in genome.blocks if genome.nodes[i].level == level)
