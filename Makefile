# Regolith: the two commands (`make run`, `make test`) set themselves up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_DIR ?= runs/default
MISSION ?= missions/lunabotics-ucf.yaml

.PHONY: help run test lint types contracts pytest bench clean venv wheels-aarch64

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml constraints.txt targets/mcu/host/package-lock.json
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Regolith needs Python 3.11, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[sim,dev,bench,board]'
	npm ci --prefix targets/mcu/host --no-audit --no-fund  # real MicroPython (WebAssembly) for firmware tests
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install the project with its sim, dev and bench extras

run: $(STAMP)  ## the default mission: a 15-minute autonomous berm build (UCF), headless; writes $(RUN_DIR)/
	rm -f $(RUN_DIR)/journal.log  # a fresh build each time (rover sim build --resume continues a journal)
	$(BIN)/rover sim build $(MISSION) --out $(RUN_DIR)

test: lint types contracts pytest  ## lint, types, import contracts, tests

lint: $(STAMP)
	$(BIN)/ruff check .

types: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)  ## benchmarks (JSON) into runs/bench.json
	$(BIN)/rover bench --json runs/bench.json

clean:
	rm -rf $(VENV) runs .mypy_cache .pytest_cache .ruff_cache *.egg-info

wheels-aarch64: $(STAMP)  ## prove the board core installs on aarch64 from wheels only (downloads, no install)
	rm -rf build/aarch64-wheels
	$(BIN)/python -m pip download --quiet --only-binary=:all: --python-version 3.11 --implementation cp \
	  --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 \
	  -c constraints.txt -d build/aarch64-wheels .
	ls build/aarch64-wheels
