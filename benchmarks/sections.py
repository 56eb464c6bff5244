"""The benchmark sections: size sweep, CPU threads, many small tensors, model build, headline.

Each section builds groups of contenders that write the same tensors, times a group with
timing.measure, and turns it into rows (one per contender) with the derived figures: GB/s written,
% of the fill_ ceiling and the speedup over the baseline (torch.nn.init, or the plain PyTorch
composition for the masked uniform).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

import pyinit

from .contenders import (
    DTYPES,
    in_stream,
    initializer_contenders,
    pyinit_contenders,
    shape_for,
)
from .timing import Contender, Progress, Settings, measure

# Initializers of the thread-count section (the memory-bound draws; the rest scale the same way).
THREAD_INITIALIZERS = ("uniform_", "normal_", "masked_uniform_")

# The headline figures: speedup of pyinit (torch stream) over the baseline, CPU, 2^24 float32.
HEADLINE_TARGETS = {
    "masked_uniform_": 4.0,
    "trunc_normal_": 4.0,
    "uniform_": 2.0,
    "normal_": 2.0,
    "sparse_": 10.0,
}
HEADLINE_SPARSE_SHAPE = (1024, 65536)


@dataclass
class Plan:
    """What a run measures (resolved from the command line by cli.py)."""

    devices: list[str]
    dtypes: list[str]
    sizes: dict[str, list[int]]  # device -> element counts of the sweep
    initializers: list[str]
    streams: list[str]
    threads: list[int]
    thread_size: int
    small_params: int
    model_scale: dict[str, int]  # device -> divisor of the LLaMA-7B dims (1 = the real shape)
    orthogonal_max: int | None  # orthogonal_ (QR-bound, not memory-bound) stops at this size
    sections: list[str]
    use_compile: bool
    settings: dict[str, Settings]  # device -> timing settings


def _note(contender: Contender, result: dict) -> str:
    parts = [contender.note] if contender.note else []
    if result["error"]:
        parts.append(f"error: {result['error']}")
    parts += [f"warning: {w[:90]}" for w in result["warned"][:2]]
    return "; ".join(parts)


def group_rows(
    section: str,
    meta: dict,
    contenders: list[Contender],
    device: str,
    settings: Settings,
    nbytes: int,
) -> list[dict]:
    """Time one group and return one row per contender."""
    results = measure(contenders, device, settings)
    by_role = {c.role: results[c.label]["median_s"] for c in contenders if c.role != "pyinit"}
    baseline = next((c.label for c in contenders if c.role == "baseline"), None)
    t_base, t_fill = by_role.get("baseline"), by_role.get("ceiling")
    rows = []
    for c in contenders:
        r = results[c.label]
        t = r["median_s"]
        rows.append(
            {
                "section": section,
                "device": device,
                **meta,
                "contender": c.label,
                "role": c.role,
                "stream": c.stream,
                "bytes": nbytes,
                "median_s": t,
                "min_s": r["min_s"],
                "times_s": r["times_s"],
                "calls_per_batch": r["inner"],
                "repeats": len(r["times_s"]),
                "gbps": nbytes / t / 1e9 if t else None,
                "pct_fill": 100.0 * t_fill / t if t and t_fill else None,
                "speedup": t_base / t if t and t_base else None,
                "baseline": baseline,
                "note": _note(c, r),
            }
        )
    return rows


def _threads(device: str) -> int | None:
    return torch.get_num_threads() if device == "cpu" else None


def initializer_group(
    section: str,
    name: str,
    shape: tuple[int, ...],
    dtype: str,
    device: str,
    plan: Plan,
    settings: Settings | None = None,
) -> list[dict]:
    tensor = torch.empty(shape, dtype=DTYPES[dtype], device=device)
    contenders = initializer_contenders(name, tensor, plan.streams, plan.use_compile)
    meta = {
        "dtype": dtype,
        "initializer": name,
        "shape": list(shape),
        "numel": tensor.numel(),
        "threads": _threads(device),
    }
    nbytes = tensor.numel() * tensor.element_size()
    return group_rows(section, meta, contenders, device, settings or plan.settings[device], nbytes)


def sweep_items(plan: Plan, device: str) -> list[tuple[str, int, str]]:
    """(dtype, numel, initializer) of the size sweep on `device`."""
    return [
        (dtype, numel, name)
        for dtype in plan.dtypes
        for numel in plan.sizes[device]
        for name in plan.initializers
        if not (name == "orthogonal_" and plan.orthogonal_max and numel > plan.orthogonal_max)
    ]


def count_groups(plan: Plan) -> int:
    n = 0
    for device in plan.devices:
        if "sweep" in plan.sections:
            n += len(sweep_items(plan, device))
        if "threads" in plan.sections and device == "cpu":
            n += len(plan.threads) * len([i for i in THREAD_INITIALIZERS if i in plan.initializers])
        n += ("small" in plan.sections) + ("model" in plan.sections)
    return n


def run_sweep(device: str, plan: Plan, progress: Progress) -> list[dict]:
    rows = []
    for dtype, numel, name in sweep_items(plan, device):
        progress.step(f"sweep {device} {dtype} {name} {numel:,}")
        rows += initializer_group("sweep", name, shape_for(name, numel), dtype, device, plan)
    return rows


def run_threads(plan: Plan, progress: Progress) -> list[dict]:
    """CPU thread scaling: the same groups under torch.set_num_threads(t) for each t."""
    rows = []
    saved = torch.get_num_threads()
    try:
        for threads in plan.threads:
            torch.set_num_threads(threads)
            for name in [i for i in THREAD_INITIALIZERS if i in plan.initializers]:
                progress.step(f"threads={threads} {name}")
                shape = shape_for(name, plan.thread_size)
                rows += initializer_group("threads", name, shape, "float32", "cpu", plan)
    finally:
        torch.set_num_threads(saved)
    return rows


def _linear_reset(init, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """What nn.Linear.reset_parameters does, through `init` (torch.nn.init or pyinit)."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    bound = 1 / math.sqrt(weight.shape[1])
    init.uniform_(bias, -bound, bound)


# nn.Linear(256, 256).reset_parameters() as init_module_ rules (the bias bound is 1/sqrt(256)).
LINEAR_256_RULES = {
    nn.Linear: {
        "weight": ("kaiming_uniform_", {"a": math.sqrt(5)}),
        "bias": ("uniform_", {"a": -1 / 16, "b": 1 / 16}),
    }
}


def run_many_small(device: str, plan: Plan, progress: Progress) -> list[dict]:
    """`small_params` parameters (nn.Linear(256, 256) weights and biases): one initializer call per
    tensor, and init_module_ (few operator calls) on the same layers."""
    progress.step(f"many small tensors {device}")
    with torch.device(device):
        layers = nn.ModuleList(
            nn.utils.skip_init(nn.Linear, 256, 256) for _ in range(max(plan.small_params // 2, 1))
        )
    pairs = [(layer.weight, layer.bias) for layer in layers]
    params = [p for pair in pairs for p in pair]

    def fill_all() -> None:
        with torch.no_grad():
            for p in params:
                p.fill_(0.5)

    def reset_all(init) -> None:
        for w, b in pairs:
            _linear_reset(init, w, b)

    contenders = [
        Contender("fill_", fill_all, "ceiling"),
        Contender("torch.nn.init", lambda: reset_all(torch.nn.init), "baseline"),
        *pyinit_contenders(lambda: reset_all(pyinit), plan.streams, True),
        *(
            Contender(
                f"init_module_[{stream}]",
                in_stream(stream, lambda: pyinit.init_module_(layers, LINEAR_256_RULES)),
                "pyinit",
                stream,
                "nn.Linear's own rule, batched (*_many_ operators)",
            )
            for stream in plan.streams
            if hasattr(pyinit, "init_module_")
        ),
    ]
    meta = {
        "dtype": "float32",
        "initializer": "nn.Linear(256,256)",
        "shape": [256, 256],
        "numel": sum(p.numel() for p in params),
        "params": len(params),
        "threads": _threads(device),
    }
    rows = group_rows("small", meta, contenders, device, plan.settings[device], meta["numel"] * 4)
    for row in rows:
        row["us_per_param"] = row["median_s"] / len(params) * 1e6 if row["median_s"] else None
    return rows


def llama_layer_shapes(scale: int = 1) -> list[tuple[int, int]]:
    """(in_features, out_features) of LLaMA-7B's decoder linears: q, k, v, o, gate, up, down."""
    d, ff = 4096 // scale, 11008 // scale
    return [(d, d)] * 4 + [(d, ff)] * 2 + [(ff, d)]


def run_model(device: str, plan: Plan, progress: Progress) -> list[dict]:
    """Construct the decoder layer's linears: default nn.Linear vs pyinit.patch_torch_init()."""
    progress.step(f"model construction {device}")
    scale = plan.model_scale.get(device, 1)
    shapes = llama_layer_shapes(scale)

    def build() -> list[nn.Linear]:
        return [nn.Linear(i, o, bias=False, device=device) for i, o in shapes]

    def alloc_only() -> list[nn.Module]:
        return [nn.utils.skip_init(nn.Linear, i, o, bias=False, device=device) for i, o in shapes]

    def alloc_fill() -> list[nn.Module]:
        mods = alloc_only()
        for m in mods:
            m.weight.data.fill_(0.5)
        return mods

    def build_patched() -> list[nn.Linear]:
        with pyinit.patch_torch_init():
            return build()

    def deferred_build(stream: str):
        def run() -> nn.Module:
            with pyinit.stream(stream):
                with pyinit.deferred():
                    layer = nn.ModuleList(nn.Linear(i, o, bias=False) for i, o in shapes)
                return pyinit.materialize_(layer, device)

        return run

    contenders = [
        Contender("alloc+fill_", alloc_fill, "ceiling"),
        Contender("alloc only", alloc_only, "peer", note="nn.utils.skip_init: no init at all"),
        Contender("nn.Linear (torch init)", build, "baseline"),
        *pyinit_contenders(build_patched, plan.streams, True),
        *(
            Contender(
                f"deferred+materialize_[{stream}]",
                deferred_build(stream),
                "pyinit",
                stream,
                "pyinit.deferred() then materialize_",
            )
            for stream in plan.streams
            if hasattr(pyinit, "deferred")
        ),
    ]
    numel = sum(i * o for i, o in shapes)
    name = "llama7b-layer" if scale == 1 else f"llama7b-layer/{scale}"
    meta = {
        "dtype": "float32",
        "initializer": name,
        "shape": [list(s) for s in shapes],
        "numel": numel,
        "threads": _threads(device),
        "scale_note": "" if scale == 1 else f"dims scaled down {scale}x, not the real shape",
    }
    return group_rows("model", meta, contenders, device, plan.settings[device], numel * 4)


def run_headline(plan: Plan, progress: Progress, sparse_settings: Settings) -> list[dict]:
    """The headline CPU figures: 2^24 float32 elements side by side, sparse_ on 1024x65536."""
    rows = []
    for name in ("masked_uniform_", "trunc_normal_", "uniform_", "normal_", "sparse_"):
        progress.step(f"headline {name}")
        if name == "sparse_":
            group = initializer_group(
                "headline", name, HEADLINE_SPARSE_SHAPE, "float32", "cpu", plan, sparse_settings
            )
        else:
            shape = shape_for(name, 1 << 24)
            group = initializer_group("headline", name, shape, "float32", "cpu", plan)
        for row in group:
            if row["stream"] == "torch" or (row["role"] == "pyinit" and row["stream"] is None):
                target = HEADLINE_TARGETS[name]
                row["target_speedup"] = target
                row["target_met"] = bool(row["speedup"] and row["speedup"] >= target)
        rows += group
    return rows


def run_plan(plan: Plan, progress: Progress) -> list[dict]:
    rows = []
    for device in plan.devices:
        if "sweep" in plan.sections:
            rows += run_sweep(device, plan, progress)
        if "threads" in plan.sections and device == "cpu":
            rows += run_threads(plan, progress)
        if "small" in plan.sections:
            rows += run_many_small(device, plan, progress)
        if "model" in plan.sections:
            rows += run_model(device, plan, progress)
    return rows
