# ComfyLoad. `make baseline` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# The baseline is SD1.5 books on the locally made checkpoint; a server you bring (COMFY_HOST) has no
# such checkpoint, so there the default is the no-model smoke. An NVIDIA GPU here gets the GPU pages.
SCENARIO ?= $(if $(COMFY_HOST),smoke,baseline)
GPU_PAGES := $(shell nvidia-smi -L >/dev/null 2>&1 && echo --book-profile sd15_gpu_small)
BASELINE_ARGS := $(if $(filter baseline,$(SCENARIO)),$(GPU_PAGES),)
ARGS ?=
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup comfyui-install sd15-checkpoint browser baseline faults distributed ui comfyui test unit clean help report archive profile

help:
	@echo "make baseline   SD1.5 books on the local ComfyUI headless, print summary + SLA verdict (SCENARIO=smoke: fast)"
	@echo "make test       the whole pytest suite, integration tests against a real ComfyUI included"
	@echo "make ui         Locust web UI on http://127.0.0.1:8089 against the same target"
	@echo "make comfyui    only start the local ComfyUI (foreground, Ctrl-C stops it)"
	@echo "make faults     the five fault drills (validation, oom, network, crash, latency) with verdicts"
	@echo "make report RUN=<id>    (re)build runs/<id>/report.html, charts/, summary.json, README.md"
	@echo "make archive RUN=<id>   copy runs/<id> (with its report) into observability/baselines/<date>/"
	@echo "make gate      release gate vs the newest archived baseline: GO / NO-GO (ARGS=--full, --promote)"
	@echo "make profile WORKFLOWS=\"a b\"   each workflow alone, PROFILE_RUNS times after a warm-up"
	@echo "make bench      harness benchmarks on a local ComfyUI: one table + bench/RESULTS.md (ARGS=--quick)"

# The project itself (editable: the `comfyload` command), its pins from requirements.txt as constraints.
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq -c requirements.txt -e '.[test]'
	touch $@

setup: $(VENV)/.installed comfyui-install sd15-checkpoint

# The pinned local ComfyUI, unless the user brings a server (COMFY_HOST) or a checkout (COMFYUI_DIR).
comfyui-install:
	@if [ -z "$$COMFY_HOST" ] && [ -z "$$COMFYUI_DIR" ]; then bash scripts/install_comfyui.sh >/dev/null; fi

# The SD1.5 test checkpoint (random weights, ~2 GB, made once into the cache by the ComfyUI's own
# Python; comfyload/orchestration/sd15_checkpoint.py). Skipped when the target is a server you bring (COMFY_HOST).
sd15-checkpoint: $(VENV)/.installed comfyui-install
	@if [ -z "$$COMFY_HOST" ]; then $(PY) -m comfyload.orchestration.sd15_checkpoint; fi

# Debian's chromium for the browser tests (web UI, HTML report), installed by `make test` itself (a
# fresh machine has none: without it those tests would not run). Needs root or an existing install;
# fast when present.
browser:
	@command -v chromium >/dev/null || { echo "[make] installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# Debian's docker-compose 1.29 for tests/test_containers.py (`docker-compose config` needs no engine).
.PHONY: compose
compose:
	@test -x /usr/bin/docker-compose || { apt-get update -qq && apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; }

# Debian's Prometheus for tests/test_prometheus_integration.py (the test starts /usr/bin/prometheus itself).
.PHONY: prometheus
prometheus:
	@test -x /usr/bin/prometheus || { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

baseline: setup
	$(VENV)/bin/comfyload run --scenario $(SCENARIO) $(BASELINE_ARGS) $(ARGS)

# The five fault drills of the reliability roadmap on the local ComfyUI (ONLY=validation,crash to pick).
faults: setup
	$(VENV)/bin/comfyload faults $(if $(ONLY),--only $(ONLY),) $(ARGS)

# Distributed on this host: a Locust master and WORKERS worker processes, one run folder.
WORKERS ?= 2
distributed: setup
	$(VENV)/bin/comfyload run --workers $(WORKERS) --scenario $(SCENARIO) $(ARGS)

ui: setup
	$(VENV)/bin/comfyload ui --scenario $(SCENARIO) $(ARGS)

comfyui: setup
	$(VENV)/bin/comfyload server

test: setup compose browser prometheus lint
	$(PY) -m pytest -q --durations=15 tests $(ARGS)

unit: $(VENV)/.installed lint
	$(PY) -m pytest -q tests -m "not integration and not compose and not browser" $(ARGS)

.PHONY: lint
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf .comfyui runs/*-*

# Reports (reports/): build, archive a baseline, profile workflows one at a time.
RUN ?=
WORKFLOWS ?= cpu_smoke
PROFILE_RUNS ?= 5
ARCHIVE_DATE := $(shell date +%Y-%m-%d)

report: $(VENV)/.installed
	@test -n "$(RUN)" || { echo "usage: make report RUN=<run id>"; exit 2; }
	$(VENV)/bin/comfyload report runs/$(RUN)

archive: $(VENV)/.installed
	@test -n "$(RUN)" || { echo "usage: make archive RUN=<run id>"; exit 2; }
	@test -d "runs/$(RUN)" || { echo "error: run folder not found: runs/$(RUN)"; exit 2; }
	@test -f "runs/$(RUN)/report.html" || $(VENV)/bin/comfyload report runs/$(RUN)
	mkdir -p observability/baselines/$(ARCHIVE_DATE)
	cp -r runs/$(RUN) observability/baselines/$(ARCHIVE_DATE)/
	@echo "archived: observability/baselines/$(ARCHIVE_DATE)/$(RUN)"

# The release gate: replay the newest baseline under observability/baselines/ on the target, the quick
# drills (ARGS=--full for all five), GO (exit 0) / NO-GO (exit 1); 4: no baseline yet (one is archived).
.PHONY: gate
gate: setup
	$(VENV)/bin/comfyload gate $(ARGS)

profile: setup
	$(VENV)/bin/comfyload profile $(WORKFLOWS) --runs $(PROFILE_RUNS) $(ARGS)

# Benchmarks (bench/, not tests): the harness vs a raw client, 2,000 waiting users, report build
# speed, polling error. Starts its own ComfyUI on a free port; ARGS=--quick for a shorter run.
.PHONY: bench
bench: setup
	$(PY) -m bench.run $(ARGS)

# Time to the knee, adaptive vs linear step ramp, on Sleep-1-s books (~10 min): bench/RESULTS_knee.md
.PHONY: bench-knee
bench-knee: setup
	$(PY) -m bench.knee $(ARGS)
