#pragma once
// The float arithmetic of the Box-Muller polynomials (philox_log_float's tail with the sqrt of
// philox_radius_float, philox_sincos_quarter's two polynomials) on N vectors at once, written once for the AVX2
// and AVX-512 tile kernels: `Ops` gives the vector type V and add, mul, splat, sqrt. Every step is the scalar
// code's operation, in its order (no FMA). Include it after the file's `#pragma GCC target`, so that the
// functions are compiled for that instruction set.

#include "pyinit/philox_transforms.h"

namespace pyinit::cpu {

// sqrt(-2 ln x) from philox_log_float's reduced argument t, z = t^2 and the exponent e (as a float).
template <typename Ops, int N>
inline void philox_log_sqrt(const typename Ops::V* t, const typename Ops::V* z, const typename Ops::V* e,
                            typename Ops::V* out) {
  using V = typename Ops::V;
  static constexpr float c[8] = {-1.1514610310e-1f, 1.1676998740e-1f, -1.2420140846e-1f, 1.4249322787e-1f,
                                 -1.6668057665e-1f, 2.0000714765e-1f, -2.4999993993e-1f, 3.3333331174e-1f};
  V y[N];
  for (int i = 0; i < N; ++i) y[i] = Ops::splat(7.0376836292e-2f);
  for (int step = 0; step < 8; ++step) {
    for (int i = 0; i < N; ++i) y[i] = Ops::add(Ops::mul(y[i], t[i]), Ops::splat(c[step]));
  }
  for (int i = 0; i < N; ++i) {
    V v = Ops::mul(Ops::mul(y[i], t[i]), z[i]);
    v = Ops::add(v, Ops::mul(Ops::splat(-2.12194440e-4f), e[i]));
    v = Ops::add(v, Ops::mul(Ops::splat(-0.5f), z[i]));
    const V r = Ops::add(t[i], v);
    const V log = Ops::add(r, Ops::mul(Ops::splat(0.693359375f), e[i]));
    out[i] = Ops::sqrt(Ops::mul(Ops::splat(-2.0f), log));
  }
}

// The sine polynomial (without the final * g) and the cosine polynomial in g2 = g^2.
template <typename Ops, int N>
inline void philox_sincos_poly(const typename Ops::V* g2, typename Ops::V* ps, typename Ops::V* pc) {
  static constexpr float sc[5] = {PYINIT_PHILOX_SIN_COEFFS};
  static constexpr float cc[6] = {PYINIT_PHILOX_COS_COEFFS};
  for (int i = 0; i < N; ++i) {
    ps[i] = Ops::splat(sc[4]);
    pc[i] = Ops::splat(cc[5]);
  }
  for (int k = 4; k >= 0; --k) {
    for (int i = 0; i < N; ++i) {
      if (k <= 3) ps[i] = Ops::add(Ops::mul(ps[i], g2[i]), Ops::splat(sc[k]));
      pc[i] = Ops::add(Ops::mul(pc[i], g2[i]), Ops::splat(cc[k]));
    }
  }
}

}  // namespace pyinit::cpu
