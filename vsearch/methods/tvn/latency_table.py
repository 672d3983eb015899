"""A target device's latency, predicted from a table profiled on it once.

A TVN search on a TPU pod cannot time its children on the phone, laptop or
edge box they will ship to, and that device cannot join the search. As
MnasNet's latency lookup table and nn-Meter's kernel tables did, the device
is profiled once and whole models are predicted from the profile:

1. ``prepare`` (host, TensorFlow): enumerates every stage (``tvn_model.Stage``:
   one op of a repeat, with its input shape) the gin search space can build,
   converts each alone to int8 (and float) TFLite, plus a few whole genomes
   of the space that fit the fixed cost, and writes them with a
   ``manifest.json`` and a copy of ``vsearch/profile_tflite.py``.
2. ``profile_tflite.py DIR`` (device: LiteRT and numpy only) times every file
   and writes ``latency_table.json``.
3. ``LatencyTable.predict`` (host): fixed + scale × Σ(each stage's latency
   less the invoke overhead of an almost empty model). The fixed cost and
   the scale are fitted on the whole genomes by least squares of the
   relative error (``calibration``). ``RuntimeGate(latency_source='table')``
   scores candidates with it.

A ReLU that ends a repeat is not timed: TFLite fuses it into the op before.

Why a scale: ops run alone keep their inputs in cache and lose what the
converter and XNNPACK share between neighbours (fusions, packed layouts), so
a whole model runs at a near-constant fraction of its stages' sum, and that
fraction differs between CPUs: about 1.3 on a 2-core AVX2 EPYC with megabyte
activations, about 0.92 on a Xeon with a 105 MiB L3 (benchmarks/README.md).
One additive fixed cost cannot stand for a factor: fitted on large models it
turned small ones negative. The smallest stages take a few microseconds,
close to the invoke overhead subtracted from each, which bounds the accuracy
for the tiniest models.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import statistics
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from vsearch.deploy import profile_tflite
from vsearch.errors import CandidateError, MissingEntryError, UserError
from vsearch.methods.tvn.genome import Genome
from vsearch.methods.tvn.model import Stage, genome_stages
from vsearch.methods.tvn.space_stages import enumerate_space, genome_entries, is_timed
from vsearch.progress import Progress

MANIFEST = profile_tflite.MANIFEST
TABLE = profile_tflite.TABLE
# The smallest stage: its latency is the invoke overhead every entry carries.
NULL_KEY = "null"
NULL_STAGE = Stage("add", frames=1, size=1, channels=8, name="null")
# Fit genomes needed to fit a scale as well as a fixed cost (``calibration``).
MIN_SCALE_FIT = 4


def where(stage: Stage) -> str:
  """'blocks[1] repeat 0' from a stage named 'block1_rep0...', or 'head'."""
  name = stage.name
  if name.startswith("block") and "_rep" in name:
    block, _, rest = name[len("block") :].partition("_rep")
    return f"blocks[{block}] repeat {rest.split('_')[0]}"
  return name or stage.op


def stage_model(stage: Stage):
  """A Keras model of ``stage`` alone, from clips (T, H, W, C) of its input.

  An 'add' adds its input to itself (the residual's two operands have the
  same shape, so the ADD costs the same).
  """
  import tensorflow as tf

  from vsearch.methods.tvn import model as tvn_model
  from vsearch.nn import layers

  clips = tf.keras.Input(shape=(stage.frames, stage.size, stage.size, stage.channels), name="clips")
  x = layers.fold_time(clips)
  named = dataclasses.replace(stage, name="stage")
  y = tvn_model.apply_stage(x, named, shortcut=x)
  return tf.keras.Model(clips, y, name="stage")


def _random_clips(shape: Sequence[int], count: int = 2) -> np.ndarray:
  rng = np.random.default_rng(0)
  return rng.uniform(-1.0, 1.0, (count, *shape)).astype(np.float32)


def _convert(model, fmt: str) -> bytes:
  from vsearch.deploy import quantize

  converted = quantize.to_tflite(
    model, fmt, _random_clips(model.inputs[0].shape[1:]), num_calibration_clips=2
  )
  if fmt == quantize.INT8:
    converted.require_fully_int8()
  return converted.content


def _file_name(key: str) -> str:
  return hashlib.sha256(key.encode()).hexdigest()[:20] + ".tflite"


def _space_dict(space) -> dict[str, Any]:
  return {
    f.name: (list(v) if isinstance(v, tuple) else v)
    for f, v in ((f, getattr(space, f.name)) for f in dataclasses.fields(space))
  }


def prepare(
  out_dir: str,
  space,
  num_classes: int,
  formats: Sequence[str] = ("int8", "float"),
  genomes: Optional[Sequence[Genome]] = None,
  num_fit_genomes: int = 8,
  seed: int = 0,
  whole_genomes: Optional[dict[str, Genome]] = None,
  max_entries: int = 20_000,
  log=print,
) -> dict[str, Any]:
  """Writes the TFLite files, ``manifest.json`` and the device script.

  Args:
    out_dir: the folder to copy to the device; files already there are kept
      (an interrupted prepare resumes).
    space: the ``TvnSearchSpace`` whose every stage is covered, or, with
      ``genomes``, the space the fit genomes are sampled from.
    num_classes: the classifier width of the models (the head is a stage).
    formats: 'int8' and/or 'float'.
    genomes: cover only these genomes' stages instead of the whole space.
    num_fit_genomes: whole genomes sampled from the space (seeded) that the
      fixed cost is fitted on.
    seed: the seed of that sample.
    whole_genomes: more whole models to convert and time with the entries,
      by name (a validation of the table times them in the same run); the
      fixed cost is not fitted on them.
    max_entries: refuse to write more stage files than this.

  Returns:
    The manifest.

  Raises:
    UserError: an unknown format, or more entries than ``max_entries``.
  """
  from vsearch.methods.tvn import TvnMethod

  for fmt in formats:
    if fmt not in ("int8", "float"):
      raise UserError(f"Unknown TFLite format {fmt!r}: use int8 and/or float")
  method = TvnMethod(space=space)
  rng = np.random.default_rng(seed)
  fit = {f"fit{i:03d}": method.sample(rng) for i in range(num_fit_genomes)}
  if genomes is None:
    entries = enumerate_space(space, num_classes)
  else:
    entries = genome_entries(genomes, num_classes)
  # The fit genomes need their stages too (in the space, they are there).
  entries = {**genome_entries(fit.values(), num_classes), **entries}
  entries = dict(sorted(entries.items()))
  if len(entries) > max_entries:
    raise UserError(
      f"The space needs {len(entries):,} stage files, more than max_entries "
      f"= {max_entries:,}: narrow TvnSearchSpace, raise --max_entries, or "
      "cover given genomes (--genomes / --zoo / --num_sampled)."
    )
  manifest = {
    "version": profile_tflite.TABLE_VERSION,
    "space": {
      "num_classes": num_classes,
      "covers": ("space" if genomes is None else "genomes"),
      "search_space": _space_dict(space),
    },
    "entries": {NULL_KEY: NULL_STAGE.describe(), **{k: s.describe() for k, s in entries.items()}},
    "genomes": {
      name: {
        "genome": g.to_dict(),
        "fit": name in fit,
        "stages": [s.key() for s in genome_stages(g, num_classes) if is_timed(s)],
      }
      for name, g in {**fit, **(whole_genomes or {})}.items()
    },
    "files": {},
  }
  whole = {**fit, **(whole_genomes or {})}
  models = {}  # Relative path -> (section, name, stage or genome, format).
  for fmt in formats:
    section = manifest["files"].setdefault(fmt, {"entries": {}, "genomes": {}})
    for key, stage in [(NULL_KEY, NULL_STAGE), *entries.items()]:
      section["entries"][key] = os.path.join(fmt, _file_name(stage.key()))
      models[section["entries"][key]] = (stage, fmt)
    for name, genome in whole.items():
      identity = json.dumps([genome.to_dict(), num_classes], sort_keys=True)
      section["genomes"][name] = os.path.join(fmt, f"{name}_{_file_name(identity)}")
      models[section["genomes"][name]] = (genome, fmt)
  todo = [p for p in models if not os.path.exists(os.path.join(out_dir, p))]
  for fmt in formats:
    os.makedirs(os.path.join(out_dir, fmt), exist_ok=True)
  progress = Progress(len(models), done=len(models) - len(todo))
  for relative in todo:
    item, fmt = models[relative]
    if isinstance(item, Genome):
      model, what = method.build(item, num_classes), "whole genome"
    else:
      model, what = stage_model(item), item.describe()
    try:
      content = _convert(model, fmt)
    except CandidateError as e:
      raise UserError(f"Cannot convert {what} to {fmt} TFLite for the latency table: {e}") from e
    path = os.path.join(out_dir, relative)
    with open(path + ".part", "wb") as f:
      f.write(content)
    os.replace(path + ".part", path)
    progress.step()
    if progress.done % 25 == 0 or progress.done == progress.total:
      progress.print(f"TFLite files in {out_dir}")
  with open(os.path.join(out_dir, MANIFEST), "w", encoding="utf-8") as f:
    json.dump(manifest, f, indent=1, sort_keys=True)
  shutil.copy(profile_tflite.__file__, os.path.join(out_dir, "profile_tflite.py"))
  log(
    f"{len(entries) + 1} entries and {len(whole)} whole genomes in "
    f"{'/'.join(formats)} ({len(todo)} files new) in {out_dir}"
  )
  return manifest


@dataclasses.dataclass(frozen=True)
class Prediction:
  """A predicted latency and what it is made of.

  Attributes:
    latency_ms: the prediction.
    fixed_ms: the fitted fixed cost in it.
    stages_ms: the summed stage costs (each less the overhead), before
      ``scale``.
    num_stages: the timed stages summed.
    scale: how much faster (below 1) or slower a whole model runs than its
      stages timed alone, fitted on the table's fit genomes.
  """

  latency_ms: float
  fixed_ms: float
  stages_ms: float
  num_stages: int
  scale: float = 1.0


class LatencyTable:
  """A profiled device's ``latency_table.json``, ready to predict from.

  Args:
    path: the table file.

  Attributes:
    sha256: the hash of the file's bytes, which records cite.
    device, settings: what it was measured on and how.

  Raises:
    UserError: the file is missing or not a latency table.
  """

  def __init__(self, path: str):
    self.path = path
    try:
      with open(path, "rb") as f:
        content = f.read()
      data = json.loads(content)
    except (OSError, ValueError) as e:
      raise UserError(
        f"Cannot read latency table {path}: {e}. Profile one: "
        "python -m launch.profile_device prepare ..., then "
        "profile_tflite.py DIR on the device."
      ) from None
    if (
      not isinstance(data, dict)
      or data.get("version") != profile_tflite.TABLE_VERSION
      or "timings" not in data
    ):
      raise UserError(
        f"{path} is not a version-{profile_tflite.TABLE_VERSION}"
        " latency table written by profile_tflite.py"
      )
    self.sha256 = hashlib.sha256(content).hexdigest()
    self.device = data["device"]
    self.settings = data["settings"]
    self.num_classes = data["space"]["num_classes"]
    self._data = data
    self._calibration: dict[str, tuple[float, float]] = {}

  @property
  def formats(self) -> list[str]:
    return sorted(self._data["timings"])

  def _timings(self, fmt: str) -> dict[str, Any]:
    if fmt not in self._data["timings"]:
      raise UserError(
        f"Latency table {self.path} has no {fmt} timings (it has "
        f"{', '.join(self.formats)}): prepare it with that format."
      )
    return self._data["timings"][fmt]

  def entry_ms(self, key: str, fmt: str) -> Optional[float]:
    """A stage's latency less the invoke overhead, or None if not in the table."""
    entries = self._timings(fmt)["entries"]
    if key not in entries:
      return None
    return max(entries[key]["median_ms"] - entries[NULL_KEY]["median_ms"], 0.0)

  def calibration(self, fmt: str) -> tuple[float, float]:
    """(fixed ms, scale): a whole model takes fixed + scale × its summed stages.

    Fitted on the table's fit genomes by least squares of the relative
    error, both terms non-negative, so a 2 ms and a 900 ms genome weigh
    alike. With fewer than ``MIN_SCALE_FIT`` fit genomes the scale is 1 and
    the fixed cost the median of measured − summed (at least the invoke
    overhead); without any, the invoke overhead alone.
    """
    if fmt not in self._calibration:
      timings = self._timings(fmt)
      null = timings["entries"][NULL_KEY]["median_ms"]
      points = []  # (summed stages, measured)
      for name, item in self._data["genomes"].items():
        if not item["fit"]:
          continue
        costs = [self.entry_ms(k, fmt) for k in item["stages"]]
        if name in timings["genomes"] and None not in costs:
          points.append((sum(costs), timings["genomes"][name]["median_ms"]))
      if len(points) >= MIN_SCALE_FIT:
        self._calibration[fmt] = _fit_fixed_and_scale(points)
      elif points:
        self._calibration[fmt] = (max(statistics.median(m - s for s, m in points), null), 1.0)
      else:
        self._calibration[fmt] = (null, 1.0)
    return self._calibration[fmt]

  def fixed_ms(self, fmt: str) -> float:
    """The fitted fixed cost (see ``calibration``)."""
    return self.calibration(fmt)[0]

  def measured_genomes(self, fmt: str) -> dict[str, tuple[Genome, float]]:
    """The whole genomes timed with the table: name -> (genome, median ms)."""
    timings = self._timings(fmt)["genomes"]
    return {
      name: (Genome.from_dict(item["genome"]), timings[name]["median_ms"])
      for name, item in self._data["genomes"].items()
      if name in timings
    }

  def missing(self, genome: Genome, fmt: str) -> list[Stage]:
    """The stages of ``genome`` the table has no timing for."""
    return [
      s
      for s in genome_stages(genome, self.num_classes)
      if is_timed(s) and self.entry_ms(s.key(), fmt) is None
    ]

  def predict(
    self, genome: Genome, fmt: str = "int8", num_classes: Optional[int] = None
  ) -> Prediction:
    """The predicted batch-1 latency of ``genome``'s model in ``fmt``.

    Raises:
      MissingEntryError: a stage is not in the table; names the first.
      UserError: the table lacks the format or another head width.
    """
    if num_classes is not None and num_classes != self.num_classes:
      raise UserError(
        f"Latency table {self.path} was prepared for "
        f"{self.num_classes} classes, the models have "
        f"{num_classes}: prepare it with --num_classes="
        f"{num_classes}."
      )
    total, count = 0.0, 0
    for stage in genome_stages(genome, self.num_classes):
      if not is_timed(stage):
        continue
      key = stage.key()
      cost = self.entry_ms(key, fmt)
      if cost is None:
        failed = self._data.get("failed", {}).get(fmt, {}).get("entries", {}).get(key)
        if failed:
          raise MissingEntryError(
            f"Latency table {self.sha256[:12]} ({self.path}): the device could not run "
            f"the {fmt} entry for {where(stage)}, {stage.describe()}: {failed}. Bind "
            "RuntimeGate.table_missing = 'measure' to time such candidates on this "
            "machine, or narrow the search space."
          )
        raise MissingEntryError(
          f"Latency table {self.sha256[:12]} ({self.path}) has no {fmt} "
          f"entry for {where(stage)}: {stage.describe()}. Prepare a table "
          "that covers this search space (python -m launch.profile_device "
          "prepare with the search's gin files), or bind "
          "RuntimeGate.table_missing = 'measure' to time such candidates "
          "on this machine instead."
        )
      total += cost
      count += 1
    fixed, scale = self.calibration(fmt)
    return Prediction(
      latency_ms=fixed + scale * total,
      fixed_ms=fixed,
      stages_ms=total,
      num_stages=count,
      scale=scale,
    )

  def describe(self) -> dict[str, Any]:
    """What a record cites: the table's hash, path, device and settings."""
    return {
      "sha256": self.sha256,
      "path": self.path,
      "device": self.device,
      "settings": self.settings,
    }


def _fit_fixed_and_scale(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
  """Non-negative (fixed, scale) minimising Σ((fixed + scale·s − m) / m)²
  over (summed stages s, measured m) points."""
  summed = np.array([s for s, _ in points], np.float64)
  measured = np.array([m for _, m in points], np.float64)
  # Divided through by m: rows [1/m, s/m] against a target of ones.
  design = np.stack([1.0 / measured, summed / measured], axis=1)
  ones = np.ones(len(points))
  (fixed, scale), *_ = np.linalg.lstsq(design, ones, rcond=None)
  if fixed >= 0 and scale >= 0:
    return float(fixed), float(scale)
  # The best fit with one term at zero (the boundary of the feasible set).
  only_scale = (0.0, float(design[:, 1] @ ones / (design[:, 1] @ design[:, 1])))
  only_fixed = (float(design[:, 0] @ ones / (design[:, 0] @ design[:, 0])), 0.0)
  cost = lambda c: float(np.sum((design @ np.array(c) - ones) ** 2))
  return min(only_scale, only_fixed, key=cost)


_LOADED: dict[tuple[str, float], LatencyTable] = {}


def load(path: str) -> LatencyTable:
  """The table at ``path``, read once per process (again if it changed)."""
  try:
    cache_key = (path, os.path.getmtime(path))
  except OSError:
    return LatencyTable(path)  # Raises the UserError that says what to do.
  if cache_key not in _LOADED:
    _LOADED[cache_key] = LatencyTable(path)
  return _LOADED[cache_key]
