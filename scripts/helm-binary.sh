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
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=
# Helm's Makefile derives the default Kubernetes version (Capabilities.KubeVersion of `helm template`, and lint's
# deprecation checks) from its client-go module, v0.N -> v1.N; without it `helm template` assumes v1.20 and refuses
# charts with a newer kubeVersion.
gomod="$(go mod download -json "helm.sh/helm/v3@${HELM_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
k8s_minor="$(sed -n 's#^[[:space:]]*k8s.io/client-go v0\.\([0-9]*\)\..*#\1#p' "$gomod" | head -1)"
[[ -n "$k8s_minor" ]] || { echo "cannot find k8s.io/client-go in $gomod" >&2; exit 1; }
ld="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ld+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=${k8s_minor}"
done
GOBIN="$tmp" go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
mv "$tmp/helm" "$CACHE/helm"
echo "[helm-binary] built in $((SECONDS - start)) s into $CACHE" >&2
echo "$CACHE/helm"
