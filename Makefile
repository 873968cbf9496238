# Two commands on a fresh clone: `make run` (the product) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp

.PHONY: install test run demo sandbox bench lint format check clean migrate

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# DEBUG is off by default (config/settings.py); the two local targets turn it on,
# for them and for the migrate they depend on. `DEBUG=false make run` keeps it off.
run demo: export DEBUG ?= true

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

migrate: $(STAMP)
	$(PY) manage.py migrate --no-input

run: migrate
	$(PY) manage.py install_flows
	$(PY) manage.py ensure_admin
	@echo "admin: http://127.0.0.1:8000/admin/"
	$(PY) manage.py serve 127.0.0.1:8000

demo: migrate
	$(PY) manage.py demo

sandbox: $(STAMP)
	$(PY) -m sandbox --port $(or $(SANDBOX_PORT),8100)

bench: $(STAMP)
	$(PY) benchmarks/intake.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
