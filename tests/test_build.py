"""setup.py's build decisions: the CUDA toolkit found behind an nvcc wrapper, and a default arch
list when no GPU is visible (cpp_extension itself fails with IndexError then). No real toolkit is
used: a fake one with a scripted nvcc stands in."""

from __future__ import annotations

import importlib.util
import os
import stat
import textwrap
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def setup_module(monkeypatch):
    monkeypatch.delenv("CUDA_HOME", raising=False)  # restored after the test (import sets it)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    spec = importlib.util.spec_from_file_location("pyinit_setup", ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.delenv("CUDA_HOME", raising=False)  # set by the import when a toolkit is found
    return module


def _executable(path: Path, text: str) -> None:
    path.write_text(textwrap.dedent(text))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def fake_toolkit(tmp_path):
    """tmp/cuda-99.0 (bin/nvcc, include/cuda_runtime.h) and tmp/bin/nvcc, a wrapper execing it."""
    toolkit = tmp_path / "cuda-99.0"
    (toolkit / "bin").mkdir(parents=True)
    (toolkit / "include").mkdir()
    (toolkit / "include" / "cuda_runtime.h").write_text("")
    _executable(
        toolkit / "bin" / "nvcc",
        f"""\
        #!/bin/sh
        case "$*" in
          *--dryrun*) echo '#$ _HERE_={toolkit}/bin' >&2; echo '#$ TOP={toolkit}/bin/..' >&2 ;;
          *--list-gpu-code*) echo sm_80; echo sm_90; echo sm_100 ;;
        esac
        """,
    )
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    _executable(wrappers / "nvcc", f'#!/bin/sh\nexec {toolkit}/bin/nvcc "$@"\n')
    return toolkit, wrappers


def test_cuda_home_found_behind_a_wrapper(setup_module, fake_toolkit, monkeypatch):
    toolkit, wrappers = fake_toolkit
    monkeypatch.setenv("PATH", f"{wrappers}{os.pathsep}{os.environ['PATH']}")
    # The parent of the wrapper's directory has no include/cuda_runtime.h: cpp_extension's guess.
    assert not (wrappers.parent / "include" / "cuda_runtime.h").exists()
    assert setup_module.find_cuda_home() == str(toolkit.resolve())


def test_cuda_home_from_the_environment_wins(setup_module, fake_toolkit, monkeypatch):
    monkeypatch.setenv("CUDA_HOME", "/somewhere/else")
    assert setup_module.find_cuda_home() == "/somewhere/else"


def test_default_arch_list_without_a_gpu(setup_module, fake_toolkit, monkeypatch):
    toolkit, _ = fake_toolkit
    arches = ["sm_75", "sm_80", "sm_90", "sm_90a", "sm_100", "compute_120"]
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: arches)
    # torch's real arches that this nvcc lists; family-specific (sm_90a) and PTX entries left out.
    assert setup_module.default_cuda_arch_list(str(toolkit)) == "8.0;9.0;10.0"
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: [])
    assert setup_module.default_cuda_arch_list(str(toolkit)) == "9.0"


def test_no_std_flag_forced(setup_module):
    # BuildExtension adds the standard the installed torch needs (C++20 for torch >= 2.14).
    flags = setup_module.CXX_FLAGS + setup_module.NVCC_FLAGS
    assert not [f for f in flags if f.startswith("-std")]
