"""Shared pytest fixtures: quiet TensorFlow, a clean gin config per test."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gin
import pytest


@pytest.fixture(autouse=True)
def clean_gin_config():
  """Every test starts and ends with an empty gin config."""
  gin.clear_config()
  yield
  gin.clear_config()
