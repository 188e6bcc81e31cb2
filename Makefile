# platewatch developer entry points. Everything installs into .venv and var/ (both git-ignored).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install proto proto-check lint test test-unit test-integration run stop migrate bench clean

$(STAMP): pyproject.toml requirements.lock
	@echo ">> creating virtualenv and installing dependencies (first run downloads ~1 GB; progress below)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --progress-bar on -c requirements.lock -e '.[dev,triton]'
	@touch $(STAMP)

install: $(STAMP)

proto: $(STAMP)
	$(BIN)/python proto/generate.py

proto-check: $(STAMP)
	$(BIN)/python proto/generate.py --check

lint: $(STAMP)
	$(BIN)/ruff check services tests proto loadtest
	$(BIN)/ruff format --check services tests proto loadtest
	$(BIN)/mypy services

test: $(STAMP)
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -ra -m "not integration and not e2e" $(PYTEST_ARGS)

run: $(STAMP)
	$(BIN)/python -m services.stack run

stop: $(STAMP)
	$(BIN)/python -m services.stack stop

migrate: $(STAMP)
	$(BIN)/platewatch migrate

bench: $(STAMP)
	$(BIN)/python -m loadtest.bench

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
