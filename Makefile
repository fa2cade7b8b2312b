# Two commands do all the set-up on a fresh machine with Python 3 and make:
#   make run   - create .venv, install, read the sample drawings with the shipped model
#   make test  - create .venv, install with the test extras, run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
CHROMIUM := /usr/bin/chromium

.PHONY: run test lint format export-onnx bench fuzz clean

run: $(VENV)/.installed
	$(BIN)/handwritten predict digits/

test: $(VENV)/.installed-test $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Coverage-guided fuzzing of image decoding and preprocessing (fuzz/fuzz_images.py), for
# FUZZ_SECONDS, each input limited to 10 s and the process to a memory ceiling. The grown
# corpus and any crash-* inputs land in $(FUZZ_DIR); fuzz/corpus holds the seeds.
FUZZ_SECONDS ?= 60
FUZZ_DIR ?= .fuzz
fuzz: $(VENV)/.installed-test
	mkdir -p $(FUZZ_DIR)/corpus
	$(BIN)/python fuzz/fuzz_images.py -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
		-rss_limit_mb=2560 -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus fuzz/corpus

# How the shipped models are made, for any model in the registry (src/handwritten/registry.py):
#   make ship-cnn  - train-cnn (the card records the command), record-cnn, export-onnx
# record-% keeps the scores on the development drawings in ../shared in the model's card.
SHIPPED_FILE = $(BIN)/python -c 'import sys; from handwritten.registry import get; print(get(sys.argv[1]).shipped_file)'
DEVELOPMENT_SETS ?= ../shared/user-digits ../shared/photos

train-%: $(VENV)/.installed
	$(BIN)/handwritten train --model $* --seed 42 --output models/$$($(SHIPPED_FILE) $*) --force

record-%: $(VENV)/.installed
	$(BIN)/handwritten evaluate --model $* --runtime keras --record $(addprefix --drawings ,$(DEVELOPMENT_SETS))

ship-%: train-% record-%
	$(MAKE) export-onnx

# The ONNX copies `predict` and `serve` run without TensorFlow, carrying the cards; redo after
# any training or recording.
export-onnx: $(VENV)/.installed-test
	$(BIN)/handwritten export --format onnx

# Speed against plain Keras and the Keras path; writes benchmarks/RESULTS.md and results.json.
# BENCH=quick (about 10 minutes) or BENCH=full (adds the race to 99% accuracy, about an hour).
BENCH ?= quick
bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run.py --mode $(BENCH)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

# The browser test (tests/test_e2e.py) drives Debian's Chromium: Playwright's own browser
# download is not used. Installing it needs root, as on CI.
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "make test needs Chromium at $@; install it with your package manager." >&2; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
		|| { echo "make test needs Chromium at $@ and could not install it; run as root, or: sudo apt-get install chromium" >&2; exit 1; }
	@test -x $@ || { echo "apt-get installed chromium but $@ is missing; install Chromium there." >&2; exit 1; }

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist
