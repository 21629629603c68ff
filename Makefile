# ComfyLoad. `make baseline` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SCENARIO ?= baseline
ARGS ?=
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup comfyui-install browser baseline ui comfyui test unit clean help

help:
	@echo "make baseline   run the baseline scenario headless, print summary + SLA verdict (SCENARIO=, ARGS=)"
	@echo "make test       the whole pytest suite, integration tests against a real ComfyUI included"
	@echo "make ui         Locust web UI on http://127.0.0.1:8089 against the same target"
	@echo "make comfyui    only start the local ComfyUI (foreground, Ctrl-C stops it)"

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

setup: $(VENV)/.installed comfyui-install

# The pinned local ComfyUI, unless the user brings a server (COMFY_HOST) or a checkout (COMFYUI_DIR).
comfyui-install:
	@if [ -z "$$COMFY_HOST" ] && [ -z "$$COMFYUI_DIR" ]; then bash scripts/install_comfyui.sh >/dev/null; fi

# Debian's chromium for the browser tests (web UI, HTML report); needs root or an existing install.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

baseline: setup
	$(PY) -m comfyload run --scenario $(SCENARIO) $(ARGS)

ui: setup
	$(PY) -m comfyload ui --scenario $(SCENARIO) $(ARGS)

comfyui: setup
	$(PY) -m comfyload.server

test: setup
	$(PY) -m pytest -q tests $(ARGS)

unit: $(VENV)/.installed
	$(PY) -m pytest -q tests -m "not integration" $(ARGS)

clean:
	rm -rf .comfyui runs/*-*
