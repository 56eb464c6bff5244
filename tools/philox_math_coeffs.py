"""Derives the coefficients of csrc/pyinit/philox_math.h (and pyinit/reference/philox_math.py).

Every coefficient is a Taylor coefficient, computed exactly (rationals) or with mpmath at 60 digits and
then rounded once to the nearest double:
  * log: 2 atanh(s) = 2 s + sum_{n>=1} 2 s^(2n+1) / (2n + 1), |s| <= 3 - 2 sqrt(2) ~ 0.1716;
  * exp: sum r^n / n!, |r| <= ln(2) / 2;
  * sin, cos: the alternating factorial series on [0, pi/4];
  * erf (|y| < 1/2): 2/sqrt(pi) sum (-1)^n y^(2n+1) / (n! (2n + 1));
  * erfcx(y) = exp(y^2) erfc(y) on [1/2, 28): piecewise Taylor polynomials about the midpoint c of each
    interval. erfcx solves g' = 2 y g - 2/sqrt(pi), so with a_n = g^(n)(c) / n!:
        a_0 = erfcx(c) (mpmath), a_1 = 2 c a_0 - 2/sqrt(pi), a_(n+1) = (2 c a_n + 2 a_(n-1)) / (n + 1).
    The intervals are chosen greedily so that ERFCX_TERMS terms leave a tail below 2^-60 relative.

Run: python3 tools/philox_math_coeffs.py [--cpp | --python]; prints the tables (and the tail bounds).
"""

from __future__ import annotations

import sys
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
    for lo, hi in zip(points, points[1:]):
        c = (lo + hi) / 2  # exact: breakpoints are multiples of 1/4
        a = _erfcx_taylor(mp.mpf(c), ERFCX_TERMS)[:ERFCX_TERMS]
        # a_0 as a sum of two doubles (hi, lo), then a_1 .. a_(N-1)
        rows.append((c, [_d(a[0]), _d(a[0] - _d(a[0]))] + [_d(x) for x in a[1:]]))
    return rows


def _fmt(x: float) -> str:
    return repr(float(x))


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "--python"
    points = erfcx_intervals()
    table = erfcx_table(points)
    scalar = {
        "LOG": log_coeffs(),
        "EXP": exp_coeffs(),
        "SIN": sin_coeffs(),
        "COS": cos_coeffs(),
        "ERF": erf_coeffs(),
    }
    if mode == "--cpp":
        for name, v in constants().items():
            print(f"constexpr double k{name.title().replace('_', '')} = {_fmt(v)};")
        for name, cs in scalar.items():
            print(f"#define PYINIT_PHILOX_{name}_F64_COEFFS " + ", ".join(_fmt(c) for c in cs))
        print(f"constexpr int kErfcxIntervals = {len(table)};")
        print("// breakpoints")
        print(", ".join(_fmt(p) for p in points))
        print("// centers")
        print(", ".join(_fmt(c) for c, _ in table))
        for _, cs in table:
            print("{" + ", ".join(_fmt(x) for x in cs) + "},")
    else:
        for name, v in constants().items():
            print(f"_{name} = {_fmt(v)}")
        for name, cs in scalar.items():
            print(f"_{name}_COEFFS = [" + ", ".join(_fmt(c) for c in cs) + "]")
        print("_ERFCX_BREAKS = [" + ", ".join(_fmt(p) for p in points) + "]")
        print("_ERFCX_CENTERS = [" + ", ".join(_fmt(c) for c, _ in table) + "]")
        print("_ERFCX_COEFFS = [")
        for _, cs in table:
            print("    [" + ", ".join(_fmt(x) for x in cs) + "],")
        print("]")
    worst = max(_tail(lo, hi) for lo, hi in zip(points, points[1:]))
    print(f"# erfcx: {len(table)} intervals, worst relative tail {float(worst):.2e}", file=sys.stderr)


if __name__ == "__main__":
    main()
