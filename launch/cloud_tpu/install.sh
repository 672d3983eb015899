#!/usr/bin/env bash
# Copies this checkout to every host and installs it with TensorFlow's TPU build.
source "$(dirname "$0")/common.sh"
archive="$(mktemp -d)/vsearch.tar.gz"
git -C "${REPO}" archive --format=tar.gz --prefix=vsearch/ -o "${archive}" HEAD
copy() {
  gcloud compute tpus tpu-vm scp "${archive}" "$1:~/vsearch.tar.gz" \
    --project="${PROJECT}" --zone="${ZONE}" --worker=all
}
on_each_vm "copying the checkout" copy
# vsearch pins the CPU/GPU TensorFlow wheel; VSEARCH_TENSORFLOW swaps in the TPU build.
tensorflow="tensorflow-tpu==${TF_TPU_VERSION} tensorboard~=${TF_TPU_VERSION%.*}.0"
ready='import vsearch.configurables, socket; print("vsearch ready on", socket.gethostname())'
on_all_hosts "set -e; rm -rf ~/vsearch && tar xzf ~/vsearch.tar.gz -C ~ \
  && python3 -m venv ~/venv && ~/venv/bin/pip install -q --upgrade pip \
  && VSEARCH_TENSORFLOW=$(quote "${tensorflow}") \
     ~/venv/bin/pip install -q -e ~/vsearch -f $(quote "${LIBTPU_INDEX}") \
  && ~/venv/bin/python -c $(quote "${ready}")" "the install"
