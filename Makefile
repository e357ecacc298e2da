# The two commands of the README: `make demo` and `make test`. Everything they need is
# installed from here, so a fresh clone on a fresh machine works.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install system-deps services lint bench compose-check clean

$(STAMP): requirements.txt requirements-modeling.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# Debian packages: Chromium for the browser tests, docker-compose to validate the compose file.
system-deps:
	@bash scripts/system-deps.sh

services:
	@bash scripts/services.sh

demo: install
	@bash scripts/demo.sh

test: install system-deps services
	@bash scripts/test.sh

lint: install
	$(VENV)/bin/ruff check .

compose-check: system-deps
	docker-compose -f docker-compose.yml config -q

clean:
	rm -rf var build
