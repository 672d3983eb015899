"""A diverse ensemble of a search's best models (EvaNet's final step).

EvaNet's point is that evolution finds many different architectures that are
about equally good, and that such models make different mistakes, so an
ensemble of them beats each one. This module:

1. picks the top ``size`` records whose genomes are pairwise at least
   ``min_distance`` apart (``select_diverse``; EvaNet's distance is
   ``vsearch.methods.evanet.genome.genome_distance``, an edit count);
2. trains each picked genome on each stream in ``streams`` (the published
   ensemble is the same 2 architectures on RGB and on optical flow: 4 nets);
3. evaluates every member and the ensemble, whose logits are the mean of the
   members' logits (as the release averages them);
4. exports one model that takes RGB clips, computes the flow for its flow
   members inside the graph (``vsearch.nn.flow.ClipFlow``), and returns the
   averaged logits, as a SavedModel and as float and int8 TFLite files
   (``vsearch.deploy.export``), each timed and scored; iTGM layers are
   exported as the convs they synthesize. Every op is int8 in the int8 file
   except the flow solver's (TV-L1: divisions, square roots, selects), which
   stays float as a named island (``export.json``: ``float_layers``).

Output in ``<workdir>/ensemble``: ``saved_model``, ``model_float.tflite``,
``model_int8.tflite``, ``export.json`` and ``ensemble.json`` (members,
their accuracies, the ensemble's in each form, pairwise distances).
``ensemble.json`` is written last; when it exists the ensemble is not built
again (delete the folder to rebuild it).
"""

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Optional

import gin
import numpy as np
import tensorflow as tf

from vsearch.data import clips as clips_lib
from vsearch.data import datasets
from vsearch.deploy import export as export_lib
from vsearch.deploy import latency as latency_lib
from vsearch.errors import CandidateError, UserError
from vsearch.methods.base import Genome, Method
from vsearch.nn import export_form
from vsearch.nn import flow as flow_lib
from vsearch.record import Record
from vsearch.train import trainer

ENSEMBLE_DIR = "ensemble"
SUMMARY = "ensemble.json"


def select_diverse(
  records: Sequence[Record],
  genome_of: Callable[[Record], Genome],
  distance: Callable[[Genome, Genome], float],
  size: int,
  min_distance: float,
) -> list[Record]:
  """The fittest records, best first, pairwise at least ``min_distance`` apart.

  Greedy: walk the successful records from the fittest down (the earlier
  among equals) and keep one when its genome is at least ``min_distance``
  from every genome kept so far, until ``size`` are kept. Fewer come back
  when the search holds fewer diverse records.
  """
  ok = sorted((r for r in records if r.ok), key=lambda r: (-r.fitness, r.index))
  chosen: list[tuple[Record, Genome]] = []
  for record in ok:
    genome = genome_of(record)
    if all(distance(genome, g) >= min_distance for _, g in chosen):
      chosen.append((record, genome))
      if len(chosen) == size:
        break
  return [r for r, _ in chosen]


@dataclasses.dataclass
class Member:
  """One trained member: a record's genome on one stream."""

  record: Record
  stream: str
  model: tf.keras.Model
  trained_metrics: dict[str, Any]


def ensemble_model(members: Sequence[Member], input_shape) -> tf.keras.Model:
  """One model from RGB clips to the members' mean logits.

  Flow members read ``ClipFlow`` of the clips, computed once; iTGM layers
  become the convs they synthesize (``vsearch.nn.export_form``).
  """
  clips = tf.keras.Input(shape=tuple(input_shape), name="clips")
  streams = {"rgb": clips}
  if any(m.stream == "flow" for m in members):
    streams["flow"] = flow_lib.ClipFlow(name="optical_flow")(clips)
  logits = [export_form.export_form(m.model)(streams[m.stream]) for m in members]
  mean = logits[0] if len(logits) == 1 else tf.keras.layers.Average(name="mean_logits")(logits)
  return tf.keras.Model(clips, mean, name="ensemble")


def evaluate_members(
  members: Sequence[Member], validation: tf.data.Dataset
) -> tuple[list[float], float]:
  """Accuracy of each member and of the mean of their logits, on RGB clips."""
  correct = np.zeros(len(members))
  ensemble_correct, count = 0, 0
  for clips, labels in validation:
    flows = flow_lib.clip_flow(clips) if any(m.stream == "flow" for m in members) else None
    logits = np.stack(
      [m.model(flows if m.stream == "flow" else clips, training=False).numpy() for m in members]
    )
    labels = labels.numpy()
    correct += (logits.argmax(-1) == labels[None]).sum(axis=1)
    ensemble_correct += int((logits.mean(0).argmax(-1) == labels).sum())
    count += len(labels)
  return list(correct / count), ensemble_correct / count


@gin.configurable
class Ensemble:
  """Builds, scores and exports a diverse ensemble from a finished search.

  Bind ``Search.finish = @Ensemble()`` to run it when a search ends, or run
  ``launch.ensemble`` on a search's workdir.

  Args:
    size: architectures to pick.
    min_distance: the smallest genome distance allowed between two picks.
    streams: each pick is trained on each of these ('rgb', 'flow').
    train_config: the members' training budget (the search's if None).
    seed: seed of the members' trainer.
    tflite: also export float and int8 TFLite files (False: the SavedModel
      alone).
    num_calibration_clips: training clips that calibrate the int8 file.
    max_eval_clips: validation clips each exported form is scored on.
  """

  def __init__(
    self,
    size: int = 2,
    min_distance: float = 4,
    streams: Sequence[str] = ("rgb", "flow"),
    train_config: Optional[trainer.TrainConfig] = None,
    seed: int = 0,
    tflite: bool = True,
    num_calibration_clips: int = 32,
    max_eval_clips: int = 256,
  ):
    bad = [s for s in streams if s not in clips_lib.STREAMS]
    if bad or not streams or size < 1:
      raise UserError(
        f"Ensemble needs size >= 1 and streams from "
        f"{clips_lib.STREAMS}; got size={size}, streams={streams}"
      )
    self.size = size
    self.min_distance = min_distance
    self.streams = tuple(streams)
    self.train_config = train_config
    self.seed = seed
    self.tflite = tflite
    self.num_calibration_clips = num_calibration_clips
    self.max_eval_clips = max_eval_clips

  def __call__(
    self,
    *,
    workdir: str,
    method: Method,
    records: Sequence[Record],
    strategy: Optional[tf.distribute.Strategy] = None,
    train_config: Optional[trainer.TrainConfig] = None,
    load_dataset: Callable[[], datasets.VideoDataset] = datasets.load_dataset,
  ) -> dict[str, Any]:
    """Selects, trains, evaluates and exports; returns ``ensemble.json``'s dict.

    Raises:
      UserError: the method has no genome distance or no record succeeded.
    """
    start = time.perf_counter()
    out_dir = os.path.join(workdir, ENSEMBLE_DIR)
    summary_path = os.path.join(out_dir, SUMMARY)
    if tf.io.gfile.exists(summary_path):
      # A resumed, finished search: the ensemble is already there.
      with tf.io.gfile.GFile(summary_path, "r") as f:
        summary = json.load(f)
      print(format_summary(summary, out_dir), flush=True)
      return summary
    if not hasattr(method, "distance") or not hasattr(method, "with_stream"):
      raise UserError(
        f"The {method.name} method has no genome distance or "
        "streams; ensembles are for EvaNet searches."
      )
    chosen = select_diverse(
      records,
      lambda r: method.genome_from_dict(r.genome),
      method.distance,
      self.size,
      self.min_distance,
    )
    if not chosen:
      raise UserError(f"No successful candidate in {workdir} to ensemble.")
    strategy = strategy or tf.distribute.get_strategy()
    config = self.train_config or train_config or trainer.TrainConfig()
    dataset = load_dataset()
    print(
      f"Ensemble: {len(chosen)} architecture(s) (min distance "
      f"{self.min_distance}) x streams {', '.join(self.streams)}: "
      f"{', '.join(r.id for r in chosen)}",
      flush=True,
    )
    members = []
    for record in chosen:
      genome = method.genome_from_dict(record.genome)
      for stream in self.streams:
        members.append(
          self._train_member(record, genome, stream, method, strategy, config, dataset)
        )
    genomes = [method.genome_from_dict(r.genome) for r in chosen]
    rgb_spec = dataclasses.replace(method.clip_spec(genomes[0]), stream="rgb")
    validation = clips_lib.make_clips(
      dataset.validation, rgb_spec, batch_size=config.eval_batch_size, training=False
    )
    singles, ensemble_accuracy = evaluate_members(members, validation)
    tf.io.gfile.makedirs(out_dir)
    model = ensemble_model(members, rgb_spec.input_shape)
    forms = self._export(model, out_dir, dataset, rgb_spec, config)
    summary = {
      "dataset": dataset.name,
      "size": self.size,
      "min_distance": self.min_distance,
      "streams": list(self.streams),
      "members": [
        {
          "record": m.record.id,
          "stream": m.stream,
          "search_accuracy": m.record.metrics.get("accuracy"),
          "accuracy": acc,
          "num_params": m.model.count_params(),
          "genome": m.record.genome,
        }
        for m, acc in zip(members, singles)
      ],
      "pairwise_distance": [[method.distance(a, b) for b in genomes] for a in genomes],
      "best_single_accuracy": max(singles),
      "mean_single_accuracy": float(np.mean(singles)),
      "ensemble_accuracy": ensemble_accuracy,
      "saved_model": "saved_model",
      **forms,
      "num_params": int(model.count_params()),
      "ensemble_s": round(time.perf_counter() - start, 1),
    }
    with tf.io.gfile.GFile(summary_path, "w") as f:
      json.dump(summary, f, indent=2, sort_keys=True)
      f.write("\n")
    print(format_summary(summary, out_dir), flush=True)
    return summary

  def _export(self, model, out_dir, dataset, rgb_spec, config) -> dict[str, Any]:
    """Writes the SavedModel (and TFLite files); their accuracies for ``ensemble.json``."""
    if not self.tflite:
      export_lib.save_model(model, os.path.join(out_dir, export_lib.SAVED_MODEL))
      return {}
    calibration = clips_lib.make_clips(
      dataset.train, rgb_spec, batch_size=config.batch_size, training=True, seed=self.seed
    )
    validation = clips_lib.make_clips(
      dataset.validation, rgb_spec, batch_size=config.eval_batch_size, training=False
    )
    try:
      exported = export_lib.export(
        model,
        out_dir,
        calibration,
        validation,
        trained=True,
        settings=latency_lib.LatencySettings(),
        num_calibration_clips=self.num_calibration_clips,
        max_eval_clips=self.max_eval_clips,
        info={"source": "evanet ensemble", "dataset": dataset.name},
      )
    except CandidateError as e:
      raise UserError(
        f"The ensemble's SavedModel is in {out_dir}, but TFLite export failed: {e}"
      ) from e
    return {
      "export": export_lib.SUMMARY,
      "accuracy_by_form": {
        form: exported[form].get("accuracy")
        for form in ("saved_model", *(f"tflite_{f}" for f in export_lib.TFLITE_FILES))
      },
    }

  def _train_member(self, record, genome, stream, method, strategy, config, dataset) -> Member:
    member_method = method.with_stream(stream)
    spec = member_method.clip_spec(genome)
    train_data = clips_lib.make_clips(
      dataset.train, spec, batch_size=config.batch_size, training=True, seed=self.seed
    )
    eval_data = clips_lib.make_clips(
      dataset.validation, spec, batch_size=config.eval_batch_size, training=False
    )
    tf.keras.utils.set_random_seed(self.seed)
    name = f"member_{record.id}_{stream}"
    metrics, _, model = trainer.train_and_evaluate(
      strategy,
      lambda: member_method.build(genome, dataset.num_classes, name=name),
      train_data,
      eval_data,
      config,
    )
    print(f"  {record.id} on {stream}: accuracy {metrics['accuracy']:.3f}", flush=True)
    return Member(record, stream, model, metrics)


def format_summary(summary: dict[str, Any], out_dir: str) -> str:
  """The closing note: each member's accuracy against the ensemble's."""
  lines = [
    f"Ensemble of {len(summary['members'])} models written to {out_dir}/saved_model"
    + (" and TFLite (float, int8)" if "export" in summary else ""),
    "| member | stream | accuracy |",
    "|---|---|---|",
  ]
  for m in summary["members"]:
    lines.append(f"| {m['record']} | {m['stream']} | {m['accuracy']:.3f} |")
  lines.append(
    f"| ensemble (mean logits) | {'+'.join(summary['streams'])} | "
    f"{summary['ensemble_accuracy']:.3f} |"
  )
  lines.append(
    f"Single vs ensemble: best single "
    f"{summary['best_single_accuracy']:.3f}, mean single "
    f"{summary['mean_single_accuracy']:.3f}, ensemble "
    f"{summary['ensemble_accuracy']:.3f}."
  )
  if "accuracy_by_form" in summary:
    lines.append(
      "Exported ensemble accuracy: "
      + ", ".join(f"{form} {acc:.3f}" for form, acc in summary["accuracy_by_form"].items())
      + f" ({summary['export']})."
    )
  return "\n".join(lines)
