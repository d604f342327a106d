# Two entry points: `make demo` (set up, then run the workflow on the demo cohort) and
# `make test` (set up, then run the test suite). Set-up installs the exact versions of
# envs/requirements.lock; it is idempotent and re-runs when the lock or pyproject.toml
# changes. `make lock` re-pins the lock to what .venv holds.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LOCK   := envs/requirements.lock
export PATH := $(abspath $(BIN)):$(PATH)
# MLflow's usage telemetry stays off (the workflow sets the same; false allows it)
export MLFLOW_DISABLE_TELEMETRY ?= true

.PHONY: setup lock browser demo test lint ui clean
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# Every package radiotx needs (with the slurm and dev extras), transitively, pinned to the
# versions installed in .venv, which the tests ran on (uv resolves; Linux, Python 3.11).
# After changing pyproject.toml's dependencies: pip install -e '.[slurm,dev]', test, lock.
lock:
	$(BIN)/python -m pip freeze --exclude-editable > $(VENV)/installed.txt
	$(BIN)/uv pip compile pyproject.toml --extra slurm --extra dev --python-version 3.11 \
	  --constraint $(VENV)/installed.txt --no-annotate --custom-compile-command "make lock" \
	  $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS)) \
	  --output-file $(LOCK)

demo: setup
	$(BIN)/snakemake --profile profiles/default

# The MLflow UI test drives a real headless chromium: installed from Debian where this
# runs as root, else that test skips and says why.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get -qq update && apt-get -qq install -y --no-install-recommends chromium \
	  >/dev/null; } || echo "chromium is not installed: the MLflow UI test will skip"

test: setup browser
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check src tests workflow/scripts
	$(BIN)/ruff format --check src tests workflow/scripts
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/snakemake --lint

ui: setup
	$(BIN)/mlflow ui --backend-store-uri sqlite:///results/mlflow.db --host 127.0.0.1 --port 5000

clean:
	rm -rf results work logs benchmarks .snakemake
