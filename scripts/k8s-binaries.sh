#!/usr/bin/env bash
# Builds (once) the Kubernetes control-plane binaries, etcd and kwok from the Go module proxy and caches them.
# Why build: there is no Docker engine here and release downloads are unreachable; the Go module proxy is.
# Resolution order (scripts/k8s-binaries.sh prints the directory holding all binaries):
#   1. $GPUFLEET_K8S_BIN if it holds every binary (e.g. unpacked official release tarballs),
#   2. the cache ~/.cache/gpufleet/k8s/<versions>/,
#   3. a Go build into that cache.
# Users with internet can instead download the official releases (see README "Local cluster binaries").
set -euo pipefail

K8S_VERSION="${GPUFLEET_K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${GPUFLEET_ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${GPUFLEET_KWOK_VERSION:-v0.8.0}"
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

have_all() { for b in "${BINARIES[@]}"; do [[ -x "$1/$b" ]] || return 1; done; }

if [[ -n "${GPUFLEET_K8S_BIN:-}" ]]; then
  have_all "$GPUFLEET_K8S_BIN" || { echo "GPUFLEET_K8S_BIN=$GPUFLEET_K8S_BIN lacks one of: ${BINARIES[*]}" >&2; exit 1; }
  echo "$GPUFLEET_K8S_BIN"; exit 0
fi

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/gpufleet/k8s/k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}"
if have_all "$CACHE"; then echo "$CACHE"; exit 0; fi

command -v go >/dev/null || { echo "Go is required to build the Kubernetes binaries (or set GPUFLEET_K8S_BIN)" >&2; exit 1; }
mkdir -p "$(dirname "$CACHE")"
# One build at a time (CI, setup-system.sh and the test harness may all ask at once); whoever waited finds the
# cache filled by the first.
exec 9>"$CACHE.lock"
flock 9
if have_all "$CACHE"; then echo "$CACHE"; exit 0; fi
# Build into a staging directory and move it into place only when every binary is there, so an interrupted build
# never leaves a truncated executable that have_all would accept.
STAGE="$CACHE.partial"
rm -rf "$STAGE" && mkdir -p "$STAGE"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK" "$STAGE"' EXIT
# GOTOOLCHAIN=auto: an older Debian Go fetches the toolchain the Kubernetes go.mod asks for from the module proxy.
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
log() { echo "[k8s-binaries] $*" >&2; }
start=$SECONDS

# --- Kubernetes: k8s.io/kubernetes requires its staging modules at v0.0.0 with ./staging replaces, so a wrapper
# module replaces each with its published twin (v0.<minor>.<patch>).
minor_patch="${K8S_VERSION#v1.}"
mkdir -p "$WORK/k8s" && cd "$WORK/k8s"
go mod init gpufleet.local/k8sbuild >/dev/null 2>&1
modfile="$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$modfile")
{
  echo "require k8s.io/kubernetes ${K8S_VERSION}"
  echo "replace ("
  for m in $staging; do echo "  $m => $m v0.${minor_patch}"; done
  echo ")"
} >> go.mod
for cmd in kube-apiserver kube-controller-manager kube-scheduler; do go get -tool "k8s.io/kubernetes/cmd/$cmd@${K8S_VERSION}" >&2; done
date_utc="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
minor="${minor_patch%%.*}"
ld=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld+=" -X $pkg.gitVersion=${K8S_VERSION} -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor} -X $pkg.gitTreeState=clean"
  ld+=" -X $pkg.buildDate=${date_utc} -X $pkg.gitCommit=gpufleet-goproxy-build"
done
for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
  log "building $cmd ${K8S_VERSION}"
  go build -trimpath -ldflags "-s -w $ld" -o "$STAGE/$cmd" "k8s.io/kubernetes/cmd/$cmd"
done

# --- etcd: Debian's 3.4.23 is below Kubernetes' minimum, so build the server module's main package.
mkdir -p "$WORK/etcd" && cd "$WORK/etcd"
go mod init gpufleet.local/etcdbuild >/dev/null 2>&1
go get -tool "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >&2
log "building etcd ${ETCD_VERSION}"
go build -trimpath -ldflags "-s -w" -o "$STAGE/etcd" go.etcd.io/etcd/server/v3

# --- kwok has no replace directives: a plain install works.
log "building kwok ${KWOK_VERSION}"
GOBIN="$STAGE" GOFLAGS= go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"

have_all "$STAGE" || { echo "build finished without all of: ${BINARIES[*]}" >&2; exit 1; }
rm -rf "$CACHE" && mv "$STAGE" "$CACHE"
log "built in $((SECONDS - start)) s into $CACHE"
echo "$CACHE"
