"""The search loop: select a parent, mutate it, train the child, record it.

``Search`` owns the loop; the method only samples, mutates and builds
genomes, selection only reads records, and the store only reads and writes
them. Candidate ``i`` draws all its randomness from a generator seeded with
``(seed, i)`` and sees only the records of candidates before it, so a search
that is killed and restarted makes the same children it would have made.
"""

import datetime
import gc
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, Optional

import gin
import numpy as np
import tensorflow as tf

from vsearch import fitness as fitness_lib
from vsearch import genome_source
from vsearch import runtime
from vsearch import store as store_lib
from vsearch import training
from vsearch import zoo
from vsearch.data import clips as clips_lib
from vsearch.data import datasets
from vsearch.errors import CandidateError
from vsearch.evolution import Evolution
from vsearch.methods import Genome, Method
from vsearch.progress import Progress, format_duration
from vsearch.store import Record, RecordStore


@gin.configurable
class Search:
  """An evolutionary search whose state lives in ``workdir``.

  Args:
    workdir: where records and configs go (local or ``gs://``).
    strategy: the ``tf.distribute`` strategy candidates train under.
    method: the search method (``@TvnMethod()`` in gin).
    num_candidates: candidates in the whole search, including those already
      recorded in ``workdir``.
    seed: the search's seed.
    evolution: parent selection.
    train_config: each candidate's training budget.
    fitness: maps a candidate's metrics to the number selection compares.
    initial_genomes: genomes that take the first places of the initial
      population instead of random ones: zoo names or JSON genome files.
    load_dataset: returns the ``VideoDataset`` candidates train on.
    runtime_gate: measures each child's deployed runtime before training and
      rejects those over its limits (``@RuntimeGate()`` for TVN); None
      trains every child.
    finish: runs once the search is complete, with keyword arguments
      workdir, method, records, strategy, train_config and load_dataset
      (``@Ensemble()`` for EvaNet's diverse ensemble); None does nothing.
  """

  def __init__(self,
               workdir: str,
               strategy: Optional[tf.distribute.Strategy] = None,
               method: Method = gin.REQUIRED,
               num_candidates: int = 24,
               seed: int = 0,
               evolution: Optional[Evolution] = None,
               train_config: Optional[training.TrainConfig] = None,
               fitness: Callable[[dict[str, Any]], float] = fitness_lib.accuracy_fitness,
               initial_genomes: Sequence[str] = (),
               load_dataset: Callable[[], datasets.VideoDataset] = datasets.load_dataset,
               runtime_gate: Optional[runtime.RuntimeGate] = None,
               finish: Optional[Callable[..., Any]] = None):
    self.workdir = workdir
    self.strategy = strategy or tf.distribute.get_strategy()
    self.method = method
    self.num_candidates = num_candidates
    self.seed = seed
    self.evolution = evolution or Evolution()
    self.train_config = train_config or training.TrainConfig()
    self.fitness = fitness
    self.initial_genomes = [read_genome(method, ref) for ref in initial_genomes]
    self._load_dataset = load_dataset
    self.runtime_gate = runtime_gate
    self.finish = finish
    self.store = RecordStore(workdir)
    self._worker = f"{socket.gethostname()}:{os.getpid()}"

  def run(self) -> Optional[Record]:
    """Runs (or resumes) the search; returns the best record."""
    _save_config(self.workdir)
    records = self.store.read_all()
    taken = self.store.ids()
    todo = [i for i in range(self.num_candidates) if store_lib.format_id(i) not in taken]
    progress = Progress(self.num_candidates, done=self.num_candidates - len(todo))
    if taken:
      print(f"Resuming {self.workdir}: {len(taken)} candidates recorded, "
            f"{len(todo)} to go.", flush=True)
    if not todo:
      return self._finish(records)
    dataset = self._load_dataset()
    print(f"Searching {self.method.name} on {dataset.name}: {dataset.num_classes} "
          f"classes, {dataset.num_train} training / {dataset.num_validation} "
          f"validation clips, {self.num_candidates} candidates.", flush=True)
    for index in todo:
      earlier = [r for r in records if r.index < index]
      record = self._run_candidate(index, earlier, dataset)
      self.store.write(record)
      records.append(record)
      records.sort(key=lambda r: r.index)
      progress.step()
      progress.print(_describe(record, records))
    return self._finish(records)

  def _propose(self, index: int, earlier: list[Record],
               rng: np.random.Generator) -> tuple[Genome, Optional[str], str]:
    """The genome of candidate ``index``, its parent's id and what changed."""
    if index < len(self.initial_genomes):
      return self.initial_genomes[index], None, "initial"
    parent = self.evolution.select_parent(earlier, rng)
    if parent is None:
      return self.method.sample(rng), None, "random"
    child, change = self.method.mutate(
        self.method.genome_from_dict(parent.genome), rng,
        progress=index / self.num_candidates)
    return child, parent.id, change

  def _run_candidate(self, index: int, earlier: list[Record],
                     dataset: datasets.VideoDataset) -> Record:
    start = time.perf_counter()
    rng = np.random.default_rng([self.seed, index])
    genome, parent, change = self._propose(index, earlier, rng)
    seed = int(rng.integers(2**31 - 1))
    fields = dict(id=store_lib.format_id(index), method=self.method.name,
                  genome=genome.to_dict(), parent=parent, mutation=change,
                  seed=seed, worker=self._worker)
    timings = {}
    try:
      metrics = self._train(genome, seed, dataset, timings)
      fields.update(status=store_lib.STATUS_OK, metrics=metrics,
                    fitness=float(self.fitness(metrics)))
    except runtime.OverLimitError as e:
      fields.update(status=store_lib.STATUS_OVER_LIMIT, reason=str(e), metrics=e.metrics)
    except CandidateError as e:
      fields.update(status=store_lib.STATUS_FAILED, reason=str(e))
    except tf.errors.ResourceExhaustedError as e:
      fields.update(status=store_lib.STATUS_FAILED,
                    reason=f"out of memory: {e.message.splitlines()[0]}")
    finally:
      # Memory grows across models built in one process unless cleared.
      tf.keras.backend.clear_session()
      gc.collect()
    timings["total_s"] = time.perf_counter() - start
    return Record(**fields, timings=timings, finished_at=_now())

  def _train(self, genome: Genome, seed: int, dataset: datasets.VideoDataset,
             timings: dict[str, float]) -> dict[str, Any]:
    """Gates, trains and evaluates one genome; fills ``timings`` as it goes."""
    config = self.train_config
    spec = self.method.clip_spec(genome)
    train_data = clips_lib.make_clips(dataset.train, spec, batch_size=config.batch_size,
                                      training=True, seed=seed)
    eval_data = clips_lib.make_clips(dataset.validation, spec,
                                     batch_size=config.eval_batch_size, training=False)
    build = lambda: self.method.build(genome, dataset.num_classes)
    gate = self.runtime_gate
    metrics = {}
    if gate:
      start = time.perf_counter()
      metrics.update(gate.check(build, train_data))
      timings["gate_s"] = time.perf_counter() - start
    tf.keras.utils.set_random_seed(seed)
    trained, train_timings, model = training.train_and_evaluate(
        self.strategy, build, train_data, eval_data, config)
    metrics.update(trained)
    timings.update(train_timings)
    _save_operative_config(self.workdir)
    if gate:
      start = time.perf_counter()
      # Convert a copy made outside the strategy: TFLite conversion needs
      # plain variables, whatever device the candidate trained on.
      deployed = build()
      deployed.set_weights(model.get_weights())
      metrics.update(gate.evaluate(deployed, train_data, eval_data))
      timings["deployed_evaluate_s"] = time.perf_counter() - start
    return metrics

  def _finish(self, records: list[Record]) -> Optional[Record]:
    best = best_record(records)
    if best is None:
      print("No candidate finished successfully; see the reasons in "
            f"{self.store.directory}.", flush=True)
      return None
    failed = sum(not r.ok for r in records)
    print(f"\nDone: {len(records)} candidates ({failed} failed). Best: {best.id} "
          f"fitness {best.fitness:.4f}, accuracy {best.metrics.get('accuracy', float('nan')):.4f}"
          f"\n  record: {self.store.path(best.id)}\n  genome: "
          f"{json.dumps(best.genome, sort_keys=True)}", flush=True)
    if self.finish:
      self.finish(workdir=self.workdir, method=self.method, records=records,
                  strategy=self.strategy, train_config=self.train_config,
                  load_dataset=self._load_dataset)
    return best


def best_record(records: Sequence[Record]) -> Optional[Record]:
  """The fittest successful record (the earliest among equals), or None."""
  ok = [r for r in records if r.ok]
  return max(ok, key=lambda r: (r.fitness, -r.index)) if ok else None


def read_genome(method: Method, ref: str) -> Genome:
  """A genome from a zoo name (``tvn1``) or a JSON genome file.

  Raises:
    UserError: the name is unknown, the file is missing or is not JSON, or
      the genome is invalid (InvalidGenomeError names the field).
  """
  if ref in zoo.names():
    return genome_source.resolve(zoo_name=ref).genome
  return genome_source.resolve(genome_file=ref, method=method.name).genome


def _describe(record: Record, records: Sequence[Record]) -> str:
  origin = f"child of {record.parent} ({record.mutation})" if record.parent else record.mutation
  seconds = format_duration(record.timings.get("total_s", 0.0))
  if record.ok:
    outcome = (f"acc {record.metrics['accuracy']:.3f} fitness {record.fitness:.3f} "
               f"in {seconds}")
    if "latency_ms" in record.metrics:
      outcome += f" ({record.metrics['latency_ms']:.2f} ms)"
  elif record.status == store_lib.STATUS_OVER_LIMIT:
    outcome = f"over limit, not trained ({seconds}): {record.reason}"
  else:
    outcome = f"FAILED in {seconds}: {record.reason}"
  best = best_record(records)
  best_text = f"best {best.fitness:.3f} ({best.id})" if best else "no success yet"
  return f"{record.id} {origin}: {outcome} | {best_text}"


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _save_config(workdir: str) -> None:
  """Saves the parsed gin config; a resumed search with another config keeps both."""
  text = gin.config_str()
  path = os.path.join(workdir, "config.gin")
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path, "r") as f:
      if f.read() == text:
        return
    path = os.path.join(workdir, f"config.{time.strftime('%Y%m%d-%H%M%S')}.gin")
    logging.warning("The gin config differs from the one this workdir was "
                    "started with; saving it as %s.", path)
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(text)


def _save_operative_config(workdir: str) -> None:
  path = os.path.join(workdir, "operative_config.gin")
  if not tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path, "w") as f:
      f.write(gin.operative_config_str())
