# Two commands do everything on a fresh Debian/Ubuntu machine:  make lab  |  make test
# The Pythons the pinned torch 2.14.1 and torchvision 0.29.1 ship wheels for. PYTHON is the
# newest of python3.13, python3.12, python3.11, python3 that is one of them (or PYTHON=...).
SUPPORTED_PYTHONS := 3.13 3.12 3.11
PY_VERSION_CODE := import sys; print("%d.%d" % sys.version_info[:2])
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
  v=$$($$p -c '$(PY_VERSION_CODE)' 2>/dev/null) && case " $(SUPPORTED_PYTHONS) " in (*" $$v "*) echo "$$v $$p";; esac; \
  done | sort -s -r -k1,1 | head -n 1 | cut -d " " -f 2)
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

.PHONY: setup data lab test notebooks seeds epochs readme clean check-python doctor ready test-install

setup: $(STAMP) data

$(STAMP): requirements.txt pyproject.toml
	@$(MAKE) --no-print-directory check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -e .
	touch $@

# Says which Python `make` will use, or why none qualifies and how to get one.
check-python:
	@v=$$($(or $(PYTHON),python3) -c '$(PY_VERSION_CODE)' 2>/dev/null); \
	case " $(SUPPORTED_PYTHONS) " in (*" $$v "*) echo "Using $(PYTHON) (Python $$v)."; exit 0;; esac; \
	{ echo "deepnets needs Python 3.11, 3.12 or 3.13 (torch 2.14.1 and torchvision 0.29.1 ship wheels for those)."; \
	  $(if $(filter command line environment,$(origin PYTHON)),echo "PYTHON=$(PYTHON) is $${v:-not found or not a Python}.";, \
	  echo "Found:"; for p in python3.13 python3.12 python3.11 python3; do \
	    echo "  $$p: $$($$p -c '$(PY_VERSION_CODE)' 2>/dev/null || echo not found)"; done;) \
	  echo "Get one of them, then run make again:"; \
	  echo "  Debian/Ubuntu:  apt-get install python3.11-venv  (or python3.12-venv, python3.13-venv: your release's python3)"; \
	  echo "  Fedora:         dnf install python3.12;   macOS: brew install python@3.12"; \
	  echo "  pyenv:          pyenv install 3.12, then make PYTHON=\"\$$(pyenv root)/versions/\$$(pyenv latest 3.12)/bin/python\""; \
	  echo "  conda:          conda env create -f environment.yml  (README: Conda instead of venv)"; \
	  echo "  or name one:    make PYTHON=/path/to/python3.12"; } >&2; exit 1

# Checks this machine for the course (Python, packages, data, Jupyter kernel, room, time).
doctor: setup
	$(BIN)/python -m deepnets.doctor

# Set up, then the doctor's checks less its timing: lab and test stop here, with its
# message, when something would stop the course (kept to a few seconds).
ready: setup
	@$(BIN)/python -m deepnets.doctor --quick

# Fashion-MNIST: already found? else the Debian package (as root), else download into data/.
data: $(STAMP)
	@$(BIN)/python -m deepnets.data 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q dataset-fashion-mnist || { apt-get update -q && apt-get install -y -q dataset-fashion-mnist; } || true; \
	  fi; \
	  $(BIN)/python -m deepnets.data --download; }

# Jupyter refuses to run as root unless told; containers and CI machines often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: ready
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $(ROOT_FLAG) $(LAB_FLAGS)

# Unit tests, every notebook executed once in the smoke profile (papermill; its cells tagged
# nbval-check-output compared with the committed outputs as nbval does), and the web book and
# slides opened in headless Chromium (tests/test_book.py).
test: ready book browser
	$(HEADLESS) DEEPNETS_PROFILE=smoke $(BIN)/python -m pytest tests -p no:cacheprovider -m "not install" --durations=15

# The README's commands without make, run in a fresh copy of the repository with a new
# venv (about 3 minutes of pip on a 2-core CPU: kept out of `make test`'s 15).
test-install: ready
	$(HEADLESS) $(BIN)/python -m pytest tests/test_readme_commands.py -m install -p no:cacheprovider

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

# Notebooks 02 and 04 raised their final nets' epochs after a test figure; this trains each
# final recipe again at its earlier count (seeds 0, 1, 2; validation only, the test set
# unscored) so that both notebooks can check the raise on the validation split. Full profile
# only (PROFILE is ignored). Run it after `make notebooks` and `make seeds` (02's runs read each
# seed's learning rate from their results), then run notebooks 02 and 04 again to read it.
# A run whose results file already holds today's recipe is skipped.
epochs: setup
	$(HEADLESS) $(BIN)/python -m deepnets.epochs --jobs 2

readme: $(STAMP)
	$(BIN)/python -m deepnets.report --write

# The web book (build/book/) and one reveal.js deck per lesson (build/book/slides/; `make slides`
# rebuilds the decks alone), from the committed notebooks, never re-executed. npm brings
# MathJax, reveal.js, require.js and the Korean font at the versions book/package-lock.json
# pins; the pages serve them themselves.
.PHONY: book slides browser
NODE_STAMP := build/node/.installed
$(NODE_STAMP): book/package.json book/package-lock.json
	@command -v npm >/dev/null || { echo "make book needs npm to fetch MathJax, reveal.js and the Korean font (Debian/Ubuntu: apt-get install npm), then run it again." >&2; exit 1; }
	mkdir -p build/node && cp book/package.json book/package-lock.json build/node/
	cd build/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

book: $(STAMP) $(NODE_STAMP)
	$(BIN)/python book/build.py

slides: $(STAMP) $(NODE_STAMP)
	$(BIN)/python book/build.py --slides

# Debian's chromium for the browser test, installed when root; without it the test skips.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q --no-install-recommends chromium || { apt-get update -q && apt-get install -y -q --no-install-recommends chromium; }; \
	  else echo "chromium is not installed and installing it needs root and apt-get: tests/test_book.py will skip." >&2; fi; }

clean:
	rm -rf build .pytest_cache
