# Two entry points that work on a fresh machine with only Python 3.11 and git:
#   make run    # the whole demo pipeline (Snakemake), writes reports/demo/index.html
#   make test   # the test suite
# Both create .venv and install the project into it on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)

.PHONY: install run run-dvc test clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	snakemake --cores 8

run-dvc: install
	dvc repro

test: install
	python -m pytest -q

clean:
	rm -rf data models samples results checkpoints logs reports/*/ .snakemake
