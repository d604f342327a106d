# Two entry points: `make demo` (set up, then run the workflow on the demo cohort) and
# `make test` (set up, then run the test suite). Set-up is idempotent and re-runs when
# pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup demo test lint ui clean
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/snakemake --profile profiles/default

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check src tests workflow/scripts
	$(BIN)/ruff format --check src tests workflow/scripts
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/snakemake --lint

ui: setup
	$(BIN)/mlflow ui --backend-store-uri sqlite:///results/mlflow.db --host 127.0.0.1 --port 5000

clean:
	rm -rf results logs benchmarks .snakemake
