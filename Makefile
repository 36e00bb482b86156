# The two commands of the README:
#   make demo   install, generate sample data, backfill it, start the Dagster UI with the daemon
#   make test   install, run the test suite (DuckDB and the PostgreSQL server at 127.0.0.1:5432)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DAYS   ?= 30
PORT   ?= 3000
HOST   ?= 127.0.0.1
PYTEST_ARGS ?= -n 2
CHROMIUM ?= /usr/bin/chromium
# Playwright (a dev dependency) drives Debian's chromium in the browser test; it never downloads one.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: install chromium demo data backfill forecast ui test lint format bench bench-quick dbt-parse clean

install: $(VENV)/.installed chromium

# Reinstalled whenever the dependencies change. The dbt manifest is prepared here so the Dagster
# definitions load on a fresh clone.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	$(MAKE) dbt-parse
	touch $@

# Debian's chromium for the browser test of the Dagster UI (tests/test_browser_ui.py): apt-get as
# root or through passwordless sudo; otherwise a warning says what to run (everything else works).
chromium:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	elif command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then \
	  echo "installing Debian's chromium for the browser test (sudo)"; \
	  sudo -n apt-get update -qq && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "warning: $(CHROMIUM) is missing and installing it needs root: run 'sudo apt-get install -y chromium'," \
	       "then 'make install' again (only the browser test needs it)." >&2; \
	fi

# Parsed twice, so dbt's partial parsing can reuse each: with the settings the pipeline passes to dbt
# (kept per connection under dbt_project/target/partial_parse/), and as a hand run inside
# dbt_project/ sees the profile (dbt_project/target/partial_parse.msgpack).
dbt-parse:
	$(BIN)/python -m analytics_pipeline.resources.dbt

demo: install data backfill forecast ui

data: install
	$(BIN)/analytics-pipeline generate --days $(DAYS) --write-start-date

backfill: install
	$(BIN)/analytics-pipeline backfill --days $(DAYS)

# Model selection and a forecast vintage as of yesterday, then the accuracy and reorder marts.
forecast: install
	$(BIN)/analytics-pipeline backfill --days 1 --select 'group:forecasting'

ui: install
	$(BIN)/analytics-pipeline ui --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff (lint + format check) over the Python, sqlfluff over the dbt models and singular tests. dbt's
# templater compiles the project against a throw-away DuckDB file, never the user's warehouse.
LINT_DIR := $(or $(TMPDIR),/tmp)/analytics-pipeline-lint
lint: install
	$(BIN)/ruff check analytics_pipeline tests bench
	$(BIN)/ruff format --check analytics_pipeline tests bench
	mkdir -p $(LINT_DIR)
	ANALYTICS_WAREHOUSE=duckdb ANALYTICS_DUCKDB_PATH=$(LINT_DIR)/lint.duckdb DBT_TARGET_PATH=$(LINT_DIR)/target \
	  $(BIN)/sqlfluff lint dbt_project/models dbt_project/tests/singular

# What `make lint` checks, fixed where the tools can.
format: install
	$(BIN)/ruff check --fix analytics_pipeline tests bench
	$(BIN)/ruff format analytics_pipeline tests bench
	mkdir -p $(LINT_DIR)
	ANALYTICS_WAREHOUSE=duckdb ANALYTICS_DUCKDB_PATH=$(LINT_DIR)/lint.duckdb DBT_TARGET_PATH=$(LINT_DIR)/target \
	  $(BIN)/sqlfluff fix dbt_project/models dbt_project/tests/singular

# Benchmarks (bench/, README "Benchmarks"): writes bench/RESULTS.md. BENCH_ARGS e.g. --engines duckdb.
BENCH_ARGS ?=
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: install
	$(BIN)/python -m bench --quick --output $${TMPDIR:-/tmp}/analytics-bench-quick.md $(BENCH_ARGS)

clean:
	rm -rf data dbt_project/target dbt_project/logs
