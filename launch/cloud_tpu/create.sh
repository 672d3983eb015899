#!/usr/bin/env bash
# Creates COUNT TPU VMs named ${TPU_NAME}-0.. (see config.sh); fails if any is not created.
source "$(dirname "$0")/common.sh"
create() {
  echo "Creating $1 (${ACCELERATOR_TYPE}, ${RUNTIME_VERSION}) in ${ZONE}"
  # shellcheck disable=SC2086
  gcloud compute tpus tpu-vm create "$1" --project="${PROJECT}" --zone="${ZONE}" \
    --accelerator-type="${ACCELERATOR_TYPE}" --version="${RUNTIME_VERSION}" ${CREATE_FLAGS}
}
on_each_vm "creating the TPU VM" create
