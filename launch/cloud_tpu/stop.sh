#!/usr/bin/env bash
# Stops every worker (./stop.sh), or stops them and deletes the TPU VMs
# (./stop.sh --delete). The workdir keeps everything; start.sh resumes.
source "$(dirname "$0")/common.sh"
on_all_hosts "pkill -f 'launch.search' || true"
if [[ "${1:-}" == "--delete" ]]; then
  for name in $(tpu_names); do
    gcloud compute tpus tpu-vm delete "${name}" --project="${PROJECT}" --zone="${ZONE}" --quiet &
  done
  wait
fi
