# Two commands do all the set-up on a fresh machine with Python 3 and make:
#   make run   - create .venv, install, read the sample drawings with the shipped model
#   make test  - create .venv, install with the test extras, run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: run test lint format train-seed clean

run: $(VENV)/.installed
	$(BIN)/handwritten predict digits/

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# How the shipped models were made (see the model cards in models/).
train-seed: $(VENV)/.installed
	$(BIN)/handwritten train --model seed --seed 42 --output models/handwritten.keras --force

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist
