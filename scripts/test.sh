#!/usr/bin/env bash
# `npm test`: type-check, lint, then every vitest test (unit + integration on a real local cluster).
# Sets up what the integration suite needs first (Debian packages, cached Kubernetes binaries), so it works on a
# fresh machine. Ends with one "N passed, N failed, N skipped" line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*"; }
t0=$SECONDS
step "system packages and Kubernetes binaries"
bash scripts/setup-system.sh >/dev/null
step "type-check"
npx tsc --noEmit -p tsconfig.json
step "lint"
npx eslint --max-warnings 0 .
step "vitest (unit + integration)"
mkdir -p .gpufleet
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=.gpufleet/vitest-results.json || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(".gpufleet/vitest-results.json", "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`\nvitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' || true
echo "npm test took $((SECONDS - t0)) s"
exit $status
