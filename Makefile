# platewatch developer entry points. Everything installs into .venv and var/ (both git-ignored).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lock loadtest loadtest-faust bench bench-recognition proto proto-check lint test test-unit test-integration run stop migrate clean

$(STAMP): pyproject.toml requirements.lock
	@echo ">> creating virtualenv and installing dependencies (first run downloads ~1 GB; progress below)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# The lock is the exact, tested set (pip freeze); installing it without resolution is fast and
	@# reproducible. It holds opencv-python-headless only: rapidocr's GUI opencv-python needs libGL.
	$(BIN)/pip install --progress-bar on --no-deps -r requirements.lock
	$(BIN)/pip install --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

# Refresh the lock after changing dependencies in pyproject.toml (then review the diff).
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[dev,triton]'
	$(BIN)/pip uninstall -y opencv-python
	$(BIN)/pip freeze --exclude-editable > requirements.lock

proto: $(STAMP)
	$(BIN)/python proto/generate.py

proto-check: $(STAMP)
	$(BIN)/python proto/generate.py --check

LINT_PATHS := services tests proto deploy/grafana $(wildcard loadtest)

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy services

test: $(STAMP) lint
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -ra -m "not integration and not e2e" $(PYTEST_ARGS)

run: $(STAMP)
	$(BIN)/python -m services.stack run

stop: $(STAMP)
	$(BIN)/python -m services.stack stop

migrate: $(STAMP)
	$(BIN)/platewatch migrate

# Streaming load benchmark (not a test): prints a JSON summary as its last line.
# Example: make loadtest LOADTEST_ARGS="--rate 5000 --duration 300 --normalizers 2"
loadtest: $(STAMP)
	$(BIN)/python -m loadtest.stream $(LOADTEST_ARGS)

# faust-streaming vs aiokafka throughput; faust is a benchmark-only extra, never a product dependency.
loadtest-faust: $(STAMP)
	$(BIN)/pip install -e '.[bench]'
	$(BIN)/python -m loadtest.faust_bench $(LOADTEST_ARGS)

# Benchmarks (not tests). First the whole read path (decode, find, read) on the shared dev sets when
# they are present (`platewatch bench accuracy DIR`, JSON per set); then search/analytics on synthetic
# reads built inside a throw-away embedded ClickHouse (p50/p95 per query, one JSON object last).
# Example: make bench BENCH_ARGS="--reads 100000000" ACCURACY_ARGS="--split heldout"
DATASETS ?= ../shared/datasets
ACCURACY_ARGS ?=
BENCH_ARGS ?= --reads 10000000
bench: $(STAMP)
	@for set in $(DATASETS)/openalpr-eu $(DATASETS)/openalpr-us-crops; do \
		if [ -d "$$set" ]; then $(BIN)/platewatch bench accuracy "$$set" $(ACCURACY_ARGS) || exit 1; \
		else echo "bench accuracy: $$set absent, skipped"; fi; \
	done
	@# The per-frame cost goal is for 1280x720 camera frames: the EU photos fitted onto such frames.
	@if [ -d "$(DATASETS)/openalpr-eu" ]; then \
		$(BIN)/platewatch bench accuracy "$(DATASETS)/openalpr-eu" --frame 1280x720 $(ACCURACY_ARGS) || exit 1; fi
	@# Real photos as a phone held upright frames them: the EU photos cut to 3:4 portrait around their plate.
	@if [ -d "$(DATASETS)/openalpr-eu" ]; then \
		$(BIN)/python -m services.inference.training.frame_variants portrait-photo \
			"$(DATASETS)/openalpr-eu" var/variants/portrait-eu >/dev/null && \
		$(BIN)/platewatch bench accuracy var/variants/portrait-eu $(ACCURACY_ARGS) || exit 1; fi
	@# Real photos tilted: the EU photos turned 5-15 degrees about their plate.
	@if [ -d "$(DATASETS)/openalpr-eu" ]; then \
		$(BIN)/python -m services.inference.training.frame_variants tilt \
			"$(DATASETS)/openalpr-eu" var/variants/tilt-eu >/dev/null && \
		$(BIN)/platewatch bench accuracy var/variants/tilt-eu $(ACCURACY_ARGS) || exit 1; fi
	@# Real US plates in real scenes: each held-out US crop in place of the plate of a held-out EU
	@# photo, at camera scale (the plate classifier trained on train-half composites).
	@if [ -d "$(DATASETS)/openalpr-us-crops" ] && [ -d "$(DATASETS)/openalpr-eu" ]; then \
		$(BIN)/python -m services.inference.training.frame_variants us-scene "$(DATASETS)/openalpr-us-crops" \
			var/variants/us-scene-heldout --scenes "$(DATASETS)/openalpr-eu" --split heldout >/dev/null && \
		$(BIN)/platewatch bench accuracy var/variants/us-scene-heldout $(ACCURACY_ARGS) || exit 1; fi
	$(BIN)/platewatch bench search --json $(BENCH_ARGS)

# Recognition accuracy on the shared dev datasets (../shared/datasets), both recognizers, JSON.
bench-recognition: $(STAMP)
	$(BIN)/platewatch bench recognition

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
