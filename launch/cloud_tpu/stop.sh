#!/usr/bin/env bash
# Stops every worker (./stop.sh), or stops them and deletes the TPU VMs
# (./stop.sh --delete). The workdir keeps everything; start.sh resumes.
# Workers get SIGTERM, as at a preemption: each checkpoints the child it is
# training at its next step boundary and exits; this waits up to a minute for
# them. ("launch[.]search" matches the workers but not this command's own shell.)
source "$(dirname "$0")/common.sh"
status=0
on_all_hosts "pkill -TERM -f 'launch[.]search' || true; \
  for i in \$(seq 60); do pgrep -f 'launch[.]search' > /dev/null || break; sleep 1; done" \
  "stopping the workers" || status=1
if [[ "${1:-}" == "--delete" ]]; then
  delete() {
    gcloud compute tpus tpu-vm delete "$1" --project="${PROJECT}" --zone="${ZONE}" --quiet
  }
  on_each_vm "deleting the TPU VM" delete || status=1
fi
exit "${status}"
