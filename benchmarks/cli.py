"""`python -m benchmarks`: parse the flags into a Plan, run it, write the table, JSON and plots."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from .contenders import DTYPES, INITIALIZERS, available_streams, is_stream
from .environment import environment, header_lines
from .report import headline_summary, table_lines, write_json, write_plots
from .sections import Plan, count_groups, run_headline, run_plan
from .timing import Progress, Settings

SECTIONS = ("sweep", "threads", "small", "model")
DEFAULT_OUT = Path(__file__).resolve().parent / "out"

# Sweep sizes (log2 of the element count) per preset and device.
SIZES = {
    "quick": {"cpu": [10, 14], "cuda": [10, 16, 20]},
    "default": {"cpu": [12, 16, 20, 22], "cuda": [12, 16, 20, 24, 26, 28]},
    "full": {"cpu": list(range(10, 27, 2)), "cuda": list(range(10, 31, 2))},
}


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_sizes(text: str) -> list[int]:
    """'10,14,20' or '10:26:2' (log2 of the element count), or element counts (> 64) as they are."""
    if ":" in text:
        parts = [int(p) for p in text.split(":")]
        start, stop, step = parts[0], parts[1], parts[2] if len(parts) > 2 else 1
        exps = list(range(start, stop + 1, step))
    else:
        exps = [int(p) for p in _csv(text)]
    return [1 << e if e <= 64 else e for e in exps]


def _choices(values: list[str], allowed, what: str) -> list[str]:
    bad = [v for v in values if v not in allowed]
    if bad:
        raise SystemExit(f"unknown {what}: {', '.join(bad)} (choose from {', '.join(allowed)})")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="pyinit vs torch.nn.init (and the fill_ ceiling): table, JSON and plots.",
    )
    p.add_argument(
        "--preset",
        choices=("default", "full", "headline"),
        default="default",
        help="default: small CPU sweep (+GPU when present); full: 2^10..2^26 CPU / "
        "2^30 GPU; headline: the headline CPU figures (2^24 float32, side by side)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smallest sizes, few repeats, scaled-down model on CPU (smoke run)",
    )
    p.add_argument("--initializers", type=_csv, help="comma-separated (default: all)")
    p.add_argument("--sizes", help="log2 element counts: '12,16,20' or '10:26:2'")
    p.add_argument("--devices", type=_csv, help="cpu,cuda (default: cpu, and cuda when present)")
    p.add_argument("--dtypes", type=_csv, help="default float32,bfloat16 (--quick: float32)")
    p.add_argument(
        "--streams",
        type=_csv,
        help="pyinit random streams (default: all available); philox@portable|avx2|avx512: "
        "the philox stream's CPU kernels limited to that variant",
    )
    p.add_argument(
        "--threads",
        type=_csv,
        help="CPU thread counts of the threads section (default: 1 and all cores)",
    )
    p.add_argument("--thread-size", type=int, help="log2 elements of the threads section (22)")
    p.add_argument("--sections", type=_csv, help=f"of {','.join(SECTIONS)} (default: all)")
    p.add_argument("--small-params", type=int, help="parameters of the many-small section (1000)")
    p.add_argument(
        "--model-scale",
        type=int,
        help="divide the LLaMA-7B dims by this (CPU default 1; 4 with --quick)",
    )
    p.add_argument("--repeats", type=int, help="timed repeats per contender (CPU 5, GPU 20)")
    p.add_argument("--warmup", type=int, help="warm-up calls per contender (CPU 1, GPU 3)")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile peers")
    p.add_argument("--no-plots", action="store_true", help="do not write PNGs")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output dir (benchmarks/out)")
    p.add_argument("--tag", help="file name stem of the outputs (default: the preset)")
    return p


def _settings(device: str, args: argparse.Namespace) -> Settings:
    if device == "cuda":
        s = Settings(
            warmup=3,
            repeats=5 if args.quick else 20,
            min_batch_s=0.001,
            slow_s=1.0,
            slow_budget_s=10.0,
        )
    else:
        s = Settings(
            warmup=1,
            repeats=3 if args.quick else 5,
            min_batch_s=0.001 if args.quick else 0.002,
            slow_s=1.0,
            slow_budget_s=2.0 if args.quick else 4.0,
        )
    if args.repeats is not None:
        s.repeats = max(args.repeats, 1)
    if args.warmup is not None:
        s.warmup = max(args.warmup, 0)
    return s


def resolve(args: argparse.Namespace) -> tuple[Plan, list[dict]]:
    """The Plan of this command line, and what was asked for but cannot run here."""
    skipped: list[dict] = []
    headline = args.preset == "headline"
    devices = _choices(args.devices or ["cpu", "cuda"], ("cpu", "cuda"), "device")
    if headline:
        devices = ["cpu"]
    if "cuda" in devices and not torch.cuda.is_available():
        devices = [d for d in devices if d != "cuda"]
        reason = "torch.cuda.is_available() is False"
        skipped.append({"what": "device cuda (GPU path: CUDA events)", "reason": reason})
    streams = args.streams or available_streams()
    for stream in [s for s in streams if not is_stream(s)]:
        skipped.append({"what": f"stream {stream}", "reason": "this pyinit has no such stream"})
    streams = [s for s in streams if is_stream(s)] or ["torch"]
    key = "quick" if args.quick and args.preset == "default" else args.preset
    sizes = {
        d: parse_sizes(args.sizes)
        if args.sizes
        else [1 << e for e in SIZES.get(key, SIZES["default"])[d]]
        for d in ("cpu", "cuda")
    }
    cores = os.cpu_count() or 1
    threads = [int(t) for t in args.threads] if args.threads else sorted({1, cores})
    plan = Plan(
        devices=devices,
        dtypes=_choices(
            args.dtypes or (["float32"] if args.quick or headline else ["float32", "bfloat16"]),
            DTYPES,
            "dtype",
        ),
        sizes=sizes,
        initializers=_choices(args.initializers or list(INITIALIZERS), INITIALIZERS, "initializer"),
        streams=streams,
        threads=threads,
        thread_size=1 << (args.thread_size or (16 if args.quick else 22)),
        small_params=args.small_params or (200 if args.quick else 1000),
        model_scale={
            "cpu": args.model_scale or (4 if args.quick else 1),
            "cuda": args.model_scale or 1,
        },
        orthogonal_max=None if args.sizes or args.preset == "full" else 1 << 20,
        sections=_choices(args.sections or list(SECTIONS), SECTIONS, "section"),
        use_compile=not args.no_compile,
        settings={d: _settings(d, args) for d in ("cpu", "cuda")},
    )
    return plan, skipped


def _config(plan: Plan, args: argparse.Namespace) -> dict:
    return {
        "argv": sys.argv[1:],
        "preset": args.preset,
        "quick": args.quick,
        "devices": plan.devices,
        "dtypes": plan.dtypes,
        "sizes": {d: plan.sizes[d] for d in plan.devices},
        "initializers": plan.initializers,
        "streams": plan.streams,
        "threads": plan.threads,
        "thread_size": plan.thread_size,
        "small_params": plan.small_params,
        "model_scale": {d: plan.model_scale[d] for d in plan.devices},
        "orthogonal_max": plan.orthogonal_max,
        "sections": ["headline"] if args.preset == "headline" else plan.sections,
        "compile": plan.use_compile,
        "settings": {d: vars(plan.settings[d]) for d in plan.devices},
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    plan, skipped = resolve(args)
    env = environment()
    if args.preset == "headline":
        progress = Progress(5, enabled=not args.no_progress)
        sparse = Settings(warmup=1, repeats=3, min_batch_s=0.0, slow_s=1e9, min_repeats=1)
        if args.quick:
            sparse.repeats = 1
        rows = run_headline(plan, progress, sparse)
    else:
        progress = Progress(count_groups(plan), enabled=not args.no_progress)
        rows = run_plan(plan, progress)
    progress.close()
    if hasattr(os, "getloadavg"):
        env["load_average_end"] = list(os.getloadavg())

    lines = table_lines(header_lines(env), rows, skipped)
    if args.preset == "headline":
        lines += headline_summary(rows)
    print("\n".join(lines), flush=True)

    stem = args.tag or ("quick" if args.quick and args.preset == "default" else args.preset)
    args.out.mkdir(parents=True, exist_ok=True)
    written = [args.out / f"{stem}.txt", args.out / f"{stem}.json"]
    written[0].write_text("\n".join(lines) + "\n")
    write_json(written[1], env, _config(plan, args), rows, skipped)
    if not args.no_plots:
        written += write_plots(args.out, stem, rows)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0
