"""The torch stream on one rank's shard: ``python -m benchmarks.shard_blocks [--device cuda]``.

One process, no collective: what a rank of ``--world`` ranks pays to initialize its shard of a
``--shape`` float32 tensor in the torch stream (Note [The torch stream on blocks],
csrc/torch_blocks.h), timed side by side in one interleaved loop (CUDA events after warm-up on
CUDA):

- ``fill_ (shard)``: ``fill_`` of the shard alone, the ceiling;
- ``torch whole``: torch's own ``uniform_`` / ``normal_`` on the whole tensor, what one device
  writes (and what drawing the whole tensor on every rank costs, before keeping the shard);
- ``torch whole`` for ``trunc_normal_``: ``torch.nn.init.trunc_normal_`` on the whole tensor;
- ``pyinit whole``: pyinit's operator on the whole tensor (what drawing a whole temporary on
  every rank costs, before keeping the shard);
- ``blocks rows`` / ``blocks cols``: ``pyinit::uniform_blocks_`` / ``normal_blocks_`` /
  ``trunc_normal_blocks_`` on a row shard (FSDP2's ``Shard(0)``) and on a column shard
  (``Shard(1)``, tensor parallelism), each 1/world of the tensor. On CUDA each computes its
  elements only (``trunc_normal_`` first counts the whole call's rounds); on CPU each draws the
  whole tensor's words (torch's CPU generator is one sequence) and computes the shard's elements
  (``trunc_normal_``: every value of its first round), with no temporary of the tensor's size.
"""

from __future__ import annotations

import argparse

import torch

import pyinit  # noqa: F401  (registers the operators)

from .timing import Contender, Settings, measure

ops = torch.ops.pyinit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--shape", default="16384,4096")
    parser.add_argument("--world", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    device = args.device
    rows, cols = (int(x) for x in args.shape.split(","))
    world = args.world
    whole = torch.empty(rows, cols, device=device)
    row_shard = torch.empty(rows // world, cols, device=device)
    col_shard = torch.empty(rows, cols // world, device=device)
    shape = [rows, cols]
    row_start = [(rows // world) * (world - 1), 0]  # the last rank's shard
    col_start = [0, (cols // world) * (world - 1)]
    print(
        f"torch {torch.__version__}, {device}"
        + (f" ({torch.cuda.get_device_name()})" if device == "cuda" else "")
        + f": shard 1/{world} of a ({rows}, {cols}) float32 tensor"
    )
    for name, whole_call, pyinit_whole_call, blocks_call in [
        (
            "uniform_",
            lambda: whole.uniform_(-0.1, 0.1),
            lambda: ops.uniform_(whole, -0.1, 0.1),
            lambda b, s: ops.uniform_blocks_([b], -0.1, 0.1, shape, s),
        ),
        (
            "normal_",
            lambda: whole.normal_(0.0, 0.02),
            lambda: ops.normal_(whole, 0.0, 0.02),
            lambda b, s: ops.normal_blocks_([b], 0.0, 0.02, shape, s),
        ),
        (
            "trunc_normal_",
            lambda: torch.nn.init.trunc_normal_(whole, 0.0, 0.02, -0.04, 0.04),
            lambda: ops.trunc_normal_(whole, 0.0, 0.02, -0.04, 0.04),
            lambda b, s: ops.trunc_normal_blocks_([b], 0.0, 0.02, -0.04, 0.04, shape, s),
        ),
    ]:
        contenders = [
            Contender("fill_ (shard)", lambda: row_shard.fill_(1.0), role="ceiling"),
            Contender("torch whole", whole_call, role="baseline"),
            # what a rank paid before the operators on blocks: pyinit's call on a whole temporary
            Contender("pyinit whole", pyinit_whole_call, role="pyinit"),
            Contender(
                "blocks rows", lambda call=blocks_call: call(row_shard, row_start), role="pyinit"
            ),
            Contender(
                "blocks cols", lambda call=blocks_call: call(col_shard, col_start), role="pyinit"
            ),
        ]
        results = measure(contenders, device, Settings(warmup=3, repeats=args.repeats))
        ceiling = results["fill_ (shard)"]["median_s"]
        base = results["torch whole"]["median_s"]
        for label, r in results.items():
            if r["median_s"] is None:
                print(f"{name:13s} {label:15s} failed: {r['error']}")
                continue
            t = r["median_s"]
            print(
                f"{name:13s} {label:15s} {t * 1e3:9.3f} ms  {100 * ceiling / t:6.1f}% of "
                f"fill_ (shard)  {base / t:6.2f}x torch whole"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
