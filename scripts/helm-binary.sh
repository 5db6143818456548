#!/usr/bin/env bash
# Builds (once) the Helm v3 CLI from the Go module proxy and caches it; prints ONE line on stdout: the helm path.
# Why build: release downloads (get.helm.sh) are unreachable here; the Go module proxy is, and helm.sh/helm/v3
# has no replace directives, so a plain `go install` works.
# Resolution order:
#   1. $GPUFLEET_HELM if it names an executable (e.g. an official release binary),
#   2. the cache ~/.cache/gpufleet/helm/<version>/helm,
#   3. a Go build into that cache.
set -euo pipefail

HELM_VERSION="${GPUFLEET_HELM_VERSION:-v3.22.0}"

if [[ -n "${GPUFLEET_HELM:-}" ]]; then
  [[ -x "$GPUFLEET_HELM" ]] || { echo "GPUFLEET_HELM=$GPUFLEET_HELM is not an executable" >&2; exit 1; }
  echo "$GPUFLEET_HELM"; exit 0
fi

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/gpufleet/helm/${HELM_VERSION}"
if [[ -x "$CACHE/helm" ]]; then echo "$CACHE/helm"; exit 0; fi

command -v go >/dev/null || { echo "Go is required to build helm (or set GPUFLEET_HELM)" >&2; exit 1; }
mkdir -p "$CACHE"
start=$SECONDS
echo "[helm-binary] building helm ${HELM_VERSION}" >&2
# Build into a temporary GOBIN and move into place, so an interrupted build never leaves a half-written cache hit.
tmp="$(mktemp -d "$CACHE/.build.XXXXXX")"; trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS= GOBIN="$tmp" go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
  "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
mv "$tmp/helm" "$CACHE/helm"
echo "[helm-binary] built in $((SECONDS - start)) s into $CACHE" >&2
echo "$CACHE/helm"
