"""Which elements of the global tensor a DTensor's local shard holds, without communication.

A DTensor's placements (``Shard(d)``, ``_StridedShard(d, split_factor)``, ``Replicate()``, on any
mesh) make the local tensor the Cartesian product of one list of global indices per tensor
dimension. ``shard_blocks`` finds those lists by applying each placement's own local split to an
index vector (what ``distribute_tensor`` does to data, here to indices), then cuts the product
into blocks of consecutive global indices: each block is a view of the local tensor plus the
global index where it starts, which is what the philox operators take (``global_shape``,
``start``). ``Shard`` gives one block per rank; ``_StridedShard`` (FSDP2 + tensor parallel) a few.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from . import _support

try:  # torch.distributed may be built without the tensor package
    from torch.distributed.tensor import DTensor, Replicate, Shard
    from torch.distributed.tensor.placement_types import _StridedShard
except ImportError:  # pragma: no cover
    DTensor = None


def is_dtensor(tensor: object) -> bool:
    return DTensor is not None and isinstance(tensor, DTensor)


@dataclass(frozen=True)
class Block:
    """`local` (a view of the local shard) holds the global elements starting at `start`."""

    local: Tensor
    start: tuple[int, ...]


def _runs(indices: list[int]) -> list[tuple[int, int, int]]:
    """(local start, global start, length) of each run of consecutive global indices."""
    runs = []
    for pos, g in enumerate(indices):
        if runs and g == runs[-1][1] + runs[-1][2]:
            runs[-1] = (runs[-1][0], runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((pos, g, 1))
    return runs


def global_indices(dt: Tensor) -> list[list[int]]:
    """Per tensor dimension, the global indices the local shard of `dt` holds, in local order."""
    mesh, placements = dt.device_mesh, dt.placements
    coordinate = mesh.get_coordinate()
    shape = tuple(dt.shape)
    if coordinate is None:  # this rank is not in the mesh: it holds nothing
        return [[] for _ in shape]
    per_dim = []
    for d, n in enumerate(shape):
        idx = torch.arange(n, dtype=torch.int64)
        for mesh_dim, placement in enumerate(placements):
            if isinstance(placement, Replicate):
                continue
            if not isinstance(placement, (Shard, _StridedShard)):
                raise NotImplementedError(
                    f"pyinit: cannot initialize a DTensor placed {placement} (only Shard, "
                    "_StridedShard and Replicate)"
                )
            if placement.dim % len(shape) == d:
                view = [1] * len(shape)
                view[d] = idx.numel()
                chunks, _ = placement._split_tensor(
                    idx.view(view), mesh.size(mesh_dim), with_padding=False
                )
                idx = chunks[coordinate[mesh_dim]].reshape(-1)
        per_dim.append(idx.tolist())
    local_shape = tuple(len(i) for i in per_dim)
    if local_shape != tuple(dt.to_local().shape):
        raise NotImplementedError(
            f"pyinit: cannot tell which elements this rank's shard of placements {placements} "
            f"holds (found a local shape {local_shape}, the DTensor has "
            f"{tuple(dt.to_local().shape)})"
        )
    return per_dim


def shard_blocks(dt: Tensor) -> tuple[Tensor, tuple[int, ...], list[Block]]:
    """(the local tensor, the global shape, its blocks of consecutive global indices)."""
    local = dt.to_local()
    if local.is_meta and _support.recording() is not None:
        raise NotImplementedError(
            "pyinit: cannot initialize a meta DTensor inside pyinit.deferred() (a model sharded "
            "in the block): initialize it before sharding it in the block, or after "
            "materialize_ (Note [Sharding inside deferred()], pyinit/_deferred.py)"
        )
    global_shape = tuple(dt.shape)
    if local.numel() == 0:
        return local, global_shape, []
    runs_per_dim = [_runs(indices) for indices in global_indices(dt)]
    blocks = []
    for combo in itertools.product(*runs_per_dim):  # a 0-d tensor: one empty combo, one block
        view = local
        for d, (l0, _, length) in enumerate(combo):
            view = view.narrow(d, l0, length)
        blocks.append(Block(view, tuple(g0 for _, g0, _ in combo)))
    return local, global_shape, blocks


def block_arguments(local: Tensor, blocks: list[Block]) -> tuple[list[Tensor], list[int]]:
    """The `blocks` and `starts` arguments of the torch stream's operators on blocks (Note [The
    torch stream on blocks], csrc/torch_blocks.h) for a shard: a rank with an empty shard passes its
    empty local tensor, so that the generator still moves as the whole call moves it."""
    if not blocks:
        return [local], [0] * local.dim()
    return [b.local for b in blocks], [s for b in blocks for s in b.start]


def fill_whole(dt: Tensor, fill: Callable[[Tensor], object]) -> Tensor:
    """`fill` on a temporary of the DTensor's global shape, on every rank, as one device fills it
    (so every generator ends where one device's would); each rank keeps the elements of its shard,
    and the DTensor's version moves. No collective (Note [DTensor shards], pyinit/_streams.py)."""
    local, global_shape, blocks = shard_blocks(dt)
    full = torch.empty(global_shape, dtype=local.dtype, device=local.device)
    fill(full)
    copy_blocks(full, blocks)
    torch.autograd.graph.increment_version(dt)
    return dt


def copy_blocks(full: Tensor, blocks: list[Block]) -> None:
    """Each block gets its elements of `full` (a tensor of the global shape)."""
    with torch.no_grad():
        for block in blocks:
            index = tuple(
                slice(s, s + n) for s, n in zip(block.start, block.local.shape, strict=True)
            )
            block.local.copy_(full[index])
