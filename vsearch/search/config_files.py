"""The files a search keeps beside its records: its gin configs; genomes it starts from."""

import logging
import os
import time

import gin
import tensorflow as tf

from vsearch import files
from vsearch.methods import genome_source, zoo
from vsearch.methods.base import Genome, Method


def read_genome(method: Method, ref: str) -> Genome:
  """A genome from a zoo name (``tvn1``) or a JSON genome file.

  Raises:
    UserError: the name is unknown, the file is missing or is not JSON, or
      the genome is invalid (InvalidGenomeError names the field).
  """
  if ref in zoo.names():
    return genome_source.resolve(zoo_name=ref).genome
  return genome_source.resolve(genome_file=ref, method=method.name).genome


def save_config(workdir: str) -> None:
  """Saves the parsed gin config; a resumed search with another config keeps both."""
  text = gin.config_str()
  path = os.path.join(workdir, "config.gin")
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path, "r") as f:
      if f.read() == text:
        return
    path = os.path.join(workdir, f"config.{time.strftime('%Y%m%d-%H%M%S')}.gin")
    logging.warning(
      "The gin config differs from the one this workdir was started with; saving it as %s.", path
    )
  files.write_atomically(path, text)


def save_operative_config(workdir: str) -> None:
  path = os.path.join(workdir, "operative_config.gin")
  if not tf.io.gfile.exists(path):
    files.write_atomically(path, gin.operative_config_str())
