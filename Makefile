# s3-inventory-pipeline: the front door. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
LOCK := requirements/dev.lock

.PHONY: help install test lint typecheck pytest demo smoke bench lock clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): $(LOCK) pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r $(LOCK)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

install: $(STAMP) ## Create .venv if missing and install the locked dependencies (once)

lint: $(STAMP) ## ruff lint and format check, the import layers, hadolint on the Dockerfile
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint --failure-threshold warning batch_jobs/Dockerfile

typecheck: $(STAMP) ## mypy on the package code
	$(VENV)/bin/mypy

pytest: $(STAMP) ## pytest only, one worker per core (PYTEST_ARGS="-n 0 tests/x.py" for one process)
	$(PY) -m pytest -n auto --dist loadfile $(PYTEST_ARGS)

test: lint typecheck pytest ## Install, then lint, type-check and run every test

demo: $(STAMP) ## Run the whole pipeline locally on a synthetic inventory (DEMO_ARGS="--objects 100000")
	$(PY) -m pipeline demo $(DEMO_ARGS)

smoke: $(STAMP) ## Prove a deployed stack: a small delivery through it, then removed (SMOKE_ARGS="--stack dev")
	$(PY) -m pipeline smoke $(SMOKE_ARGS)

bench: $(STAMP) ## Benchmark the jobs against gzip -dc, DuckDB and pyarrow; writes bench/results.md
	$(PY) -m bench $(BENCH_ARGS)

lock: ## Re-resolve requirements/*.lock from pyproject.toml (needs the package registry)
	rm -rf build/lock && $(PYTHON) -m venv build/lock/dev && $(PYTHON) -m venv build/lock/jobs
	build/lock/dev/bin/pip install --quiet ".[deploy,dev]"
	build/lock/dev/bin/pip freeze --exclude-editable | grep -v "^s3-inventory-pipeline" > requirements/dev.lock && echo "setuptools==$$(build/lock/dev/bin/pip show setuptools | sed -n "s/^Version: //p")" >> requirements/dev.lock
	build/lock/jobs/bin/pip install --quiet -c requirements/dev.lock .
	build/lock/jobs/bin/pip freeze | grep -v '^s3-inventory-pipeline' > requirements/jobs.lock
	@# The Lambda zip's SDK: boto3 and what it needs on python3.13/arm64, at dev.lock's versions
	build/lock/dev/bin/pip install --quiet --target build/lock/lambda --platform manylinux2014_aarch64 \
		--implementation cp --python-version 3.13 --only-binary=:all: -c requirements/dev.lock boto3
	build/lock/dev/bin/pip freeze --path build/lock/lambda > requirements/lambda.lock

clean: ## Remove the virtualenv and build output
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache
