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

# Runs "$@ <VM name>" for every TPU VM in parallel and waits for all of them;
# fails, naming the VMs, when any failed. The first argument says what is done.
on_each_vm() {
  local what="$1" name i
  shift
  local -a pids=() names=() failed=()
  for name in $(tpu_names); do
    "$@" "${name}" &
    pids+=("$!")
    names+=("${name}")
  done
  for i in "${!pids[@]}"; do
    wait "${pids[i]}" || failed+=("${names[i]}")
  done
  if ((${#failed[@]})); then
    echo "error: ${what} failed on ${#failed[@]} of ${#names[@]} TPU VMs: ${failed[*]}" >&2
    return 1
  fi
}

# Quotes each argument for the remote shell (bash on a TPU VM), joined by spaces.
quote() {
  local quoted
  printf -v quoted '%q ' "$@"
  echo "${quoted% }"
}

_ssh_all_hosts() {
  gcloud compute tpus tpu-vm ssh "$2" --project="${PROJECT}" --zone="${ZONE}" \
    --worker=all --command="$1"
}

# Runs a remote shell command on every host of every TPU VM (in parallel across
# VMs); fails when it fails on any. Quote what goes into it with `quote`.
on_all_hosts() {
  on_each_vm "running '${2:-a command}'" _ssh_all_hosts "$1"
}

case "${WORKDIR}" in
  gs://*) ;;
  *) echo "error: WORKDIR must be a gs:// path every TPU host can reach, not ${WORKDIR}" >&2
     exit 2 ;;
esac
