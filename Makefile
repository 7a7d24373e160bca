# Two commands do all set-up on a fresh machine (Python 3.11 + pip): `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8080
DB ?= data/conductor.duckdb

.PHONY: run test install install-test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install only when pyproject.toml changes (idempotent).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	@mkdir -p $(dir $(DB))
	$(BIN)/conductor-lab serve --db $(DB) --host 127.0.0.1 --port $(PORT)

test: install-test
	$(BIN)/ruff check conductor_lab tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: install-test
	$(BIN)/ruff check conductor_lab tests bench
	$(BIN)/mypy

bench: install-test
	$(BIN)/python bench/throughput.py
