# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
# Each creates .venv and installs what it needs (torch 2.13.0 CPU first); a second run
# installs nothing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export MUJOCO_GL ?= egl
# Fail fast and visibly if anything in a recipe pipeline fails.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

.PHONY: install demo test test-all lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first: an unpinned resolver would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0 $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
	$(PY) -m pip install --quiet -e ".[dev,onnx]"
	touch $@

# Main job: prune the shipped TD-MPC2 agent end to end, evaluate, table + plot.
# Options pass through, e.g. make demo DEMO_ARGS="--episodes 2 --sparsities 0.2".
DEMO_ARGS ?=
demo: $(STAMP)
	$(PY) scripts/demo.py $(DEMO_ARGS)

# Lint, then the test suite without the slow end-to-end marker (what CI runs).
test: lint
	$(PY) -m pytest -q -m "not slow" -n 2

test-all: $(STAMP)
	$(PY) -m pytest -q -n 2

# Lint, and the README's generated tables against their committed result files.
lint: $(STAMP)
	$(VENV)/bin/ruff check rlprune tdmpc2 envs scripts tests
	$(PY) scripts/readme_numbers.py --check

clean:
	rm -rf $(VENV) .pytest_cache
