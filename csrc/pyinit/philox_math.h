#pragma once
// Double-precision math of the philox stream, written once for the host and the device: ln, e^x, sin and cos
// on [0, pi/4], erfc on the whole line. See Note [philox double math].
//
// Note [philox double math]
// ~~~~~~~~~~~~~~~~~~~~~~~~~
// libm, NumPy's SIMD loops (AVX-512 or not) and CUDA's math library each round log/exp/sin/cos/erfc their own
// way, so float64 values of the philox stream that went through them differed by an ulp or two between
// devices, CPUs and the NumPy oracle. These functions use only IEEE +, -, *, / and sqrt rounded to nearest
// (dadd_rn, dmul_rn, ddiv_rn, dsqrt_rn: never contracted into an FMA, also under nvcc --fmad=true),
// comparisons and exact bit manipulations, so every device and pyinit/reference/philox_math.py (the same
// operations in NumPy) give the same bits. The coefficients are Taylor coefficients derived in
// tools/philox_math_coeffs.py (rounded once to double):
//   log:  x = 2^e m, m in [sqrt(1/2), sqrt(2)], f = m - 1, s = f / (2 + f), ln(1 + f) = 2 atanh(s)
//         = f - s (f - R(s^2)), then + e ln2 (ln2 in two parts, the first sum carried exactly);
//   exp:  x = k ln2 + r (Cody-Waite, |r| <= ln2 / 2), e^r = 1 + r + r^2 P(r) (Taylor to r^14), times 2^k;
//   sin, cos: Taylor to x^19 / x^20 (cos carries the rounding error of 1 - x^2/2);
//   erfc: |y| < 1/2: 1 - erf(y) (Taylor of erf); 1/2 <= |y| < 28: exp(-y^2) erfcx(y) with y^2 exact (Dekker)
//         and erfcx = exp(y^2) erfc(y) a Taylor polynomial about the center of one of 18 intervals (its
//         coefficients from the ODE erfcx' = 2 y erfcx - 2/sqrt(pi)); y < 0: 2 - erfc(-y).
// Measured against mpmath (tests/test_philox.py::test_double_math_is_accurate, docs/philox_stream.md): log,
// exp, sin, cos within 0.9 ulp, erfc within 1.8 ulp.

#include <cmath>
#include <cstdint>

#include "pyinit/macros.h"
#include "pyinit/rounded_arithmetic.h"

namespace pyinit {

// Exactly rounded arithmetic (dadd_rn, dmul_rn, ddiv_rn, dsqrt_rn) and bit copies: pyinit/rounded_arithmetic.h.

// ---- coefficients (python3 tools/philox_math_coeffs.py --cpp) ------------------------------------------------

// Generated tables (checked by tools/philox_math_coeffs.py): not reformatted.
// clang-format off
constexpr double kPhiloxLn2Hi = 0.6931471805598903;
constexpr double kPhiloxLn2Lo = 5.497923018708371e-14;
constexpr double kPhiloxInvLn2 = 1.4426950408889634;
constexpr double kPhiloxSqrt2 = 1.4142135623730951;
constexpr double kPhiloxSqrt2Pi = 2.5066282746310007;
#define PYINIT_PHILOX_LOG_F64_COEFFS \
    0.6666666666666666, 0.4, 0.2857142857142857, 0.2222222222222222, 0.18181818181818182, 0.15384615384615385, \
    0.13333333333333333, 0.11764705882352941, 0.10526315789473684, 0.09523809523809523
#define PYINIT_PHILOX_EXP_F64_COEFFS \
    0.5, 0.16666666666666666, 0.041666666666666664, 0.008333333333333333, 0.001388888888888889, 0.0001984126984126984, \
    2.48015873015873e-05, 2.7557319223985893e-06, 2.755731922398589e-07, 2.505210838544172e-08, 2.08767569878681e-09, \
    1.6059043836821613e-10, 1.1470745597729725e-11
#define PYINIT_PHILOX_SIN_F64_COEFFS \
    -0.16666666666666666, 0.008333333333333333, -0.0001984126984126984, 2.7557319223985893e-06, \
    -2.505210838544172e-08, 1.6059043836821613e-10, -7.647163731819816e-13, 2.8114572543455206e-15, \
    -8.22063524662433e-18
#define PYINIT_PHILOX_COS_F64_COEFFS \
    0.041666666666666664, -0.001388888888888889, 2.48015873015873e-05, -2.755731922398589e-07, 2.08767569878681e-09, \
    -1.1470745597729725e-11, 4.779477332387385e-14, -1.5619206968586225e-16, 4.110317623312165e-19
#define PYINIT_PHILOX_ERF_F64_COEFFS \
    0.1283791670955126, -0.37612638903183754, 0.11283791670955126, -0.026866170645131252, 0.005223977625442188, \
    -0.0008548327023450853, 0.00012055332981789664, -1.492565035840625e-05, 1.6462114365889248e-06, \
    -1.6365844691234924e-07, 1.4807192815879218e-08, -1.2290555301717928e-09, 9.422759064650411e-11
constexpr int kPhiloxErfcxIntervals = 18;
constexpr int kPhiloxErfcxTerms = 18;
#define PYINIT_PHILOX_ERFCX_BREAKS \
    0.5, 0.75, 1.25, 1.75, 2.25, 3.0, 3.75, 4.75, 5.75, 6.75, 8.25, 9.75, 11.75, 14.25, 17.25, 20.25, 24.25, 27.25, \
    28.0
#define PYINIT_PHILOX_ERFCX_CENTERS \
    0.625, 1.0, 1.5, 2.0, 2.625, 3.375, 4.25, 5.25, 6.25, 7.5, 9.0, 10.75, 13.0, 15.75, 18.75, 22.25, 25.75, 27.625
#define PYINIT_PHILOX_ERFCX_COEFFS \
    {0.5568138808733625, 2.8215672146600085e-17, -0.43236181600380946, 0.2865877458709816, -0.16882964988963062, \
     0.09053460734498123, -0.044898208119606944, 0.02082440909007563, -0.009109414982374192, 0.00378275618152294, \
     -0.0014989316375383012, 0.0005691847816123003, -0.00020785293618738425, 7.321278274919753e-05, \
     -2.4937684149097815e-05, 8.232390022287343e-06, -2.6389920513557637e-06, 8.228774987737488e-07, \
     -2.499639546614318e-07}, \
    {0.427583576155807, 5.235737283314228e-18, -0.27321201478389856, 0.15437156137190844, -0.07922696894132675, \
     0.037572296215290846, -0.016661869090414363, 0.006970142374958827, -0.0027690647758444385, 0.001050269399778597, \
     -0.0003819545280146314, 0.00013366297435279316, -4.514391884760696e-05, 1.4753175917531031e-05, \
     -4.675498912319374e-06, 1.4396681436016656e-06, -4.314441024956944e-07, 1.260280051382464e-07, \
     -3.593130557146447e-08}, \
    {0.3215854164543175, 1.7007985607722196e-17, -0.16362291773256007, 0.0761510398554774, -0.03293090529956264, \
     0.013377340953066719, -0.005145957547985025, 0.001886134877029727, -0.0006619300664115528, \
     0.00022330994435309945, -7.265892219597859e-05, 2.2864312211826308e-05, -6.974991614225297e-06, \
     2.0669707984147273e-06, -5.960823717851086e-07, 1.6754960581958065e-07, -4.596772840743168e-08, \
     1.232475165105414e-08, -3.233011874217703e-09}, \
    {0.25539567631050575, -4.276022290165946e-18, -0.1067964618534896, 0.04180275260352655, -0.015460637764291003, \
     0.00544073853747227, -0.0018316642757385847, 0.0005924699953317003, -0.00018477836716433832, \
     5.5728315250755926e-05, -1.6293719258405878e-05, 4.628175346788834e-06, -1.2795215572414928e-06, \
     3.4485537205097473e-07, -9.074012509839129e-08, 2.333930312202745e-08, -5.874869180578186e-09, \
     1.448695595108885e-09, -3.5029152827769595e-10}, \
    {0.201887554546017, 3.2903559088569845e-18, -0.06846950572892327, 0.022155102007593415, -0.006874908639327039, \
     0.002054233414679969, -0.0005930183703168478, 0.00016585339753274792, -4.5043771940967e-05, \
     1.1903374046927386e-05, -3.0660922372850243e-06, 7.709763848108395e-07, -1.8950531402846743e-07, \
     4.558748924768542e-08, -1.0744331500506645e-08, 2.483374151265069e-09, -5.633965804581119e-10, \
     1.2555726594531565e-10, -2.7506912629606848e-11}, \
    {0.1606310681265444, 2.4080744685198277e-18, -0.044119457241337846, 0.011727899937029176, -0.0030251966359095845, \
     0.0007589306454171639, -0.00018552228305066247, 4.4264313373726045e-05, -1.0322921546953446e-05, \
     2.3561132881895407e-06, -5.268975998474993e-07, 1.1556677774084612e-07, -2.4883586358571572e-08, \
     5.264112296777843e-09, -1.0949549779917464e-09, 2.2409132086509993e-10, -4.515290267627122e-11, \
     8.962534291585571e-12, -1.7534528755494014e-12}, \
    {0.12934527478598792, -1.2917508513157319e-17, -0.028944331414615332, 0.006331866273872749, \
     -0.0013559331671040983, 0.00028457515684016577, -5.8595500213357555e-05, 1.1848093644465379e-05, \
     -2.354600635537056e-06, 4.6026023585822286e-07, -8.855436291991303e-08, 1.6780838689718502e-08, \
     -3.1337815433835274e-09, 5.770445217230847e-10, -1.0482189631698735e-10, 1.8793066053698345e-11, \
     -3.3268487451692517e-12, 5.817448608411281e-13, -1.0052153959934787e-13}, \
    {0.1056127354688918, 2.7634215791419046e-18, -0.01944544467214865, 0.003524150940111397, -0.0006291014910425433, \
     0.00011068405606902238, -1.9204078672070307e-05, 3.287547680217758e-06, -5.555581002648793e-07, \
     9.271691345678536e-08, -1.5287623248168034e-08, 2.4913782807806367e-09, -4.0143404983085286e-10, \
     6.397491986144319e-11, -1.0087033932042482e-11, 1.5739988168885947e-12, -2.4313868578364785e-13, \
     3.719008956555544e-14, -5.634201831115506e-15}, \
    {0.08915663178727438, 5.224908596182542e-18, -0.0139212697545827, 0.0021486958211325118, -0.00032794724833633417, \
     4.951275951521167e-05, -7.397000546504479e-06, 1.093835366519561e-06, -1.6015128735920634e-07, \
     2.3222455131130372e-08, -3.335765064364781e-09, 4.74784695770098e-10, -6.697467560030325e-11, \
     9.36549554470046e-12, -1.298512068603903e-12, 1.7854215941800965e-13, -2.4349809632179004e-14, \
     3.2944811521113614e-15, -4.422708742921169e-16}, \
    {0.07457369306287669, -3.416395861455172e-18, -0.009773771152362328, 0.0012704094201592168, \
     -0.0001638003341121349, 2.0953457159102526e-05, -2.659762167546386e-06, 3.3508030083487727e-07, \
     -4.1902831795658954e-08, 5.202265591858774e-09, -6.412977459373669e-10, 7.850649946570445e-11, \
     -9.545272717196998e-12, 1.1528256811211624e-12, -1.3832001673665836e-13, 1.6489365085174958e-14, \
     -1.953303813046156e-15, 2.2994831091609843e-16, -2.6904880138284448e-17}, \
    {0.06230772403777468, 3.099185004587209e-18, -0.006840134415568259, 0.0007465142976603508, -8.100382441673458e-05, \
     8.739938954869779e-06, -9.377495291626275e-07, 1.0006439746871059e-07, -1.061998626978064e-08, \
     1.1211302601712065e-09, -1.1773642849772947e-10, 1.2300480738328236e-11, -1.2785639732318813e-12, \
     1.3223416320688393e-13, -1.3608692979988592e-14, 1.3937037695695163e-15, -1.4204787384839265e-16, \
     1.4409113116747802e-17, -1.4548065644308743e-18}, \
    {0.05225856230371755, -1.905543814219956e-18, -0.004820077565585235, 0.0004427284736762777, \
     -4.0497649043499374e-05, 3.6893732293297304e-06, -3.347547312819089e-07, 3.025328934973672e-08, \
     -2.723391649211182e-09, 2.442072801791274e-10, -2.1814086063458318e-11, 1.9411709993901026e-12, \
     -1.7209051272994762e-13, 1.519966459052763e-14, -1.3375566741193206e-15, 1.172757633921337e-16, \
     -1.024562902051778e-17, 8.91906427695945e-19, -7.736881444545544e-20}, \
    {0.043271921864609694, -1.5894692806153284e-18, -0.003309198615660565, 0.0002523398610223522, \
     -1.9186948246657623e-05, 1.4547669079015276e-06, -1.0999137757510625e-07, 8.29299980838211e-09, \
     -6.235371617539435e-10, 4.67541763952115e-11, -3.4961930258208887e-12, 2.607334119079895e-13, \
     -1.939248563945909e-14, 1.4385164325035554e-15, -1.0642646414044177e-16, 7.853199811116056e-18, \
     -5.779822127910708e-19, 4.242888060401707e-20, -3.10667822809986e-21}, \
    {0.03574979042827294, 1.6027955039322487e-18, -0.0022607686049148676, 0.00014268490086377924, \
     -8.987610873562957e-06, 5.650148025813362e-07, -3.5451093162764525e-08, 2.2200284225983077e-09, \
     -1.3875585909748077e-10, 8.655910453246377e-12, -5.389487686334054e-13, 3.349346945404852e-14, \
     -2.077568133116586e-15, 1.286285595770485e-16, -7.948972273549544e-18, 4.903208955204529e-19, \
     -3.01890892136548e-20, 1.8553425506737294e-21, -1.1381694594630152e-22}, \
    {0.030047497603428425, -8.527816251762256e-20, -0.0015980069669466513, 8.486697317871e-05, -4.500813230559294e-06, \
     2.383625528616128e-07, -1.260614576162182e-08, 6.657732770678963e-10, -3.5113376171075406e-11, \
     1.8493684650581135e-12, -9.727054471906136e-14, 5.109150315142597e-15, -2.6799569275230617e-16, \
     1.4038512672809302e-17, -7.343969441741125e-19, 3.836713850638486e-20, -2.0017462905861812e-21, \
     1.0429944473674482e-22, -5.427259032025417e-24}, \
    {0.0253313026906648, 5.473610427732158e-19, -0.0011361973609289653, 5.091140999531928e-05, \
     -2.2789923554076588e-06, 1.0191504374943406e-07, -4.553052793100456e-09, 2.0320636764964156e-10, \
     -9.060317970265809e-12, 4.035732028068336e-13, -1.7958712847502602e-14, 7.983683899801416e-16, \
     -3.545748553535468e-17, 1.5732228030833167e-18, -6.973510257705893e-20, 3.0881101062507665e-21, \
     -1.3662036173058476e-22, 6.038382218156961e-24, -2.6663027959910193e-25}, \
    {0.02189379029714581, -4.328855097218732e-19, -0.000848966792503319, 3.289539018534684e-05, \
     -1.2736634870919962e-06, 4.9277696363966704e-08, -1.905122287941405e-09, 7.359914982517549e-11, \
     -2.8411942694674655e-12, 1.0959934659706366e-13, -4.22468768735022e-15, 1.6272772955909965e-16, \
     -6.263391127891645e-18, 2.409013359816324e-19, -9.25872713301699e-21, 3.5558747234927335e-22, \
     -1.364662933642692e-23, 5.233458670350238e-25, -2.0055677679418053e-26}, \
    {0.020409797572189383, 1.6781569049217213e-18, -0.0007378512320490684, 2.6657286833868884e-05, \
     -9.624555089603307e-07, 3.472669941987464e-08, -1.252174994517544e-09, 4.512173210916118e-11, \
     -1.6248985719904062e-12, 5.847726448155286e-14, -2.1031423750018464e-15, 7.55912744253702e-17, \
     -2.715167091089951e-18, 9.746392233505208e-20, -3.4963440898672594e-21, 1.2534526463843209e-22, \
     -4.4908205640764246e-24, 1.607933194776085e-25, -5.753542765586958e-27}
// clang-format on

constexpr double kPhiloxRoundMagic = 6755399441055744.0;  // 1.5 * 2^52: (t + M) - M rounds t to an integer
constexpr double kPhiloxInf = __builtin_huge_val();

struct PhiloxErfcxTable {
  double breaks[kPhiloxErfcxIntervals + 1];
  double centers[kPhiloxErfcxIntervals];
  double coeffs[kPhiloxErfcxIntervals][kPhiloxErfcxTerms + 1];  // a_0 (hi), a_0 (lo), a_1 .. a_(terms - 1)
};
#if defined(__CUDACC__)
static __device__ const PhiloxErfcxTable kPhiloxErfcxDevice = {
    {PYINIT_PHILOX_ERFCX_BREAKS}, {PYINIT_PHILOX_ERFCX_CENTERS}, {PYINIT_PHILOX_ERFCX_COEFFS}};
#endif
inline constexpr PhiloxErfcxTable kPhiloxErfcxHost = {
    {PYINIT_PHILOX_ERFCX_BREAKS}, {PYINIT_PHILOX_ERFCX_CENTERS}, {PYINIT_PHILOX_ERFCX_COEFFS}};

PYINIT_INLINE const PhiloxErfcxTable& philox_erfcx_table() {
#if defined(__CUDA_ARCH__)
  return kPhiloxErfcxDevice;
#else
  return kPhiloxErfcxHost;
#endif
}

// ---- exp, log ------------------------------------------------------------------------------------------------

// 2^k for k in [-1022, 1023], from the bits.
PYINIT_INLINE double philox_pow2(int k) { return bits_double(static_cast<uint64_t>(k + 1023) << 52); }

// v 2^k rounded once (v near 1, |k| < 2000): two steps where the result may be subnormal or overflow, the
// first one exact.
PYINIT_INLINE double philox_ldexp(double v, int k) {
  if (k < -1000) return dmul_rn(dmul_rn(v, philox_pow2(k + 600)), philox_pow2(-600));
  if (k > 1000) return dmul_rn(dmul_rn(v, philox_pow2(k - 600)), philox_pow2(600));
  return dmul_rn(v, philox_pow2(k));
}

// exp(hi + lo) = 2^k (1 + t) for |hi| <= 746 and |lo| tiny: returns t, sets k.
PYINIT_INLINE double philox_exp_reduced(double hi, double lo, int* k) {
  const double c[] = {PYINIT_PHILOX_EXP_F64_COEFFS};
  constexpr int n = sizeof(c) / sizeof(c[0]);
  const double kd = dadd_rn(dadd_rn(dmul_rn(hi, kPhiloxInvLn2), kPhiloxRoundMagic), -kPhiloxRoundMagic);
  double r = dadd_rn(hi, -dmul_rn(kd, kPhiloxLn2Hi));  // exact
  r = dadd_rn(dadd_rn(r, -dmul_rn(kd, kPhiloxLn2Lo)), lo);
  double p = c[n - 1];
  for (int i = n - 2; i >= 0; --i) p = dadd_rn(dmul_rn(p, r), c[i]);
  *k = static_cast<int>(kd);
  return dadd_rn(r, dmul_rn(dmul_rn(r, r), p));
}

// e^x: inf above 709.79, 0 below -745.2.
PYINIT_INLINE double philox_exp(double x) {
  if (!(x >= -745.2 && x <= 709.79)) return x > 709.79 ? kPhiloxInf : (x < -745.2 ? 0.0 : x);
  int k;
  const double t = philox_exp_reduced(x, 0.0, &k);
  return philox_ldexp(dadd_rn(1.0, t), k);
}

// ln x for x > 0 (subnormals included); -inf at 0, nan below 0, inf at inf.
PYINIT_INLINE double philox_log(double x) {
  if (!(x > 0.0 && x < kPhiloxInf)) return x == 0.0 ? -kPhiloxInf : (x == kPhiloxInf ? x : x * 0.0 / 0.0);
  const double c[] = {PYINIT_PHILOX_LOG_F64_COEFFS};
  constexpr int n = sizeof(c) / sizeof(c[0]);
  int e = -1023;
  if (x < 2.2250738585072014e-308) {
    x = dmul_rn(x, 18014398509481984.0);  // 2^54, exact
    e -= 54;
  }
  const uint64_t b = double_bits(x);
  e += static_cast<int>(b >> 52);
  double m = bits_double((b & ((uint64_t{1} << 52) - 1)) | (uint64_t{1023} << 52));  // [1, 2)
  if (m > kPhiloxSqrt2) {
    m = dmul_rn(m, 0.5);
    e += 1;
  }
  const double f = dadd_rn(m, -1.0);  // exact
  const double s = ddiv_rn(f, dadd_rn(2.0, f));
  const double z = dmul_rn(s, s);
  double p = c[n - 1];
  for (int i = n - 2; i >= 0; --i) p = dadd_rn(dmul_rn(p, z), c[i]);
  const double big_r = dmul_rn(z, p);
  const double ed = static_cast<double>(e);
  const double a = dmul_rn(ed, kPhiloxLn2Hi);  // exact
  const double hi = dadd_rn(a, f);
  const double err = dadd_rn(dadd_rn(a, -hi), f);  // exact: |a| >= |f| or a = 0
  const double corr = dadd_rn(dmul_rn(s, dadd_rn(f, -big_r)), -dmul_rn(ed, kPhiloxLn2Lo));
  return dadd_rn(hi, dadd_rn(err, -corr));
}

// ---- sin, cos on [0, pi/4] -----------------------------------------------------------------------------------

// sin x for |x| <= 0.8.
PYINIT_INLINE double philox_sin_reduced(double x) {
  const double c[] = {PYINIT_PHILOX_SIN_F64_COEFFS};
  constexpr int n = sizeof(c) / sizeof(c[0]);
  const double z = dmul_rn(x, x);
  double p = c[n - 1];
  for (int i = n - 2; i >= 0; --i) p = dadd_rn(dmul_rn(p, z), c[i]);
  return dadd_rn(x, dmul_rn(dmul_rn(x, z), p));
}

// cos x for |x| <= 0.8: 1 - x^2/2 with its rounding error carried.
PYINIT_INLINE double philox_cos_reduced(double x) {
  const double c[] = {PYINIT_PHILOX_COS_F64_COEFFS};
  constexpr int n = sizeof(c) / sizeof(c[0]);
  const double z = dmul_rn(x, x);
  const double hz = dmul_rn(z, 0.5);
  const double w = dadd_rn(1.0, -hz);
  double p = c[n - 1];
  for (int i = n - 2; i >= 0; --i) p = dadd_rn(dmul_rn(p, z), c[i]);
  return dadd_rn(w, dadd_rn(dadd_rn(dadd_rn(1.0, -w), -hz), dmul_rn(dmul_rn(z, z), p)));
}

// ---- erfc ----------------------------------------------------------------------------------------------------

// erfc(y) for y in [1/2, 28): exp(-y^2) erfcx(y).
PYINIT_INLINE double philox_erfc_positive(double y) {
  const PhiloxErfcxTable& t = philox_erfcx_table();
  int j = 0;
  while (j + 1 < kPhiloxErfcxIntervals && y >= t.breaks[j + 1]) ++j;
  const double* a = t.coeffs[j];
  const double d = dadd_rn(y, -t.centers[j]);
  double p = a[kPhiloxErfcxTerms];
  for (int i = kPhiloxErfcxTerms - 1; i >= 2; --i) p = dadd_rn(dmul_rn(p, d), a[i]);
  const double g = dadd_rn(a[0], dadd_rn(dmul_rn(p, d), a[1]));
  // y^2 = hi + lo exactly (Dekker's product, Veltkamp's split)
  const double hi = dmul_rn(y, y);
  const double c = dmul_rn(134217729.0, y);  // 2^27 + 1
  const double yh = dadd_rn(c, -dadd_rn(c, -y));
  const double yl = dadd_rn(y, -yh);
  const double lo = dadd_rn(dadd_rn(dadd_rn(dmul_rn(yh, yh), -hi), dmul_rn(dmul_rn(yh, yl), 2.0)), dmul_rn(yl, yl));
  int k;
  const double e = philox_exp_reduced(-hi, -lo, &k);
  return philox_ldexp(dadd_rn(g, dmul_rn(g, e)), k);
}

PYINIT_INLINE double philox_erfc(double y) {
  if (y != y) return y;
  const double ay = std::fabs(y);
  if (ay < 0.5) {  // 1 - erf(y), erf(y) = y + y Q(y^2), 1 - y carried as a sum of two doubles
    const double c[] = {PYINIT_PHILOX_ERF_F64_COEFFS};
    constexpr int n = sizeof(c) / sizeof(c[0]);
    const double z = dmul_rn(y, y);
    double q = c[n - 1];
    for (int i = n - 2; i >= 0; --i) q = dadd_rn(dmul_rn(q, z), c[i]);
    const double s = dadd_rn(1.0, -y);
    const double err = dadd_rn(dadd_rn(1.0, -s), -y);
    return dadd_rn(s, dadd_rn(err, -dmul_rn(y, q)));
  }
  const double r = ay < 28.0 ? philox_erfc_positive(ay) : 0.0;
  return y < 0.0 ? dadd_rn(2.0, -r) : r;
}

}  // namespace pyinit
