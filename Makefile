# The two commands of the README: `make run` and `make test`. Both create .venv and install on first use.
VENV ?= .venv
BIN := $(VENV)/bin
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: run test docs install

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

docs: $(VENV)/.installed
	$(BIN)/python tools/build_docs.py
