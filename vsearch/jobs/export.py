"""What ``launch.export`` does: find the model, export it, print a table.

The model comes from a ``launch.train`` workdir (its genome and trained
weights) or, untrained, from a genome file, a search record or the zoo;
``vsearch.deploy.export`` writes and measures the files.
"""

import os
from typing import Any

import gin

from vsearch.data import clips as clips_lib
from vsearch.data import datasets
from vsearch.deploy import export as export_lib
from vsearch.deploy import latency as latency_lib
from vsearch.errors import UserError
from vsearch.methods import genome_source
from vsearch.train import full_training


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
    UserError: not exactly one source, or one that cannot be read.
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
  calibration = clips_lib.make_clips(dataset.train, spec, batch_size=16, training=True)
  validation = clips_lib.make_clips(dataset.validation, spec, batch_size=32, training=False)
  print(
    f"Exporting {source.description} ({'trained' if workdir else 'untrained'}, "
    f"{dataset.num_classes} classes of {dataset.name}) to {out_dir} ...",
    flush=True,
  )
  summary = export_lib.export(
    model,
    out_dir,
    calibration,
    validation,
    trained=bool(workdir),
    settings=latency_lib.LatencySettings(),
    num_calibration_clips=num_calibration_clips,
    max_eval_clips=max_eval_clips,
    info={"source": source.description, "dataset": dataset.name, "genome": source.genome.to_dict()},
    class_names=dataset.class_names,
  )
  print(export_lib.format_summary(summary), flush=True)
  return summary
