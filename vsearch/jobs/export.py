"""What ``launch.export`` does: find the model, export it, print a table.

The model comes from a ``launch.train`` workdir (its genome and trained
weights) or, untrained, from a genome file, a search record or the zoo;
``vsearch.deploy.export`` writes and measures the files.

A search record or a training run is exported as it was built: the
launcher parses that workdir's ``config.gin`` (``source_config``) before the
user's own gin files and bindings, so the dataset (its classes) and the
method's settings (frames, resolution, flow source ...) are the search's
unless the user overrides them.
"""

import os
from typing import Any, Optional

import gin
import tensorflow as tf

from vsearch.data import clips as clips_lib
from vsearch.data import datasets
from vsearch.deploy import export as export_lib
from vsearch.deploy import latency as latency_lib
from vsearch.deploy import quantize
from vsearch.errors import CandidateError, UserError
from vsearch.methods import genome_source
from vsearch.train import full_training

# The gin config a search or a training run writes into its workdir.
CONFIG_FILE = "config.gin"
# Training clips shuffled before calibration (uint8 clips, before flow and
# object maps are made).
CALIBRATION_SHUFFLE = 16


def source_config(workdir: Optional[str] = None, candidate: Optional[str] = None) -> list[str]:
  """The gin config the exported model was made under, if any: ``[path]`` or ``[]``.

  ``workdir`` is a ``launch.train`` run, ``candidate`` a search record
  (``WORKDIR/ID`` or a record's path); either's workdir holds the
  ``config.gin`` it ran with. Genome files and the zoo have none.

  Raises:
    UserError: ``candidate`` is not a candidate reference.
  """
  folder = workdir or (genome_source.candidate_workdir(candidate) if candidate else None)
  if not folder:
    return []
  path = os.path.join(folder, CONFIG_FILE)
  return [path] if tf.io.gfile.exists(path) else []


def _flow_note(model, spec: clips_lib.ClipSpec) -> Optional[str]:
  """Where the exported model gets optical flow, for ``export.json``."""
  islands = quantize.float_island_layers(model)
  if islands:
    return (
      f"computed inside the model ({', '.join(islands)}); the int8 file keeps it in float "
      "(float_layers) and runs int8 everywhere else"
    )
  if "flow" in spec.extra_inputs or spec.stream == "flow":
    return "a model input, computed by the data pipeline (vsearch.nn.flow.clip_flow)"
  return None


@gin.configurable("export")
def run(
  out_dir: str,
  workdir: str | None = None,
  genome_file: str | None = None,
  candidate: str | None = None,
  zoo_name: str | None = None,
  num_calibration_clips: int = 64,
  max_eval_clips: int = 512,
) -> dict[str, Any]:
  """Exports one model and prints what each of its forms measures.

  Args:
    out_dir: where the files go.
    workdir: a ``launch.train`` workdir (its genome and trained weights).
    genome_file, candidate, zoo_name: the other sources, untrained.
    num_calibration_clips: training clips that calibrate the int8 model.
    max_eval_clips: validation clips each accuracy is measured on.

  Returns:
    What ``export.json`` holds.

  Raises:
    UserError: not exactly one source, one that cannot be read, or a model
      that cannot be converted or run (one line: what failed).
  """
  if workdir:
    if genome_file or candidate or zoo_name:
      raise UserError("Give --workdir alone, or one of --genome, --candidate, --zoo.")
    full_training.check_finished(workdir)
    genome_file = os.path.join(workdir, full_training.GENOME_FILE)
  source = genome_source.resolve(genome_file, candidate, zoo_name)
  dataset = datasets.load_dataset()
  model = source.method.build(source.genome, dataset.num_classes)
  if workdir:
    full_training.load_weights(model, workdir)
  spec = source.method.clip_spec(source.genome)
  clips_lib.check_inputs(spec, dataset.object_classes)
  # Single clips and a small shuffle buffer: the converter streams them, so
  # memory holds a few clips (a published AssembleNet++ clip is 1 GB), not 16.
  calibration = clips_lib.make_clips(
    dataset.train, spec, batch_size=1, training=True, shuffle_buffer=CALIBRATION_SHUFFLE
  )
  validation = clips_lib.make_clips(dataset.validation, spec, batch_size=32, training=False)
  print(
    f"Exporting {source.description} ({'trained' if workdir else 'untrained'}, "
    f"{dataset.num_classes} classes of {dataset.name}) to {out_dir} ...",
    flush=True,
  )
  searched = source.record.metrics.get("num_classes") if source.record else None
  if searched is not None and searched != dataset.num_classes:
    print(
      f"Note: the candidate was searched on {searched} classes; this export has "
      f"{dataset.num_classes} (the dataset bound here overrides the search's).",
      flush=True,
    )
  info = {"source": source.description, "dataset": dataset.name, "genome": source.genome.to_dict()}
  if _flow_note(model, spec):
    info["flow"] = _flow_note(model, spec)
  try:
    summary = export_lib.export(
      model,
      out_dir,
      calibration,
      validation,
      trained=bool(workdir),
      settings=latency_lib.LatencySettings(),
      num_calibration_clips=num_calibration_clips,
      max_eval_clips=max_eval_clips,
      info=info,
      class_names=dataset.class_names,
    )
  except CandidateError as e:
    raise UserError(
      f"{source.description} cannot be exported ({e}); files written before the failure "
      f"are in {out_dir}."
    ) from e
  print(export_lib.format_summary(summary), flush=True)
  return summary
