"""The environment header: what machine, library versions and settings produced the figures."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

import torch

import pyinit

from .contenders import available_streams


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def environment() -> dict:
    cuda = torch.cuda.is_available()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "pyinit": getattr(pyinit, "__version__", "?"),
        "pyinit_git": _git_commit(),
        "pyinit_streams": available_streams(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def header_lines(env: dict) -> list[str]:
    gpu = f"{env['gpu']} (x{env['gpu_count']}, CUDA {env['torch_cuda']})" if env["gpu"] else "none"
    return [
        f"pyinit benchmarks  {env['date']}  host {env['host']}",
        f"CPU    {env['cpu_model']}  ({env['cpu_count']} logical CPUs, torch threads "
        f"{env['torch_threads']}, capability {env['cpu_capability']})",
        f"GPU    {gpu}",
        f"torch  {env['torch']}   pyinit {env['pyinit']} ({env['pyinit_git'] or 'no git'})   "
        f"streams {', '.join(env['pyinit_streams'])}",
        f"python {env['python']}  {env['platform']}",
        *load_lines(env),
    ]


def load_lines(env: dict) -> list[str]:
    """The 1-minute load average at start (and end), with a warning when the machine was busy."""
    start, end = env.get("load_average"), env.get("load_average_end")
    if not start:
        return []
    text = f"load   1-min average {start[0]:.2f} at start"
    text += f", {end[0]:.2f} at end" if end else ""
    busy = max(start[0], end[0] if end else 0.0) > 0.5 * (env["cpu_count"] or 1)
    warn = "  WARNING: other processes were running; CPU figures are noisy" if busy else ""
    return [text + warn]
