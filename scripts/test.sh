#!/usr/bin/env bash
# `npm test`: type-check, lint, format check, then every vitest test (unit + integration on a real local
# cluster), then the Python worker's CPU tests (scripts/test-python.sh). Sets up what the integration suite needs first (Debian
# packages, cached Kubernetes binaries), so it works on a fresh machine. Ends with one combined
# "N passed, N failed, N skipped" line (vitest + pytest), the line CI reads.
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
step "format (prettier, line width)"
npm run --silent format:check
step "vitest (unit + integration)"
mkdir -p .gpufleet
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=.gpufleet/vitest-results.json || status=$?
step "python worker (ruff + pytest, CPU)"
bash scripts/test-python.sh || status=1
node -e '
  const fs = require("fs");
  let v = { passed: 0, failed: 1, skipped: 0 }; // no results file: vitest did not finish, count a failure
  try {
    const r = JSON.parse(fs.readFileSync(".gpufleet/vitest-results.json", "utf8"));
    v = { passed: r.numPassedTests, failed: r.numFailedTests, skipped: r.numPendingTests + r.numTodoTests };
  } catch {}
  console.log(`\nvitest: ${v.passed} passed, ${v.failed} failed, ${v.skipped} skipped`);
  let p = { passed: 0, failed: 1, skipped: 0 }; // no counts file: the Python suite did not report, count a failure
  try { p = JSON.parse(fs.readFileSync(".gpufleet/pytest-counts.json", "utf8")); } catch {}
  console.log(`pytest: ${p.passed} passed, ${p.failed} failed, ${p.skipped} skipped`);
  console.log(`${v.passed + p.passed} passed, ${v.failed + p.failed} failed, ${v.skipped + p.skipped} skipped`);
' || status=1
echo "npm test took $((SECONDS - t0)) s"
exit $status
