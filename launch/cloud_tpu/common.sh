# Sourced by the Cloud TPU scripts: settings, the TPU VM names, and helpers.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${HERE}/../.." && pwd)"
# shellcheck source=/dev/null
source "${VSEARCH_TPU_CONFIG:-${HERE}/config.sh}"

tpu_names() {
  local i
  for ((i = 0; i < COUNT; i++)); do echo "${TPU_NAME}-${i}"; done
}

# Runs a command on every host of every TPU VM (in parallel across VMs).
on_all_hosts() {
  local command="$1" name
  for name in $(tpu_names); do
    gcloud compute tpus tpu-vm ssh "${name}" --project="${PROJECT}" --zone="${ZONE}" \
      --worker=all --command="${command}" &
  done
  wait
}

case "${WORKDIR}" in
  gs://*) ;;
  *) echo "error: WORKDIR must be a gs:// path every TPU host can reach, not ${WORKDIR}" >&2
     exit 2 ;;
esac
