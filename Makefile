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

.PHONY: install demo data backfill ui test dbt-parse clean

install: $(VENV)/.installed

# Reinstalled whenever the dependencies change. The dbt manifest is prepared here so the Dagster
# definitions load on a fresh clone.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	$(MAKE) dbt-parse
	touch $@

# Parsed with the same settings the pipeline passes to dbt, so dbt's partial parsing can reuse it.
dbt-parse:
	$(BIN)/python -m analytics_pipeline.resources.dbt

demo: install data backfill ui

data: install
	$(BIN)/analytics-pipeline generate --days $(DAYS)

backfill: install
	$(BIN)/analytics-pipeline backfill --days $(DAYS)

ui: install
	$(BIN)/analytics-pipeline ui --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf data dbt_project/target dbt_project/logs
