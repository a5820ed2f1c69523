# One entry point per chore. Everything runs inside ./.venv, created on first use, from the versions
# pinned in requirements.lock: the runtime alone to serve (run, migrate, worker), the dev extra as well
# for the chores that need it (test, lint, bench, loadtest).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
LOCK   := requirements.lock
PYTEST_ARGS ?=
# Test processes (pytest-xdist, tests handed out as workers free up): most of the suite's time is
# real servers, workers and browsers waited on, which two processes overlap on two cores. Three
# were faster once (852 -> 737 s on a 2-core machine) but starved the timing of the process tests:
# a coherence test's writer managed 50 writes in its 4 s where it needs 100.
PYTEST_WORKERS ?= 2

.PHONY: install install-dev lock run serve migrate seed test lint format bench loadtest scaleout worker beat clean

# uv (itself pinned in the lock) installs the rest: a cold install takes seconds instead of a minute.
$(STAMP): pyproject.toml setup.py $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c $(LOCK) uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c $(LOCK) -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c $(LOCK) -e ".[dev]"
	touch $(DEV_STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)

# Regenerates requirements.lock (every version, for Python 3.11 to 3.13) and constraints/lowest.txt
# (each direct dependency at its lower bound in pyproject.toml, which CI tests) from pyproject.toml.
lock: $(DEV_STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--custom-compile-command "make lock" --quiet --upgrade -o $(LOCK)
	$(BIN)/uv pip compile pyproject.toml --extra dev --resolution lowest-direct --python-version 3.11 \
		--custom-compile-command "make lock" --quiet --upgrade -o constraints/lowest.txt

migrate: install
	$(BIN)/erp-api migrate

seed: migrate
	$(BIN)/erp-api seed

# Runs the API, a worker and beat together; once the API answers, one block shows its address, the
# docs and the local admin key (kept in var/admin-key, mode 0600; created on first start).
# Ctrl-C stops all three.
run: seed
	$(BIN)/erp-api keys local-admin >/dev/null
	$(BIN)/erp-worker run-all

# A Celery worker on every queue (high_priority, aggregations, maintenance, webhooks).
worker: migrate
	$(BIN)/erp-worker worker

# The scheduler of the periodic jobs; run exactly one.
beat: install
	$(BIN)/erp-worker beat

test: install-dev
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install-dev
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m benchmarks.run_all

# Both profiles (base, then spike), each judged and reported on its own (reports/base_*, spike_*).
loadtest: install-dev
	$(BIN)/python -m loadtests.run $(LOADTEST_ARGS)

# Two API instances behind HAProxy, two workers and beat on PostgreSQL + Redis; one instance and one
# worker killed mid-run; figures into docs/SCALING.md (loadtests/scaleout.py).
scaleout: install-dev
	command -v haproxy >/dev/null || (apt-get update -qq && apt-get install -y -qq haproxy)
	$(BIN)/python -m loadtests.scaleout --write-docs $(SCALEOUT_ARGS)

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf var reports .pytest_cache .mypy_cache .ruff_cache
