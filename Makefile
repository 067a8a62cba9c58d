# cadenza: `make demo` runs an example end to end; `make test` runs the test suite.
# Both work on a fresh machine with nothing but Python >= 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-unit test-integration lint typecheck check install clean bench bench-full bench-server bench-flow bench-flow-full load test-faults

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m worker.dev.demo

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration tests/replay

lint: $(STAMP)
	$(BIN)/ruff check cadenza workflows activities worker tests benchmarks
	$(BIN)/ruff format --check cadenza workflows activities worker tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

check: test

clean:
	rm -rf $(VENV) .cadenza .pytest_cache .mypy_cache .ruff_cache

bench-server: $(STAMP)
	$(BIN)/python -m benchmarks.server_settings 50 3

bench-flow: $(STAMP)
	$(BIN)/python -m benchmarks.control_flow

bench-flow-full: $(STAMP)
	$(BIN)/python -m benchmarks.control_flow --full

# cadenza against hand-written Temporal workflows (benchmarks/floor.py), same run, ratios
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# 1,000 workflows at once against one worker process: throughput, latency, memory
load: $(STAMP)
	$(BIN)/python -m benchmarks.load 1000

# the fault suite alone (CI runs it inside `make test`)
test-faults: $(STAMP)
	$(BIN)/python -m pytest -q -s tests/faults

bench-full: $(STAMP)
	$(BIN)/python -m benchmarks.run --full
