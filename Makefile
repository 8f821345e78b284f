# ketnoi — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATABASE ?= sqlite:///var/ketnoi.db
HOST ?= 127.0.0.1
PORT ?= 8080
PYTEST_ARGS ?=

.PHONY: install run serve migrate check lint typecheck test test-sqlite bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/ketnoi migrate --database $(DATABASE)

## make run: create .venv, install, initialise the SQLite database under ./var, load demo data, serve.
run: migrate
	@$(BIN)/ketnoi demo seed --database $(DATABASE) 2>/dev/null || true
	$(BIN)/ketnoi serve --database $(DATABASE) --host $(HOST) --port $(PORT)

## make check: lint, types and architecture contracts.
check: install
	$(BIN)/ruff check ketnoi tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

## make test: the whole suite on SQLite and PostgreSQL (starts the local PostgreSQL if needed).
test: check
	@pg_url=$$(scripts/pg-test-setup.sh) || pg_url=""; \
	if [ -z "$$pg_url" ]; then echo "PostgreSQL not available: its tests will skip (and fail under CI=true)"; fi; \
	KETNOI_TEST_POSTGRES_URL="$$pg_url" $(BIN)/pytest -n 2 -q -p no:cacheprovider $(PYTEST_ARGS)

test-sqlite: install
	$(BIN)/pytest -n 2 -q -p no:cacheprovider -k "not postgres" $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
