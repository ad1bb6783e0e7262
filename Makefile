# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv when it is missing; stamps re-install only when pyproject files change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
TORCH  := torch==2.13.0

.PHONY: demo test lint typecheck pytest bench clean sandbox schema

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# CPU torch first, pinned: an unpinned torch would pull gigabytes of CUDA wheels
	$(PIP) install --quiet $(TORCH)

$(VENV)/.core: $(BIN)/python pyproject.toml
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.dev: $(BIN)/python pyproject.toml plugins/rewardhub-example/pyproject.toml
	$(PIP) install --quiet $(TORCH) -e '.[dev,server,verify,policy,plot,models-offline]' -e plugins/rewardhub-example
	touch $@ $(VENV)/.core

demo: $(VENV)/.core
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

pytest: $(VENV)/.dev sandbox
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench: $(VENV)/.dev
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

# regenerate the checked-in JSON Schema (built-in types only, so it does not depend on plugins)
schema: $(VENV)/.core
	REWARDHUB_LOAD_PLUGINS= $(BIN)/rewardhub schema -o specs/pipeline.schema.json

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
