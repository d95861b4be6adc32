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

step "ruff (lint of the exported package; settings in pyproject.toml)"
"$BIN/ruff" check defect_twin

step "mypy (type check of the exported package; settings in pyproject.toml)"
"$BIN/mypy" defect_twin

# Line coverage of defect_twin over the notebook tests and pytest together: with COVERAGE_PROCESS_START set, every
# Python process of the venv measures itself (coverage's .pth hook) and writes its own data file into $COV_DIR.
# It costs CPU time (tracing): COVERAGE=0 skips it for a quicker local run; CI measures.
COV_DIR="$PWD/_out/coverage"
rm -rf "$COV_DIR"; mkdir -p "$COV_DIR"
cov_on() { [ "${COVERAGE:-1}" = 0 ] || export COVERAGE_PROCESS_START="$PWD/pyproject.toml" COVERAGE_FILE="$COV_DIR/.coverage"; }
cov_off() { unset COVERAGE_PROCESS_START COVERAGE_FILE; }

step "notebook tests, slow-flagged real-data cells included"
# tools/nbcov.py is nbdev-test, with each export cell compiled as the lines nbdev-export wrote it to, so that a
# module's own notebook tests count toward its coverage.
cov_on
"$BIN/python" tools/nbcov.py --flags slow --n-workers 1 --timing
cov_off

step "docs (offline build; the pytest docs checks load it in Chromium)"
"$BIN/python" tools/build_docs.py

step "pytest"
cov_on
"$BIN/python" -m pytest -q tests
cov_off

if [ "${COVERAGE:-1}" != 0 ]; then
  step "coverage of defect_twin (notebook tests + pytest, subprocesses included)"
  # fails below the plan's 80 % (a full run measured 96.5 %); COVERAGE_FAIL_UNDER overrides the bar
  "$BIN/coverage" combine --quiet --data-file="$COV_DIR/.coverage" "$COV_DIR"
  "$BIN/coverage" report --data-file="$COV_DIR/.coverage" --precision=1 --fail-under="${COVERAGE_FAIL_UNDER:-80}"
  echo "line coverage of defect_twin (notebook tests + pytest): $("$BIN/coverage" report --data-file="$COV_DIR/.coverage" --format=total --precision=1) % (the plan's bar: 80 %)"
fi
