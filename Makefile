# Two commands do all set-up on a fresh machine (Python 3.11 + pip): `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8080
DB ?= data/conductor.duckdb

LAB_PORT ?= 8888
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: run serve test install install-test chromium lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install only when pyproject.toml changes (idempotent).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[lab]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# The server on an embedded DuckDB file plus JupyterLab on notebooks/ (CONDUCTOR_SERVER_URL set).
run: install
	@mkdir -p $(dir $(DB))
	$(BIN)/conductor-lab lab --db $(DB) --port $(PORT) --lab-port $(LAB_PORT) --notebooks notebooks

# The server alone.
serve: install
	@mkdir -p $(dir $(DB))
	$(BIN)/conductor-lab serve --db $(DB) --host 127.0.0.1 --port $(PORT)

# Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium; no browser download).
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

# The whole suite, and every notebook run top to bottom by nbval (asserts live in their cells).
test: install-test chromium
	$(BIN)/ruff check conductor_lab tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=300 tests notebooks

lint: install-test
	$(BIN)/ruff check conductor_lab tests bench
	$(BIN)/mypy

bench: install-test
	$(BIN)/python bench/throughput.py

# Regenerate the committed gRPC stubs (conductor_lab/rpc/gen) from conductor_lab/rpc/proto.
.PHONY: protos
protos: install-test
	$(BIN)/python -m conductor_lab.rpc.generate
