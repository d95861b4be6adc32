# The two commands of the README: `make run` and `make test`. Both create .venv and install on first use.
VENV ?= .venv
BIN := $(VENV)/bin
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: run test test-fast docs install

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e ".[dev]"
	touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/defect-twin run

test: $(VENV)/.installed
	VENV=$(VENV) bash scripts/test.sh

# The edit loop: sync, ruff and every notebook's fast cells, two at a time; no slow cells, no pytest, no coverage.
test-fast: $(VENV)/.installed
	VENV=$(VENV) FAST=1 bash scripts/test.sh

docs: $(VENV)/.installed
	$(BIN)/python tools/build_docs.py
