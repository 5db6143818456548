#!/usr/bin/env bash
# Python worker tests (agent/worker/) on CPU: a venv under .gpufleet/pyvenv with exactly
# agent/worker/requirements-ci.txt (numpy, pytest, grpcio, grpcio-tools, protobuf, ruff; no torch, so no CUDA
# wheels), then ruff (lint + format check) and pytest. GPU tests skip with their reason when torch/CUDA are absent.
# Writes .gpufleet/pytest-counts.json ({passed, failed, skipped}) for scripts/test.sh, and ends with one
# "pytest: N passed, N failed, N skipped" line. pytest's exit code 5 (no tests collected) is a failure here: a
# suite that found nothing has tested nothing.
# `--venv-only`: only create/refresh the venv (the vitest integration test that runs the worker beside the real
# agent calls this first, since vitest runs before this script in `npm test`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=.gpufleet/pyvenv
reqs=agent/worker/requirements-ci.txt
counts=.gpufleet/pytest-counts.json
junit=.gpufleet/pytest-results.xml
mkdir -p .gpufleet
rm -f "$counts" "$junit"

# Recreate the venv when the pinned requirements change (the stamp holds their hash).
stamp="$(sha256sum "$reqs" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.requirements-sha256" 2>/dev/null)" != "$stamp" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv" || { echo "[test-python] python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$reqs"
  echo "$stamp" >"$venv/.requirements-sha256"
fi
[[ "${1:-}" == "--venv-only" ]] && exit 0

status=0
( cd agent/worker && "../../$venv/bin/ruff" check . && "../../$venv/bin/ruff" format --check . ) || {
  echo "[test-python] ruff failed" >&2
  status=1
}

pytest_status=0
( cd agent/worker && "../../$venv/bin/python" -m pytest -q -p no:cacheprovider --junitxml="../../$junit" ) ||
  pytest_status=$?
case $pytest_status in
  0) ;;
  1) status=1 ;;                                          # tests failed: counted below
  5) echo "[test-python] pytest collected no tests" >&2; status=1 ;;
  *) echo "[test-python] pytest could not run (exit $pytest_status)" >&2; status=1 ;;
esac

if [[ -f "$junit" ]]; then
  "$venv/bin/python" - "$junit" "$counts" <<'PY'
import json, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
tot = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
c = {"passed": tot["tests"] - tot["failures"] - tot["errors"] - tot["skipped"],
     "failed": tot["failures"] + tot["errors"], "skipped": tot["skipped"]}
json.dump(c, open(sys.argv[2], "w"))
print(f"pytest: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped")
PY
else
  echo "pytest: 0 passed, 1 failed, 0 skipped (no results written)"
  echo '{"passed": 0, "failed": 1, "skipped": 0}' >"$counts"
fi
exit $status
