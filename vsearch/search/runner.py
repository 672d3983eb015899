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
import json
import logging
import math
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
from vsearch.errors import CandidateError, ClaimLostError, OverLimitError, PreemptedError, UserError
from vsearch.methods.base import Genome, Method
from vsearch.progress import Progress
from vsearch.record import Record, best_record
from vsearch.search import claims as claims_lib
from vsearch.search import config_files, preemption, preflight
from vsearch.search import failures as failures_lib
from vsearch.search import fitness as fitness_lib
from vsearch.search import summaries as summaries_lib
from vsearch.search.early_stopping import EarlyStopping
from vsearch.search.evolution import Evolution
from vsearch.search.runtime_gate import RuntimeGate
from vsearch.search.store import RecordStore
from vsearch.train import graphs, trainer
from vsearch.train import strategy as strategy_lib

# The in-progress marker of the step that runs after the last candidate.
FINISH_ID = "finish"
# What _run_candidate returns for a child whose failed attempt is retried.
_RETRY = "retry"


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
      restarted under the same name resumes the child it was training.
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
    early_stopping: stops children clearly below the population part-way.
    max_attempts_per_candidate: attempts a child gets when its training
      raises an unexpected error (a converter crash, an error from
      TensorFlow); counted in its in-progress marker, so they add up across
      restarts and workers. Then it is recorded as failed, never retried.
      Known failures (NaN loss, out of memory) are recorded at once.
    max_consecutive_failures: failed records in a row after which the
      worker stops with one line (a broken setup fails every child); 0
      never stops.

  SIGTERM (a spot VM's preemption notice) checkpoints the child in training
  at its next step boundary and stops the worker; the same command resumes.
  """

  def __init__(
    self,
    workdir: str,
    strategy: Optional[tf.distribute.Strategy] = None,
    method: Optional[Method] = None,
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
    max_attempts_per_candidate: int = 2,
    max_consecutive_failures: int = 5,
  ):
    if method is None:
      raise UserError(
        "Search.method is not set: pass a --gin_file that sets it, e.g. --gin_file=gin/tvn/smoke.gin."
      )
    if (
      isinstance(num_candidates, bool) or not isinstance(num_candidates, int) or num_candidates < 1
    ):
      raise UserError(f"Search.num_candidates must be a whole number >= 1, got {num_candidates!r}")
    if checkpoint_every < 0 or wait_poll_s <= 0:
      raise UserError(
        "Search needs checkpoint_every >= 0 (0: no checkpoints) and wait_poll_s > 0, got "
        f"{checkpoint_every} and {wait_poll_s}"
      )
    self.failures = failures_lib.FailurePolicy(max_attempts_per_candidate, max_consecutive_failures)
    self._preemption = preemption.Preemption()
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
    self.initial_genomes = [config_files.read_genome(method, ref) for ref in initial_genomes]
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

    Raises:
      UserError: a setting no candidate can succeed under, found before
        any training.
      WorkerStopError: SIGTERM (``PreemptedError``), a full disk
        (``DiskFullError``) or too many failures in a row
        (``TooManyFailuresError``); the same command resumes.
    """
    try:
      with self._preemption.installed():
        return self._run()
    except (OSError, tf.errors.OpError) as e:
      if files.is_disk_full(e):
        raise failures_lib.disk_full(e, self.workdir) from e
      raise

  def _run(self) -> Optional[Record]:
    config_files.save_config(self.workdir)
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
      self._preemption.check("by SIGTERM between candidates; the same command resumes the search.")
      records = self.store.read_all(set_aside_unreadable=True)
      taken = self.store.ids()
      todo = [i for i in range(self.num_candidates) if record_lib.format_id(i) not in taken]
      if not todo:
        break
      claim = self._claim_next(todo, records)
      if claim is None:
        if not waiting:
          print(f"Waiting for {len(todo)} candidate(s) other workers are training.", flush=True)
        waiting = True
        self._preemption.sleep(self.wait_poll_s)
        continue
      waiting = False
      if dataset is None:
        dataset = self._load_dataset()
        preflight.check(dataset, self.fitness, self.runtime_gate)
        print(
          f"Searching {self.method.name} on {dataset.name}: {dataset.num_classes} "
          f"classes, {dataset.num_train} training / {dataset.num_validation} "
          f"validation clips, {self.num_candidates} candidates "
          f"(worker {self.worker_id}).",
          flush=True,
        )
      if claim.taken_over_from is not None:
        print(
          f"Taking over candidate {claim.id} from worker {claim.taken_over_from}, which stopped.",
          flush=True,
        )
      try:
        with claim:
          record = self._run_candidate(claim, dataset, records)
      except PreemptedError as e:
        self.claims.hand_over(claim)
        raise preemption.stopped(claim, e, self.train_config.steps) from e
      if record is None:
        print(f"Candidate {claim.id} was taken over by another worker; moving on.", flush=True)
        continue
      if record is _RETRY:
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
      self.failures.count(record)
    summaries.close()
    return self._finish(self.store.read_all())

  def _all_ids(self) -> set[str]:
    return {record_lib.format_id(i) for i in range(self.num_candidates)}

  def _claim_next(self, todo: list[int], records: list[Record]) -> Optional[claims_lib.Claim]:
    """Claims the first candidate in ``todo`` no live worker is training."""
    for index in todo:
      candidate_id = record_lib.format_id(index)
      if self.claims.is_live(candidate_id):
        continue
      earlier = [r for r in records if r.index < index]
      claim = self.claims.try_claim(
        candidate_id,
        functools.partial(self._propose, index, earlier),
        check=lambda proposal: self.method.genome_from_dict(proposal.genome),
      )
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
  ) -> Optional[Record] | str:
    """Trains the claimed child; None when another worker took it over, _RETRY
    when an attempt failed and the child gets another (``FailurePolicy``)."""
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
    # Nothing of a finished child stays in memory: its models, graphs and traces.
    with graphs.candidate_graphs_freed():
      try:
        self._preemption.check()
        metrics = self._train(genome, proposal.seed, dataset, timings, claim, learned, bar)
        fitness = float(self.fitness(metrics))
        if not math.isfinite(fitness):
          raise CandidateError(f"its fitness is {fitness}")
        fields.update(status=record_lib.STATUS_OK, metrics=metrics, fitness=fitness)
      except ClaimLostError:
        return None
      except Exception as e:  # the child's failure, a retry, or a stop: FailurePolicy says which
        outcome = self.failures.outcome(
          e, claim, preempted=self._preemption.requested, workdir=self.workdir
        )
        if outcome is None:
          return _RETRY
        fields.update(outcome)
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
        try:
          metrics.update(gate.check(build, train_data, genome=genome))
        except OverLimitError as e:
          e.metrics = {**metrics, **e.metrics}  # An over-limit record names its classes too.
          raise
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
        resume_from=claim.resume_from,
        on_progress=on_progress,
        should_stop=self._preemption,
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
    config_files.save_operative_config(self.workdir)
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


def _now() -> str:
  return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
