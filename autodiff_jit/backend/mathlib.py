"""Vectorizable transcendental functions written directly in LLVM IR.

Why this exists: a loop calling ``llvm.exp.f64`` (or ``exp`` from libm) is lowered to one scalar
libm call per element, and such a loop runs several times slower than ``numpy.exp``.  The
functions here are built only from arithmetic, integer/bit operations, ``select`` and the
``llvm.fma / fabs / sqrt / copysign / trunc / rint`` intrinsics -- no calls, no branches -- and
are ``internal alwaysinline``, so after inlining the loop body is straight-line code that the LLVM
loop vectorizer turns into ``<8 x double>`` AVX-512 code.  (One exception: sin/cos/tan branch to a
Payne-Hanek function for |x| >= 2^50, which the vectorizer turns into a masked vector call; see
below.)

Public API
----------
``get_math_function(module, name, ty)``
    Return (defining it once per module) ``adj.<name>.f64`` / ``adj.<name>.f32`` of type
    ``ty(ty)`` (``ty(ty, ty)`` for ``pow``).  ``ty`` is ``ir.DoubleType()`` or ``ir.FloatType()``.
``MATH_FUNCTIONS``
    The supported names (numpy semantics): exp, expm1, log, log1p, sin, cos, tan, sinh, cosh,
    tanh, arcsin, arccos, arctan, pow.
``build_unary_loop_module(name, dtype)`` / ``build_binary_loop_module(name, dtype)``
    LLVM IR text of ``void <loop_symbol(name, dtype)>(in..., out, i64 n)`` computing
    ``out[i] = f(in[i])`` -- used by the tests and the benchmark.
``ensure_huge_functions(compile_support=None)``
    Compile (once per process; through ``compile_support``, e.g. the disk cache's
    ``cache.support_compiler(directory)``, if given) the module that defines the huge-argument
    path of sin/cos/tan, ``adj.<name>.huge.f64[.v<N>]``.
``compile_loop(name, dtype)``
    JIT-compiles that loop (engine.compile_module) and returns a numpy-array callable.

Methods (all classical; written from scratch here)
--------------------------------------------------
* exp family (exp, expm1, sinh, cosh, tanh, pow): Cody-Waite reduction ``x = n ln2 + r``,
  ``|r| <= ln2/2``, with ``n`` rounded by the 1.5*2^52 "magic number" trick and ``ln2`` split in
  two doubles applied with fma (the first fma is exact); ``expm1(r)`` by a minimax polynomial
  ``r + r^2 P(r)`` so small arguments keep full relative accuracy (Tang / fdlibm style);
  ``exp(x) = 2^n (1 + expm1(r))`` with the scaling split in two steps so that results in the
  subnormal range are rounded once and overflow happens exactly at the right place;
  ``expm1(x) = 2^n expm1(r) + (2^n - 1)`` in one fma.
* log family (log, log1p, pow): ``x = 2^k m`` with ``m`` in ``[sqrt(2)/2, sqrt(2))`` by integer
  arithmetic on the bits (subnormals pre-scaled by 2^54), then fdlibm's
  ``log(1+f) = f - f^2/2 + s (f^2/2 + R(s^2))``, ``s = f / (2 + f)``, and ``k ln2`` with a
  short ``ln2_hi`` so that ``k * ln2_hi`` is exact.  log1p adds the rounding error of ``1 + x``
  back as ``c / (1 + x)`` (Goldberg / fdlibm).  pow uses a double-double version of the same
  log (about 2^-64 relative) and an exp that accepts a double-double argument.
* sin, cos, tan: Cody-Waite reduction by pi/2 with a three-double pi/2 and fma, minimax
  polynomials on ``[-pi/4, pi/4]``, quadrant selection by ``select`` and a sign-bit xor;
  ``tan = sin/cos`` (or ``-cos/sin`` in odd quadrants) from double-double sin and cos with one
  division plus a correction step.  The Cody-Waite reduction is exact to full double
  accuracy while ``|x| < 2^50`` (about 1.1e15).  Finite ``|x| >= SINCOS_ARG_LIMIT`` take a
  Payne-Hanek reduction (``_rempi``, after SLEEF's rempi): a table indexed by the exponent
  (``_rempi_table()``, four 53-bit windows of 2/pi per exponent, computed from Machin's formula in
  integer arithmetic) multiplied by the significand in double-double with fma, integer parts split
  off for the quadrant, giving ``r + r_lo`` to ~2^-100 relative (also for the closest approach of a
  double to a multiple of pi/2, ~4.7e-19); the kernels then use ``r_lo`` as a first-order
  correction.  That path is a separate ``noinline`` function behind a branch; the loop vectorizer
  if-converts the branch into a call of a masked vector variant (``"vector-function-abi-variant"``,
  VF 2/4/8/16) that returns at once when no lane is huge, so ordinary arguments pay one call per
  vector, and a vector with huge lanes runs the scalar Payne-Hanek code lane by lane.  These
  functions and the table are compiled once per process in their own module
  (``ensure_huge_functions``, registered with ``engine.register_prelude``: the engine calls it
  before compiling IR or loading object code that names them); a module using sin/cos/tan only
  declares them (external, same attributes), so it compiles as fast as one using exp.
* arctan: Cephes-style three-interval reduction (``t = x``, ``(x-1)/(x+1)`` or ``-1/x`` with
  offsets 0, pi/4, pi/2 kept as hi+lo), minimax polynomial ``t + t^3 P(t^2)``, |t| <= tan(pi/8).
* arcsin / arccos: ``|x| <= 1/2`` directly by ``x + x^3 P(x^2)``; otherwise by the half-angle
  identity ``asin(x) = pi/2 - 2 asin(sqrt((1-x)/2))`` (fdlibm / Cephes).
* float32: computed in double and rounded once with fptrunc (vectorizes as well).

The polynomial coefficients are Chebyshev-fit (near-minimax) approximations computed with
mpmath at 60 digits by ``_generate_coefficients()`` below and then rounded to double.

Accuracy
--------
``MAX_ULP_F64`` / ``MAX_ULP_F32`` below are the bounds asserted by tests/backend/test_mathlib.py
(ulps of the result against numpy, and against long double where that is wider).  Measured max over
~1e6 samples per function across its whole domain (an error of 1 means faithfully rounded):

    f64: exp 1, expm1 2, log 1, log1p 1, sin 1, cos 1, tan 2 (also for huge |x|), sinh 2, cosh 1,
         tanh 2 (3 vs numpy), arcsin 2, arccos 1, arctan 2, pow 1
    f32: 0 against the correctly rounded result for every function (numpy's own float32 loops
         are up to 4 ulp off).

Limitations: pow is not correctly
rounded (exact powers such as 3.0**-1 may be 1 ulp off numpy's correctly rounded result);
float32 runs the double kernels (8 lanes per AVX-512 vector), so it is as fast as float64 but
slower than numpy's native float32 SIMD loops.
"""
from __future__ import annotations

import functools
import threading

import llvmlite.ir as ir

from . import engine
from .lowered import HUGE_MARKER   # (in the name of every huge-path symbol)

__all__ = ["MATH_FUNCTIONS", "get_math_function", "build_unary_loop_module",
           "build_binary_loop_module", "loop_symbol", "compile_loop", "SINCOS_ARG_LIMIT",
           "MAX_ULP_F64", "MAX_ULP_F32"]

MATH_FUNCTIONS = ("exp", "expm1", "log", "log1p", "sin", "cos", "tan", "sinh", "cosh", "tanh",
                  "arcsin", "arccos", "arctan", "pow")
_BINARY = frozenset({"pow"})

#: sin/cos/tan use the Cody-Waite reduction (exact) below this, Payne-Hanek from it on.
SINCOS_ARG_LIMIT = 2.0 ** 50

#: Asserted error bounds (ulps of the result, against numpy) in the tests.
MAX_ULP_F64 = {"exp": 1, "expm1": 2, "log": 1, "log1p": 2, "sin": 1, "cos": 1, "tan": 2,
               "sinh": 2, "cosh": 2, "tanh": 3, "arcsin": 2, "arccos": 2, "arctan": 2, "pow": 2}
MAX_ULP_F32 = {name: 1 for name in MATH_FUNCTIONS}

# ---------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------
_MAGIC = 6755399441055744.0          # 1.5 * 2**52: x + MAGIC rounds x to an integer (|x| < 2**51)
_MAGIC_BITS = 0x4338000000000000

_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471805599453         # double nearest ln 2
_LN2_LO = 2.3190468138462996e-17     # ln 2 - _LN2_HI
_LN2_HI_T = 0.6931471804855391       # ln 2 with the low 20 bits cleared: k * _LN2_HI_T is exact
_LN2_LO_T = 7.440617110012397e-11    # ln 2 - _LN2_HI_T

_TWO_OVER_PI = 0.6366197723675814
_PIO2_1 = 1.5707963267948966         # pi/2 = _PIO2_1 + _PIO2_2 + _PIO2_3 (+ O(2**-160))
_PIO2_2 = 6.123233995736766e-17
_PIO2_3 = -1.4973849048591698e-33
_PIO2_HI, _PIO2_LO = 1.5707963267948966, 6.123233995736766e-17
_PIO4_HI, _PIO4_LO = 0.7853981633974483, 3.061616997868383e-17
_PI_HI, _PI_LO = 3.141592653589793, 1.2246467991473532e-16
_TWO_THIRDS_HI, _TWO_THIRDS_LO = 0.6666666666666666, 3.700743415417188e-17

_SQRT2M1 = 0.41421356237309503       # tan(pi/8)
_SQRT2P1 = 2.414213562373095         # tan(3 pi/8)
_LOG_OFFSET = 0x3FE6A09E667F3BCD      # bits of sqrt(2)/2: x - OFFSET >> 52 = k with m in [sqrt2/2, sqrt2)
_MIN_NORMAL = 2.2250738585072014e-308
_MAX_DOUBLE = 1.7976931348623157e308
_INF = float("inf")
_NAN = float("nan")

# expm1(r) = r + r^2 * P(r), |r| <= ln2/2
_EXPM1_COEFFS = (  # max fit error 1.40e-18
    0.5,
    0.1666666666666667,
    0.04166666666666667,
    0.008333333333326124,
    0.0013888888888883742,
    0.00019841269874858612,
    2.4801587325574868e-05,
    2.7557255352032673e-06,
    2.7557273608709007e-07,
    2.51052370507603e-08,
    2.0914701283103285e-09,
)
# log(1+f) = 2s + s * z * R(z), s = f/(2+f), z = s^2 <= ((sqrt2-1)/(sqrt2+1))^2
_LOG_COEFFS = (  # max fit error 2.07e-18
    0.6666666666666666,
    0.4000000000000088,
    0.2857142857080323,
    0.2222222239180047,
    0.18181795630884753,
    0.15386240205813478,
    0.13268759668560612,
    0.13086767009948175,
)
# sin(r) = r + r z S(z), cos(r) = 1 - z/2 + z^2 C(z), z = r^2, |r| <= pi/4 + 0.001
_SIN_COEFFS = (  # max fit error 1.18e-20
    -0.16666666666666666,
    0.008333333333333331,
    -0.00019841269841265003,
    2.7557319219291695e-06,
    -2.5052106215978872e-08,
    1.6058529011960858e-10,
    -7.586543634101903e-13,
)
_COS_COEFFS = (  # max fit error 1.30e-18
    0.041666666666666664,
    -0.0013888888888887378,
    2.4801587298736863e-05,
    -2.755731725679604e-07,
    2.087614315990944e-09,
    -1.1382408754153254e-11,
)
# atan(t) = t + t z P(z), z = t^2 <= tan(pi/8)^2
_ATAN_COEFFS = (  # max fit error 1.16e-18
    -0.3333333333333333,
    0.19999999999999804,
    -0.14285714285659779,
    0.11111111105150588,
    -0.09090908753259112,
    0.07692296368042296,
    -0.0666642476020052,
    0.05878927554473807,
    -0.05230443640686948,
    0.045515447340221615,
    -0.03456931506332609,
    0.016284375050043393,
)
# asin(s) = s + s z P(z), z = s^2 <= 1/4
_ASIN_COEFFS = (  # max fit error 9.76e-19
    0.16666666666666666,
    0.07500000000000118,
    0.044642857142551895,
    0.03038194447553234,
    0.02237215744350722,
    0.017352816540325496,
    0.01396378001220357,
    0.011566459612121669,
    0.009621842970100282,
    0.009319560794767446,
    0.0030448799094556773,
    0.019554513336123378,
    -0.01924167174674304,
    0.02961201126495512,
)


# Payne-Hanek reduction table (sin/cos/tan for |x| >= SINCOS_ARG_LIMIT).  For the binary exponent
# e = ilogb(x) in [50, 1023] the row _rempi_table()[4 (e - 50) : 4 (e - 50) + 4] holds four consecutive
# 53-bit windows of the binary expansion of 2/pi, starting at bit e - 53 (earlier bits only add
# multiples of 4 to x * 2/pi, i.e. whole turns), each scaled by 2^e so that m * row[j] with the
# significand m = x * 2^-e in [1, 2) neither overflows nor underflows: m * (row[0] + ... + row[3])
# = x * 2/pi mod 4, up to 2^-157.
_REMPI_EMIN, _REMPI_EMAX = 50, 1023
_REMPI_BITS = 1300  # 2/pi to this many bits; the last window ends at bit 1023 - 53 + 211 = 1181


def _two_over_pi_bits(nbits: int) -> int:
    """floor(2/pi * 2^nbits), from Machin's formula in integer arithmetic (64 guard bits; the
    first words, A2F9836E 4E441529 FC2757D1 ..., agree with fdlibm's table)."""
    one = 1 << (nbits + 64)

    def arctan_inv(n):  # arctan(1/n) * one
        total, term, k, sign = 0, one // n, 1, 1
        while term:
            total += sign * (term // k)
            term //= n * n
            k += 2
            sign = -sign
        return total

    pi = 4 * (4 * arctan_inv(5) - arctan_inv(239))
    return ((2 * one * one) // pi) >> 64


@functools.lru_cache(maxsize=None)   # built when the huge-argument module is (~4 ms), not at import
def _rempi_table() -> tuple:
    import math
    bits = _two_over_pi_bits(_REMPI_BITS)
    out = []
    for e in range(_REMPI_EMIN, _REMPI_EMAX + 1):
        for j in range(4):
            last = e - 53 + 53 * j + 52          # weight 2^-last of the window's lowest bit
            window = (bits >> (_REMPI_BITS - last)) & ((1 << 53) - 1)
            out.append(math.ldexp(float(window), e - last))   # exact: window < 2^53
    return tuple(out)



def _generate_coefficients() -> str:  # pragma: no cover - development helper (needs mpmath)
    """Recompute the coefficient tables above (Chebyshev fits at 60 digits, mpmath.chebyfit,
    lowest degree first); returns Python source to paste here."""
    import mpmath as mp
    mp.mp.dps = 60
    sq = mp.sqrt

    def at0(value_at_0, fn):  # the removable singularity at 0
        return lambda t: mp.mpf(value_at_0) if t == 0 else fn(t)

    half_ln2 = mp.log(2) / 2 + mp.mpf("1e-4")
    trig_z = (mp.pi / 4 + mp.mpf("0.001")) ** 2
    fits = [  # (name, function of the polynomial variable, interval, number of coefficients)
        ("EXPM1", at0(mp.mpf(1) / 2, lambda r: (mp.expm1(r) - r) / r ** 2), -half_ln2, half_ln2, 11),
        ("LOG", at0(mp.mpf(2) / 3, lambda z: 2 * (mp.atanh(sq(z)) / sq(z) - 1) / z),
         0, ((sq(2) - 1) / (sq(2) + 1)) ** 2 * mp.mpf("1.0001"), 8),
        ("SIN", at0(-mp.mpf(1) / 6, lambda z: (mp.sin(sq(z)) / sq(z) - 1) / z), 0, trig_z, 7),
        ("COS", at0(mp.mpf(1) / 24, lambda z: (mp.cos(sq(z)) - 1 + z / 2) / z ** 2), 0, trig_z, 6),
        ("ATAN", at0(-mp.mpf(1) / 3, lambda z: (mp.atan(sq(z)) / sq(z) - 1) / z),
         0, mp.tan(mp.pi / 8) ** 2 * mp.mpf("1.0001"), 12),
        ("ASIN", at0(mp.mpf(1) / 6, lambda z: (mp.asin(sq(z)) / sq(z) - 1) / z), 0, mp.mpf(1) / 4, 14),
    ]
    out = []
    for name, fn, a, b, n in fits:
        coeffs, err = mp.chebyfit(fn, [a, b], n, error=True)
        out.append(f"_{name}_COEFFS = (  # max fit error {float(err):.2e}")
        out.extend(f"    {float(c)!r}," for c in reversed(coeffs))
        out.append(")")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# A thin emitter: double-precision scalar ops on an IRBuilder (constants accepted as floats)
# ---------------------------------------------------------------------------------------------
_F64 = ir.DoubleType()
_F32 = ir.FloatType()
_I64 = ir.IntType(64)


_FORMATTED: dict = {}


def _formatted_array(values: tuple) -> str:
    """IR text of a constant double array (cached; formatted directly as the bit patterns, which
    is ~10x faster than llvmlite's formatting of 4k double constants)."""
    text = _FORMATTED.get(values)
    if text is None:
        import struct
        bits = struct.unpack(f"<{len(values)}Q", struct.pack(f"<{len(values)}d", *values))
        text = "[" + ", ".join(f"double 0x{b:016x}" for b in bits) + "]"
        _FORMATTED[values] = text
    return text


class _E:
    """Emit f64/i64 scalar IR.  Arguments may be ir.Values or Python numbers (-> constants)."""

    def __init__(self, builder: ir.IRBuilder):
        self.b = builder
        self.module = builder.module

    # -- values ---------------------------------------------------------------------------
    @staticmethod
    def f(v):
        return v if isinstance(v, ir.Value) else ir.Constant(_F64, float(v))

    @staticmethod
    def i(v):
        return v if isinstance(v, ir.Value) else ir.Constant(_I64, int(v))

    def _intrinsic(self, name, nargs):
        fnty = ir.FunctionType(_F64, [_F64] * nargs)
        return self.module.declare_intrinsic(name, [_F64], fnty=fnty)

    # -- float arithmetic (strict IEEE: no fast-math flags) ----------------------------------
    def add(self, a, b):
        return self.b.fadd(self.f(a), self.f(b))

    def sub(self, a, b):
        return self.b.fsub(self.f(a), self.f(b))

    def mul(self, a, b):
        return self.b.fmul(self.f(a), self.f(b))

    def div(self, a, b):
        return self.b.fdiv(self.f(a), self.f(b))

    def neg(self, a):
        return self.b.fneg(self.f(a))

    def fma(self, a, b, c):
        return self.b.call(self._intrinsic("llvm.fma", 3), [self.f(a), self.f(b), self.f(c)])

    def fabs(self, a):
        return self.b.call(self._intrinsic("llvm.fabs", 1), [self.f(a)])

    def sqrt(self, a):
        return self.b.call(self._intrinsic("llvm.sqrt", 1), [self.f(a)])

    def trunc(self, a):
        return self.b.call(self._intrinsic("llvm.trunc", 1), [self.f(a)])

    def rint(self, a):
        """Round to the nearest integer, ties to even (default rounding mode)."""
        return self.b.call(self._intrinsic("llvm.rint", 1), [self.f(a)])

    def copysign(self, mag, sgn):
        return self.b.call(self._intrinsic("llvm.copysign", 2), [self.f(mag), self.f(sgn)])

    # -- comparisons (ordered: false when an operand is NaN) ---------------------------------
    def lt(self, a, b):
        return self.b.fcmp_ordered("<", self.f(a), self.f(b))

    def le(self, a, b):
        return self.b.fcmp_ordered("<=", self.f(a), self.f(b))

    def gt(self, a, b):
        return self.b.fcmp_ordered(">", self.f(a), self.f(b))

    def ge(self, a, b):
        return self.b.fcmp_ordered(">=", self.f(a), self.f(b))

    def eq(self, a, b):
        return self.b.fcmp_ordered("==", self.f(a), self.f(b))

    def ne(self, a, b):
        return self.b.fcmp_ordered("!=", self.f(a), self.f(b))

    def isnan(self, a):
        return self.b.fcmp_unordered("uno", self.f(a), self.f(a))

    def and_(self, a, b):
        return self.b.and_(a, b)

    def or_(self, a, b):
        return self.b.or_(a, b)

    def not_(self, a):
        return self.b.not_(a)

    def select(self, cond, a, b):
        if isinstance(a, ir.Value) and a.type == _I64 or isinstance(b, ir.Value) and b.type == _I64:
            return self.b.select(cond, self.i(a), self.i(b))
        return self.b.select(cond, self.f(a), self.f(b))

    def min(self, a, hi):
        """min(a, hi) that keeps a NaN `a`."""
        return self.select(self.gt(a, hi), hi, a)

    def clamp(self, a, lo, hi):
        """Clamp to [lo, hi]; a NaN stays NaN."""
        return self.select(self.lt(a, lo), lo, self.min(a, hi))

    # -- integer view --------------------------------------------------------------------
    def bits(self, a):
        return self.b.bitcast(self.f(a), _I64)

    def from_bits(self, n):
        return self.b.bitcast(self.i(n), _F64)

    def iadd(self, a, b):
        return self.b.add(self.i(a), self.i(b))

    def isub(self, a, b):
        return self.b.sub(self.i(a), self.i(b))

    def shl(self, a, k):
        return self.b.shl(self.i(a), self.i(k))

    def ashr(self, a, k):
        return self.b.ashr(self.i(a), self.i(k))

    def iand(self, a, b):
        return self.b.and_(self.i(a), self.i(b))

    def ixor(self, a, b):
        return self.b.xor(self.i(a), self.i(b))

    def ilt(self, a, b):
        return self.b.icmp_signed("<", self.i(a), self.i(b))

    def igt(self, a, b):
        return self.b.icmp_signed(">", self.i(a), self.i(b))

    def ine(self, a, b):
        return self.b.icmp_signed("!=", self.i(a), self.i(b))

    def i2f(self, n):
        return self.b.sitofp(self.i(n), _F64)

    def signbit(self, a):
        return self.ilt(self.bits(a), 0)

    # -- polynomials and double-double helpers -------------------------------------------
    def poly(self, x, coeffs):
        """Horner with fma: coeffs[0] + coeffs[1] x + ... (lowest degree first)."""
        acc = self.f(coeffs[-1])
        for c in reversed(coeffs[:-1]):
            acc = self.fma(acc, x, c)
        return acc

    def two_sum(self, a, b):
        """s + e == a + b exactly (Knuth)."""
        s = self.add(a, b)
        bb = self.sub(s, a)
        e = self.add(self.sub(a, self.sub(s, bb)), self.sub(b, bb))
        return s, e

    def fast_two_sum(self, a, b):
        """s + e == a + b exactly, assuming |a| >= |b| (Dekker)."""
        s = self.add(a, b)
        return s, self.sub(b, self.sub(s, a))

    def two_prod(self, a, b):
        """p + e == a * b exactly (fma)."""
        p = self.mul(a, b)
        return p, self.fma(a, b, self.neg(p))

    def table(self, name, values):
        """An internal constant global [len(values) x double] (defined once per module)."""
        gv = self.module.globals.get(name)
        if gv is None:
            ty = ir.ArrayType(_F64, len(values))
            gv = ir.GlobalVariable(self.module, ty, name=name)
            gv.linkage = "internal"
            gv.global_constant = True
            gv.initializer = ir.FormattedConstant(ty, _formatted_array(values))
        return gv

    def load_at(self, gv, index):
        """gv[index] for an i64 index (in bounds)."""
        return self.b.load(self.b.gep(gv, [ir.Constant(_I64, 0), self.i(index)], inbounds=True))

    def pow2(self, n):
        """2.0**n for an i64 n in [-1022, 1023], built from the exponent bits."""
        return self.from_bits(self.shl(self.iadd(n, 1023), 52))

    def ldexp(self, p, n):
        """p * 2**n for i64 n in [-2044, 2046], in two exact steps so subnormal results are
        rounded once and overflow saturates to inf."""
        n1 = self.ashr(n, 1)
        n2 = self.isub(n, n1)
        return self.mul(self.mul(p, self.pow2(n1)), self.pow2(n2))


# ---------------------------------------------------------------------------------------------
# Shared kernels (all on doubles)
# ---------------------------------------------------------------------------------------------
def _round_to_int(e: _E, x, scale):
    """n = rint(x * scale) as (double, i64), valid for |x * scale| < 2**51; NaN-safe (no fptosi)."""
    t = e.fma(x, scale, _MAGIC)
    return e.sub(t, _MAGIC), e.isub(e.bits(t), _MAGIC_BITS)


def _exp_reduce(e: _E, x, lo=-746.0, hi=712.0, x_lo=None):
    """x = n ln2 + r with |r| <= ~ln2/2; x is first clamped to [lo, hi] (NaN stays NaN).
    `x_lo` is an optional low-order part of the argument (double-double input).
    Returns (n as i64, expm1(r))."""
    xc = e.clamp(x, lo, hi)
    nf, ni = _round_to_int(e, xc, _LOG2E)
    mn = e.neg(nf)
    r = e.fma(mn, _LN2_HI, xc)        # exact (Sterbenz-like argument; see module docstring)
    r = e.fma(mn, _LN2_LO, r)
    if x_lo is not None:
        r = e.add(r, x_lo)
    return ni, _expm1_poly(e, r)


def _expm1_poly(e: _E, r):
    """expm1(r) for |r| <= ln2/2 + eps: r + r^2 P(r) (no cancellation for small r)."""
    return e.fma(e.mul(r, r), e.poly(r, _EXPM1_COEFFS), r)


def _exp_kernel(e: _E, x, shift=0):
    """exp(x) * 2**shift, overflow -> inf, underflow -> 0 (correctly rounded subnormals)."""
    n, em = _exp_reduce(e, x)
    if shift:
        n = e.iadd(n, shift)
    return e.ldexp(e.add(em, 1.0), n)


def _expm1_kernel(e: _E, x):
    """expm1(x) = 2^n expm1(r) + (2^n - 1), one fma; for n > 1000 scale the rest separately."""
    n, em = _exp_reduce(e, x, lo=-45.0)   # expm1(x) == -1 in double for x < -38
    n_small = e.select(e.igt(n, 1000), e.i(1000), n)
    s = e.pow2(n_small)
    res = e.fma(s, em, e.sub(s, 1.0))
    return e.mul(res, e.pow2(e.isub(n, n_small)))


def _keep_zero(e: _E, x, res):
    """f(+-0) = +-0 for odd functions (the polynomial would lose the sign of -0)."""
    return e.select(e.eq(x, 0.0), x, res)


def _log_decompose(e: _E, x):
    """x (finite, > 0, possibly subnormal) = 2^k * m, m in [sqrt2/2, sqrt2). Returns (k i64, m)."""
    tiny = e.lt(x, _MIN_NORMAL)
    xs = e.select(tiny, e.mul(x, 2.0 ** 54), x)
    b = e.bits(xs)
    k = e.ashr(e.isub(b, _LOG_OFFSET), 52)
    m = e.from_bits(e.isub(b, e.shl(k, 52)))
    k = e.iadd(k, e.select(tiny, e.i(-54), e.i(0)))
    return k, m


def _log_kernel(e: _E, x):
    """log(x) for finite x > 0 (fdlibm's formulation, see module docstring)."""
    k, m = _log_decompose(e, x)
    f = e.sub(m, 1.0)
    s = e.div(f, e.add(f, 2.0))
    z = e.mul(s, s)
    r = e.mul(z, e.poly(z, _LOG_COEFFS))
    hfsq = e.mul(e.mul(f, f), 0.5)
    kf = e.i2f(k)
    # k*ln2_hi - ((hfsq - (s*(hfsq+R) + k*ln2_lo)) - f)
    inner = e.fma(s, e.add(hfsq, r), e.mul(kf, _LN2_LO_T))
    return e.sub(e.mul(kf, _LN2_HI_T), e.sub(e.sub(hfsq, inner), f))


def _positive_finite(e: _E, x):
    """0 < x < inf (x not NaN), by one unsigned compare on the bits."""
    return e.b.icmp_unsigned("<", e.isub(e.bits(x), 1), e.i(0x7FEFFFFFFFFFFFFF))


def _log_specials(e: _E, x, res):
    """log(0) = -inf, log(inf) = inf, log(x < 0) = log(NaN) = NaN; `res` elsewhere."""
    special = e.select(e.eq(x, 0.0), -_INF, e.select(e.eq(x, _INF), _INF, _NAN))
    return e.select(_positive_finite(e, x), res, special)


def _log_dd(e: _E, x):
    """log(x) as a double-double (hi, lo), relative error ~2^-64, for finite x > 0."""
    k, m = _log_decompose(e, x)
    f = e.sub(m, 1.0)                                   # exact
    # s = f / (2 + f) as a double-double
    dh = e.add(f, 2.0)
    dl = e.add(e.sub(2.0, dh), f)                       # 2 + f == dh + dl exactly
    inv = e.div(1.0, dh)                                # one division for both parts
    sh = e.mul(f, inv)                                  # faithful quotient
    rem = e.fma(e.neg(sh), dh, f)                       # f - sh*dh, exact for a faithful sh
    sl = e.mul(e.sub(rem, e.mul(sh, dl)), inv)
    # s^2, s^3 as double-doubles
    s2h = e.mul(sh, sh)
    s2l = e.add(e.fma(sh, sh, e.neg(s2h)), e.mul(e.mul(sh, sl), 2.0))
    s3h = e.mul(s2h, sh)
    s3l = e.add(e.fma(s2h, sh, e.neg(s3h)), e.add(e.mul(s2h, sl), e.mul(s2l, sh)))
    # (2/3) s^3
    t3h = e.mul(s3h, _TWO_THIRDS_HI)
    t3l = e.add(e.fma(s3h, _TWO_THIRDS_HI, e.neg(t3h)),
                e.add(e.mul(s3l, _TWO_THIRDS_HI), e.mul(s3h, _TWO_THIRDS_LO)))
    # s^5 * (2/5 + ...) in plain double (its size is < 2^-12 of the result)
    t5 = e.mul(e.mul(s3h, s2h), e.poly(s2h, _LOG_COEFFS[1:]))
    # log1p(f) = 2s + t3 + t5
    lh, le = e.fast_two_sum(e.mul(sh, 2.0), t3h)         # |2s| > |t3|
    ll = e.add(le, e.add(e.mul(sl, 2.0), e.add(t3l, t5)))
    # + k ln2
    kf = e.i2f(k)
    h, err = e.fast_two_sum(e.mul(kf, _LN2_HI_T), lh)     # k == 0 or |k ln2| > |lh|
    lo = e.add(err, e.add(e.mul(kf, _LN2_LO_T), ll))
    return e.fast_two_sum(h, lo)


def _sincos_reduce(e: _E, x):
    """Cody-Waite: x = q pi/2 + r, |r| <= pi/4 (+ rounding).  Returns (q i64, r).  Exact for
    |x| < 2^50; larger finite x go to _rempi (see _trig)."""
    qf, qi = _round_to_int(e, x, _TWO_OVER_PI)
    mq = e.neg(qf)
    r = e.fma(mq, _PIO2_1, x)            # exact
    r = e.fma(mq, _PIO2_2, r)
    r = e.fma(mq, _PIO2_3, r)
    return qi, r


def _rempi(e: _E, x):
    """Payne-Hanek: (q i64, r, r_lo) with x = q pi/2 + r + r_lo for finite |x| >= 2^50, r + r_lo
    accurate to ~2^-100 relative (garbage, but no poison, for other x).

    With e = ilogb(x) and the significand m = x 2^-e (sign kept, |m| in [1, 2)), x * 2/pi mod 4 is
    m * (t0 + t1 + t2 + t3), t_j = _rempi_table()[4 (e - 50) + j].  m t0 (< 2^55) and m t1 (< 4) are
    formed exactly with fma; integer parts are split off (their value mod 4 is the quadrant) so the
    running double-double sum stays in [-1/2, 1/2] and carries all the fraction bits; m (t2 + t3)
    (< 2^-50) is added last.  The fraction times pi/2 (double-double) is r + r_lo."""
    bits = e.bits(x)
    expo = e.isub(e.iand(e.ashr(bits, 52), 0x7FF), 1023)
    row = e.iadd(expo, -_REMPI_EMIN)
    row = e.select(e.ilt(row, 0), e.i(0), row)                  # ordinary x: any row will do
    row = e.select(e.igt(row, _REMPI_EMAX - _REMPI_EMIN), e.i(_REMPI_EMAX - _REMPI_EMIN), row)
    base = e.shl(row, 2)
    tab = e.table("adj.rempi.tab", _rempi_table())
    t = [e.load_at(tab, e.iadd(base, j)) for j in range(4)]
    m = e.from_bits(e.b.or_(e.iand(bits, 0x800FFFFFFFFFFFFF - (1 << 64)), e.i(1023 << 52)))
    # m t0 = h0 + l0 exactly; |h0| < 2^55, |l0| <= 2.  q = rint(h0) mod 4 (in [-2, 2])
    h0, l0 = e.two_prod(m, t[0])
    n0 = e.rint(h0)
    q = e.sub(n0, e.mul(e.rint(e.mul(n0, 0.25)), 4.0))
    s, c = e.two_sum(e.sub(h0, n0), l0)
    # + m t1 (exact double-double, |.| < 4); split off the integer part again
    h1, l1 = e.two_prod(m, t[1])
    u, v = e.two_sum(s, h1)
    s, c = e.fast_two_sum(u, e.add(e.add(c, l1), v))
    n1 = e.rint(s)
    q = e.add(q, n1)
    s, c = e.fast_two_sum(e.sub(s, n1), c)
    # + m (t2 + t3)
    h2, l2 = e.two_prod(m, t[2])
    u, v = e.two_sum(s, h2)
    s, c = e.fast_two_sum(u, e.add(e.add(c, e.fma(m, t[3], l2)), v))
    # r = (s + c) pi/2
    r = e.mul(s, _PIO2_HI)
    r_lo = e.add(e.fma(s, _PIO2_HI, e.neg(r)), e.fma(s, _PIO2_LO, e.mul(c, _PIO2_HI)))
    r, r_lo = e.fast_two_sum(r, r_lo)
    _, qi = _round_to_int(e, q, 1.0)
    return qi, r, r_lo


def _sin_poly(e: _E, r, r_lo=None):
    """sin(r) = r + r^3 S(r^2); with r_lo (|r_lo| <= ulp(r)/2): sin(r + r_lo) = r + (r^3 S + r_lo)."""
    z = e.mul(r, r)
    if r_lo is None:
        res = e.fma(e.mul(r, z), e.poly(z, _SIN_COEFFS), r)
    else:
        res = e.add(r, e.fma(e.mul(r, z), e.poly(z, _SIN_COEFFS), r_lo))
    return _keep_zero(e, r, res)


def _cos_poly(e: _E, r, r_lo=None):
    """cos(r) = 1 - r^2/2 + r^4 C(r^2); cos(r + r_lo) = cos(r) - r r_lo (below half an ulp)."""
    z = e.mul(r, r)
    one = 1.0 if r_lo is None else e.fma(e.neg(r), r_lo, 1.0)
    return e.fma(z, e.fma(z, e.poly(z, _COS_COEFFS), -0.5), one)


# The Payne-Hanek path is a separate function, reached through a branch on |x| >= 2^50 that the
# loop vectorizer turns into a masked call of a vector variant (declared with the
# "vector-function-abi-variant" attribute).  The variant returns at once when no lane is huge, so
# ordinary arguments pay one predictable branch per vector instead of ~50 flops and four gathers.
#
# These functions (and their 31 KB table) are compiled ONCE per process, in their own module
# (ensure_huge_functions, with external linkage, found by symbol name); a module using sin/cos/tan
# only *declares* them -- with the same attributes, so the vectorizer still emits the masked vector
# calls -- which keeps its compile time at that of any other elementwise function.  The engine
# calls ensure_huge_functions (registered below) before compiling IR or loading object code that
# names them (HUGE_MARKER); compiled.py does it first with the disk cache's support compiler, so
# the module is cached like the call path's generic wrapper (a hit does not even build its IR,
# ~40 ms of Python).
_HUGE_VFS = (2, 4, 8, 16)
_HUGE_NAMES = ("sin", "cos", "tan")
# what (besides this source file and the host, in every disk-cache key) decides build_huge_module
HUGE_RECIPE = f"mathlib-huge names={_HUGE_NAMES} vfs={_HUGE_VFS}"


def _huge_symbols() -> list:
    """All symbols the huge-path module defines (scalar functions and their vector variants)."""
    return [f"adj.{n}.huge.f64{v}" for n in _HUGE_NAMES for v in ("", *(f".v{k}" for k in _HUGE_VFS))]


def _raw_attr(fn, attr):
    set.add(fn.attributes, attr)   # llvmlite only accepts its known keywords through .add


def _keep_used(module, fns):
    """Add functions to @llvm.compiler.used (so they survive until the vectorizer calls them)."""
    gv = module.globals.get("llvm.compiler.used")
    old = [] if gv is None else list(gv.initializer.constant)
    ptr = ir.IntType(8).as_pointer()
    items = old + [f.bitcast(ptr) for f in fns]
    ty = ir.ArrayType(ptr, len(items))
    if gv is None:
        gv = ir.GlobalVariable(module, ty, name="llvm.compiler.used")
        gv.linkage = "appending"
        gv.section = "llvm.metadata"
    gv.value_type = ty
    gv.initializer = ir.Constant(ty, items)


def _huge_function(module, name, kernel=None):
    """`adj.<name>.huge.f64(x)` = kernel applied to the Payne-Hanek reduction of x, plus its masked
    vector variants `adj.<name>.huge.f64.v<N>(<N x double>, <N x i1>)`.  Without `kernel`: external
    declarations only (the definitions live in the per-process module, ensure_huge_functions);
    with it: external definitions (that module)."""
    fname = f"adj.{name}.huge.f64"
    fn = module.globals.get(fname)
    if fn is not None:
        return fn
    fn = ir.Function(module, ir.FunctionType(_F64, [_F64]), name=fname)
    fn.attributes.add("nounwind")
    _raw_attr(fn, "memory(none)")
    variants = ",".join(f"_ZGV_LLVM_M{n}v_{fname}({fname}.v{n})" for n in _HUGE_VFS)
    _raw_attr(fn, f'"vector-function-abi-variant"="{variants}"')
    i32 = ir.IntType(32)
    vecs = []
    for n in _HUGE_VFS:
        vty, mty = ir.VectorType(_F64, n), ir.VectorType(ir.IntType(1), n)
        v = ir.Function(module, ir.FunctionType(vty, [vty, mty]), name=f"{fname}.v{n}")
        v.attributes.add("nounwind")
        _raw_attr(v, "memory(none)")
        vecs.append(v)
    if kernel is None:
        _keep_used(module, vecs)   # the declarations must still be there when the vectorizer runs
        return fn
    fn.attributes.add("noinline")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    e = _E(b)
    b.ret(kernel(e, fn.args[0], *_rempi(e, fn.args[0])))
    for n, v in zip(_HUGE_VFS, vecs):   # scalar calls lane by lane (one copy of the code), if any lane is set
        vty = v.function_type.return_type
        v.attributes.add("noinline")
        x, mask = v.args
        entry, lane, done = (v.append_basic_block(s) for s in ("entry", "lane", "done"))
        b = ir.IRBuilder(entry)
        b.cbranch(b.icmp_unsigned("==", b.bitcast(mask, ir.IntType(n)), ir.Constant(ir.IntType(n), 0)),
                  done, lane)
        b.position_at_end(lane)
        k = b.phi(i32)
        acc = b.phi(vty)
        k.add_incoming(ir.Constant(i32, 0), entry)
        acc.add_incoming(ir.Constant(vty, None), entry)
        xk = b.extract_element(x, k)
        yk = b.call(fn, [xk])
        acc_next = b.insert_element(acc, b.select(b.extract_element(mask, k), yk, xk), k)
        k_next = b.add(k, ir.Constant(i32, 1))
        k.add_incoming(k_next, lane)
        acc.add_incoming(acc_next, lane)
        b.cbranch(b.icmp_unsigned("<", k_next, ir.Constant(i32, n)), lane, done)
        b.position_at_end(done)
        res = b.phi(vty)
        res.add_incoming(ir.Constant(vty, None), entry)
        res.add_incoming(acc_next, lane)
        b.ret(res)
    return fn


def build_huge_module() -> str:
    """LLVM IR text of the module defining every huge-path symbol (_huge_symbols)."""
    from .engine import triple_and_layout
    module = ir.Module(name="adj_mathlib_huge")
    module.triple, module.data_layout = triple_and_layout()
    kernels = {"sin": _k_sin, "cos": _k_cos, "tan": _k_tan}
    for name in _HUGE_NAMES:
        _huge_function(module, name, kernels[name])
    return str(module)


_huge_lock = threading.RLock()
_huge_state: dict = {}


def ensure_huge_functions(compile_support=None) -> None:
    """Compile the huge-path module once per process (through
    `compile_support(recipe, build, names, loop_unrolling) -> addrs`, e.g. the disk cache's
    cache.support_compiler(directory), if given) and register its symbols, so code that
    declares them can be compiled or loaded.
    Cheap after the first call; a re-entrant call (from the compilation itself) returns at once."""
    if _huge_state.get("done"):
        return
    with _huge_lock:
        if _huge_state.get("done") or _huge_state.get("busy"):
            return
        _huge_state["busy"] = True
        try:
            names = _huge_symbols()
            if compile_support is None:
                mod, addrs = engine.compile_module(build_huge_module(), names, loop_unrolling=False)
            else:
                mod, addrs = None, compile_support(HUGE_RECIPE, build_huge_module, names,
                                                   loop_unrolling=False)
            for n in names:
                if not addrs.get(n):
                    raise RuntimeError(f"mathlib: {n} was not compiled")
                engine.add_symbol(n, addrs[n])
            _huge_state["module"] = mod     # keep the optimized module (if any) alive
            _huge_state["done"] = True
        finally:
            _huge_state["busy"] = False


# the engine calls it before compiling IR or loading object code that names the huge path
engine.register_prelude(HUGE_MARKER, ensure_huge_functions)


def _trig(e: _E, x, name, kernel):
    """kernel(e, x, q, r, r_lo) on the Cody-Waite reduction (r_lo None), or, for finite
    |x| >= 2^50, on the Payne-Hanek one (in a branch: see _huge_function).  Inf/NaN take the
    Cody-Waite path, which gives NaN."""
    fast = kernel(e, x, *_sincos_reduce(e, x), None)
    huge_fn = _huge_function(e.module, name)   # a declaration (see ensure_huge_functions)
    ax = e.fabs(x)
    huge = e.and_(e.ge(ax, SINCOS_ARG_LIMIT), e.le(ax, _MAX_DOUBLE))
    cur = e.b.block
    ph = e.b.append_basic_block(f"{name}.huge")
    join = e.b.append_basic_block(f"{name}.join")
    e.b.cbranch(huge, ph, join)
    e.b.position_at_end(ph)
    slow = e.b.call(huge_fn, [x])
    e.b.branch(join)
    e.b.position_at_end(join)
    res = e.b.phi(_F64)
    res.add_incoming(fast, cur)
    res.add_incoming(slow, ph)
    return res


def _asin_poly(e: _E, s, z):
    """asin(s) - s = s z P(z), z = s^2 <= 1/4."""
    return e.mul(e.mul(s, z), e.poly(z, _ASIN_COEFFS))


# ---------------------------------------------------------------------------------------------
# The functions (double).  Each gets an _E and its argument(s) and returns the result value.
# ---------------------------------------------------------------------------------------------
def _f_exp(e, x):
    return _exp_kernel(e, x)


def _f_expm1(e, x):
    return _keep_zero(e, x, _expm1_kernel(e, x))


def _f_log(e, x):
    return _log_specials(e, x, _log_kernel(e, x))


def _f_log1p(e, x):
    u = e.add(x, 1.0)
    # rounding error of u = 1 + x (Fast2Sum, the larger operand first), divided by u
    c = e.select(e.gt(x, 1.0), e.sub(1.0, e.sub(u, x)), e.sub(x, e.sub(u, 1.0)))
    res = e.add(_log_kernel(e, u), e.div(c, u))
    res = _log_specials(e, u, res)
    res = e.select(e.isnan(x), x, res)
    return _keep_zero(e, x, res)


def _k_sin(e, x, q, r, r_lo):
    s, c = _sin_poly(e, r, r_lo), _cos_poly(e, r, r_lo)
    res = e.select(e.ine(e.iand(q, 1), 0), c, s)
    res = e.from_bits(e.ixor(e.bits(res), e.shl(e.iand(q, 2), 62)))
    return _keep_zero(e, x, res)


def _k_cos(e, x, q, r, r_lo):
    q = e.iadd(q, 1)                      # cos(x) = sin(x + pi/2)
    s, c = _sin_poly(e, r, r_lo), _cos_poly(e, r, r_lo)
    res = e.select(e.ine(e.iand(q, 1), 0), c, s)
    return e.from_bits(e.ixor(e.bits(res), e.shl(e.iand(q, 2), 62)))


def _k_tan(e, x, q, r, r_lo):
    """tan = sin(r)/cos(r) (even q) or -cos(r)/sin(r) (odd q); sin and cos are kept as unevaluated
    sums hi + lo and the quotient gets one correction step, so it is ~1 ulp, not ~3."""
    z = e.mul(r, r)
    r3s = e.mul(e.mul(r, z), e.poly(z, _SIN_COEFFS))
    w = e.fma(z, e.poly(z, _COS_COEFFS), -0.5)
    c_hi = e.fma(z, w, 1.0)
    c_err = e.sub(1.0, c_hi)
    if r_lo is not None:                  # sin(r + r_lo) ~ sin r + r_lo, cos(r + r_lo) ~ cos r - r r_lo
        r3s = e.add(r3s, r_lo)
        c_err = e.fma(e.neg(r), r_lo, c_err)
    s_hi, s_lo = e.fast_two_sum(r, r3s)
    c_lo = e.fma(z, w, c_err)                           # rounding error of c_hi (1 - c_hi exact)
    odd = e.ine(e.iand(q, 1), 0)
    n_hi = e.select(odd, e.neg(c_hi), s_hi)
    n_lo = e.select(odd, e.neg(c_lo), s_lo)
    d_hi = e.select(odd, s_hi, c_hi)
    d_lo = e.select(odd, s_lo, c_lo)
    inv = e.div(1.0, d_hi)
    q0 = e.mul(n_hi, inv)
    resid = e.add(e.fma(e.neg(q0), d_hi, n_hi), e.fma(e.neg(q0), d_lo, n_lo))
    res = e.fma(resid, inv, q0)
    return _keep_zero(e, x, res)


def _f_sin(e, x):
    return _trig(e, x, "sin", _k_sin)


def _f_cos(e, x):
    return _trig(e, x, "cos", _k_cos)


def _f_tan(e, x):
    return _trig(e, x, "tan", _k_tan)


def _f_sinh(e, x):
    a = e.fabs(x)
    n, em = _exp_reduce(e, a)
    # a < 22: t = expm1(a), sinh = (t + t/(t+1)) / 2  (no cancellation);  else exp(a)/2
    s = e.pow2(e.select(e.igt(n, 64), e.i(64), n))
    t = e.fma(s, em, e.sub(s, 1.0))
    small = e.mul(e.add(t, e.div(t, e.add(t, 1.0))), 0.5)
    big = e.ldexp(e.add(em, 1.0), e.isub(n, 1))
    return e.copysign(e.select(e.lt(a, 22.0), small, big), x)


def _f_cosh(e, x):
    a = e.fabs(x)
    h = _exp_kernel(e, a, shift=-1)       # exp(a)/2 without premature overflow
    return e.add(h, e.div(0.25, h))


def _f_tanh(e, x):
    a = e.min(e.fabs(x), 22.0)            # tanh(22) == 1 in double
    t = _expm1_kernel(e, e.mul(a, 2.0))
    return e.copysign(e.div(t, e.add(t, 2.0)), x)


def _f_arctan(e, x):
    a = e.fabs(x)
    big = e.gt(a, _SQRT2P1)
    mid = e.gt(a, _SQRT2M1)
    num = e.select(big, -1.0, e.select(mid, e.sub(a, 1.0), a))
    den = e.select(big, a, e.select(mid, e.add(a, 1.0), 1.0))
    t = e.div(num, den)
    base_hi = e.select(big, _PIO2_HI, e.select(mid, _PIO4_HI, 0.0))
    base_lo = e.select(big, _PIO2_LO, e.select(mid, _PIO4_LO, 0.0))
    z = e.mul(t, t)
    corr = e.mul(e.mul(t, z), e.poly(z, _ATAN_COEFFS))
    res = e.add(base_hi, e.add(t, e.add(corr, base_lo)))
    return e.copysign(res, x)


def _f_arcsin(e, x):
    a = e.fabs(x)
    small = e.le(a, 0.5)
    z = e.select(small, e.mul(a, a), e.mul(e.sub(1.0, a), 0.5))
    s = e.select(small, a, e.sqrt(z))
    p = e.add(s, _asin_poly(e, s, z))                 # asin(s)
    big = e.sub(_PIO2_HI, e.sub(e.mul(p, 2.0), _PIO2_LO))
    return e.copysign(e.select(small, p, big), x)


def _f_arccos(e, x):
    a = e.fabs(x)
    small = e.le(a, 0.5)
    z = e.select(small, e.mul(x, x), e.mul(e.sub(1.0, a), 0.5))
    s = e.select(small, x, e.sqrt(z))
    corr = _asin_poly(e, s, z)
    p2 = e.mul(e.add(s, corr), 2.0)                   # 2 asin(s)
    res_small = e.sub(_PIO2_HI, e.add(s, e.sub(corr, _PIO2_LO)))
    res_neg = e.sub(_PI_HI, e.sub(p2, _PI_LO))
    return e.select(small, res_small, e.select(e.gt(x, 0.0), p2, res_neg))


def _f_pow(e, x, y):
    a = e.fabs(x)
    lh, ll = _log_dd(e, a)
    lh = e.select(_positive_finite(e, a), lh, e.select(e.eq(a, 0.0), -_INF, a))  # inf, NaN: a
    zh = e.mul(y, lh)
    zl = e.fma(y, ll, e.fma(y, lh, e.neg(zh)))
    zl = e.select(e.lt(e.fabs(zh), 1000.0), zl, 0.0)   # inf/NaN zh: no garbage low part
    n, em = _exp_reduce(e, zh, x_lo=zl)
    mag = e.ldexp(e.add(em, 1.0), n)
    # signs and IEEE/numpy special cases
    y_int = e.eq(e.trunc(y), y)
    y_odd = e.and_(y_int, e.ne(e.mul(e.trunc(e.mul(y, 0.5)), 2.0), y))
    res = e.select(e.and_(e.signbit(x), y_odd), e.neg(mag), mag)
    neg_finite = e.and_(e.lt(x, 0.0), e.gt(x, -_INF))
    res = e.select(e.and_(neg_finite, e.not_(y_int)), _NAN, res)
    one = e.or_(e.or_(e.eq(y, 0.0), e.eq(x, 1.0)), e.and_(e.eq(a, 1.0), e.eq(e.fabs(y), _INF)))
    return e.select(one, 1.0, res)


_IMPLS = {
    "exp": _f_exp, "expm1": _f_expm1, "log": _f_log, "log1p": _f_log1p,
    "sin": _f_sin, "cos": _f_cos, "tan": _f_tan,
    "sinh": _f_sinh, "cosh": _f_cosh, "tanh": _f_tanh,
    "arcsin": _f_arcsin, "arccos": _f_arccos, "arctan": _f_arctan, "pow": _f_pow,
}
assert set(_IMPLS) == set(MATH_FUNCTIONS)


# ---------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------
def _suffix(ty: ir.Type) -> str:
    if ty == _F64:
        return "f64"
    if ty == _F32:
        return "f32"
    raise TypeError(f"mathlib: unsupported type {ty} (want double or float)")


def _new_function(module: ir.Module, name: str, ty: ir.Type, arity: int) -> ir.Function:
    fn = ir.Function(module, ir.FunctionType(ty, [ty] * arity), name=name)
    fn.linkage = "internal"
    fn.attributes.add("alwaysinline")
    fn.attributes.add("nounwind")
    return fn


def get_math_function(module: ir.Module, name: str, ty: ir.Type) -> ir.Function:
    """The function `adj.<name>.<f64|f32>` in `module` (defined on first use).

    Signature ``ty(ty)``, or ``ty(ty, ty)`` for ``pow``.  ``internal`` + ``alwaysinline``: a loop
    calling it vectorizes after inlining.
    """
    if name not in _IMPLS:
        raise ValueError(f"mathlib: unknown function {name!r}; supported: {MATH_FUNCTIONS}")
    fname = f"adj.{name}.{_suffix(ty)}"
    existing = module.globals.get(fname)
    if existing is not None:
        return existing
    arity = 2 if name in _BINARY else 1
    if ty == _F32:
        # Compute in double and round once: accurate to ~0.5 ulp of float and vectorizes.
        inner = get_math_function(module, name, _F64)
        fn = _new_function(module, fname, ty, arity)
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        wide = [b.fpext(arg, _F64) for arg in fn.args]
        b.ret(b.fptrunc(b.call(inner, wide), _F32))
        return fn
    fn = _new_function(module, fname, ty, arity)
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    b.ret(_IMPLS[name](_E(b), *fn.args))
    return fn


def _ir_type(dtype) -> ir.Type:
    import numpy as np
    dt = np.dtype(dtype)
    if dt == np.float64:
        return _F64
    if dt == np.float32:
        return _F32
    raise TypeError(f"mathlib: unsupported dtype {dt}")


def loop_symbol(name: str, dtype) -> str:
    """Name of the exported loop function built by build_*_loop_module."""
    return f"adj_loop_{name}_{_suffix(_ir_type(dtype))}"


def _build_loop(name: str, dtype, arity: int) -> str:
    from .engine import triple_and_layout
    ty = _ir_type(dtype)
    module = ir.Module(name=f"adj_mathlib_{name}")
    module.triple, module.data_layout = triple_and_layout()
    f = get_math_function(module, name, ty)
    ptr = ty.as_pointer()
    loop = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr] * (arity + 1) + [_I64]),
                       name=loop_symbol(name, dtype))
    *ins, out, n = loop.args
    for p in (*ins, out):
        p.add_attribute("noalias")
    entry, body, done = (loop.append_basic_block(s) for s in ("entry", "body", "done"))
    b = ir.IRBuilder(entry)
    b.cbranch(b.icmp_signed(">", n, ir.Constant(_I64, 0)), body, done)
    b.position_at_end(body)
    i = b.phi(_I64)
    i.add_incoming(ir.Constant(_I64, 0), entry)
    args = [b.load(b.gep(p, [i], inbounds=True)) for p in ins]
    b.store(b.call(f, args), b.gep(out, [i], inbounds=True))
    i_next = b.add(i, ir.Constant(_I64, 1))
    i.add_incoming(i_next, body)
    b.cbranch(b.icmp_signed("<", i_next, n), body, done)
    b.position_at_end(done)
    b.ret_void()
    return str(module)


def compile_loop(name: str, dtype="float64"):
    """JIT-compile the loop for `name` and return ``f(*inputs) -> out`` over numpy arrays
    (contiguous, of `dtype`; the inputs of pow must have equal sizes). For tests/benchmarks."""
    import ctypes
    import numpy as np
    arity = 2 if name in _BINARY else 1
    from .engine import compile_module
    sym = loop_symbol(name, dtype)
    text = build_binary_loop_module(name, dtype) if arity == 2 else build_unary_loop_module(name, dtype)
    mod, addrs = compile_module(text, [sym])
    cfn = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * (arity + 1)), ctypes.c_int64)(addrs[sym])
    dt = np.dtype(dtype)

    def call(*inputs, out=None):
        if len(inputs) != arity:
            raise TypeError(f"{name} takes {arity} array(s)")
        arrs = [np.ascontiguousarray(a, dtype=dt) for a in inputs]
        if any(a.shape != arrs[0].shape for a in arrs):
            raise ValueError("inputs must have the same shape")
        if out is None:
            out = np.empty_like(arrs[0])
        cfn(*[a.ctypes.data for a in arrs], out.ctypes.data, out.size)
        return out

    call.module = mod  # keep the optimized module alive and inspectable (str(call.module))
    return call


def build_unary_loop_module(name: str, dtype="float64") -> str:
    """LLVM IR text defining ``void loop_symbol(name, dtype)(T* in, T* out, i64 n)`` that
    computes ``out[i] = name(in[i])`` (``pow``: use build_binary_loop_module)."""
    if name in _BINARY:
        raise ValueError(f"{name} is binary; use build_binary_loop_module")
    return _build_loop(name, dtype, 1)


def build_binary_loop_module(name: str, dtype="float64") -> str:
    """LLVM IR text defining ``void loop_symbol(name, dtype)(T* x, T* y, T* out, i64 n)``."""
    if name not in _BINARY:
        raise ValueError(f"{name} is unary; use build_unary_loop_module")
    return _build_loop(name, dtype, 2)
