"""torch.library.opcheck for every operator (schema, fake/meta implementation, registration)."""

from __future__ import annotations

import pytest
import torch

import pyinit  # noqa: F401  (registers the operators)

ops = torch.ops.pyinit

# Random ops produce different values on every call, so the checks that compare two runs of the op
# are left out for them; the schema, fake-tensor and autograd-registration checks run for every op.
RANDOM_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor")


def _cases():
    t = lambda *s, dtype=torch.float32: torch.empty(*s, dtype=dtype)  # noqa: E731
    q, r = torch.linalg.qr(torch.randn(6, 4))
    return [
        ("uniform_", ops.uniform_.default, (t(5, 7), -1.0, 2.0, None), RANDOM_UTILS),
        ("normal_", ops.normal_.default, (t(5, 7), 0.0, 1.0, torch.Generator()), RANDOM_UTILS),
        (
            "masked_uniform_",
            ops.masked_uniform_.default,
            (t(40), -10.0, 10.0, 5.0, None),
            RANDOM_UTILS,
        ),
        (
            "trunc_normal_",
            ops.trunc_normal_.default,
            (t(33), 0.0, 1.0, -2.0, 2.0, None),
            RANDOM_UTILS,
        ),
        ("sparse_", ops.sparse_.default, (t(8, 6), 2, 0.01, None), RANDOM_UTILS),
        ("fill_", ops.fill_.default, (t(5, 7, dtype=torch.bfloat16), 0.5), None),
        ("eye_", ops.eye_.default, (t(5, 7),), None),
        ("dirac_", ops.dirac_.default, (t(4, 2, 3),), None),
        ("orthogonal_finish_", ops.orthogonal_finish_.default, (t(6, 4), q, r, 1.0, False), None),
    ]


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_opcheck(case):
    _, op, args, utils = case
    if op is ops.dirac_.default:
        args = (*args, 1)
    kwargs = {} if utils is None else {"test_utils": utils}
    torch.library.opcheck(op, args, **kwargs)
