# Segue: `make run` runs an example embedded (no server); `make test` runs the suite;
# `make chart` renders the Helm chart with each values file into build/chart/ for review.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
EXAMPLE ?= examples/quickstart.yaml
PYTEST_ARGS ?=

.PHONY: run test lint format bench services chromium install dev chart clean

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Segue needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e .
	@touch $@

$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e '.[dev,gpu]'
	@touch $(VENV)/.installed $@

$(VENV)/.chart-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e '.[chart]'
	@touch $(VENV)/.installed $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

run: $(VENV)/.installed
	$(VENV)/bin/segue run $(EXAMPLE)

chart: $(VENV)/.chart-installed
	$(PY) scripts/render_chart.py --out build/chart

services:
	scripts/ensure-services.sh

chromium:
	scripts/ensure-chromium.sh

test: $(VENV)/.dev-installed services chromium
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy orchestrator nodes workers

format: $(VENV)/.dev-installed
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: $(VENV)/.dev-installed
	$(PY) benchmarks/bench_planner.py
	$(PY) benchmarks/bench_embedded.py
	scripts/ensure-services.sh redis postgres
	$(PY) benchmarks/bench_celery.py
	$(PY) benchmarks/bench_streaming.py

clean:
	rm -rf $(VENV) .segue .pytest_cache .mypy_cache .ruff_cache .hypothesis
