#!/usr/bin/env bash
# Follows the log of one worker: ./logs.sh [VM index] [host index]
source "$(dirname "$0")/common.sh"
gcloud compute tpus tpu-vm ssh "${TPU_NAME}-${1:-0}" --project="${PROJECT}" --zone="${ZONE}" \
  --worker="${2:-0}" --command="tail -n 50 -f ~/vsearch.log"
