# cadenza: `make demo` runs an example end to end; `make test` runs the test suite.
# Both work on a fresh machine with nothing but Python >= 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-unit test-integration lint typecheck check install clean bench bench-inprocess bench-peers bench-profile bench-settings bench-full bench-server bench-flow bench-flow-full load test-faults

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

# cadenza against a plain Temporal floor in the production topology: server, `cadenza worker`
# process, plain floor worker process, this process as client (benchmarks/production.py)
bench: $(STAMP)
	$(BIN)/python -m benchmarks.production

# the in-process scenarios: one worker hosting cadenza and the step-executor floor (benchmarks/run.py)
bench-inprocess: $(STAMP)
	$(BIN)/python -m benchmarks.run

# DBOS and Prefect beside cadenza and the floor, in their own venv (never project deps; not CI)
PEERS_VENV = .venv-peers
$(PEERS_VENV)/.stamp:
	python3 -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet dbos prefect py-spy
	touch $@

bench-peers: $(STAMP) $(PEERS_VENV)/.stamp
	$(BIN)/python -m benchmarks.peers --python $(PEERS_VENV)/bin/python

# py-spy profiles of the cadenza worker process and the floor's, same workload
bench-profile: $(STAMP) $(PEERS_VENV)/.stamp
	$(BIN)/python -m benchmarks.profile --py-spy $(PEERS_VENV)/bin/py-spy

# server and worker settings measured on the throughput scenario
bench-settings: $(STAMP)
	$(BIN)/python -m benchmarks.throughput_settings

# 1,000 workflows at once against one worker process: throughput, latency, memory
load: $(STAMP)
	$(BIN)/python -m benchmarks.load 1000

# the fault suite alone (CI runs it inside `make test`)
test-faults: $(STAMP)
	$(BIN)/python -m pytest -q -s tests/faults

bench-full: $(STAMP)
	$(BIN)/python -m benchmarks.run --full
