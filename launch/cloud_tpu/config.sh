# Settings shared by the Cloud TPU scripts. Copy this file, edit it, and pass
# its path in VSEARCH_TPU_CONFIG (or edit it in place).
#
# A search runs one worker per TPU VM host; every worker shares the record
# store in WORKDIR on Cloud Storage. Several single-host TPU VMs (COUNT > 1)
# are the tested-by-design layout; see "Running on Cloud TPU" in docs/distributed.md.

PROJECT="${PROJECT:-my-gcp-project}"
ZONE="${ZONE:-us-central2-b}"
# TPU VMs are named ${TPU_NAME}-0 .. ${TPU_NAME}-$((COUNT - 1)).
TPU_NAME="${TPU_NAME:-vsearch}"
COUNT="${COUNT:-1}"
ACCELERATOR_TYPE="${ACCELERATOR_TYPE:-v4-8}"
# A plain Ubuntu image: install.sh installs TensorFlow's TPU build itself.
RUNTIME_VERSION="${RUNTIME_VERSION:-tpu-ubuntu2204-base}"
# "--spot" for preemptible capacity: workers resume their children after preemption.
CREATE_FLAGS="${CREATE_FLAGS:---spot}"

# The newest TPU build of TensorFlow on PyPI when this was written, and where
# its libtpu comes from.
TF_TPU_VERSION="${TF_TPU_VERSION:-2.20.0}"
LIBTPU_INDEX="${LIBTPU_INDEX:-https://storage.googleapis.com/libtpu-tf-releases/index.html}"

# The search: a gs:// workdir every host can write, its gin files (paths in
# this repository) and extra bindings, e.g. the TFDS data directory.
WORKDIR="${WORKDIR:-gs://my-bucket/vsearch/tvn_ucf101}"
GIN_FILES="${GIN_FILES:-gin/tvn/ucf101_tpu.gin}"
GIN_BINDINGS="${GIN_BINDINGS:-load_dataset.data_dir='gs://my-bucket/tensorflow_datasets'}"
