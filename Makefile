# Two commands do all the set-up on a fresh machine with Python 3 and make:
#   make run   - create .venv, install, read the sample drawings with the shipped model
#   make test  - create .venv, install with the test extras, run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
CHROMIUM := /usr/bin/chromium
NGINX := /usr/sbin/nginx

.PHONY: run test lint format export-onnx bench fuzz clean

run: $(VENV)/.installed
	$(BIN)/handwritten predict digits/

test: $(VENV)/.installed-test $(CHROMIUM) $(NGINX)
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
DEVELOPMENT_NUMBERS ?= ../shared/numbers
DEVELOPMENT_NONDIGITS ?= ../shared/nondigits

# The number reader (src/handwritten/reader.py), trained on images `synth` composes.
train-reader: $(VENV)/.installed
	$(BIN)/handwritten train-reader --seed 42 --output models/handwritten-reader.keras --force
	$(BIN)/handwritten export --model models/handwritten-reader.keras
	$(BIN)/handwritten fit-chooser --seed 42 --reader models/handwritten-reader.keras

train-%: $(VENV)/.installed
	$(BIN)/handwritten train --model $* --seed 42 --output models/$$($(SHIPPED_FILE) $*) --force

# record-% also chooses the thresholds of sure and "not a digit" answers, on the validation
# split and the development drawings and photos only; the non-digits are measured, not used.
record-%: $(VENV)/.installed
	$(BIN)/handwritten evaluate --model $* --runtime keras --record \
		$(addprefix --drawings ,$(DEVELOPMENT_SETS)) --numbers $(DEVELOPMENT_NUMBERS) \
		--nondigits $(DEVELOPMENT_NONDIGITS)

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

# Installs come from the lock files, exact versions with the SHA-256 of every file, so a new
# upstream release cannot change what `make run` or `make test` installs; the project itself
# then goes in editable, without dependencies. `make lock` writes the locks (below).
$(VENV)/.installed: requirements/run.txt pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet --require-hashes -r requirements/run.txt
	$(PIP) install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-test: requirements/test.txt pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet --require-hashes -r requirements/test.txt
	$(PIP) install --quiet --no-deps -e .
	touch $@ $(VENV)/.installed

# The lock files, regenerated from pyproject.toml by `make lock` after changing its dependencies
# (pins that still fit are kept; `make lock LOCK_ARGS=--upgrade` moves every pin to the newest
# release), then committed:
#   requirements/run.txt   the dependencies, for `make run`: Python 3.10+
#   requirements/test.txt  the same versions plus the test, export and ray extras, for `make test`:
#                          Python 3.11+ (httpx2, a test tool, needs 3.11)
# Both are universal: one file for every platform, whose markers pick tensorflow-cpu on Linux
# x86_64 and tensorflow elsewhere. uv rather than pip-tools because only uv's
# `pip compile --universal` locks for every platform and Python at once (pip-compile locks for
# the machine it runs on); `make lock` installs this pinned uv into .venv.
UV_VERSION := 0.13.9
LOCK_ARGS ?=

.PHONY: lock
lock: | $(VENV)/bin/python
	$(PIP) install --quiet uv==$(UV_VERSION)
	mkdir -p requirements
	$(call lock-file,requirements/run.txt,3.10)
	$(call lock-file,requirements/test.txt,3.11,--extra test --extra export -c requirements/run.txt)

# $(call lock-file,FILE,LOWEST_PYTHON,MORE_ARGS): resolve and hash, then head FILE with what
# it covers.
define lock-file
	$(BIN)/uv pip compile pyproject.toml --python $(BIN)/python --universal --python-version $(2) \
		--generate-hashes --no-header --no-python-downloads --quiet $(3) $(LOCK_ARGS) -o $(1)
	{ printf '%s\n' '# $(1): made by `make lock` from pyproject.toml; do not edit by hand.' \
		'# Universal: every platform (markers choose), Python $(2)+. Installed by make with' \
		'# pip install --require-hashes -r $(1)'; cat $(1); } > $(1).tmp && mv $(1).tmp $(1)
endef

# The browser test (tests/test_e2e.py) drives Debian's Chromium: Playwright's own browser
# download is not used. Installing it needs root, as on CI.
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "make test needs Chromium at $@; install it with your package manager." >&2; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
		|| { echo "make test needs Chromium at $@ and could not install it; run as root, or: sudo apt-get install chromium" >&2; exit 1; }
	@test -x $@ || { echo "apt-get installed chromium but $@ is missing; install Chromium there." >&2; exit 1; }

# The scale-out test (tests/test_scale_out.py) puts two replicas behind Debian's nginx, run by
# the test as the current user with its own config; the package's own service is not used.
$(NGINX):
	@command -v apt-get >/dev/null || { echo "make test needs nginx at $@; install it with your package manager." >&2; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx \
		|| { echo "make test needs nginx at $@ and could not install it; run as root, or: sudo apt-get install nginx" >&2; exit 1; }
	@test -x $@ || { echo "apt-get installed nginx but $@ is missing; install nginx there." >&2; exit 1; }

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist
