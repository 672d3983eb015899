#!/usr/bin/env bash
# Starts one search worker per host, each named after its host, in the background.
# Run it again after a preemption or a stop: every worker resumes where it was.
source "$(dirname "$0")/common.sh"
args=(--workdir="${WORKDIR}")
for f in ${GIN_FILES}; do args+=(--gin_file="${f}"); done
if [[ -n "${GIN_BINDINGS}" ]]; then args+=(--gin_bindings="${GIN_BINDINGS}"); fi
on_all_hosts "cd ~/vsearch && nohup ~/venv/bin/python -m launch.search $(quote "${args[@]}") \
  --strategy=tpu --tpu=local --worker_id=\$(hostname) >> ~/vsearch.log 2>&1 < /dev/null & \
  echo started worker \$(hostname)" "starting the workers"
