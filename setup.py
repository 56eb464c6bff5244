"""Build pyinit._C with torch.utils.cpp_extension: CPU kernels always, CUDA kernels when torch has CUDA and a
CUDA toolkit is present (no GPU needed to build). Build with `pip install --no-build-isolation -e .`."""

import glob
import os

import torch
from setuptools import setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

ROOT = os.path.dirname(os.path.abspath(__file__))

# -ffp-contract=off: the kernels choose FMA or not explicitly, to match the CPU capability torch dispatched
# (see Note [The torch stream on CPU]); the compiler must not contract anything on its own.
# -fopenmp: at::parallel_for is an inline template over `#pragma omp parallel` in torch's headers (torch's CPU
# builds use the OpenMP backend); without the flag every pyinit CPU kernel would silently run on one thread.
# The extension links libgomp.so.1, the same soname torch ships and has already loaded, so there is one runtime.
CXX_FLAGS = ["-O3", "-std=c++17", "-ffp-contract=off", "-fno-strict-aliasing", "-fopenmp", "-DPYINIT_PYTHON_MODULE"]
LINK_FLAGS = ["-fopenmp"]
# No --use_fast_math: it changes curand-style Box-Muller results (see shared research, torch_rng.md 2.7).
NVCC_FLAGS = ["-O3", "-std=c++17", "--fmad=true"]


def want_cuda() -> bool:
    if os.environ.get("PYINIT_FORCE_CPU", "0") == "1":
        return False
    return torch.version.cuda is not None and CUDA_HOME is not None


def extension():
    sources = [os.path.relpath(p, ROOT) for p in ["csrc/ops.cpp", *sorted(glob.glob(f"{ROOT}/csrc/cpu/*.cpp"))]]
    include_dirs = [os.path.join(ROOT, "csrc")]
    if want_cuda():
        cuda_sources = sorted(glob.glob(f"{ROOT}/csrc/cuda/*.cu")) + sorted(glob.glob(f"{ROOT}/csrc/cuda/*.cpp"))
        sources += [os.path.relpath(p, ROOT) for p in cuda_sources]
        return CUDAExtension(
            "pyinit._C",
            sources,
            include_dirs=include_dirs,
            define_macros=[("PYINIT_WITH_CUDA", "1")],
            extra_compile_args={"cxx": CXX_FLAGS + ["-DPYINIT_WITH_CUDA"], "nvcc": NVCC_FLAGS},
            extra_link_args=LINK_FLAGS,
        )
    return CppExtension(
        "pyinit._C", sources, include_dirs=include_dirs, extra_compile_args={"cxx": CXX_FLAGS}, extra_link_args=LINK_FLAGS
    )


setup(
    ext_modules=[extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
