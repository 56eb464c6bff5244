"""Build pyinit._C with torch.utils.cpp_extension: CPU kernels always, CUDA kernels when torch has CUDA and a
CUDA toolkit is present (no GPU needed to build). Build with `pip install --no-build-isolation -e .`."""

import glob
import os
import re
import shutil
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.abspath(__file__))


def find_cuda_home() -> str | None:
    """The CUDA toolkit root, also when `nvcc` on PATH is a wrapper script outside the toolkit.

    cpp_extension guesses CUDA_HOME as the parent of nvcc's directory; for /usr/local/bin/nvcc that is
    /usr/local, which has no include/cuda_runtime.h. nvcc itself knows its root: `nvcc --dryrun` prints
    `#$ TOP=<toolkit>/bin/..`. Must run before torch.utils.cpp_extension is imported (it reads
    CUDA_HOME at import time).
    """
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(variable):
            return os.environ[variable]
    nvcc = shutil.which("nvcc")
    candidates = []
    if nvcc is not None:
        candidates.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(tmp, "probe.cu")
            open(source, "w").close()
            try:
                dryrun = subprocess.run(
                    [nvcc, "--dryrun", "-c", source, "-o", os.path.join(tmp, "probe.o")],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
                match = re.search(r"^#\$ TOP=(.*)$", dryrun.stdout + dryrun.stderr, re.MULTILINE)
                if match:
                    candidates.append(os.path.realpath(match.group(1).strip()))
            except (OSError, subprocess.SubprocessError):
                pass
    candidates.append("/usr/local/cuda")
    for root in candidates:
        if os.path.isfile(os.path.join(root, "include", "cuda_runtime.h")):
            return root
    return None


_cuda_home = find_cuda_home()
if _cuda_home is not None:
    os.environ.setdefault("CUDA_HOME", _cuda_home)

import torch  # noqa: E402
from setuptools import setup  # noqa: E402
from torch.utils.cpp_extension import (  # noqa: E402
    CUDA_HOME,
    BuildExtension,
    CppExtension,
    CUDAExtension,
)

# -ffp-contract=off: the kernels choose FMA or not explicitly, to match the CPU capability torch dispatched
# (see Note [The torch stream on CPU]); the compiler must not contract anything on its own.
# -fopenmp: at::parallel_for is an inline template over `#pragma omp parallel` in torch's headers (torch's CPU
# builds use the OpenMP backend); without the flag every pyinit CPU kernel would silently run on one thread.
# The extension links libgomp.so.1, the same soname torch ships and has already loaded, so there is one runtime.
# No -std: BuildExtension adds the standard the installed torch's headers need (C++20 from torch 2.13's
# cpp_extension on; ATen 2.14 and later require it) to both the host compiler and nvcc.
CXX_FLAGS = ["-O3", "-ffp-contract=off", "-fno-strict-aliasing", "-fopenmp"]
LINK_FLAGS = ["-fopenmp"]
# No --use_fast_math: it changes curand-style Box-Muller results (see shared research, torch_rng.md 2.7).
NVCC_FLAGS = ["-O3", "--fmad=true"]


def want_cuda() -> bool:
    if os.environ.get("PYINIT_FORCE_CPU", "0") == "1":
        return False
    return torch.version.cuda is not None and CUDA_HOME is not None


def default_cuda_arch_list(cuda_home: str | None = None) -> str:
    """TORCH_CUDA_ARCH_LIST when the user set none and no GPU is visible.

    cpp_extension derives the arch list from the visible GPUs and fails (IndexError) with none. Without a
    GPU, build for the real (sm_*) architectures this torch was built for that nvcc can target, else 9.0.
    """
    nvcc = os.path.join(cuda_home or CUDA_HOME or "", "bin", "nvcc")
    try:
        listed = subprocess.run(
            [nvcc, "--list-gpu-code"], capture_output=True, text=True, check=True
        )
        nvcc_arches = set(listed.stdout.split())
    except (OSError, subprocess.SubprocessError):
        nvcc_arches = set()
    torch_arches = []
    for arch in torch.cuda.get_arch_list():
        match = re.fullmatch(r"sm_(\d+)(\d)", arch)
        if match and (not nvcc_arches or arch in nvcc_arches):
            torch_arches.append(f"{match.group(1)}.{match.group(2)}")
    return ";".join(torch_arches) or "9.0"


def extension():
    top = [
        "ops.cpp",
        "many.cpp",
        "meta.cpp",
        "philox_drawn.cpp",
        "python/module.cpp",
        "python/model_facts.cpp",
    ]
    sources = [
        os.path.relpath(p, ROOT)
        for p in [f"csrc/{f}" for f in top] + sorted(glob.glob(f"{ROOT}/csrc/cpu/*.cpp"))
    ]
    include_dirs = [os.path.join(ROOT, "csrc")]
    if want_cuda():
        if not os.environ.get("TORCH_CUDA_ARCH_LIST") and torch.cuda.device_count() == 0:
            os.environ["TORCH_CUDA_ARCH_LIST"] = default_cuda_arch_list()
            print(
                f"pyinit: no GPU visible, TORCH_CUDA_ARCH_LIST={os.environ['TORCH_CUDA_ARCH_LIST']}"
            )
        cuda_sources = sorted(glob.glob(f"{ROOT}/csrc/cuda/*.cu")) + sorted(
            glob.glob(f"{ROOT}/csrc/cuda/*.cpp")
        )
        sources += [os.path.relpath(p, ROOT) for p in cuda_sources]
        return CUDAExtension(
            "pyinit._C",
            sources,
            include_dirs=include_dirs,
            extra_compile_args={"cxx": [*CXX_FLAGS, "-DPYINIT_WITH_CUDA"], "nvcc": NVCC_FLAGS},
            extra_link_args=LINK_FLAGS,
        )
    return CppExtension(
        "pyinit._C",
        sources,
        include_dirs=include_dirs,
        extra_compile_args={"cxx": CXX_FLAGS},
        extra_link_args=LINK_FLAGS,
    )


if __name__ == "__main__":  # setuptools' build backend runs this file as __main__ too
    setup(
        ext_modules=[extension()],
        cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
    )
