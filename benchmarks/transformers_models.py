"""transformers' SigLIP construction, plain vs under pyinit's patches:
``python -m benchmarks.transformers_models [--models siglip,siglip_vision] [--repeats 3]``.

Times ``SiglipModel(SiglipConfig())`` (the siglip-base-patch16-224 dimensions: a 12-layer ViT-B/16
vision tower and a 12-layer text tower of width 768, 32000-token vocabulary; about 203M parameters)
and ``SiglipVisionModel(SiglipVisionConfig())``, built from the config (no download), on CPU, three
contenders interleaved in one run: plain transformers, inside ``pyinit.patch_torch_init()``
(torch.nn.init only: SigLIP's lecun_normal_ and default_flax_embed_init are not reached) and inside
``pyinit.patch_torch_init(transformers=True)`` (those through pyinit.transformers too). Best of
``--repeats`` (and the median). Before timing, each patched model is built after the same
``torch.manual_seed`` as a plain one and compared parameter by parameter, bit for bit; the table
says whether the weights are identical. Needs transformers.
"""

from __future__ import annotations

import argparse
import contextlib
import warnings

import pyinit

from .environment import environment, header_lines
from .timm_models import finish, time_constructions

CONTENDERS = {
    "transformers": contextlib.nullcontext,
    "patch_torch_init()": pyinit.patch_torch_init,
    "patch_torch_init(transformers=True)": lambda: pyinit.patch_torch_init(transformers=True),
}


def _builders():
    from transformers import SiglipConfig, SiglipModel, SiglipVisionConfig, SiglipVisionModel

    return {
        "siglip": lambda: SiglipModel(SiglipConfig()),
        "siglip_vision": lambda: SiglipVisionModel(SiglipVisionConfig()),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.transformers_models", description=__doc__
    )
    p.add_argument("--models", default="siglip,siglip_vision")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=None, help="also write the table to this file")
    args = p.parse_args(argv)
    import transformers

    builders = _builders()  # imports the modeling modules before any patch (see patch_transformers)
    # A fallback would void the figures; transformers' own notices are not pyinit's.
    warnings.simplefilter("error", pyinit.PyinitFallbackWarning)
    env = environment()
    lines = [*header_lines(env), f"transformers {transformers.__version__}"]
    lines.append(
        f"construction from config (SiglipConfig() / SiglipVisionConfig()) on CPU, best (median) "
        f"of {args.repeats}, contenders interleaved; seconds"
    )
    columns = f"{'best':>8} {'median':>8} {'speedup':>8}  weights"
    lines.append(f"{'model':<22} {'contender':<36} {columns}")
    print("\n".join(lines), flush=True)
    for name in args.models.split(","):
        time_constructions(lines, name, builders[name], CONTENDERS, args.repeats)
    return finish(lines, env, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
