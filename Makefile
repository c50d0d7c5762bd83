# Two commands do everything on a fresh Debian/Ubuntu machine:  make lab  |  make test
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= full
NOTEBOOKS ?= $(wildcard notebooks/[0-9][0-9]_*.ipynb)
LAB_FLAGS ?=
# OpenMP is left at its default (idle threads spin a moment before sleeping): fastest when
# one notebook has the CPU to itself. If two torch processes share the cores, run
# `OMP_WAIT_POLICY=PASSIVE make ...`; `python -m deepnets.bench` measures both cases.
# Progress bars are for people; headless runs print one line per epoch instead.
HEADLESS := TQDM_DISABLE=1

.PHONY: setup data lab test notebooks seeds readme clean

setup: $(STAMP) data

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; assert v == (3, 11), f"deepnets pins torch 2.14.1 for Python 3.11, found {v[0]}.{v[1]}: run make PYTHON=python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -e .
	touch $@

# Fashion-MNIST: already found? else the Debian package (as root), else download into data/.
data: $(STAMP)
	@$(BIN)/python -m deepnets.data 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q dataset-fashion-mnist || { apt-get update -q && apt-get install -y -q dataset-fashion-mnist; } || true; \
	  fi; \
	  $(BIN)/python -m deepnets.data --download; }

# Jupyter refuses to run as root unless told; containers and CI machines often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $(ROOT_FLAG) $(LAB_FLAGS)

# Unit tests, every notebook in the smoke profile (papermill), nbval on the marked cells.
test: setup
	$(HEADLESS) DEEPNETS_PROFILE=smoke $(BIN)/python -m pytest tests notebooks --nbval-lax --ignore=notebooks/solutions -p no:cacheprovider

# Full profile (default) refreshes the committed notebooks and results in place;
# any other profile writes executed copies under build/ and leaves the repo untouched.
notebooks: setup
	@set -e; for nb in $(NOTEBOOKS); do \
	  if [ "$(PROFILE)" = full ]; then out=$$nb; else out=build/notebooks/$(PROFILE)/$$(basename $$nb); mkdir -p $$(dirname $$out); fi; \
	  echo "== $$nb ($(PROFILE)) -> $$out"; \
	  $(HEADLESS) DEEPNETS_PROFILE=$(PROFILE) $(BIN)/papermill --cwd notebooks -k python3 $$nb $$out; \
	done
	@if [ "$(PROFILE)" = full ]; then $(MAKE) --no-print-directory readme; fi

# The notebooks whose final nets or comparisons need more seeds than fit their time budget,
# run again with other seeds; their own run (seed 0, `make notebooks`) reads these results
# and reports mean and range. Run this first.
SEEDS ?= 1 2
SEED_NOTEBOOKS ?= notebooks/00_data_and_tools.ipynb notebooks/01_alexnet.ipynb notebooks/02_vgg16.ipynb notebooks/04_resnet.ipynb
seeds: setup
	$(HEADLESS) $(BIN)/python -m deepnets.seeds $(SEED_NOTEBOOKS) --seeds $(SEEDS) --profile $(PROFILE)

readme: $(STAMP)
	$(BIN)/python -m deepnets.report --write

clean:
	rm -rf build .pytest_cache
