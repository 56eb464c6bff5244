"""The properties PyTorch's own init tests check: distributions (Kolmogorov-Smirnov), dirac_ as an
identity convolution, orthogonality, zeros per column of sparse_, and the masked uniform's
mixture."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from scipy import stats

import pyinit

N = 200_000
ALPHA = 1e-4  # fixed seeds: a failure means a real distribution error, not bad luck


def _sample(init, dtype=torch.float32, shape=(N,)):
    torch.manual_seed(1)
    t = torch.empty(shape, dtype=dtype)
    init(t)
    return t.double().flatten().numpy()


def test_uniform_ks():
    x = _sample(lambda t: pyinit.uniform_(t, -2.0, 3.0))
    assert stats.kstest(x, stats.uniform(loc=-2.0, scale=5.0).cdf).pvalue > ALPHA


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normal_ks(dtype):
    x = _sample(lambda t: pyinit.normal_(t, 1.5, 0.5), dtype)
    assert stats.kstest(x, stats.norm(loc=1.5, scale=0.5).cdf).pvalue > ALPHA


def test_trunc_normal_ks_and_bounds():
    x = _sample(lambda t: pyinit.trunc_normal_(t, 0.2, 1.0, -1.5, 2.5))
    assert x.min() >= -1.5 and x.max() <= 2.5
    dist = stats.truncnorm((-1.5 - 0.2) / 1.0, (2.5 - 0.2) / 1.0, loc=0.2, scale=1.0)
    assert stats.kstest(x, dist.cdf).pvalue > ALPHA


def test_masked_uniform_mixture():
    x = _sample(pyinit.masked_uniform_)
    zeros = x == 0
    # P(|U(-10,10)| < 5) = 1/2, the rest uniform on [-10,-5] U [5,10].
    assert abs(zeros.mean() - 0.5) < 5 * math.sqrt(0.25 / N)
    kept = x[~zeros]
    assert stats.kstest(abs(kept), stats.uniform(loc=5.0, scale=5.0).cdf).pvalue > ALPHA


def test_kaiming_and_xavier_moments():
    fan_in, fan_out = 400, 500
    cases = [
        (pyinit.kaiming_uniform_, math.sqrt(2.0) / math.sqrt(fan_in)),
        (pyinit.kaiming_normal_, math.sqrt(2.0) / math.sqrt(fan_in)),
        (pyinit.xavier_uniform_, math.sqrt(2.0 / (fan_in + fan_out))),
        (pyinit.xavier_normal_, math.sqrt(2.0 / (fan_in + fan_out))),
    ]
    for init, std in cases:
        x = _sample(init, shape=(fan_out, fan_in))
        assert abs(x.mean()) < 5 * std / math.sqrt(x.size)
        assert abs(x.std() / std - 1) < 0.01, init.__name__


@pytest.mark.parametrize("dims, groups", [(3, 1), (4, 1), (5, 1), (4, 2), (3, 3)])
def test_dirac_is_identity_convolution(dims, groups):
    out_per_group, in_per_group = 4, 4
    kernel = (3,) * (dims - 2)
    w = torch.empty(out_per_group * groups, in_per_group, *kernel)
    pyinit.dirac_(w, groups)
    x = torch.randn(2, in_per_group * groups, *(7,) * (dims - 2))
    conv = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[dims]
    y = conv(x, w, padding=1, groups=groups)
    assert torch.equal(y, x)


@pytest.mark.parametrize("shape", [(10, 10), (10, 30), (30, 10), (8, 3, 4)])
def test_orthogonal_is_orthogonal(shape):
    w = torch.empty(shape, dtype=torch.float64)
    pyinit.orthogonal_(w, gain=2.0)
    m = w.reshape(shape[0], -1)
    rows, cols = m.shape
    gram = m @ m.t() if rows < cols else m.t() @ m
    assert torch.allclose(gram, 4.0 * torch.eye(min(rows, cols), dtype=torch.float64), atol=1e-10)


@pytest.mark.parametrize("sparsity", [0.1, 0.35, 0.9])
def test_sparse_zeros_per_column(sparsity):
    rows, cols = 40, 25
    w = torch.empty(rows, cols)
    pyinit.sparse_(w, sparsity)
    per_column = (w == 0).sum(0)
    assert (per_column == math.ceil(sparsity * rows)).all()
