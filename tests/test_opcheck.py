"""torch.library.opcheck for every pyinit operator x dtype x device, with all of opcheck's checks.

opcheck's default checks are test_schema, test_autograd_registration, test_faketensor and
test_aot_dispatch_dynamic. The last one runs the op eagerly and under AOTAutograd after the same
torch.manual_seed, so the torch-stream random ops (tagged nondeterministic_seeded) are called with
generator=None: the default generators are reseeded between the two runs and both runs write the
same values. The philox ops take their key and offset as arguments and are deterministic.
"""

from __future__ import annotations

import pytest
import torch
from helpers import CUDA_MARKS, DTYPES

import pyinit  # noqa: F401  (registers the operators)
from pyinit._ops import has_kernel

ops = torch.ops.pyinit

KEY, OFFSET = 0x1234_5678_9ABC, 64

SEEDED = (
    "uniform_",
    "normal_",
    "masked_uniform_",
    "trunc_normal_",
    "trunc_normal_uniform_",
    "sparse_",
    "timm_trunc_normal_",
    "uniform_many_",
    "normal_many_",
    "uniform_blocks_",
    "masked_uniform_blocks_",
    "normal_blocks_",
    "trunc_normal_blocks_",
    "sparse_blocks_",
    "philox_uniform_drawn_",
    "philox_normal_drawn_",
    "philox_masked_uniform_drawn_",
    "philox_trunc_normal_drawn_",
    "philox_sparse_drawn_",
)
# No CUDA kernel by design (.ci/check_registration.py): the error each raises on a CUDA tensor.
# philox_sparse_drawn_ is composite (it serves every device) and refuses non-CPU tensors itself.
CPU_ONLY = {
    "philox_sparse_": NotImplementedError,
    "qr_serial_": NotImplementedError,
    "trunc_normal_uniform_": NotImplementedError,
    "philox_sparse_drawn_": RuntimeError,
}


def _float_cases(device: str, dtype: torch.dtype):
    """(op name, args) for the ops that write a floating tensor of `dtype`."""

    def t(*shape: int) -> torch.Tensor:
        return torch.zeros(*shape, dtype=dtype, device=device)

    q, r = torch.linalg.qr(
        torch.randn(6, 4, dtype=torch.float64 if dtype == torch.float64 else torch.float32)
    )
    q, r = q.to(device), r.to(device)
    # timm's trunc_normal_ (float32/float64 only: pyinit/timm.py runs timm's composition otherwise).
    timm_cases = (
        [
            ("timm_trunc_normal_", (t(5, 7), -0.95, 0.95, 0.03, 0.0, -2.0, 2.0, None, None, None)),
            ("timm_trunc_normal_", (t(33), -0.95, 0.95, 1.4, 0.0, -2.0, 2.0, 0.02, 0.5, None)),
        ]
        if dtype in (torch.float32, torch.float64)
        else []
    )
    return timm_cases + [
        ("uniform_", (t(5, 7), -1.0, 2.0, None)),
        ("normal_", (t(5, 7), 0.0, 1.0, None)),
        ("masked_uniform_", (t(40), -10.0, 10.0, 5.0, None)),
        ("trunc_normal_", (t(33), 0.0, 1.0, -2.0, 2.0, None)),
        ("trunc_normal_uniform_", (t(33), 0.0, 1.0, 1.0, 2.0, -0.5, None)),
        ("sparse_", (t(8, 6), 2, 0.01, None)),
        ("fill_", (t(5, 7), 0.5)),
        ("eye_", (t(5, 7),)),
        ("dirac_", (t(4, 2, 3), 1)),
        ("orthogonal_finish_", (t(6, 4), q, r, 1.5, False)),
        ("philox_uniform_", (t(5, 7), -1.0, 2.0, KEY, OFFSET)),
        ("philox_uniform_", (t(2, 7), -1.0, 2.0, KEY, OFFSET, [5, 7], [1, 0])),
        ("philox_normal_", (t(5, 7), 0.0, 1.0, KEY, OFFSET)),
        ("philox_masked_uniform_", (t(40), -10.0, 10.0, 5.0, KEY, OFFSET)),
        ("philox_trunc_normal_", (t(33), 0.0, 1.0, -2.0, 2.0, KEY, OFFSET)),
        ("philox_sparse_", (t(8, 6), 2, 0.01, KEY, OFFSET)),
        ("philox_uniform_drawn_", (t(5, 7), -1.0, 2.0, None)),
        ("philox_normal_drawn_", (t(5, 7), 0.0, 1.0, None)),
        ("philox_masked_uniform_drawn_", (t(40), -10.0, 10.0, 5.0, None)),
        ("philox_trunc_normal_drawn_", (t(33), 0.0, 1.0, -2.0, 2.0, None)),
        ("philox_sparse_drawn_", (t(8, 6), 2, 0.01, None)),
        ("uniform_blocks_", ([t(2, 7), t(3, 7)], -1.0, 2.0, [5, 7], [0, 0, 2, 0], None)),
        ("masked_uniform_blocks_", ([t(33)], -10.0, 10.0, 5.0, [40], [7], None)),
        ("normal_blocks_", ([t(5, 3), t(0, 7)], 0.0, 1.0, [5, 7], [0, 4, 5, 0], None)),
        ("sparse_blocks_", ([t(4, 7), t(0, 7)], 2, 0.5, [4, 7], [0, 0, 4, 0], None)),
        (
            "trunc_normal_blocks_",
            ([t(9, 7), t(0, 7)], 0.0, 1.0, -1.0, 1.5, [9, 7], [0, 0, 9, 0], None),
        ),
        ("uniform_many_", ([t(5, 7), t(3), t(0)], [-1.0, 0.0, 1.0], [2.0, 0.5, 1.0], None)),
        ("normal_many_", ([t(5, 7), t(3)], [0.0, 1.0], [1.0, 0.5], None)),
        ("philox_uniform_many_", ([t(5, 7), t(3)], [-1.0, 0.0], [2.0, 0.5], [KEY, 7], [OFFSET, 0])),
        ("philox_normal_many_", ([t(5, 7), t(3)], [0.0, 1.0], [1.0, 0.5], [KEY, 7], [OFFSET, 0])),
    ]


def _cases():
    """(op name, device, dtype, index into _float_cases or None): the arguments are made when the
    test runs, so CUDA cases are collected (and skipped) without a GPU."""
    for device in ("cpu", "cuda"):
        device_marks = list(CUDA_MARKS) if device == "cuda" else []
        for dtype in DTYPES:
            for index, (name, _) in enumerate(_float_cases("meta", dtype)):
                marks = list(device_marks)
                if device != "cpu" and name in CPU_ONLY:
                    assert name == "philox_sparse_drawn_" or not has_kernel(name, device)
                    marks.append(
                        pytest.mark.xfail(
                            raises=CPU_ONLY[name],
                            strict=True,
                            reason=f"pyinit::{name} has no {device} kernel by design (see "
                            ".ci/check_registration.py)",
                        )
                    )
                dtype_name = str(dtype).removeprefix("torch.")
                yield pytest.param(
                    name, device, dtype, index, id=f"{name}-{device}-{dtype_name}", marks=marks
                )
        yield pytest.param(
            "philox_bits_",
            device,
            torch.int32,
            None,
            id=f"philox_bits_-{device}-int32",
            marks=device_marks,
        )
    # philox_sparse_ with std=None: only the zero pattern, on any dtype (CPU-only operator).
    yield pytest.param("philox_sparse_", "cpu", torch.bool, None, id="philox_sparse_-cpu-bool")
    for dtype in (torch.float32, torch.float64):  # the philox stream's QR (CPU-only operator)
        name = str(dtype).removeprefix("torch.")
        yield pytest.param("qr_serial_", "cpu", dtype, None, id=f"qr_serial_-cpu-{name}")


def _args(name: str, device: str, dtype: torch.dtype, index: int | None) -> tuple:
    if index is not None:
        made, args = _float_cases(device, dtype)[index]
        assert made == name
        return args
    if name == "philox_bits_":
        return (torch.zeros(5, 7, dtype=torch.int32, device=device), KEY, OFFSET, 1)
    if name == "qr_serial_":
        a = torch.randn(7, 5, dtype=dtype, device=device)
        return (torch.empty(7, 5, dtype=dtype), torch.empty(5, 5, dtype=dtype), a)
    return (torch.ones(8, 6, dtype=dtype, device=device), 2, None, KEY, OFFSET)


def _covered_ops() -> set[str]:
    return {p.values[0] for p in _cases()}


def test_every_op_is_covered():
    schemas = {
        s.name.removeprefix("pyinit::")
        for s in torch._C._jit_get_all_schemas()
        if s.name.startswith("pyinit::")
    }
    assert schemas == _covered_ops()


def test_seeded_tag():
    for name in _covered_ops():
        tagged = torch.Tag.nondeterministic_seeded in getattr(ops, name).default.tags
        assert tagged == (name in SEEDED), name


@pytest.mark.parametrize(("name", "device", "dtype", "index"), list(_cases()))
def test_opcheck(name: str, device: str, dtype: torch.dtype, index: int | None):
    torch.library.opcheck(getattr(ops, name).default, _args(name, device, dtype, index))
