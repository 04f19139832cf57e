# The README's commands. `make run` sets up and serves the hub on its embedded default;
# `make test` sets up and runs every check CI runs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run test lint typecheck test-unit test-integration bench install install-dev migrate clean

$(VENV)/.installed-base: requirements/base.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements/base.txt
	touch $@

$(VENV)/.installed-dev: requirements/base.txt requirements/prod.txt requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements/dev.txt
	touch $@ $(VENV)/.installed-base

install: $(VENV)/.installed-base
install-dev: $(VENV)/.installed-dev

migrate: install
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py collectstatic --no-input -v 0

run: migrate
	$(PY) manage.py serve

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install-dev
	$(VENV)/bin/mypy

test-unit: install-dev
	$(PY) -m pytest

test-integration: install-dev
	$(PY) -m tests.integration.launch

test: lint typecheck test-unit test-integration

# The benchmarks (about an hour; not part of `make test`): `make bench BENCH_ARGS=--quick` for a
# short smoke run, `BENCH_ARGS="--only enqueue"` for one row. Results in bench/RESULTS.md.
bench: install-dev
	$(PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var
