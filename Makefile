# Segmenta's commands. `make run` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export SEGMENTA_HOME ?= $(CURDIR)/data
# dg and dbt subprocesses find the project's tools first
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
DBT_SOURCES := $(shell find dbt_project -path dbt_project/target -prune -o -path dbt_project/logs -prune -o -type f -print)

# SEGMENTA_ENGINE=spark: the venv also holds pyspark and dbt-spark (requirements-spark.lock, the
# main lock plus the `spark` extra); the embedded default does not download them (345 MB)
ENGINE_LOCK := $(if $(filter spark,$(SEGMENTA_ENGINE)),requirements-spark.lock,requirements.lock)
INSTALLED := $(VENV)/.installed$(if $(filter spark,$(SEGMENTA_ENGINE)),-spark)

.PHONY: help install install-spark run test test-spark test-spark-run test-fast ui mlflow serve generate summary check lint docs clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# --compile-bytecode writes every module's .pyc at install. Where PYTHONDONTWRITEBYTECODE is set
# (as on CI), each Python process would otherwise compile mlflow, dagster and pandas from source
# again: `import mlflow` takes 7.4 s instead of 2.8 s, and every step and test pays it.
$(INSTALLED): pyproject.toml $(ENGINE_LOCK)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip sync --quiet --compile-bytecode --python $(PY) $(ENGINE_LOCK)
	$(VENV)/bin/uv pip install --quiet --python $(PY) --no-deps -e .
	@# the other lock's stamp no longer tells what the venv holds
	rm -f $(VENV)/.installed $(VENV)/.installed-spark
	touch $@

install: $(INSTALLED)  ## create .venv and install the pinned dependencies (SEGMENTA_ENGINE=spark: with pyspark)

install-spark:  ## the pinned dependencies and the Spark engine's (pyspark, dbt-spark; needs Java 17)
	$(MAKE) install SEGMENTA_ENGINE=spark

dbt_project/target/manifest.json: $(INSTALLED) $(DBT_SOURCES)
	cd dbt_project && ../$(VENV)/bin/dbt parse --quiet --profiles-dir .

run: install dbt_project/target/manifest.json  ## generate sample data if absent, materialize everything, print a summary (DEMO=1: also sync to local platform emulators)
	$(PY) -m dagster_project.cli run $(if $(DEMO),--demo-destinations)

test: install dbt_project/target/manifest.json  ## run the test suite (unit, integration, end-to-end)
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder

test-spark:  ## the Spark engine's tests and the dbt parity lane (pyspark in local mode; needs Java 17); CI runs them after `make test`
	$(MAKE) install-spark
	$(MAKE) dbt_project/target/manifest.json SEGMENTA_ENGINE=spark
	$(PY) -m pytest -p no:xdist tests/test_spark_engine.py tests/test_spark_parity.py

test-spark-run:  ## segmenta run on Spark and on DuckDB from the same landing files, every table and the summary compared (about 6 minutes; not in CI)
	$(MAKE) install-spark
	$(MAKE) dbt_project/target/manifest.json SEGMENTA_ENGINE=spark
	$(PY) -m pytest -p no:xdist tests/test_spark_pipeline.py

test-fast: install dbt_project/target/manifest.json  ## the tests without the end-to-end run
	$(PY) -m pytest -m "not e2e"

ui: install dbt_project/target/manifest.json  ## Dagster UI on http://127.0.0.1:3000
	$(PY) -m dagster_project.cli doctor --repair || true
	DAGSTER_HOME=$(SEGMENTA_HOME)/dagster $(VENV)/bin/dg dev --host 127.0.0.1 --port 3000

mlflow: install  ## MLflow UI on http://127.0.0.1:5000 over SEGMENTA_HOME's runs and registry
	$(VENV)/bin/mlflow ui --backend-store-uri "sqlite:///$(SEGMENTA_HOME)/mlflow/mlflow.db" \
		--default-artifact-root "$(SEGMENTA_HOME)/mlflow/artifacts" --host 127.0.0.1 --port 5000

serve: install  ## the storefront personalization API on http://127.0.0.1:8000 (PORT=...; keys: SEGMENTA_API_KEYS; builds its cache if missing)
	$(PY) -m personalization serve --build-if-missing $(if $(PORT),--port $(PORT)) $(ARGS)

generate: install  ## write the sample store (ARGS="--customers 5000 --days 365 --force")
	$(PY) -m generator $(ARGS)

summary: install  ## print segment sizes and where everything lives
	$(PY) -m dagster_project.cli summary

check: install dbt_project/target/manifest.json  ## validate the Dagster definitions (dg check defs)
	$(VENV)/bin/dg check defs

lint: install dbt_project/target/manifest.json  ## ruff on the Python code, sqlfluff (dbt templater) on the models, the SQL portability lint
	$(VENV)/bin/ruff check core ingest generator segments ml activation personalization \
		dagster_project tests benchmarks
	@# DuckDB-only SQL outside dbt_project/macros/portable/ (docs/portable-sql.md)
	$(PY) -m core.sql_portability
	@# the dbt templater opens a warehouse: an empty one, so every clone lints the same SQL
	@# (a full build's branch of the incremental models, whatever the local warehouse holds)
	lint_home=$$(mktemp -d) && SEGMENTA_HOME=$$lint_home $(VENV)/bin/sqlfluff lint dbt_project/models; \
		status=$$?; rm -rf "$$lint_home"; exit $$status

docs: install dbt_project/target/manifest.json  ## build and serve the dbt docs site on http://127.0.0.1:8080
	cd dbt_project && ../$(VENV)/bin/dbt docs generate --profiles-dir . && \
		../$(VENV)/bin/dbt docs serve --profiles-dir . --host 127.0.0.1 --port 8080 --no-browser

clean:  ## remove the runtime home (SEGMENTA_HOME) and dbt's build output
	rm -rf "$(SEGMENTA_HOME)" dbt_project/target dbt_project/logs
