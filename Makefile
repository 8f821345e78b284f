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
# Line coverage of ketnoi/ by the suite: raise it when coverage rises, never lower it.
COVERAGE_FLOOR := 94

.PHONY: install run serve migrate check lint typecheck test test-sqlite bench screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/ketnoi migrate --database $(DATABASE)

DEMO_PATIENTS ?= 300
DEMO_DIR := var/demo-$(DEMO_PATIENTS)

DEMO_ACCOUNTS := var/demo-accounts.json
# `ketnoi token issue` signs for http://HOST:PORT/fhir: name them when they are not the defaults.
TOKEN_ENV := $(if $(filter-out 127.0.0.1:8080,$(HOST):$(PORT)),KETNOI_HOST=$(HOST) KETNOI_PORT=$(PORT) )

## make run: create .venv, install, initialise the SQLite database under ./var, load demo data, make the
## demo accounts (passwords in var/demo-accounts.json, once), serve with sign-in required.
run: migrate
	@if [ ! -f $(DEMO_DIR)/.loaded ]; then \
	  $(BIN)/ketnoi demo generate --patients $(DEMO_PATIENTS) --seed 1 --out $(DEMO_DIR) >/dev/null && \
	  $(BIN)/ketnoi load --database $(DATABASE) --owners $(DEMO_DIR)/owners.csv $(DEMO_DIR) 2>/dev/null && \
	  $(BIN)/ketnoi mpi dedupe --database $(DATABASE) >/dev/null && touch $(DEMO_DIR)/.loaded; \
	fi
	@# Exit code 1: the accounts exist but their passwords file is gone; new passwords are the only way back in.
	@if [ ! -f $(DEMO_ACCOUNTS) ]; then \
	  err=$$($(BIN)/ketnoi demo accounts --database $(DATABASE) --out $(DEMO_ACCOUNTS) --base-url http://$(HOST):$(PORT) 2>&1 >/dev/null); \
	  status=$$?; \
	  if [ $$status -eq 1 ]; then \
	    echo "$(DEMO_ACCOUNTS) was missing: new passwords for the demo accounts (ketnoi demo accounts --reset)."; \
	    $(BIN)/ketnoi demo accounts --database $(DATABASE) --out $(DEMO_ACCOUNTS) --base-url http://$(HOST):$(PORT) --reset >/dev/null || exit 1; \
	  elif [ $$status -ne 0 ]; then echo "$$err" >&2; exit $$status; fi; \
	fi
	@echo ""
	@$(BIN)/ketnoi demo sign-in $(DEMO_ACCOUNTS) --url http://$(HOST):$(PORT)
	@echo "The FHIR API: http://$(HOST):$(PORT)/fhir (sign-in required; /fhir/metadata is open)."
	@echo "  OAuth clients ketnoi demo backend and ketnoi demo app: their secrets are in $(DEMO_ACCOUNTS) (yours only)."
	@echo "  Quick try:"
	@echo '    TOKEN=$$($(TOKEN_ENV)$(BIN)/ketnoi token issue --database $(DATABASE) --user clinician --scope "user/*.rs")'
	@echo '    curl -H "Authorization: Bearer $$TOKEN" "http://$(HOST):$(PORT)/fhir/Patient?_count=2"'
	@echo ""
	@# The demo data end on 2026-06-30: a care window of ten years lets the demo clinician see the
	@# patients of their facility (ADR 0017). Production keeps the default (30 days).
	KETNOI_CARE_WINDOW_DAYS=$${KETNOI_CARE_WINDOW_DAYS:-3650} $(BIN)/ketnoi serve --database $(DATABASE) --host $(HOST) --port $(PORT) --auth on

## make screenshots: the console's main pages in Vietnamese, photographed in chromium on a fresh demo
## database (as make run makes it), into docs/screenshots/ (docs/console.md shows them).
screenshots: install
	scripts/browser-install.sh
	$(BIN)/python scripts/screenshots.py --out docs/screenshots

## make lint: style and formatting (ruff) and the architecture contracts (import-linter).
lint: install
	$(BIN)/ruff check ketnoi tests bench
	$(BIN)/ruff format --check ketnoi tests bench
	$(BIN)/lint-imports

## make typecheck: mypy --strict over the package.
typecheck: install
	$(BIN)/mypy

## make check: lint, types and architecture contracts.
check: lint typecheck

## make test: the whole suite on SQLite and PostgreSQL (starts the local PostgreSQL if needed), with the
## Bulk Data Tester installed into .bdt/ (Node packages from npm, once: tests/bdt/tester/ORIGIN.md).
test: check
	scripts/bdt-install.sh
	scripts/browser-install.sh
	@pg_url=$$(scripts/pg-test-setup.sh) || pg_url=""; \
	if [ -z "$$pg_url" ]; then echo "PostgreSQL not available: its tests will skip (and fail under CI=true)"; fi; \
	KETNOI_TEST_POSTGRES_URL="$$pg_url" $(BIN)/pytest -n 2 -q -p no:cacheprovider \
	  --cov=ketnoi --cov-report=term:skip-covered --cov-fail-under=$(COVERAGE_FLOOR) $(PYTEST_ARGS)

test-sqlite: install
	scripts/browser-install.sh
	$(BIN)/pytest -n 2 -q -p no:cacheprovider -k "not postgres" $(PYTEST_ARGS)

## make serve: serve the database as it is (no demo data, no migration); DATABASE=... to choose.
serve: install
	$(BIN)/ketnoi serve --database $(DATABASE) --host $(HOST) --port $(PORT) --auth on

bench: install
	$(BIN)/python bench/run.py
	$(BIN)/python bench/validate.py
	$(BIN)/python bench/xml130.py
	$(BIN)/python bench/mpi_accuracy.py
	$(BIN)/python bench/mpi.py
	$(BIN)/python bench/subscriptions.py
	$(BIN)/python bench/export.py --patients 2000

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
