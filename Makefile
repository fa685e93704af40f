# Two entry points: `make run` (set up + the default study) and `make test` (set up + the test suite).
# `make run STUDY=ner` (or lm, translation, generate) reproduces another study; `make run-all` every stage of dvc.yaml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
export DVC_NO_ANALYTICS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

STUDY  ?= sentiment

.PHONY: setup run run-all test lint clean

setup: $(STAMP)

# torch==2.13.0 first (the CPU build); every install goes through constraints.txt so nothing drifts.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]" 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(BIN)/python -c "import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith('2.13.0') else 'torch drifted to ' + v)"
	touch $(STAMP)

# The stages call `python`: the venv's, via PATH.
run: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro report@$(STUDY)
	@cat results/$(STUDY)/report.md

run-all: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

test: setup
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) outputs .pytest_cache
