#!/usr/bin/env bash
# Prepares this machine for the gpufleet test suites and `npm start`, idempotently and quietly:
#   - Debian packages: nats-server, kubectl, prometheus, openssl, python3-venv (for scripts/test-python.sh; wanted
#     when python3 cannot make a venv with pip) (and golang-go only when no `go` is on PATH),
#     installed with apt-get only when missing (one `apt-get update`, only then);
#   - the Kubernetes control-plane binaries, etcd and kwok (scripts/k8s-binaries.sh: env var, cache or Go build).
# Prints nothing when everything is already present. The binaries' directory: `bash scripts/k8s-binaries.sh`
# (milliseconds once built), which test/harness/binaries.ts also runs.
# Set GPUFLEET_SKIP_K8S_BINARIES=1 to install the packages only.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# package:command pairs; a package is wanted when its command is not on PATH.
wanted=(nats-server:nats-server kubectl:kubectl prometheus:prometheus openssl:openssl)
command -v go >/dev/null || wanted+=(golang-go:go)

missing=()
for pair in "${wanted[@]}"; do
  command -v "${pair#*:}" >/dev/null || missing+=("${pair%%:*}")
done
# python3-venv provides no command: it is wanted when python3 lacks venv or ensurepip (Debian splits them out).
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)

if ((${#missing[@]} > 0)); then
  echo "[setup-system] installing: ${missing[*]}" >&2
  sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if [[ "${GPUFLEET_SKIP_K8S_BINARIES:-}" != 1 ]]; then
  bash "$here/k8s-binaries.sh" >/dev/null
fi
