#!/usr/bin/env bash
# Compile checks for the CUDA code on a machine without a GPU (see Note [CUDA kernels without torch headers]):
#   1. every csrc/cuda/*.cu kernel file with plain nvcc (CUDA toolkit + csrc/ only, no torch);
#   2. the host self-test of the shared headers (Philox KAT, torch's launch policy, curand conversions, the
#      32-bit split), built with the host compiler and run;
#   3. a syntax-only pass over the torch glue (csrc/cuda/*.cpp) against the installed torch's headers, when
#      python can import torch. A CPU wheel ships the ATen/c10 CUDA headers but not the CMake-generated
#      c10/cuda/impl/cuda_cmake_macros.h, for which an empty stand-in is provided.
# Fails on the first error. Environment: NVCC (default nvcc), PYINIT_CUDA_ARCH (default sm_90), CXX (g++).
set -euo pipefail
cd "$(dirname "$0")/.."

NVCC=${NVCC:-nvcc}
ARCH=${PYINIT_CUDA_ARCH:-sm_90}
CXX=${CXX:-g++}
if ! command -v "$NVCC" >/dev/null 2>&1; then
  echo "nvcc_check: $NVCC not found" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Same floating-point flags as setup.py: --fmad=true, never --use_fast_math (see Note [curand float rounding]).
# C++20, as torch's BuildExtension compiles them (torch 2.13 and later).
for source in csrc/cuda/*.cu; do
  echo "nvcc_check: nvcc -arch=$ARCH $source"
  "$NVCC" -std=c++20 -O3 -arch="$ARCH" --fmad=true -I csrc -c "$source" -o "$tmp/$(basename "$source" .cu).o"
done

echo "nvcc_check: host self-test"
"$CXX" -std=c++17 -O2 -Wall -Wno-unknown-pragmas -Werror -I csrc csrc/cuda/tests/host_selftest.cpp -o "$tmp/host_selftest"
"$tmp/host_selftest"

torch_include=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include"))' \
  2>/dev/null || true)
cuda_include=""
for root in "${CUDA_HOME:-}" "$(dirname "$(dirname "$(readlink -f "$(command -v "$NVCC")")")")" /usr/local/cuda; do
  if [[ -n "$root" && -f "$root/include/cuda_runtime.h" ]]; then
    cuda_include="$root/include"
    break
  fi
done
if [[ -n "$torch_include" && -d "$torch_include/ATen/cuda" && -n "$cuda_include" ]]; then
  mkdir -p "$tmp/stub/c10/cuda/impl"
  [[ -f "$torch_include/c10/cuda/impl/cuda_cmake_macros.h" ]] || echo '#pragma once' \
    >"$tmp/stub/c10/cuda/impl/cuda_cmake_macros.h"
  for source in csrc/cuda/*.cpp; do
    echo "nvcc_check: syntax of $source against $torch_include"
    "$CXX" -std=c++20 -w -fsyntax-only -I csrc -I "$torch_include" \
      -I "$torch_include/torch/csrc/api/include" -I "$cuda_include" -I "$tmp/stub" "$source"
  done
else
  echo "nvcc_check: torch (${torch_include:-not importable}) or CUDA runtime headers (${cuda_include:-none}) not" \
    "found: cannot check the glue" >&2
  exit 1
fi
echo "nvcc_check: OK"
