#!/usr/bin/env bash
# CI leg: pyinit on torch 2.14.1 (the CUDA 13.0 build that lies on the CI disk), with no GPU.
#   1. a venv with torch==2.14.1, reused between runs on the same machine (PYINIT_CI_VENV, default
#      ~/.cache/pyinit-ci/venv-torch-2.14.1), built when it is missing or holds another torch;
#   2. the full CUDAExtension build (kernels and glue) of a copy of this tree, CUDA_HOME left for setup.py
#      to find (nvcc may be a wrapper outside the toolkit), TORCH_CUDA_ARCH_LIST=9.0;
#   3. every pyinit:: operator has CPU, CUDA and fake kernels registered (.ci/check_registration.py);
#   4. the whole test suite on that torch (CUDA tests skip: no GPU; timm and transformers installed for the
#      pyinit.timm and pyinit.transformers tests),
#      and the CMake build + ctest (C++20).
# Fails loudly at the first step that cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TORCH_VERSION=2.14.1
VENV=${PYINIT_CI_VENV:-$HOME/.cache/pyinit-ci/venv-torch-$TORCH_VERSION}
WORK=${PYINIT_CI_WORK:-$ROOT/.ci-work/torch-$TORCH_VERSION}
export MAX_JOBS="${MAX_JOBS:-2}"

step() { echo "== torch $TORCH_VERSION leg: $* ($(date +%T))"; }
# pip warns once per package about the empty local index folders of these machines; keep its errors.
quiet_pip() { "$VENV/bin/pip" install -q "$@" 2>&1 | { grep -v "is neither a file nor a directory" || true; }; }

if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION' or torch.version.cuda is None)" 2>/dev/null; then
  step "creating $VENV"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  quiet_pip "torch==$TORCH_VERSION" numpy scipy pytest ninja matplotlib wheel setuptools
else
  step "reusing $VENV"
fi
PY="$VENV/bin/python"
"$PY" -c "import numpy, scipy, pytest, ninja, matplotlib" 2>/dev/null || \
  quiet_pip numpy scipy pytest ninja matplotlib wheel setuptools
"$PY" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"
# timm, for the bit-identity tests of pyinit.timm (tests/test_timm_compat.py): torchvision 0.29.1 (pinned to
# this torch), then timm without its dependencies (it would not replace torch, but nothing is left to chance)
# and the three it imports. The versions docs/timm.md lists as verified.
"$PY" -c "import timm, torchvision" 2>/dev/null || {
  step "installing timm 1.0.29 (torchvision 0.29.1)"
  quiet_pip "torchvision==0.29.1"
  quiet_pip --no-deps "timm==1.0.29"
  quiet_pip pyyaml "huggingface_hub<1.0" safetensors
}
# transformers, for the bit-identity tests of pyinit.transformers (tests/test_transformers_compat.py): without its
# dependencies (torch stays), then the pure-Python ones its import needs and tokenizers (a wheel). The version
# docs/timm.md lists as verified.
"$PY" -c "from transformers import SiglipModel" 2>/dev/null || {
  step "installing transformers 4.57.1"
  quiet_pip --no-deps "transformers==4.57.1" "tokenizers==0.22.1"
  quiet_pip "huggingface_hub<1.0" safetensors regex pyyaml requests tqdm packaging filelock
}
"$PY" -c "import torch, timm, transformers; assert torch.__version__.split('+')[0] == '$TORCH_VERSION'; \
print('timm', timm.__version__, 'transformers', transformers.__version__)"

step "copying the tree to $WORK"
rm -rf "$WORK"
mkdir -p "$WORK"
git ls-files -co --exclude-standard | grep -v '^\.ci-work/' | tar cf - -T - | tar xf - -C "$WORK"
cd "$WORK"

step "CUDAExtension build"
start=$(date +%s)
if ! env -u CUDA_HOME -u CUDA_PATH TORCH_CUDA_ARCH_LIST=9.0 "$PY" -m pip install -v --no-build-isolation --no-deps \
    -e . >build.log 2>&1; then
  tail -60 build.log
  echo "torch $TORCH_VERSION leg: the build failed" >&2
  exit 1
fi
grep -E "^ *pyinit:|CUDA_HOME" build.log || true
echo "build: $(( $(date +%s) - start )) s; nvcc compiled: $(grep -oE 'csrc/cuda/[a-z_]+\.cu -o' build.log | sort -u | \
  sed 's/ -o//' | tr '\n' ' ')"
grep -oE -- '-gencode=[^ ]+|-std=c\+\+[0-9]+' build.log | sort | uniq -c
step "operator registration"
"$PY" .ci/check_registration.py --require-cuda

step "test suite"
PYINIT_REQUIRE_TIMM=1 PYINIT_REQUIRE_TRANSFORMERS=1 "$PY" -m pytest tests -q -p no:cacheprovider

step "CMake build + ctest (against the CUDA libtorch)"
# torch's CMake config of a CUDA build wants the toolkit (found as setup.py finds it) and libnvrtc, which
# this toolkit lacks and the venv's nvidia-* wheels carry.
cuda_root=$("$PY" -c 'import importlib.util as u; s = u.spec_from_file_location("s", "setup.py"); \
m = u.module_from_spec(s); s.loader.exec_module(m); print(m.find_cuda_home() or "")')
nvidia_lib=$(dirname "$(ls "$VENV"/lib/python3*/site-packages/nvidia/cu*/lib/libnvrtc.so.* | head -1)")
cmake -S . -B cmake-build -DCMAKE_PREFIX_PATH="$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
  -DCUDA_TOOLKIT_ROOT_DIR="$cuda_root" -DCUDA_nvrtc_LIBRARY="$(ls "$nvidia_lib"/libnvrtc.so.* | head -1)" \
  >cmake.log 2>&1 || { tail -40 cmake.log; exit 1; }
grep "pyinit:" cmake.log
cmake --build cmake-build -j "$MAX_JOBS" >>cmake.log 2>&1 || { tail -40 cmake.log; exit 1; }
LD_LIBRARY_PATH="$nvidia_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ctest --test-dir cmake-build --output-on-failure
step "OK"
