# imageeditor: `make run` serves, `make test` checks everything. Both set themselves up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUF := node_modules/.bin/buf
STAMP := $(VENV)/.installed

.PHONY: setup run test lint gen check-gen clean

setup: $(STAMP) $(BUF)

# The virtualenv lives in the repository; reinstall when the dependency list changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[server,worker,dev]'
	touch $(STAMP)

$(BUF): package.json
	npm install --no-fund --no-audit --silent
	touch $(BUF)

run: setup
	$(BIN)/imageeditor serve

gen: $(STAMP)
	$(BIN)/python scripts/generate.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BUF) lint

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) node_modules var .pytest_cache .mypy_cache .ruff_cache
