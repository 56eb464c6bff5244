# pyinit: `make test` and `make bench` do all set-up on a fresh machine (torch installed only if missing).
PYTHON ?= python3
PIP := $(PYTHON) -m pip
# The CPU build of torch that lies on the development/CI disk; any torch already installed is kept.
TORCH_SPEC ?= torch==2.13.0
BENCH_ARGS ?=

.PHONY: deps build test bench ctest nvcc-check gpu-check lint clean

deps:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH_SPEC)"
	@$(PYTHON) -c "import numpy, scipy, pytest, ninja, matplotlib, wheel, setuptools" 2>/dev/null || \
		$(PIP) install -q numpy scipy pytest ninja matplotlib wheel setuptools

build: deps
	$(PIP) install -q --no-build-isolation --no-deps -e .

test: build
	$(PYTHON) -m pytest tests -q

bench: build
	$(PYTHON) -m benchmarks $(BENCH_ARGS)

ctest: deps
	cmake -S . -B cmake-build -DCMAKE_PREFIX_PATH="$$($(PYTHON) -c 'import torch; print(torch.utils.cmake_prefix_path)')"
	cmake --build cmake-build -j
	ctest --test-dir cmake-build --output-on-failure

nvcc-check:
	.ci/nvcc_check.sh

# On the GPU machine (device tool): build, CUDA tests, GPU + 16-core CPU benchmarks into $$OUT.
gpu-check: deps
	PYTHON=$(PYTHON) .ci/gpu_check.sh

# ruff (check + format) for Python, clang-format (.clang-format) for csrc/ and tests/cpp.
# Pinned: another version may format differently.
LINT_PY := pyinit tests benchmarks tools .ci
CLANG_FORMAT := $(PYTHON) -c "import sys, clang_format; sys.argv[0] = 'clang-format'; clang_format.clang_format()"
lint:
	@$(PYTHON) -m ruff --version 2>/dev/null | grep -qx "ruff 0.17.6" || $(PIP) install -q "ruff==0.17.6"
	@$(CLANG_FORMAT) --version 2>/dev/null | grep -q "version 19.1.7" || $(PIP) install -q "clang-format==19.1.7"
	$(PYTHON) -m ruff check $(LINT_PY)
	$(PYTHON) -m ruff format --check $(LINT_PY)
	$(CLANG_FORMAT) --style=file --dry-run --Werror $$(git ls-files 'csrc/*.h' 'csrc/*.cpp' 'csrc/*.cu' 'csrc/*.cuh' 'tests/cpp/*.cpp')

clean:
	rm -rf build cmake-build pyinit/_C*.so *.egg-info
