"""The search loop: select a parent, mutate it, train the child, record it.

``Search`` owns the loop; the method only samples, mutates and builds
genomes, selection only reads records, and the store only reads and writes
them. Candidate ``i`` draws all its randomness from a generator seeded with
``(seed, i)`` and sees only the records of candidates before it, so a search
that is killed and restarted makes the same children it would have made.
"""

import collections
import datetime
import functools
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

from vsearch import files
from vsearch import record as record_lib
from vsearch.data import clips as clips_lib
from vsearch.data import datasets
from vsearch.errors import (
  CandidateError,
  ClaimLostError,
  OverLimitError,
  StoppedEarlyError,
  UserError,
)
from vsearch.methods import genome_source, zoo
from vsearch.methods.base import Genome, Method
from vsearch.progress import Progress
from vsearch.record import Record, best_record
from vsearch.search import claims as claims_lib
from vsearch.search import fitness as fitness_lib
from vsearch.search import summaries as summaries_lib
from vsearch.search.early_stopping import EarlyStopping
from vsearch.search.evolution import Evolution
from vsearch.search.runtime_gate import RuntimeGate
from vsearch.search.store import RecordStore
from vsearch.train import strategy as strategy_lib
from vsearch.train import trainer

# The in-progress marker of the step that runs after the last candidate.
FINISH_ID = "finish"


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
    worker_id: this worker's stable name among the workers sharing
      ``workdir`` (``--worker_id``; the host name by default). A worker
      restarted under the same name resumes the child it was trainer.
    claim_settings: heartbeat and staleness of in-progress markers.
    checkpoint_every: steps between checkpoints of the child in training,
      so a killed or preempted worker resumes it; 0 restarts it instead.
    wait_poll_s: how often a worker with nothing left to claim looks for
      finished or abandoned candidates of other workers.
    finish: runs once the search is complete, with keyword arguments
      workdir, method, records, strategy, train_config and load_dataset
      (``@Ensemble()`` for EvaNet's diverse ensemble); None does nothing.
      With several workers, one runs it (the others see its marker); it must
      skip work it finds done, as a killed run reruns it.
  """

  def __init__(
    self,
    workdir: str,
    strategy: Optional[tf.distribute.Strategy] = None,
    method: Method = gin.REQUIRED,
    num_candidates: int = 24,
    seed: int = 0,
    evolution: Optional[Evolution] = None,
    train_config: Optional[trainer.TrainConfig] = None,
    fitness: Callable[[dict[str, Any]], float] = fitness_lib.accuracy_fitness,
    initial_genomes: Sequence[str] = (),
    load_dataset: Callable[[], datasets.VideoDataset] = datasets.load_dataset,
    runtime_gate: Optional[RuntimeGate] = None,
    worker_id: Optional[str] = None,
    claim_settings: Optional[claims_lib.ClaimSettings] = None,
    checkpoint_every: int = 500,
    wait_poll_s: float = 10.0,
    finish: Optional[Callable[..., Any]] = None,
    early_stopping: Optional[EarlyStopping] = None,
  ):
    self.workdir = workdir
    self.strategy = strategy or tf.distribute.get_strategy()
    self.method = method
    self.num_candidates = num_candidates
    self.seed = seed
    self.evolution = evolution or Evolution()
    self.train_config = (train_config or trainer.TrainConfig()).for_replicas(
      self.strategy.num_replicas_in_sync
    )
    self.fitness = fitness
    self.initial_genomes = [read_genome(method, ref) for ref in initial_genomes]
    self._load_dataset = load_dataset
    self.runtime_gate = runtime_gate
    self.finish = finish
    self.early_stopping = early_stopping
    self.store = RecordStore(workdir)
    self.worker_id = worker_id or socket.gethostname()
    self.claims = claims_lib.Claims(workdir, self.worker_id, claim_settings)
    self.checkpoint_every = checkpoint_every
    self.wait_poll_s = wait_poll_s
    self._worker = f"{self.worker_id} ({socket.gethostname()}:{os.getpid()})"
    self._check_strategy()

  def run(self) -> Optional[Record]:
    """Runs (or resumes, or joins) the search; returns the best record.

    The worker loops: it reads the records, claims the lowest candidate that
    has neither a record nor a live in-progress marker, trains it and writes
    its record, until every candidate has a record. Candidates other
    workers are still training are waited for, and taken over if their
    worker dies.
    """
    _save_config(self.workdir)
    taken = self.store.ids()
    for candidate_id in set(self.claims.markers()) & taken:
      self.claims.release(candidate_id)  # a worker died after recording it
    if taken:
      print(
        f"Resuming {self.workdir}: {len(taken)} candidates recorded, "
        f"{self.num_candidates - len(taken & self._all_ids())} to go.",
        flush=True,
      )
    progress = Progress(self.num_candidates, done=len(taken & self._all_ids()))
    summaries = summaries_lib.SearchSummaries(self.workdir, self.worker_id, self.evolution)
    dataset, waiting = None, False
    while True:
      records = self.store.read_all()
      taken = self.store.ids()
      todo = [i for i in range(self.num_candidates) if record_lib.format_id(i) not in taken]
      if not todo:
        break
      claim = self._claim_next(todo, records)
      if claim is None:
        if not waiting:
          print(f"Waiting for {len(todo)} candidate(s) other workers are trainer.", flush=True)
        waiting = True
        time.sleep(self.wait_poll_s)
        continue
      waiting = False
      if dataset is None:
        dataset = self._load_dataset()
        print(
          f"Searching {self.method.name} on {dataset.name}: {dataset.num_classes} "
          f"classes, {dataset.num_train} training / {dataset.num_validation} "
          f"validation clips, {self.num_candidates} candidates "
          f"(worker {self.worker_id}).",
          flush=True,
        )
      if claim.taken_over_from is not None:
        print(
          f"Taking over candidate {claim.id} from worker {claim.taken_over_from}, "
          "whose heartbeat stopped.",
          flush=True,
        )
      with claim:
        record = self._run_candidate(claim, dataset, records)
      if record is None:
        print(f"Candidate {claim.id} was taken over by another worker; moving on.", flush=True)
        continue
      try:
        self.store.write(record)
        summaries_lib.write_hparams(self.workdir, record)
      except FileExistsError:
        logging.warning(
          "Candidate %s was recorded by another worker first; keeping that record.", record.id
        )
      self.claims.release(claim.id)
      records = self.store.read_all()
      progress.update(len(self.store.ids() & self._all_ids()))
      progress.print(summaries_lib.describe(record, records))
      summaries.write(record, records)
    summaries.close()
    return self._finish(self.store.read_all())

  def _all_ids(self) -> set[str]:
    return {record_lib.format_id(i) for i in range(self.num_candidates)}

  def _claim_next(self, todo: list[int], records: list[Record]) -> Optional[claims_lib.Claim]:
    """Claims the first candidate in ``todo`` no live worker is trainer."""
    for index in todo:
      candidate_id = record_lib.format_id(index)
      if self.claims.is_live(candidate_id):
        continue
      earlier = [r for r in records if r.index < index]
      claim = self.claims.try_claim(candidate_id, functools.partial(self._propose, index, earlier))
      if claim is not None:
        return claim
    return None

  def _propose(self, index: int, earlier: list[Record]) -> claims_lib.Proposal:
    """The child that candidate ``index`` trains, drawn from ``(seed, index)``."""
    rng = np.random.default_rng([self.seed, index])
    if index < len(self.initial_genomes):
      genome, parent, change = self.initial_genomes[index], None, "initial"
    else:
      chosen = self.evolution.select_parent(earlier, rng)
      if chosen is None:
        genome, parent, change = self.method.sample(rng), None, "random"
      else:
        parent_genome = self.method.genome_from_dict(chosen.genome)
        progress = index / self.num_candidates
        if hasattr(self.method, "learned_state"):  # a LearningGuidedMethod
          genome, change = self.method.mutate(
            parent_genome, rng, progress=progress, learned=chosen.learned or None
          )
        else:
          genome, change = self.method.mutate(parent_genome, rng, progress=progress)
        parent = chosen.id
    seed = int(rng.integers(2**31 - 1))
    return claims_lib.Proposal(genome=genome.to_dict(), parent=parent, mutation=change, seed=seed)

  def _run_candidate(
    self, claim: claims_lib.Claim, dataset: datasets.VideoDataset, records: list[Record]
  ) -> Optional[Record]:
    """Trains the claimed child; None when another worker took it over."""
    start = time.perf_counter()
    bar = None
    if self.early_stopping:
      earlier = [r for r in records if r.index < int(claim.id)]
      bar = self.early_stopping.bar(self.evolution.population(earlier))
    proposal = claim.proposal
    genome = self.method.genome_from_dict(proposal.genome)
    fields = dict(
      id=claim.id,
      method=self.method.name,
      genome=genome.to_dict(),
      parent=proposal.parent,
      mutation=proposal.mutation,
      seed=proposal.seed,
      worker=self._worker,
    )
    timings, learned = {}, {}
    try:
      metrics = self._train(genome, proposal.seed, dataset, timings, claim, learned, bar)
      fields.update(
        status=record_lib.STATUS_OK, metrics=metrics, fitness=float(self.fitness(metrics))
      )
    except ClaimLostError:
      return None
    except OverLimitError as e:
      fields.update(status=record_lib.STATUS_OVER_LIMIT, reason=str(e), metrics=e.metrics)
    except StoppedEarlyError as e:
      fields.update(status=record_lib.STATUS_STOPPED, reason=str(e), metrics=e.metrics)
    except CandidateError as e:
      fields.update(status=record_lib.STATUS_FAILED, reason=str(e))
    except tf.errors.ResourceExhaustedError as e:
      fields.update(
        status=record_lib.STATUS_FAILED, reason=f"out of memory: {e.message.splitlines()[0]}"
      )
    finally:
      # Memory grows across models built in one process unless cleared.
      tf.keras.backend.clear_session()
      gc.collect()
    timings["total_s"] = time.perf_counter() - start
    return Record(**fields, timings=timings, learned=learned, finished_at=_now())

  def _train(
    self,
    genome: Genome,
    seed: int,
    dataset: datasets.VideoDataset,
    timings: dict[str, float],
    claim: claims_lib.Claim,
    learned: dict[str, Any],
    bar: Optional[float] = None,
  ) -> dict[str, Any]:
    """Gates, trains and evaluates one genome.

    Fills ``timings`` as it goes, and ``learned`` with the method's
    ``learned_state`` of the trained model when it has one. With early
    stopping, a child validated part-way below ``bar`` (the population's
    worst fitness) raises StoppedEarlyError.
    """
    config = self.train_config
    spec = self.method.clip_spec(genome)
    clips_lib.check_inputs(spec, dataset.object_classes)
    train_data = clips_lib.make_clips(
      dataset.train, spec, batch_size=config.batch_size, training=True, seed=seed
    )
    eval_data = clips_lib.make_clips(
      dataset.validation, spec, batch_size=config.eval_batch_size, training=False
    )
    build = lambda: self.method.build(genome, dataset.num_classes)
    gate = self.runtime_gate
    metrics: dict[str, Any] = {"num_classes": dataset.num_classes}
    if gate:
      start = time.perf_counter()
      with strategy_lib.float32_policy():
        metrics.update(gate.check(build, train_data, genome=genome))
      timings["gate_s"] = time.perf_counter() - start
    tf.keras.utils.set_random_seed(seed)
    writer = tf.summary.create_file_writer(
      os.path.join(self.workdir, "tensorboard", "candidates", claim.id)
    )

    def on_progress(done: int, loss: float) -> None:
      claim.check()
      with writer.as_default(step=done):
        tf.summary.scalar("train/loss", loss)

    # A resumed child draws a stream it has not seen instead of replaying
    # the first batches of the run that was killed.
    resumed_data = lambda step: clips_lib.make_clips(
      dataset.train, spec, batch_size=config.batch_size, training=True, seed=seed + step
    )
    try:
      trained, train_timings, model = trainer.train_and_evaluate(
        self.strategy,
        build,
        resumed_data,
        eval_data,
        config,
        checkpoint_dir=claim.checkpoint_dir if self.checkpoint_every else None,
        checkpoint_every=self.checkpoint_every,
        on_progress=on_progress,
        **self._probe(bar),
      )
      with writer.as_default(step=config.steps):
        tf.summary.scalar("validation/accuracy", trained["accuracy"])
        tf.summary.scalar("validation/loss", trained["loss"])
    finally:
      writer.close()
    metrics.update(trained)
    timings.update(train_timings)
    if hasattr(self.method, "learned_state"):
      learned.update(self.method.learned_state(genome, model))
    _save_operative_config(self.workdir)
    if gate:
      start = time.perf_counter()
      # Convert a copy made outside the strategy: TFLite conversion needs
      # plain variables, whatever device the candidate trained on.
      with strategy_lib.float32_policy():
        deployed = build()
      deployed.set_weights(model.get_weights())
      metrics.update(gate.evaluate(deployed, train_data, eval_data))
      timings["deployed_evaluate_s"] = time.perf_counter() - start
    return metrics

  def _probe(self, bar: Optional[float]) -> dict[str, Any]:
    """The arguments that make ``train_and_evaluate`` stop a hopeless child part-way."""
    if not self.early_stopping or bar is None:
      return {}
    steps = self.train_config.steps
    return {
      "probe_step": self.early_stopping.probe_step(steps),
      "on_probe": lambda step, metrics: self.early_stopping.check(step, steps, metrics, bar),
    }

  def _check_strategy(self) -> None:
    resolver = getattr(self.strategy, "cluster_resolver", None)
    workers = resolver.cluster_spec().as_dict().get("worker", []) if resolver else []
    if isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy) and len(workers) > 1:
      raise UserError(
        "A search does not train one candidate across hosts: run one search "
        "worker per host on the same --workdir (each with its own --worker_id), "
        "and keep --strategy=multi_worker for launch.train."
      )

  def _finish(self, records: list[Record]) -> Optional[Record]:
    best = best_record(records)
    if best is None:
      print(
        f"No candidate finished successfully; see the reasons in {self.store.directory}.",
        flush=True,
      )
      return None
    statuses = collections.Counter(r.status for r in records if not r.ok)
    others = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in sorted(statuses.items()))
    se = best.standard_error()
    print(
      f"\nDone: {len(records)} candidates ({others or 'all trained'}). Best: {best.id} "
      f"fitness {best.fitness:.4f}, accuracy {best.metrics.get('accuracy', float('nan')):.4f}"
      + (f" ± {se:.4f}" if se is not None else "")
      + f"\n  record: {self.store.path(best.id)}\n  genome: "
      f"{json.dumps(best.genome, sort_keys=True)}",
      flush=True,
    )
    if self.finish:
      self._run_finish(records)
    return best

  def _run_finish(self, records: list[Record]) -> None:
    """Runs ``finish`` on one worker, under a marker like a candidate's."""
    claim = self.claims.try_claim(
      FINISH_ID,
      lambda: claims_lib.Proposal(genome={}, parent=None, mutation="finish", seed=self.seed),
    )
    if claim is None:
      print("Another worker is running the search's finishing step.", flush=True)
      return
    with claim:
      self.finish(
        workdir=self.workdir,
        method=self.method,
        records=records,
        strategy=self.strategy,
        train_config=self.train_config,
        load_dataset=self._load_dataset,
      )
    self.claims.release(FINISH_ID)


def read_genome(method: Method, ref: str) -> Genome:
  """A genome from a zoo name (``tvn1``) or a JSON genome file.

  Raises:
    UserError: the name is unknown, the file is missing or is not JSON, or
      the genome is invalid (InvalidGenomeError names the field).
  """
  if ref in zoo.names():
    return genome_source.resolve(zoo_name=ref).genome
  return genome_source.resolve(genome_file=ref, method=method.name).genome


def _now() -> str:
  return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _save_config(workdir: str) -> None:
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


def _save_operative_config(workdir: str) -> None:
  path = os.path.join(workdir, "operative_config.gin")
  if not tf.io.gfile.exists(path):
    files.write_atomically(path, gin.operative_config_str())
