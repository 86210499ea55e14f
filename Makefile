# The one entry point for people and CI. Everything installs into .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MARIADB_DIR := $(CURDIR)/.mariadb
PG_DIR := $(CURDIR)/.pg
PYTEST_ARGS ?=
# pytest-xdist workers for make test: one per core (each with its own server databases).
WORKERS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: install run test lint docs bench stress clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e ".[all]" --group test --group lint --group docs
	touch $(STAMP)

install: $(STAMP)

## run: a producer and a consumer process sharing an SQLite queue
run: install
	$(BIN)/python examples/producer_consumer.py

## test: the whole suite on asyncio and trio, with a throwaway MariaDB and PostgreSQL 15 on 127.0.0.1: in
## parallel (WORKERS, one per core), then the few tests that need the servers to themselves (-m serial);
## prints the 30 slowest
test: install
	@status=0; \
	scripts/mariadb.sh start $(MARIADB_DIR) || exit 1; \
	trap 'scripts/mariadb.sh stop $(MARIADB_DIR); scripts/postgres.sh stop $(PG_DIR)' EXIT INT TERM; \
	scripts/postgres.sh start $(PG_DIR) || exit 1; \
	set -a; . $(MARIADB_DIR)/env; . $(PG_DIR)/env; set +a; \
	$(BIN)/python -m pytest -n $(WORKERS) -m "not serial" --durations=30 $(PYTEST_ARGS) || status=$$?; \
	$(BIN)/python -m pytest -m serial $(PYTEST_ARGS) || [ $$? -eq 5 ] || status=1; \
	exit $$status

## lint: ruff check, ruff format --check, mypy --strict; the typed example under mypy --strict and basedpyright;
## and the docs build
lint: install docs
	$(BIN)/ruff check persistq tests benchmarks examples
	$(BIN)/ruff format --check persistq tests benchmarks examples
	$(BIN)/mypy --strict persistq
	MYPYPATH=$(CURDIR) $(BIN)/mypy --strict tests/typing
	$(BIN)/basedpyright --pythonpath $(BIN)/python

## docs: the reference site into site/; --strict: a warning (broken link, unrenderable docstring) fails
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## bench: persistq beside persist-queue 1.1.0 and diskcache, then the server engines with 1 and 4 processes
## on a throwaway MariaDB and PostgreSQL (writes benchmarks/RESULTS.md and benchmarks/MYSQL_RESULTS.md), the
## file queue's fsyncs per operation (strace), and cross-process wake-up latency (benchmarks/WAKEUP_RESULTS.md)
bench: install
	$(BIN)/python -m pip install --quiet --group bench
	@status=0; \
	scripts/mariadb.sh start $(MARIADB_DIR) || exit 1; \
	trap 'scripts/mariadb.sh stop $(MARIADB_DIR); scripts/postgres.sh stop $(PG_DIR)' EXIT INT TERM; \
	scripts/postgres.sh start $(PG_DIR) || exit 1; \
	set -a; . $(MARIADB_DIR)/env; . $(PG_DIR)/env; set +a; \
	$(BIN)/python benchmarks/run_benchmark.py 1000 console || status=$$?; \
	$(BIN)/python benchmarks/mysql_processes.py --repeat 3 --out benchmarks/MYSQL_RESULTS.md || status=$$?; \
	$(BIN)/python benchmarks/file_fsyncs.py || status=$$?; \
	$(BIN)/python benchmarks/wakeup_latency.py --out benchmarks/WAKEUP_RESULTS.md || status=$$?; \
	exit $$status

## stress: the crash harness at full size (thousands of SIGKILLs) and the stress-marked tests
stress: install
	PERSISTQ_CRASH_ROUNDS=250 $(BIN)/python -m pytest tests/crash --timeout 1800 $(PYTEST_ARGS)
	PERSISTQ_STRESS_ITEMS=50000 $(BIN)/python -m pytest tests/test_stress.py --timeout 1800 $(PYTEST_ARGS)

clean:
	-scripts/mariadb.sh stop $(MARIADB_DIR)
	-scripts/postgres.sh stop $(PG_DIR)
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
