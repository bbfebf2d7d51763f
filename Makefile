# mdt: the commands a newcomer needs. Only Python >= 3.11 is required.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app mdt
STAMP  := $(VENV)/.installed

.PHONY: run test test-sqlite test-postgresql lint bench install migrate clean help

help:
	@echo "make run     start web, worker and beat with demo data (SQLite, no servers needed)"
	@echo "make test    run the whole suite on SQLite and on PostgreSQL"
	@echo "make lint    ruff (lint and import order) and mypy"
	@echo "make bench   run the benchmarks (see docs/performance.md)"

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(FLASK) db upgrade
	$(FLASK) demo load
	@echo
	@echo "mdt is starting at http://127.0.0.1:5000  (Ctrl-C stops web, worker and beat)"
	@echo
	$(BIN)/honcho start -f Procfile.dev

test: $(STAMP)
	$(MAKE) test-sqlite
	$(MAKE) test-postgresql

test-sqlite: $(STAMP)
	MDT_TEST_DB=sqlite $(BIN)/python -m pytest $(PYTEST_ARGS)

test-postgresql: $(STAMP)
	MDT_TEST_DB=postgresql $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check mdt worker tests bench migrations
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

migrate: $(STAMP)
	$(FLASK) db migrate -m "$(m)"

clean:
	rm -rf $(VENV) instance .pytest_cache
