# Madoguchi — two commands on a fresh Debian machine with Python 3.11:
#   make run    set everything up, launch the desktop app
#   make test   set everything up, run the whole suite (what CI runs)
#   make check  the inner loop: unit and contract tests, no installer, no long pipelines (≤ 3 min)
# Every step is idempotent (stamp files); a second run only checks.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Build cache outside the work tree so fresh clones on this machine reuse it (wheel, model packages).
export MADOGUCHI_BUILD_CACHE ?= $(HOME)/.cache/madoguchi-build
WHEELHOUSE := $(MADOGUCHI_BUILD_CACHE)/wheelhouse
LLAMA_VERSION := 0.3.36
LLAMA_WHEEL_STAMP := $(WHEELHOUSE)/.llama-$(LLAMA_VERSION)
APT_PACKAGES := libportaudio2 fonts-ipafont-gothic xvfb xauth libxcb-icccm4 libxcb-keysyms1 \
  libxcb-image0 libxcb-render-util0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-cursor0 \
  libegl1 libgl1 libfontconfig1 libdbus-1-3 pulseaudio pulseaudio-utils libasound2-plugins \
  ffmpeg imagemagick msitools wixl wine wine64 postgresql tesseract-ocr tesseract-ocr-jpn tesseract-ocr-jpn-vert
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=
# Two workers: the suite waits on real-time audio, subprocesses and Wine much of the time, so a
# second worker fills the other core (tests/conftest.py starts the longest ones first).
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL := $(if $(filter-out 0 1,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist load,)

.PHONY: run test check setup sysdeps venv deps models bench screenshots installer clean-models doctor

run: setup
	@if [ -z "$$DISPLAY" ] && [ -z "$$WAYLAND_DISPLAY" ] && [ "$$QT_QPA_PLATFORM" != offscreen ]; then \
	  echo "No screen here. Run the app on a virtual screen with:"; \
	  echo "  xvfb-run -a -s '-screen 0 1600x1000x24' $(VENV)/bin/madoguchi-desktop"; \
	  echo "Checking the installation instead (madoguchi doctor):"; \
	  $(VENV)/bin/madoguchi doctor; \
	else \
	  $(VENV)/bin/madoguchi-desktop; \
	fi

test: setup
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python -m pytest $(PYTEST_PARALLEL) --durations=30 $(PYTEST_ARGS)

check: setup
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python -m pytest $(PYTEST_PARALLEL) -m "not slow and not installer" \
	  --durations=10 $(PYTEST_ARGS)

setup: sysdeps deps models

doctor: setup
	$(VENV)/bin/madoguchi doctor

sysdeps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel setuptools

venv: $(PY)

# llama-cpp-python has no wheel on PyPI: build it once, portable (no -march=native), reuse it.
$(LLAMA_WHEEL_STAMP): | $(PY)
	mkdir -p $(WHEELHOUSE)
	@ls $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || { \
	  echo "building llama-cpp-python $(LLAMA_VERSION) (portable, takes ~10 min once)"; \
	  CMAKE_ARGS="-DGGML_NATIVE=OFF" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	  $(PIP) wheel --no-deps -q llama-cpp-python==$(LLAMA_VERSION) -w $(WHEELHOUSE); }
	touch $@

$(VENV)/.deps-stamp: pyproject.toml $(LLAMA_WHEEL_STAMP) | $(PY)
	$(PIP) install -q --find-links $(WHEELHOUSE) "llama-cpp-python==$(LLAMA_VERSION)"
	$(PIP) install -q --find-links $(WHEELHOUSE) -e ".[dev]"
	touch $@

deps: $(VENV)/.deps-stamp

$(VENV)/.models-stamp: models/manifest.toml $(VENV)/.deps-stamp
	$(VENV)/bin/madoguchi models assemble
	touch $@

models: $(VENV)/.models-stamp

clean-models:
	rm -f $(VENV)/.models-stamp
	rm -rf models/*/

bench: setup
	$(PY) bench/run_all.py

screenshots: setup
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) scripts/screenshots.py

installer: setup
	$(MAKE) -C installer all
