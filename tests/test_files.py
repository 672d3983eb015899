"""Atomic writes reach the disk before the rename; a full disk is told apart."""

import errno
import os

import pytest
import tensorflow as tf

from vsearch import files


def test_a_local_write_is_synced_before_its_rename(tmp_path, monkeypatch):
  events = []
  real_fsync, real_replace = os.fsync, os.replace
  monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
  monkeypatch.setattr(os, "replace", lambda a, b: events.append("rename") or real_replace(a, b))
  path = str(tmp_path / "record.json")
  files.write_atomically(path, "{}")
  assert events[:2] == ["fsync", "rename"]  # the file, then (after) its folder
  assert open(path).read() == "{}" and os.listdir(tmp_path) == ["record.json"]


def test_a_full_disk_leaves_no_temporary_and_says_so(tmp_path, monkeypatch):
  def full(fd):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  monkeypatch.setattr(os, "fsync", full)
  with pytest.raises(OSError) as raised:
    files.write_atomically(str(tmp_path / "x.json"), "{}", overwrite=False)
  assert files.is_disk_full(raised.value)
  assert os.listdir(tmp_path) == []


def test_disk_full_is_recognised_in_tensorflow_errors_and_causes():
  tf_error = tf.errors.ResourceExhaustedError(None, None, "/w/ckpt; No space left on device")
  assert files.is_disk_full(tf_error)
  try:
    try:
      raise OSError(errno.EDQUOT, "quota")
    except OSError as e:
      raise RuntimeError("converter failed") from e
  except RuntimeError as wrapped:
    assert files.is_disk_full(wrapped)
  oom = tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
  assert not files.is_disk_full(oom)
