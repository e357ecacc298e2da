# The two commands of the README: `make demo` and `make test`. Everything they need is
# installed from here, so a fresh clone on a fresh machine works. The gates `.ci/run` adds
# (lint, typecheck) and the quick tier (test-fast) are described in docs/development.md.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast install system-deps services lint format typecheck ci compose-check clean

# The first install takes a few minutes: it says what it is doing, one line per package.
$(STAMP): requirements.txt requirements-modeling.txt requirements-dev.txt
	@test -x $(PY) || { echo "==> Creating the virtual environment in $(VENV) ($(PYTHON))"; $(PYTHON) -m venv $(VENV); }
	@echo "==> Upgrading pip"
	@$(PY) -m pip install --quiet --upgrade pip
	@echo "==> Installing Python packages from requirements-dev.txt (a few minutes the first time; later runs skip this)"
	@set -o pipefail; $(PY) -m pip install --progress-bar off -r requirements-dev.txt \
		| awk '/^(Collecting|Successfully installed)/ { print "    " $$0; fflush() }'
	@touch $(STAMP)
	@echo "==> Python packages installed"

install: $(STAMP)

# Debian packages: Chromium for the browser tests, docker-compose to validate the compose file.
system-deps:
	@bash scripts/system-deps.sh

services:
	@bash scripts/services.sh

demo: install
	@bash scripts/demo.sh

# Extra pytest arguments for test and test-fast: make test-fast PYTEST_ARGS="-x tests/annotation"
PYTEST_ARGS ?=

test: install system-deps services
	@bash scripts/test.sh $(PYTEST_ARGS)

# The tests that need neither a browser nor a Celery worker and are not marked slow; the same
# database and Redis as `make test`. docker-compose is the one system tool they use.
test-fast: install services
	@bash scripts/system-deps.sh docker-compose
	@bash scripts/test.sh -m "not browser and not worker and not slow" $(PYTEST_ARGS)

# Lint and format check; read-only, like CI. `make format` rewrites files.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# mypy with django-stubs; files and strictness are in pyproject.toml ([tool.mypy]).
typecheck: install
	DJANGO_DEBUG=1 $(VENV)/bin/mypy

# What CI runs: lint, types, then the whole suite.
ci:
	@bash .ci/run

compose-check: system-deps
	DJANGO_SECRET_KEY=compose-check-only docker-compose -f docker-compose.yml config -q

clean:
	rm -rf var build
