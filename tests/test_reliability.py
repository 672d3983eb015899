"""What the search does when things go wrong: failed attempts, bad state, full disks, bad settings.

Each test runs a real ``Search`` in this process on the tiny config
(``tests/data/tiny_search.gin``), with the fault planted in the workdir or
the training call replaced where training itself is not under test.
"""

import errno
import json
import os

import gin
import pytest
import tensorflow as tf

from vsearch import configurables  # noqa: F401  (registers every gin configurable)
from vsearch.errors import DiskFullError, PreemptedError, TooManyFailuresError, UserError
from vsearch.search.runner import Search
from vsearch.search.store import RecordStore
from vsearch.train import trainer as trainer_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(REPO, "tests", "data", "tiny_search.gin")


@pytest.fixture(name="data_dir", scope="module")
def fixture_data_dir(tmp_path_factory):
  """The tiny synthetic dataset, prepared once for the module."""
  return str(tmp_path_factory.mktemp("data"))


def _search(workdir, data_dir, *bindings) -> Search:
  gin.clear_config()
  gin.add_config_file_search_path(REPO)
  gin.parse_config_files_and_bindings(
    [TINY], [f"load_dataset.data_dir = '{data_dir}'", "Search.num_candidates = 1", *bindings]
  )
  return Search(workdir=str(workdir), worker_id="w")


def _fake_training(outcomes):
  """A train_and_evaluate that raises or returns the next of ``outcomes``, and counts calls."""
  calls = []

  def train_and_evaluate(*args, **kwargs):
    calls.append(kwargs.get("checkpoint_dir"))
    outcome = outcomes[min(len(calls), len(outcomes)) - 1]
    if isinstance(outcome, BaseException):
      raise outcome
    if outcome == "train":
      return REAL_TRAIN(*args, **kwargs)
    metrics = {"accuracy": 0.5, "loss": 1.0, "num_eval_clips": 16, "train_loss": 1.0}
    return dict(metrics, num_params=10), {"train_s": 0.0}, None

  train_and_evaluate.calls = calls
  return train_and_evaluate


REAL_TRAIN = trainer_lib.train_and_evaluate


def test_an_unexpected_error_is_retried_then_recorded_as_failed_and_never_again(
  tmp_path, data_dir, monkeypatch
):
  fake = _fake_training([RuntimeError("converter crashed\nC++ stack ...")])
  monkeypatch.setattr(trainer_lib, "train_and_evaluate", fake)
  search = _search(tmp_path, data_dir, "Search.max_attempts_per_candidate = 2")
  search.run()
  [record] = RecordStore(str(tmp_path)).read_all()
  assert len(fake.calls) == 2
  assert record.status == "failed"
  assert record.reason == (
    "RuntimeError: converter crashed (attempt 2 of 2; attempt 1: RuntimeError: converter crashed)"
  )
  assert os.listdir(tmp_path / "in_progress") == []  # released once recorded
  _search(tmp_path, data_dir, "Search.max_attempts_per_candidate = 2").run()
  assert len(fake.calls) == 2  # recorded: not retried


def test_a_failed_attempt_is_counted_in_the_marker_across_restarts(tmp_path, data_dir, monkeypatch):
  search = _search(tmp_path, data_dir, "Search.max_attempts_per_candidate = 3")
  proposal = search._propose(0, [])
  # A worker that failed twice on this child, then died.
  search.claims.write_marker("000000", proposal, ["ValueError: a", "ValueError: b"])
  fake = _fake_training([ValueError("c")])
  monkeypatch.setattr(trainer_lib, "train_and_evaluate", fake)
  search.run()
  [record] = RecordStore(str(tmp_path)).read_all()
  assert len(fake.calls) == 1 and record.status == "failed"
  assert record.reason.startswith("ValueError: c (attempt 3 of 3; attempt 1: ValueError: a")


def test_a_child_whose_retry_succeeds_is_recorded_ok(tmp_path, data_dir, monkeypatch):
  fake = _fake_training([tf.errors.InternalError(None, None, "a flaky kernel"), "train"])
  monkeypatch.setattr(trainer_lib, "train_and_evaluate", fake)
  _search(tmp_path, data_dir).run()
  [record] = RecordStore(str(tmp_path)).read_all()
  assert len(fake.calls) == 2 and record.ok


def test_failures_in_a_row_stop_the_worker_with_one_clear_error(tmp_path, data_dir, monkeypatch):
  fake = _fake_training([RuntimeError("no TPU found")])
  monkeypatch.setattr(trainer_lib, "train_and_evaluate", fake)
  search = _search(
    tmp_path,
    data_dir,
    "Search.num_candidates = 5",
    "Search.max_attempts_per_candidate = 1",
    "Search.max_consecutive_failures = 2",
  )
  with pytest.raises(TooManyFailuresError, match="2 candidates failed in a row") as stopped:
    search.run()
  assert "no TPU found" in str(stopped.value) and "\n" not in str(stopped.value)
  records = RecordStore(str(tmp_path)).read_all()
  assert [r.status for r in records] == ["failed", "failed"] and len(fake.calls) == 2


def test_a_corrupt_checkpoint_is_set_aside_and_the_child_trains_from_step_0(
  tmp_path, data_dir, caplog
):
  search = _search(tmp_path, data_dir, "Search.checkpoint_every = 3")
  search.claims.write_marker("000000", search._propose(0, []))  # this worker, before a restart
  checkpoints = search.claims.checkpoint_root("000000")  # where markers of old put them
  os.makedirs(checkpoints)
  with open(os.path.join(checkpoints, "checkpoint"), "w") as f:
    f.write('model_checkpoint_path: "ckpt-3"\nall_model_checkpoint_paths: "ckpt-3"\n')
  for name in ("ckpt-3.index", "ckpt-3.data-00000-of-00001"):
    with open(os.path.join(checkpoints, name), "wb") as f:
      f.write(b"\x00 not a checkpoint \xff" * 10)
  search.run()
  [record] = RecordStore(str(tmp_path)).read_all()
  assert record.ok and "resumed_from_step" not in record.timings
  [aside] = [n for n in os.listdir(tmp_path / "in_progress") if ".unusable-" in n]
  assert aside.startswith("000000.checkpoints.unusable-")
  assert sorted(os.listdir(tmp_path / "in_progress" / aside)) == [
    "checkpoint",
    "ckpt-3.data-00000-of-00001",
    "ckpt-3.index",
  ]
  assert aside in caplog.text and "from step 0" in caplog.text


def test_sigterm_checkpoints_at_the_step_boundary_and_another_model_cannot_resume_it(
  tmp_path, caplog
):
  config = trainer_lib.TrainConfig(steps=4, steps_per_call=2, batch_size=4, eval_batch_size=4)
  clips = tf.random.uniform([8, 2, 8, 8, 3])
  data = tf.data.Dataset.from_tensor_slices((clips, tf.constant([0, 1] * 4))).batch(4)

  def model(classes):
    layers = [tf.keras.Input([2, 8, 8, 3]), tf.keras.layers.Flatten()]
    return lambda: tf.keras.Sequential([*layers, tf.keras.layers.Dense(classes)])

  strategy = tf.distribute.get_strategy()
  directory = str(tmp_path / "child.checkpoints")
  train = lambda classes, **kw: trainer_lib.train_and_evaluate(
    strategy, model(classes), data.repeat(), data, config, directory, checkpoint_every=100, **kw
  )
  with pytest.raises(PreemptedError) as stopped:
    train(3, should_stop=lambda: True)  # SIGTERM during the first call
  assert stopped.value.step == 2 and stopped.value.checkpointed
  assert tf.train.latest_checkpoint(directory).endswith("ckpt-2")
  _, timings, _ = train(3)
  assert timings["resumed_from_step"] == 2
  # A child of another shape (2 classes) in its place: the checkpoint is set aside.
  metrics, timings, _ = train(2)
  assert "resumed_from_step" not in timings and metrics["num_eval_clips"] == 8
  [aside] = [n for n in os.listdir(tmp_path) if n.startswith("child.checkpoints.unusable-")]
  assert aside in caplog.text and "cannot be restored" in caplog.text


def test_a_claim_resumes_from_the_folder_before_it_and_leaves_that_folder_as_it_was(tmp_path):
  config = trainer_lib.TrainConfig(steps=6, steps_per_call=2, batch_size=4, eval_batch_size=4)
  clips = tf.random.uniform([8, 2, 8, 8, 3])
  data = tf.data.Dataset.from_tensor_slices((clips, tf.constant([0, 1] * 4))).batch(4)
  model = lambda: tf.keras.Sequential(
    [tf.keras.Input([2, 8, 8, 3]), tf.keras.layers.Flatten(), tf.keras.layers.Dense(2)]
  )
  earlier, mine = str(tmp_path / "a-1"), str(tmp_path / "b-2")
  stop = lambda: True  # SIGTERM after every call
  train = lambda directory, **kw: trainer_lib.train_and_evaluate(
    tf.distribute.get_strategy(), model, data.repeat(), data, config, directory, 100, **kw
  )
  with pytest.raises(PreemptedError):
    train(earlier, should_stop=stop)
  with pytest.raises(PreemptedError) as stopped:
    train(mine, resume_from=earlier, should_stop=stop)
  assert stopped.value.step == 4  # resumed at 2, one call of 2 steps
  assert tf.train.latest_checkpoint(earlier).endswith("ckpt-2")
  assert tf.train.latest_checkpoint(mine).endswith("ckpt-4")
  # Its own folder first: a retry within one claim resumes where that claim got to.
  _, timings, _ = train(mine, resume_from=earlier)
  assert timings["resumed_from_step"] == 4


@pytest.mark.parametrize(
  "content",
  ['{"worker": "w", "genome": ', '{"worker": "w", "seed": 1, "genome": {"blocks": "none"}}'],
)
def test_a_bad_marker_is_replaced_by_a_fresh_proposal(tmp_path, data_dir, monkeypatch, content):
  fake = _fake_training(["ok"])
  monkeypatch.setattr(trainer_lib, "train_and_evaluate", fake)
  search = _search(tmp_path, data_dir, "Search.wait_poll_s = 600")
  with open(search.claims.marker_path("000000"), "w") as f:
    f.write(content)  # fresh: before, the worker waited until it went stale
  search.run()
  [record] = RecordStore(str(tmp_path)).read_all()
  assert record.ok and record.genome == search._propose(0, []).genome


def test_an_unreadable_record_is_moved_aside_and_its_candidate_runs_again(
  tmp_path, data_dir, monkeypatch
):
  monkeypatch.setattr(trainer_lib, "train_and_evaluate", _fake_training(["ok"]))
  store = RecordStore(str(tmp_path))
  bad = {"id": "000000", "method": "tvn", "genome": {}, "status": "ok", "fitness": "0.9"}
  with open(store.path("000000"), "w") as f:
    json.dump(bad, f)
  _search(tmp_path, data_dir).run()
  [record] = store.read_all()
  assert record.ok and isinstance(record.fitness, float)
  [aside] = os.listdir(os.path.join(store.directory, "unreadable"))
  assert json.load(open(os.path.join(store.directory, "unreadable", aside))) == bad


@pytest.mark.parametrize("where", ["training", "record"])
def test_a_full_disk_stops_the_worker_instead_of_failing_the_child(
  tmp_path, data_dir, monkeypatch, where
):
  full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
  if where == "training":
    tf_full = tf.errors.ResourceExhaustedError(None, None, "ckpt-3.index; No space left on device")
    monkeypatch.setattr(trainer_lib, "train_and_evaluate", _fake_training([tf_full]))
  else:
    monkeypatch.setattr(trainer_lib, "train_and_evaluate", _fake_training(["ok"]))

    def write(record):
      raise full

    monkeypatch.setattr(RecordStore, "write", lambda self, record: write(record))
  search = _search(tmp_path, data_dir)
  with pytest.raises(DiskFullError, match="full .*No space left on device"):
    search.run()
  assert RecordStore(str(tmp_path)).ids() == set()  # not recorded as out of memory
  marker = json.load(open(search.claims.marker_path("000000")))
  assert marker["worker"] == "w" and marker["failed_attempts"] == []  # resumed as it was


@pytest.mark.parametrize(
  "binding,message",
  [
    ("accuracy_fitness.key = 'accuracy_int8'", "Search.runtime_gate = @RuntimeGate()"),
    ("Search.fitness = @map_fitness", "multi-label"),
  ],
)
def test_a_fitness_no_candidate_can_have_stops_before_any_training(
  tmp_path, data_dir, monkeypatch, binding, message
):
  fake = _fake_training([AssertionError("must not train")])
  monkeypatch.setattr(trainer_lib, "train_and_evaluate", fake)
  with pytest.raises(UserError, match=message):
    _search(tmp_path, data_dir, binding).run()
  assert fake.calls == [] and RecordStore(str(tmp_path)).ids() == set()


@pytest.mark.parametrize(
  "binding,message",
  [
    ("Search.num_candidates = -1", "num_candidates"),
    ("Search.max_attempts_per_candidate = 0", "max_attempts_per_candidate"),
    ("Search.max_consecutive_failures = -1", "max_consecutive_failures"),
    ("TrainConfig.steps = 0", "TrainConfig.steps"),
    ("TrainConfig.batch_size = -8", "TrainConfig.batch_size"),
    ("Evolution.tournament_size = 9", "Evolution.tournament_size"),
  ],
)
def test_impossible_settings_are_one_user_error(tmp_path, data_dir, binding, message):
  with pytest.raises(UserError, match=message):
    _search(tmp_path, data_dir, binding)
