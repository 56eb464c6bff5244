"""timm model construction, plain vs under pyinit's patches:
``python -m benchmarks.timm_models [--models vit_base_patch16_224,convnext_tiny] [--repeats 3]``.

Times ``timm.create_model(name, pretrained=False)`` (construction + timm's own init) on CPU, three
contenders interleaved in one run: plain timm, inside ``pyinit.patch_torch_init()`` (torch.nn.init
only: timm's trunc_normal_ is not reached) and inside ``pyinit.patch_torch_init(timm=True)`` (timm's
helpers through pyinit.timm too). Best of ``--repeats`` (and the median). Before timing, each
patched model is built after the same ``torch.manual_seed`` as a plain one and compared parameter
by parameter, bit for bit; the table says whether the weights are identical. Needs timm.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import statistics
import time
import warnings

import torch

import pyinit

from .environment import environment, header_lines, load_lines

CONTENDERS = {
    "timm": contextlib.nullcontext,
    "patch_torch_init()": pyinit.patch_torch_init,
    "patch_torch_init(timm=True)": lambda: pyinit.patch_torch_init(timm=True),
}


def _same_weights(build, patch) -> bool:
    """Whether build() inside patch() gives the parameters plain build() gives after the same
    seed, bit for bit (float32 parameters compared as int32 patterns)."""
    torch.manual_seed(0)
    plain = build()
    torch.manual_seed(0)
    with patch():
        ours = build()
    a, b = dict(plain.named_parameters()), dict(ours.named_parameters())
    return a.keys() == b.keys() and all(
        torch.equal(a[k].detach().view(torch.int32), b[k].detach().view(torch.int32))
        for k in a
        if a[k].dtype == torch.float32
    )


def time_constructions(lines, name, build, contenders, repeats, width=22) -> None:
    """Rows of the table for one model: each contender (label -> patch context factory; the first
    is the baseline) checked for identical weights, then timed `repeats` times, interleaved."""
    same = {label: _same_weights(build, patch) for label, patch in contenders.items()}
    times: dict[str, list[float]] = {label: [] for label in contenders}
    for _ in range(repeats):
        for label, patch in contenders.items():
            t0 = time.perf_counter()
            with patch():
                model = build()
            times[label].append(time.perf_counter() - t0)
            del model
    base_label = next(iter(contenders))
    base = min(times[base_label])
    for label, ts in times.items():
        weights = "base" if label == base_label else ("identical" if same[label] else "DIFFER")
        row = (
            f"{name:<{width}} {label:<36} {min(ts):>8.3f} {statistics.median(ts):>8.3f} "
            f"{base / min(ts):>7.2f}x  {weights}"
        )
        lines.append(row)
        print(row, flush=True)


def finish(lines, env, out) -> int:
    env["load_average_end"] = list(os.getloadavg())
    lines += load_lines(env)
    print(lines[-1])
    if out:
        with open(out, "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.timm_models", description=__doc__)
    p.add_argument("--models", default="vit_base_patch16_224,convnext_tiny")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=None, help="also write the table to this file")
    args = p.parse_args(argv)
    import timm

    # A fallback would void the figures.
    warnings.simplefilter("error", pyinit.PyinitFallbackWarning)
    env = environment()
    lines = [*header_lines(env), f"timm {timm.__version__}"]
    lines.append(
        f"timm.create_model(name, pretrained=False) on CPU, best (median) of {args.repeats}, "
        "contenders interleaved; seconds"
    )
    columns = f"{'best':>8} {'median':>8} {'speedup':>8}  weights"
    lines.append(f"{'model':<22} {'contender':<36} {columns}")
    print("\n".join(lines), flush=True)
    for name in args.models.split(","):
        build = functools.partial(timm.create_model, name, pretrained=False)
        time_constructions(lines, name, build, CONTENDERS, args.repeats)
    return finish(lines, env, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
