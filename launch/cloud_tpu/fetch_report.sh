#!/usr/bin/env bash
# Copies the workdir's records and configs here and writes its report:
# ./fetch_report.sh [local dir]  (default: workdirs/<last part of WORKDIR>)
source "$(dirname "$0")/common.sh"
local_dir="${1:-${REPO}/workdirs/$(basename "${WORKDIR}")}"
mkdir -p "${local_dir}"
gcloud storage rsync --recursive --exclude='in_progress/.*|tensorboard/.*' \
  "${WORKDIR}" "${local_dir}"
cd "${REPO}" && python -m launch.report --workdir="${local_dir}"
