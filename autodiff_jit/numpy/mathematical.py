"""numpy's further mathematical ufuncs and functions (inverse hyperbolics, rounding, remainders,
sign manipulation, nan/inf tests) as exact composites of primitives.

Rounding and sign tests have zero derivative, as in JAX. Branches that `np.where` picks
between are each fed a clamped input, so the branch not taken cannot turn a zero cotangent
into NaN (0 * inf) in the gradient.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..ir import is_float
from ..primitives import bind
from ..primitives import elementwise as E
from ._base import UFUNCS, _dtype, _is_traced, _shape, asvalue, implements, ufunc
from .reductions import all_
from .ufuncs import _no_bool, add, divide, multiply, stop_gradient, subtract

_u = UFUNCS  # the ufunc table: the implementations registered in ufuncs.py


def _float(x):
    x = asvalue(x)
    if isinstance(x, (bool, int)):
        return float(x)
    if not is_float(_dtype(x)):
        return E.cast(x, np.float64)
    return x


def _float_ufunc(x, name, gives="float16"):
    """The argument of a float ufunc: ints become float64; numpy computes a bool array in
    float16 (int8 for `gives="int8"`), which autodiff_jit refuses rather than widen."""
    x = asvalue(x)
    if not isinstance(x, (bool, int, float)):
        _no_bool(f"np.{name}", x, gives)
    return _float(x)


def _no_bools(name, a, b, gives="float16"):
    """numpy's loop for two bools is float16 (int8 for the integer ufuncs): refused."""
    dts = [np.dtype(bool) if isinstance(v, bool) else None if isinstance(v, (int, float))
           else _dtype(v) for v in (a, b)]
    if all(d == np.bool_ for d in dts):
        raise TypeError(f"np.{name} of two bool arrays is {gives} in numpy, a dtype "
                        f"autodiff_jit does not support; cast first, e.g. x.astype(np.float64)")


def _where(c, a, b):
    return E.select(c, a, b)


def _abs(x):
    return _u[np.absolute](x)


# ---------------------------------------------------------------------------------------------
# inverse hyperbolic functions (log1p forms: no cancellation near 0; large |x| as log(2|x|))

_BIG = 1e8  # above this, sqrt(1 + x*x) == |x| in float64 and float32


@ufunc(np.arcsinh)
def arcsinh(x):
    x = _float_ufunc(x, "arcsinh")
    a = _abs(x)
    big_a = _u[np.greater](a, _BIG)
    # selects, not minimum/maximum: at a == _BIG the gradient is the s branch's, not half of it
    small, big = _where(big_a, _BIG, a), _where(big_a, a, _BIG)
    # asinh(a) = log1p(a + a^2 / (1 + sqrt(1 + a^2)))
    s = _u[np.log1p](add(small, divide(multiply(small, small),
                                       add(1.0, _u[np.sqrt](add(1.0, multiply(small, small)))))))
    b = add(_u[np.log](big), float(np.log(2.0)))
    r = _where(big_a, b, s)
    return _where(signbit(x), _u[np.negative](r), r)


@ufunc(np.arccosh)
def arccosh(x):
    x = _float_ufunc(x, "arccosh")
    big_x = _u[np.greater](x, _BIG)
    small, big = _where(big_x, _BIG, x), _where(big_x, x, _BIG)  # (as arcsinh's)
    t = subtract(small, 1.0)
    # acosh(x) = log1p(t + sqrt(t (t + 2))), t = x - 1 (NaN for x < 1, as numpy)
    s = _u[np.log1p](add(t, _u[np.sqrt](multiply(t, add(t, 2.0)))))
    b = add(_u[np.log](big), float(np.log(2.0)))
    r = _where(big_x, b, s)
    return _where(_u[np.less](x, 1.0), np.nan, r)


@ufunc(np.arctanh)
def arctanh(x):
    x = _float_ufunc(x, "arctanh")
    return multiply(0.5, subtract(_u[np.log1p](x), _u[np.log1p](_u[np.negative](x))))


@ufunc(np.cbrt)
def cbrt(x):
    x = _float_ufunc(x, "cbrt")
    a = _abs(x)
    fi = np.finfo(_dtype(x))
    k = 54 if fi.bits == 64 else 16  # 2**(3k) lifts the smallest subnormal into normal range
    tiny = _u[np.less](a, float(fi.tiny))
    a = _where(tiny, multiply(a, 2.0 ** (3 * k)), a)   # subnormals scaled exactly into range
    r = _u[np.power](a, 1.0 / 3.0)  # off by ~|log a| ulps (1/3 is rounded)
    # one Newton step r -= (r^3 - a) / (3 r^2) brings it to about an ulp (not at 0 or inf,
    # where the step is 0/0, nor near overflow)
    safe = _u[np.logical_and](_u[np.greater](a, 0.0), _u[np.less](a, float(fi.max) * 0.999))
    rs = _where(safe, r, 1.0)
    newton = subtract(rs, divide(subtract(multiply(multiply(rs, rs), rs), _where(safe, a, 1.0)),
                                 multiply(3.0, multiply(rs, rs))))
    r = _where(safe, newton, r)
    r = _where(tiny, multiply(r, 2.0 ** -k), r)
    return _where(signbit(x), _u[np.negative](r), r)


@ufunc(np.deg2rad, np.radians)
def deg2rad(x):
    return multiply(_float_ufunc(x, "deg2rad"), float(np.pi / 180.0))


@ufunc(np.rad2deg, np.degrees)
def rad2deg(x):
    return multiply(_float_ufunc(x, "rad2deg"), float(180.0 / np.pi))


@implements(np.sinc)
def sinc(x):
    x = _float(x)
    zero = _u[np.equal](x, 0.0)
    y = multiply(float(np.pi), _where(zero, 1.0, x))
    return _where(zero, 1.0, divide(_u[np.sin](y), y))


# ---------------------------------------------------------------------------------------------
# sign bits, nan and inf

@ufunc(np.signbit)
def signbit(x):
    """x < 0, or x == -0.0 (seen through 1/x == -inf); NaN's sign bit is not visible."""
    x = stop_gradient(_float(x))
    neg_zero = _u[np.logical_and](_u[np.equal](x, 0.0),
                                  _u[np.less](divide(1.0, _where(_u[np.equal](x, 0.0), x, 1.0)),
                                              0.0))
    return _u[np.logical_or](_u[np.less](x, 0.0), neg_zero)


@ufunc(np.copysign)
def copysign(a, b):
    _no_bools("copysign", a, b)
    a, b = E.promote(asvalue(a), asvalue(b), to_float=True)
    m = _abs(a)
    return _where(signbit(b), _u[np.negative](m), m)


@ufunc(np.isposinf) if isinstance(np.isposinf, np.ufunc) else implements(np.isposinf,
                                                                           defaults_only=("out",))
def isposinf(x, out=None):
    return _u[np.equal](asvalue(x), np.inf)


@ufunc(np.isneginf) if isinstance(np.isneginf, np.ufunc) else implements(np.isneginf,
                                                                           defaults_only=("out",))
def isneginf(x, out=None):
    return _u[np.equal](asvalue(x), -np.inf)


@implements(np.nan_to_num, defaults_only=("copy",))  # copy=False writes into x
def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    x = asvalue(x)
    if not is_float(_dtype(x)):
        return x
    fi = np.finfo(_dtype(x))
    posinf = float(fi.max) if posinf is None else posinf
    neginf = float(fi.min) if neginf is None else neginf
    x = _where(_u[np.isnan](x), nan, x)
    x = _where(_u[np.equal](x, np.inf), posinf, x)
    return _where(_u[np.equal](x, -np.inf), neginf, x)


@implements(np.isclose)
def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    a, b = E.promote(stop_gradient(asvalue(a)), stop_gradient(asvalue(b)), to_float=True)
    finite = _u[np.logical_and](_u[np.isfinite](a), _u[np.isfinite](b))
    close = _u[np.less_equal](_abs(subtract(a, b)), add(atol, multiply(rtol, _abs(b))))
    res = _where(finite, close, _u[np.equal](a, b))
    if equal_nan:
        res = _u[np.logical_or](res, _u[np.logical_and](_u[np.isnan](a), _u[np.isnan](b)))
    return res


@implements(np.allclose)
def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return all_(isclose(a, b, rtol, atol, equal_nan))


def _equal(a1, a2, equal_nan):
    same = _u[np.equal](stop_gradient(a1), stop_gradient(a2))
    if equal_nan:
        same = _u[np.logical_or](same, _u[np.logical_and](_u[np.isnan](a1), _u[np.isnan](a2)))
    return all_(same)


@implements(np.array_equal)
def array_equal(a1, a2, equal_nan=False):
    """Whether the shapes and all elements agree (shapes are known while tracing)."""
    a1, a2 = asvalue(a1), asvalue(a2)
    if _shape(a1) != _shape(a2):
        return False
    return _equal(a1, a2, equal_nan)


@implements(np.array_equiv)
def array_equiv(a1, a2):
    """Whether the arrays broadcast to one shape and all elements agree there."""
    a1, a2 = asvalue(a1), asvalue(a2)
    try:
        np.broadcast_shapes(_shape(a1), _shape(a2))
    except ValueError:
        return False
    return _equal(a1, a2, False)


# ---------------------------------------------------------------------------------------------
# real/imag/conj of real arrays (complex values are not supported)

def _real_only(x, name):
    x = asvalue(x)
    if np.dtype(_dtype(x)).kind == "c":
        raise NotImplementedError(f"np.{name} of a complex array: autodiff_jit differentiates "
                                  f"real arrays only")
    return x


@implements(np.real)
def real(val):
    return _real_only(val, "real")


@implements(np.imag)
def imag(val):
    x = _real_only(val, "imag")
    return np.zeros(_shape(x), _dtype(x))


@implements(np.iscomplex)
def iscomplex(x):
    return np.zeros(_shape(_real_only(x, "iscomplex")), bool)


@implements(np.isreal)
def isreal(x):
    return np.ones(_shape(_real_only(x, "isreal")), bool)


@implements(np.iscomplexobj)
def iscomplexobj(x):
    _real_only(x, "iscomplexobj")
    return False


@implements(np.isrealobj)
def isrealobj(x):
    _real_only(x, "isrealobj")
    return True


@implements(np.real_if_close)
def real_if_close(a, tol=100):
    return _real_only(a, "real_if_close")


@implements(np.angle)
def angle(z, deg=False):
    """Of a real array: 0 for x >= +0, pi for x < 0 or -0.0, NaN for NaN (arctan2(0, x))."""
    x = _float(_real_only(z, "angle"))
    a = arctan2(np.zeros((), _dtype(x))[()], x)
    return multiply(a, float(180.0 / np.pi)) if deg else a


@ufunc(np.conjugate)
def conjugate(x):
    return _no_bool("np.conjugate", _real_only(x, "conjugate"), "int8")


# ---------------------------------------------------------------------------------------------
# two-argument functions

@ufunc(np.arctan2)
def arctan2(y, x):
    _no_bools("arctan2", y, x)
    y, x = E.promote(asvalue(y), asvalue(x), to_float=True)
    # both infinite: the angle of (sign x, sign y)
    both_inf = _u[np.logical_and](_u[np.isinf](x), _u[np.isinf](y))
    x = _where(both_inf, copysign(1.0, x), x)
    y = _where(both_inf, copysign(1.0, y), y)
    swap = _u[np.greater](_abs(y), _abs(x))
    num = _where(swap, x, y)
    den = _where(swap, y, x)
    den = _where(_u[np.equal](den, 0.0), 1.0, den)  # 0/0 only when x == y == 0: angle 0 or pi
    base = _u[np.arctan](divide(num, den))          # in [-pi/4, pi/4]
    pi_y = copysign(float(np.pi), y)
    plain = _where(signbit(x), add(base, pi_y), base)
    plain = _where(_u[np.logical_and](_u[np.equal](y, 0.0), _u[np.logical_not](signbit(x))),
                   multiply(y, 1.0), plain)         # arctan2(+-0, x >= +0) = +-0
    swapped = subtract(copysign(float(np.pi / 2), y), base)
    r = _where(swap, swapped, plain)
    return _where(_u[np.logical_or](_u[np.isnan](x), _u[np.isnan](y)), add(x, y), r)


@ufunc(np.float_power)
def float_power(a, b):
    a, b = asvalue(a), asvalue(b)
    a = E.cast(a, np.float64)
    b = float(b) if isinstance(b, numbers.Real) else E.cast(b, np.float64)
    return _u[np.power](a, b)


def _fextremum(prim):
    """np.fmax/np.fmin: NaN-ignoring; ties share the gradient as np.maximum's do (the value of
    a 0.0 vs -0.0 tie: the second operand, as numpy's array loops)."""
    def fn(a, b):
        return bind(prim, *E.promote(asvalue(a), asvalue(b)))
    return fn


fmax = ufunc(np.fmax)(_fextremum(E.fmax))
fmin = ufunc(np.fmin)(_fextremum(E.fmin))


@ufunc(np.logaddexp2)
def logaddexp2(a, b):
    _no_bools("logaddexp2", a, b)
    ln2 = float(np.log(2.0))
    a, b = E.promote(asvalue(a), asvalue(b), to_float=True)   # numpy's loop dtype for both
    return divide(_u[np.logaddexp](multiply(a, ln2), multiply(b, ln2)), ln2)


@ufunc(np.fmod)
def fmod(a, b):
    _no_bools("fmod", a, b, "int8")
    a, b = E.promote(asvalue(a), asvalue(b))
    return bind(E.fmod, a, b)


def _divmod(a, b, name):
    """numpy's npy_divmod: floor division and the remainder with the divisor's sign."""
    _no_bools(name, a, b, "int8")
    a, b = E.promote(asvalue(a), asvalue(b))
    mod = bind(E.fmod, a, b)
    if not is_float(_dtype(mod)):
        adjust = _u[np.logical_and](_u[np.not_equal](mod, 0),
                                    _u[np.not_equal](_u[np.less](mod, 0), _u[np.less](b, 0)))
        mod = _where(adjust, add(mod, b), mod)
        # (a - mod) is a multiple of b: the quotient is exact in float64 below 2**53
        q = divide(E.cast(subtract(a, mod), np.float64), E.cast(_where(_u[np.equal](b, 0), 1, b),
                                                                np.float64))
        q = _where(_u[np.equal](b, 0), 0, E.cast(_u[np.rint](q), _dtype(mod)))
        return _where(_u[np.equal](b, -1), _u[np.negative](a), q), mod  # INT_MIN // -1 wraps
    div = divide(subtract(stop_gradient(a), stop_gradient(mod)), stop_gradient(b))
    adjust = _u[np.logical_and](_u[np.not_equal](mod, 0.0),
                                _u[np.not_equal](_u[np.less](b, 0.0), _u[np.less](mod, 0.0)))
    mod = _where(adjust, add(mod, b), mod)
    div = _where(adjust, subtract(div, 1.0), div)
    floordiv = _u[np.floor](div)
    floordiv = _where(_u[np.greater](subtract(div, floordiv), 0.5), add(floordiv, 1.0), floordiv)
    floordiv = _where(_u[np.equal](div, 0.0), copysign(0.0, divide(a, b)), floordiv)
    # a zero remainder takes the divisor's sign; b == 0 gives NaN (fmod), as numpy
    mod = _where(_u[np.equal](mod, 0.0), copysign(0.0, b), mod)
    floordiv = _where(_u[np.equal](b, 0.0), stop_gradient(divide(a, b)), floordiv)
    return floordiv, mod


@ufunc(np.remainder)
def remainder(a, b):
    # JAX's rule: d/da = 1, d/db = -floor(a / b) (the remainder is a - floor(a/b) b)
    return _divmod(a, b, "remainder")[1]


@ufunc(np.floor_divide)
def floor_divide(a, b):
    return stop_gradient(_divmod(a, b, "floor_divide")[0])


@ufunc(np.divmod)
def divmod_(a, b):
    q, r = _divmod(a, b, "divmod")
    return stop_gradient(q), r


@ufunc(np.modf)
def modf(x):
    x = _float_ufunc(x, "modf")
    whole = trunc(x)
    frac = _where(_u[np.isinf](x), 0.0, subtract(x, whole))  # exact: x and trunc(x) share scale
    return copysign(frac, x), whole


@ufunc(np.ldexp)
def ldexp(x, i):
    if _is_traced(i):
        raise NotImplementedError("np.ldexp(x, i) with a traced exponent i is not supported; "
                                  "pass i as a constant (or write x * 2.0 ** i)")
    i = np.asarray(i)
    if i.dtype.kind not in "iub":
        raise TypeError("ldexp: the exponent must be an integer array")
    # two exact power-of-two factors, so x * 2**i is exact whenever the result is representable;
    # in float64 (whose range holds every float32 x * 2**i), rounded once to x's dtype, as
    # numpy's ldexpf: numpy keeps x's float dtype whatever the exponent's integer type
    x = _float_ufunc(x, "ldexp")
    lo = i // 2
    wide = multiply(multiply(E.cast(x, np.float64), np.ldexp(1.0, lo)), np.ldexp(1.0, i - lo))
    return E.cast(wide, _dtype(x))


@ufunc(np.heaviside)
def heaviside(x, h0):
    _no_bools("heaviside", x, h0)
    x, h0 = E.promote(stop_gradient(asvalue(x)), asvalue(h0), to_float=True)
    r = _where(_u[np.less](x, 0.0), 0.0, _where(_u[np.greater](x, 0.0), 1.0, h0))
    return _where(_u[np.isnan](x), x, r)


# ---------------------------------------------------------------------------------------------
# rounding (zero derivative, as JAX)

@ufunc(np.trunc)
def trunc(x):
    x = asvalue(x)
    if not is_float(_dtype(x)):
        return x
    return _where(_u[np.less](x, 0.0), _u[np.ceil](x), _u[np.floor](x))


@implements(np.fix, defaults_only=("out",))
def fix(x, out=None):
    # the numpy in use decides: recent releases keep an integer or bool dtype (as np.trunc
    # does), earlier ones return float64
    return trunc(x if _FIX_KEEPS_INTEGERS else _float(x))


_FIX_KEEPS_INTEGERS = np.fix(np.array([1])).dtype.kind == "i"


@implements(np.round, np.around, defaults_only=("out",))
def round_(a, decimals=0, out=None):
    a = asvalue(a)
    if _dtype(a) == np.bool_:   # numpy rounds bools by rint, whose result is float16
        raise TypeError("np.round of a bool array is float16 in numpy, a dtype autodiff_jit "
                        "does not support; cast first, e.g. np.round(x.astype(np.float64))")
    if not is_float(_dtype(a)):
        if decimals >= 0:
            return a
        raise NotImplementedError("np.round of an integer array with decimals < 0 is not "
                                  "supported; cast to float first")
    if decimals == 0:
        return _u[np.rint](a)
    # numpy: rint(a * 10**d) / 10**d (for d < 0: rint(a / 10**-d) * 10**-d)
    if decimals > 0:
        f = float(10.0 ** decimals)
        return divide(_u[np.rint](multiply(a, f)), f)
    f = float(10.0 ** -decimals)
    return multiply(_u[np.rint](divide(a, f)), f)


# ---------------------------------------------------------------------------------------------
# integer and boolean bitwise ufuncs: booleans only (their logical meaning)

def _bool_only(prim_fn, name):
    def fn(a, b):
        a, b = asvalue(a), asvalue(b)
        for v in (a, b):
            dt = np.dtype(type(v)) if isinstance(v, (bool, int)) else _dtype(v)
            if dt != np.bool_:
                raise NotImplementedError(f"np.{name} of {dt} values is not supported (only of "
                                          f"booleans, where it is the logical operation)")
        return prim_fn(a, b)
    return fn


bitwise_and = ufunc(np.bitwise_and)(_bool_only(_u[np.logical_and], "bitwise_and"))
bitwise_or = ufunc(np.bitwise_or)(_bool_only(_u[np.logical_or], "bitwise_or"))
bitwise_xor = ufunc(np.bitwise_xor)(_bool_only(_u[np.logical_xor], "bitwise_xor"))
