"""Every pyinit:: operator has a CPU kernel, a Meta kernel and, with --require-cuda,
a CUDA kernel. Prints one line per operator; exits 1 when anything is missing (CI: the torch 2.14.1
CUDA leg).

CPU_ONLY lists the operators that have no CUDA kernel by design, each with the reason; they are
printed as such, never skipped in silence."""

from __future__ import annotations

import argparse
import sys

import torch

import pyinit  # noqa: F401  (loads pyinit._C, which registers the operators)

# philox sparse_ on CUDA writes the values with philox_normal_ on the device and takes the zero
# pattern from philox_sparse_ on a CPU bool tensor (pyinit/philox.py, _sparse): the per-column
# selection runs on the host.
CPU_ONLY = {
    "pyinit::philox_sparse_": "zero pattern selected on the host for every device",
    "pyinit::qr_serial_": "the thread count matters to CPU LAPACK only; CUDA runs torch.linalg.qr",
    # torch's CUDA arithmetic for trunc_normal_'s narrow branch (its reciprocal div_, CUDA's logf)
    # is not reproduced without a GPU to verify it: on CUDA pyinit runs torch's composition, with a
    # PyinitFallbackWarning (pyinit/_streams.py).
    "pyinit::trunc_normal_uniform_": "narrow-window trunc_normal_: CUDA arithmetic not verified",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--require-cuda", action="store_true", help="fail unless every op has CUDA")
    args = parser.parse_args()
    names = sorted(n for n in torch._C._dispatch_get_all_op_names() if n.startswith("pyinit::"))
    if not names:
        print("check_registration: no pyinit:: operators registered")
        return 1
    keys = ["CPU", "CUDA", "Meta"]
    missing = []
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}): {len(names)} pyinit operators")
    for name in names:
        # A CompositeExplicitAutograd kernel (the *_many_ loops, csrc/many.cpp) serves every device.
        composite = torch._C._dispatch_has_kernel_for_dispatch_key(
            name, "CompositeExplicitAutograd"
        )
        has = {
            k: composite or torch._C._dispatch_has_kernel_for_dispatch_key(name, k) for k in keys
        }
        # csrc/ops.cpp defines every operator with the Meta kernel of csrc/meta.cpp.
        need_cuda = args.require_cuda and name not in CPU_ONLY
        required = ["CPU", "Meta"] + (["CUDA"] if need_cuda else [])
        missing += [f"{name}: {k}" for k in required if not has[k]]
        line = f"  {name:34s} " + " ".join(f"{k}={'yes' if has[k] else 'NO'}" for k in keys)
        if name in CPU_ONLY:
            line += f"  (CPU only by design: {CPU_ONLY[name]})"
            if has["CUDA"]:
                missing.append(f"{name}: listed as CPU only but has a CUDA kernel (edit CPU_ONLY)")
        print(line)
    if missing:
        print("check_registration: missing kernels:\n  " + "\n  ".join(missing))
        return 1
    print("check_registration: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
