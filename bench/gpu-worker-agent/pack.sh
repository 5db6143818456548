#!/usr/bin/env bash
# Packs what the H200 machine lacks into .device-carry/ (git-ignored; the device tool's `carry`): the agent and the
# transcript driver bundled with esbuild, the .proto files they load at run time, the Python worker, and xz-compressed
# copies of this machine's Node 20 and Debian nats-server binaries. Layout (bundles two levels below agent/, so the
# bundled gen-proto.ts finds ../../proto as it does in the source tree):
#   .device-carry/agent/{proto,worker}/   .device-carry/agent/.device/bundle/{agent,transcript}.mjs
#   .device-carry/bin/{node,nats-server}.xz   bench/gpu-worker-agent/device-run.sh runs it there.
# The device tool sends the checkout the lead's session started in (/work/main), not a helper's worktree, and reads
# `carry` from there: a helper copies .device-carry into that checkout's git-ignored .gpufleet/ and names that path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
c=.device-carry
rm -rf "$c/agent" && mkdir -p "$c/agent/.device/bundle" "$c/bin"
banner="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
for entry in agent/src/main.ts:agent bench/gpu-worker-agent/transcript.ts:transcript; do
  npx esbuild "${entry%%:*}" --bundle --platform=node --target=node20 --format=esm --log-level=warning \
    --banner:js="$banner" --outfile="$c/agent/.device/bundle/${entry##*:}.mjs"
done
cp -r agent/proto "$c/agent/proto"
mkdir -p "$c/agent/worker"
cp -r agent/worker/gpufleet_worker agent/worker/tests agent/worker/pyproject.toml "$c/agent/worker/"
find "$c/agent/worker" -name __pycache__ -prune -exec rm -rf {} +
cp bench/gpu-worker-agent/device-run.sh "$c/"
# grpcio as requirements-ci.txt pins it (the image's is older than the committed stubs allow), for CPython 3.12.
if ! compgen -G "$c/whl/grpcio-1.85.1-*.whl" >/dev/null; then
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$c/whl" grpcio==1.85.1
fi
# Compressing Node takes minutes on two shared cores: kept from an earlier pack when the binary is unchanged.
for b in node nats-server; do
  src="$(command -v "$b")"
  if [[ ! -f "$c/bin/$b.xz" || "$(cat "$c/bin/$b.sha256" 2>/dev/null)" != "$(sha256sum <"$src")" ]]; then
    xz -T2 -6 -c "$src" >"$c/bin/$b.xz" && sha256sum <"$src" >"$c/bin/$b.sha256"
  fi
done
du -sh "$c"; du -sh "$c"/* "$c"/bin/*
