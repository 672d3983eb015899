#!/usr/bin/env bash
# Creates COUNT TPU VMs named ${TPU_NAME}-0.. (see config.sh).
source "$(dirname "$0")/common.sh"
for name in $(tpu_names); do
  echo "Creating ${name} (${ACCELERATOR_TYPE}, ${RUNTIME_VERSION}) in ${ZONE}"
  # shellcheck disable=SC2086
  gcloud compute tpus tpu-vm create "${name}" --project="${PROJECT}" --zone="${ZONE}" \
    --accelerator-type="${ACCELERATOR_TYPE}" --version="${RUNTIME_VERSION}" ${CREATE_FLAGS} &
done
wait
