# One entry point per chore. Everything runs inside ./.venv, created on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install run serve migrate seed test lint format bench loadtest worker beat clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python -m erp_api migrate

seed: migrate
	$(BIN)/python -m erp_api seed

# Prints the local admin key (kept in var/admin-key, mode 0600; created on first start), then runs
# the API, a worker and beat together; Ctrl-C stops all three.
run: seed
	$(BIN)/python -m erp_api keys local-admin
	$(BIN)/python -m tasks run-all

# A Celery worker on every queue (high_priority, aggregations, maintenance, webhooks).
worker: migrate
	$(BIN)/python -m tasks worker

# The scheduler of the periodic jobs; run exactly one.
beat: install
	$(BIN)/python -m tasks beat

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m benchmarks.run_all

loadtest: install
	$(BIN)/python -m loadtests.run $(LOADTEST_ARGS)
	$(BIN)/python -m loadtests.run --spike $(LOADTEST_ARGS)

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf var reports .pytest_cache .mypy_cache .ruff_cache
