"""pyinit::timm_trunc_normal_ against the composition it fuses (timm.layers.trunc_normal_'s CPU
algorithm: uniform_, erfinv_, mul_, add_, clamp_, then trunc_normal_tf_'s mul_/add_), bit for bit
and generator state, without timm installed (tests/test_timm_compat.py compares with timm itself
where it is)."""

from __future__ import annotations

import pytest
import torch
from helpers import bitwise_equal, differing

import pyinit  # noqa: F401  (registers the operators)

ops = torch.ops.pyinit


@pytest.mark.skipif(not torch.backends.mkl.is_available(), reason="needs torch's MKL erfinv")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("post", [(None, None), (0.02, 0.5)], ids=["trunc_normal_", "tf"])
@pytest.mark.parametrize("n", [1, 2047, 2049, 100_003])
def test_timm_trunc_normal_equals_the_composition(n, post, dtype, threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        ours_gen = torch.Generator().manual_seed(11)
        ours = torch.empty(n, dtype=dtype)
        ops.timm_trunc_normal_(ours, -0.95, 0.95, 1.4, 0.1, -2.0, 2.0, *post, ours_gen)
        gen = torch.Generator().manual_seed(11)
        ref = torch.empty(n, dtype=dtype).uniform_(-0.95, 0.95, generator=gen)
        ref.erfinv_().mul_(1.4).add_(0.1).clamp_(min=-2.0, max=2.0)
        if post[0] is not None:
            ref.mul_(post[0]).add_(post[1])
    finally:
        torch.set_num_threads(before)
    assert bitwise_equal(ours, ref), differing(ours, ref)
    assert torch.equal(ours_gen.get_state(), gen.get_state())
