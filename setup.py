"""vsearch: evolutionary architecture search for video classification networks."""

import os

import setuptools

# TensorFlow and TensorBoard, pinned together. A Cloud TPU host replaces them
# with TensorFlow's TPU build (launch/cloud_tpu/install.sh sets this).
TENSORFLOW = os.environ.get("VSEARCH_TENSORFLOW", "tensorflow==2.21.0 tensorboard==2.21.0").split()

setuptools.setup(
  name="vsearch",
  version="0.1.0",
  description=(
    "Evolutionary search for video classification networks: EvaNet, "
    "AssembleNet(++) and Tiny Video Networks on tf.distribute."
  ),
  long_description=open("README.md", encoding="utf-8").read(),
  long_description_content_type="text/markdown",
  python_requires=">=3.10,<3.13",
  packages=setuptools.find_packages(include=["vsearch", "vsearch.*", "launch", "launch.*"]),
  include_package_data=True,
  package_data={"vsearch": ["py.typed"]},
  install_requires=TENSORFLOW
  + [
    "keras==3.15.1",
    "tensorflow-datasets==4.9.10",
    # TFDS 4.9.10 needs it to prepare any dataset but does not declare it.
    "importlib_resources>=6,<8",
    # tfmot (the [qat] extra) pins absl-py below 2.
    "absl-py>=1.4,<3",
    "gin-config==0.5.0",
    "ai-edge-litert==2.3.0",
    "numpy>=1.26,<3",
    "matplotlib>=3.8,<4",
    # Decodes user videos (video_folder); its wheels bundle FFmpeg.
    "av==18.1.0",
  ],
  extras_require={
    # ruff: the formatter and linter .ci/run checks; pinned, as formatting
    # changes between releases.
    "test": ["pytest>=8,<10", "ruff==0.17.6"],
    # Quantization-aware training: tfmot runs on legacy Keras (tf_keras).
    "qat": ["tensorflow-model-optimization==0.8.1", "tf-keras==2.21.0"],
  },
  classifiers=[
    "Programming Language :: Python :: 3",
    "License :: OSI Approved :: Apache Software License",
    "Topic :: Scientific/Engineering :: Artificial Intelligence",
  ],
  license="Apache-2.0",
)
