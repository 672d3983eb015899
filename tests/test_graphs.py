"""A trained candidate leaves no graph behind: the search's memory stays flat."""

import gc

import tensorflow as tf
from tensorflow.python.framework import func_graph

from vsearch.train import graphs
from vsearch.train import trainer as trainer_lib


def _train_one_candidate():
  """The real training loop on a tiny model: AdamW, strategy.run, a tf.function per call."""

  def model_fn():
    return tf.keras.Sequential(
      [
        tf.keras.Input((2, 4, 4, 3)),
        tf.keras.layers.Conv3D(2, 1),
        tf.keras.layers.GlobalAveragePooling3D(),
        tf.keras.layers.Dense(3),
      ]
    )

  batch = (tf.zeros((4, 2, 4, 4, 3)), tf.constant([0, 1, 2, 0]))
  config = trainer_lib.TrainConfig(steps=2, steps_per_call=1, batch_size=4, eval_batch_size=4)
  trainer_lib.train_and_evaluate(
    tf.distribute.get_strategy(),
    model_fn,
    tf.data.Dataset.from_tensors(batch).repeat(),
    tf.data.Dataset.from_tensors(batch),
    config,
  )


def _live_func_graphs():
  gc.collect()
  return sum(isinstance(o, func_graph.FuncGraph) for o in gc.get_objects())


def test_candidates_leave_no_graph_and_no_gradient_function_behind():
  with graphs.candidate_graphs_freed():
    _train_one_candidate()
  live, registered = _live_func_graphs(), len(graphs._gradient_registry())
  for _ in range(3):
    with graphs.candidate_graphs_freed():
      _train_one_candidate()
  assert _live_func_graphs() == live
  assert len(graphs._gradient_registry()) == registered


def test_clearing_the_session_alone_leaves_the_graphs_alive():
  # What candidate_graphs_freed works around: if TensorFlow stops keeping
  # custom gradients for good, this fails and the workaround can go.
  with graphs.candidate_graphs_freed():
    live = _live_func_graphs()
    _train_one_candidate()
    tf.keras.backend.clear_session()
    assert _live_func_graphs() > live
  assert _live_func_graphs() == live
