# imageeditor: `make run` serves, `make test` checks everything. Both set themselves up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUF := node_modules/.bin/buf
STAMP := $(VENV)/.installed
NUMBA_WARM := $(VENV)/.numba-warm
THUMBOR_VENV := var/bench/thumbor-venv
THUMBOR := $(THUMBOR_VENV)/bin/thumbor
REMBG_VENV := var/bench/rembg-venv
REMBG := $(REMBG_VENV)/bin/rembg

.PHONY: setup models run test lint gen clean bench tools lock python-version

setup: $(STAMP) $(BUF) models

# Every install takes its versions from constraints.txt (pinned, in the repository), so two
# machines run the same dependencies; `make lock` refreshes it from the newest releases.
PIP_INSTALL := $(BIN)/pip install --quiet --constraint constraints.txt

python-version:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "imageeditor needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) --version 2>&1)." \
	       "Run make with PYTHON=python3.11 (or newer)."; exit 1; }

# The virtualenv lives in the repository; reinstall when the dependencies change. `make run`
# installs what serving needs ($(RUN_STAMP)); `make test` adds the dev tools ($(STAMP)).
RUN_STAMP := $(VENV)/.installed-run
$(RUN_STAMP): pyproject.toml constraints.txt | python-version
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(PIP_INSTALL) -e '.[server,worker,cli]'
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(PIP_INSTALL) -e '.[server,worker,cli,dev]'
	touch $(STAMP)

lock: python-version
	rm -rf var/lock-venv
	$(PYTHON) -m venv var/lock-venv
	var/lock-venv/bin/pip install --quiet --upgrade pip
	var/lock-venv/bin/pip install --quiet '.[server,worker,cli,dev]'
	{ echo "# Every version make installs (make lock writes this; do not edit by hand)."; \
	  var/lock-venv/bin/pip freeze --exclude-editable | grep -v '^imageeditor\( @\|==\)'; } > constraints.txt
	rm -rf var/lock-venv

# rembg's u2netp model in IMAGEEDITOR_MODELS_DIR (default $U2NET_HOME or ~/.u2net): fetched
# when missing or not matching its md5, else only checked; then its int8 version made from it
# (about two minutes, once). Nothing is downloaded at run time.
models: $(NUMBA_WARM)
	$(BIN)/imageeditor models fetch --no-warm
	$(BIN)/imageeditor models quantize

# numba compiles pymatting's code (alpha matting) on first import, about a minute; its cache
# lives in the virtualenv, so warm it once per install.
$(NUMBA_WARM): $(RUN_STAMP)
	$(BIN)/imageeditor models warm
	touch $(NUMBA_WARM)

$(BUF): package.json
	npm install --no-fund --no-audit --silent
	touch $(BUF)

run: $(RUN_STAMP) models
	$(BIN)/imageeditor serve

# The generated code of both clients (Python: imageeditor/v1/, TypeScript: clients/typescript/src/gen/).
gen: $(STAMP) $(TS_MODULES)
	$(BIN)/python scripts/generate.py
	cd $(TS) && npm run generate

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BUF) lint
	scripts/buf-breaking

# What the tests run beside the service, from Debian's packages: Prometheus and promtool (the
# metrics end-to-end test, the alert rules). Sentinel is redis-server's own --sentinel mode.
PROMETHEUS := /usr/bin/prometheus
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
tools: $(PROMETHEUS)
$(PROMETHEUS):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus

# The TypeScript client (clients/typescript): its pinned packages, then its node tests against a
# real `imageeditor serve` and the check that its generated code is current.
TS := clients/typescript
TS_MODULES := $(TS)/node_modules/.installed
$(TS_MODULES): $(TS)/package.json $(TS)/package-lock.json
	cd $(TS) && npm ci --no-fund --no-audit --silent
	touch $@

test: lint tools $(TS_MODULES)
	$(BIN)/pytest
	cd $(TS) && npm test

# Speed and memory against reference implementations, side by side (not part of `make test`).
bench: setup $(THUMBOR) $(REMBG)
	$(PIP_INSTALL) -e '.[bench]'
	$(BIN)/python bench/run.py
	$(BIN)/python bench/hostile.py
	$(BIN)/python bench/service.py

# thumbor, the reference of the service bench's resize case, needs Pillow < 13: its own venv.
$(THUMBOR):
	$(PYTHON) -m venv $(THUMBOR_VENV)
	$(THUMBOR_VENV)/bin/pip install --quiet "thumbor==7.8.0" "Pillow<13"

# `rembg s`, the reference of the service bench's removal case: the tool as its users install it.
$(REMBG):
	$(PYTHON) -m venv $(REMBG_VENV)
	$(REMBG_VENV)/bin/pip install --quiet "rembg[cli,cpu]==2.0.86"

clean:
	rm -rf $(VENV) node_modules var .pytest_cache .mypy_cache .ruff_cache
	rm -rf $(TS)/node_modules $(TS)/dist
