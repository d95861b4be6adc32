#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it. Fails on the first real failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"
export MLFLOW_DISABLE_TELEMETRY=true
step() { printf '\n== %s ==\n' "$*"; }

step "notebooks and package in sync (nbdev-export, nbdev-clean change nothing)"
snap() { git status --porcelain; git diff | sha1sum; }
before=$(snap)
"$BIN/nbdev-export"; "$BIN/nbdev-clean"
after=$(snap)
if [ "$before" != "$after" ]; then
  git status --short
  echo "FAIL: nbdev-export/nbdev-clean changed files: export and clean the notebooks, then commit." >&2
  exit 1
fi
"$BIN/python" tools/readme.py --check
"$BIN/python" tools/lint_nbs.py

step "notebook tests, slow-flagged real-data cells included"
"$BIN/nbdev-test" --flags slow --n-workers 1 --timing

step "docs (offline build; the pytest docs checks load it in Chromium)"
"$BIN/python" tools/build_docs.py

step "pytest"
"$BIN/python" -m pytest -q tests
