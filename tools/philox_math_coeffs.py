"""Derives the coefficients of csrc/pyinit/philox_math.h (and pyinit/reference/philox_math.py).

Every coefficient is a Taylor coefficient, computed exactly (rationals) or with mpmath at 60
digits and then rounded once to the nearest double:
  * log: 2 atanh(s) = 2 s + sum_{n>=1} 2 s^(2n+1) / (2n + 1), |s| <= 3 - 2 sqrt(2) ~ 0.1716;
  * exp: sum r^n / n!, |r| <= ln(2) / 2;
  * sin, cos: the alternating factorial series on [0, pi/4];
  * erf (|y| < 1/2): 2/sqrt(pi) sum (-1)^n y^(2n+1) / (n! (2n + 1));
  * erfcx(y) = exp(y^2) erfc(y) on [1/2, 28): piecewise Taylor polynomials about the midpoint c
    of each interval. erfcx solves g' = 2 y g - 2/sqrt(pi), so with a_n = g^(n)(c) / n!:
        a_0 = erfcx(c) (mpmath), a_1 = 2 c a_0 - 2/sqrt(pi),
        a_(n+1) = (2 c a_n + 2 a_(n-1)) / (n + 1).
    The intervals are chosen greedily so that ERFCX_TERMS terms leave a tail below 2^-60 relative.

Run: python3 tools/philox_math_coeffs.py --cpp | --python prints the tables of the header / the
NumPy mirror; with --check (the default) it checks that both files hold exactly those tables.
"""

from __future__ import annotations

import pathlib
import sys
import textwrap
from fractions import Fraction

import mpmath as mp

mp.mp.dps = 60
ERFCX_TERMS = 18
LOG_TERMS = 10  # 2/3 .. 2/21
EXP_TERMS = 14  # 1/2! .. 1/14!  (r + r^2 P(r))
SIN_TERMS = 9  # -1/3! .. 1/19!
COS_TERMS = 9  # 1/4! .. 1/20!
ERF_TERMS = 13  # y^1 .. y^25


def _d(x) -> float:
    return float(mp.mpf(x))


def log_coeffs() -> list[float]:
    return [float(Fraction(2, 2 * n + 1)) for n in range(1, LOG_TERMS + 1)]


def exp_coeffs() -> list[float]:
    return [_d(1 / mp.factorial(n)) for n in range(2, EXP_TERMS + 1)]


def sin_coeffs() -> list[float]:
    return [_d((-1) ** n / mp.factorial(2 * n + 1)) for n in range(1, SIN_TERMS + 1)]


def cos_coeffs() -> list[float]:
    return [_d((-1) ** n / mp.factorial(2 * n)) for n in range(2, COS_TERMS + 2)]


def erf_coeffs() -> list[float]:
    """erf(y) = y + y Q(y^2): the first coefficient is 2/sqrt(pi) - 1."""
    k = 2 / mp.sqrt(mp.pi)
    cs = [k * (-1) ** n / (mp.factorial(n) * (2 * n + 1)) for n in range(ERF_TERMS)]
    cs[0] -= 1
    return [_d(c) for c in cs]


def constants() -> dict[str, float]:
    """ln 2 = LN2_HI + LN2_LO with LN2_HI on 42 bits (so that k LN2_HI is exact for |k| < 2^11)."""
    ln2 = mp.log(2)
    ln2_hi = mp.nint(ln2 * 2**42) / 2**42
    return {
        "LN2_HI": _d(ln2_hi),
        "LN2_LO": _d(ln2 - ln2_hi),
        "INV_LN2": _d(1 / ln2),
        "SQRT2": _d(mp.sqrt(2)),
        "SQRT_2PI": _d(mp.sqrt(2 * mp.pi)),
    }


def _erfcx_taylor(c, terms):
    a = [mp.erfc(c) * mp.exp(c * c)]
    a.append(2 * c * a[0] - 2 / mp.sqrt(mp.pi))
    for n in range(1, terms + 40):
        a.append((2 * c * a[n] + 2 * a[n - 1]) / (n + 1))
    return a


def _tail(lo, hi) -> mp.mpf:
    c, h = (mp.mpf(lo) + hi) / 2, (mp.mpf(hi) - lo) / 2
    a = _erfcx_taylor(c, ERFCX_TERMS)
    return sum(abs(a[n]) * h**n for n in range(ERFCX_TERMS, len(a))) / a[0]


def erfcx_intervals() -> list[float]:
    """Breakpoints from 1/2 to 28: steps of 1/4 below 4, 1/2 below 16, 1 above."""
    points, lo = [0.5], 0.5
    while lo < 28:
        step = 0.25 if lo < 4 else (0.5 if lo < 16 else 1.0)
        hi = min(lo + step, 28.0)
        while hi + step <= 28 and _tail(lo, hi + step) < mp.mpf(2) ** -60:
            hi += step
        points.append(hi)
        lo = hi
    return points


def erfcx_table(points) -> list[tuple[float, list[float]]]:
    rows = []
    for lo, hi in zip(points, points[1:], strict=False):
        c = (lo + hi) / 2  # exact: breakpoints are multiples of 1/4
        a = _erfcx_taylor(mp.mpf(c), ERFCX_TERMS)[:ERFCX_TERMS]
        # a_0 as a sum of two doubles (hi, lo), then a_1 .. a_(N-1)
        rows.append((c, [_d(a[0]), _d(a[0] - _d(a[0]))] + [_d(x) for x in a[1:]]))
    return rows


def _wrap(vals, indent: str, width: int) -> list[str]:
    return textwrap.wrap(", ".join(repr(float(v)) for v in vals), width - len(indent))


def python_tables() -> str:
    """The coefficient block of pyinit/reference/philox_math.py (between fmt: off / fmt: on)."""

    def block(name, vals, indent=""):
        head = f"{indent}{name} = [" if name else f"{indent}["
        body = [f"{indent}    {line}" for line in _wrap(vals, indent + "    ", 100)]
        return "\n".join([head, *body, f"{indent}]" + ("" if name else ",")]) + "\n"

    out = "".join(f"_{k} = {v!r}\n" for k, v in constants().items())
    for name, vals in _scalar_tables().items():
        out += block(f"_{name}_COEFFS", vals)
    points = erfcx_intervals()
    table = erfcx_table(points)
    out += block("_ERFCX_BREAKS", points) + block("_ERFCX_CENTERS", [c for c, _ in table])
    out += "_ERFCX_COEFFS = [  # per interval: a_0 (hi), a_0 (lo), a_1 .. a_17\n"
    out += "".join(block(None, cs, "    ") for _, cs in table) + "]\n"
    return out


def cpp_tables() -> str:
    """The coefficient block of csrc/pyinit/philox_math.h."""

    def macro(name, vals):
        lines = _wrap(vals, "    ", 118)
        return f"#define {name} \\\n" + " \\\n".join("    " + line for line in lines) + "\n"

    out = "".join(
        f"constexpr double kPhilox{k.title().replace('_', '')} = {v!r};\n"
        for k, v in constants().items()
    )
    for name, vals in _scalar_tables().items():
        out += macro(f"PYINIT_PHILOX_{name}_F64_COEFFS", vals)
    points = erfcx_intervals()
    table = erfcx_table(points)
    out += f"constexpr int kPhiloxErfcxIntervals = {len(table)};\n"
    out += f"constexpr int kPhiloxErfcxTerms = {ERFCX_TERMS};\n"
    out += macro("PYINIT_PHILOX_ERFCX_BREAKS", points)
    out += macro("PYINIT_PHILOX_ERFCX_CENTERS", [c for c, _ in table])
    rows = []
    for _, cs in table:
        lines = _wrap(cs, "     ", 118)
        rows.append("    {" + " \\\n     ".join(lines) + "}")
    return out + "#define PYINIT_PHILOX_ERFCX_COEFFS \\\n" + ", \\\n".join(rows) + "\n"


def _scalar_tables() -> dict[str, list[float]]:
    return {
        "LOG": log_coeffs(),
        "EXP": exp_coeffs(),
        "SIN": sin_coeffs(),
        "COS": cos_coeffs(),
        "ERF": erf_coeffs(),
    }


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "--check"
    root = pathlib.Path(__file__).resolve().parent.parent
    if mode == "--cpp":
        print(cpp_tables(), end="")
    elif mode == "--python":
        print(python_tables(), end="")
    else:  # --check: the committed tables are this script's output
        ok = cpp_tables() in (root / "csrc/pyinit/philox_math.h").read_text()
        ok &= python_tables() in (root / "pyinit/reference/philox_math.py").read_text()
        print("philox_math_coeffs: tables " + ("match" if ok else "DIFFER"))
        sys.exit(0 if ok else 1)
    points = erfcx_intervals()
    worst = max(_tail(lo, hi) for lo, hi in zip(points, points[1:], strict=False))
    print(
        f"# erfcx: {len(points) - 1} intervals, worst relative tail {float(worst):.2e}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
