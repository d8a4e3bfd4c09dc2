"""numpy's ufuncs (np.add, np.exp, np.power, ...) and elementwise functions (where, clip)
on traced values and tape Tensors, each in terms of primitives through `bind`."""
from __future__ import annotations

import numbers

import numpy as np

from ..ir import is_float
from ..primitives import bind
from ..primitives import elementwise as E
from ..primitives.elementwise import stop_gradient_p
from ._base import UFUNCS, _dtype, _is_traced, asvalue, implements, ufunc

def _binary(prim, to_float=False):
    def fn(a, b):
        a, b = E.promote(asvalue(a), asvalue(b), to_float=to_float)
        return bind(prim, a, b)
    return fn


def _no_bool(np_name, x, gives="float16"):
    """numpy computes these ufuncs of a bool array in float16 or int8, dtypes autodiff_jit
    does not have: refuse rather than answer at another precision."""
    if _dtype(x) == np.bool_:
        raise TypeError(f"{np_name} of a bool array is {gives} in numpy, a dtype autodiff_jit "
                        f"does not support; cast first, e.g. {np_name}(x.astype(np.float64))")
    return x


def _unary(prim, to_float=True, np_name=None):
    def fn(x):
        x = asvalue(x)
        if to_float and not is_float(_dtype(x)):
            _no_bool(np_name or f"np.{prim.name}", x)
            x = E.cast(x, np.float64)
        return bind(prim, x)
    return fn


def _integer_identity(prim, np_name):
    """floor/ceil: numpy keeps integer and bool arrays as they are (same dtype)."""
    float_fn = _unary(prim, np_name=np_name)

    def fn(x):
        x = asvalue(x)
        return float_fn(x) if is_float(_dtype(x)) else x
    return fn


@ufunc(np.add)
def add(a, b):
    a, b = E.promote(asvalue(a), asvalue(b))
    if _dtype(a) == np.bool_:  # numpy: True + True is True
        return bind(E.logical_or, a, b)
    return bind(E.add, a, b)


# numpy's own words, also where a numpy function subtracts bools inside (np.gradient, the
# interpolating quantiles)
BOOL_SUBTRACT = ("numpy boolean subtract, the `-` operator, is not supported, use the "
                 "bitwise_xor, the `^` operator, or the logical_xor function instead.")


@ufunc(np.subtract)
def subtract(a, b):
    a, b = E.promote(asvalue(a), asvalue(b))
    if _dtype(a) == np.bool_:
        raise TypeError(BOOL_SUBTRACT)
    return bind(E.sub, a, b)


@ufunc(np.multiply)
def multiply(a, b):
    a, b = E.promote(asvalue(a), asvalue(b))
    if _dtype(a) == np.bool_:  # numpy: True * False is False
        return bind(E.logical_and, a, b)
    return bind(E.mul, a, b)
divide = ufunc(np.true_divide)(_binary(E.div, to_float=True))
maximum = ufunc(np.maximum)(_binary(E.maximum))
minimum = ufunc(np.minimum)(_binary(E.minimum))
for _np_fn, _prim in [(np.less, E.lt), (np.less_equal, E.le), (np.greater, E.gt),
                      (np.greater_equal, E.ge), (np.equal, E.eq), (np.not_equal, E.ne),
                      (np.logical_and, E.logical_and), (np.logical_or, E.logical_or),
                      (np.logical_xor, E.logical_xor)]:
    UFUNCS[_np_fn] = _binary(_prim)
for _np_fn, _prim in [(np.exp, E.exp), (np.log, E.log), (np.log1p, E.log1p), (np.expm1, E.expm1),
                      (np.sqrt, E.sqrt), (np.sin, E.sin), (np.cos, E.cos), (np.tan, E.tan),
                      (np.tanh, E.tanh), (np.sinh, E.sinh), (np.cosh, E.cosh),
                      (np.arcsin, E.arcsin), (np.arccos, E.arccos), (np.arctan, E.arctan),
                      (np.rint, E.round_)]:
    UFUNCS[_np_fn] = _unary(_prim, np_name=f"np.{_np_fn.__name__}")
for _np_fn, _prim in [(np.floor, E.floor), (np.ceil, E.ceil)]:
    UFUNCS[_np_fn] = _integer_identity(_prim, f"np.{_np_fn.__name__}")
@ufunc(np.negative)
def negative(x):
    x = asvalue(x)
    if _dtype(x) == np.bool_:
        raise TypeError("The numpy boolean negative, the `-` operator, is not supported, use "
                        "the `~` operator or the logical_not function instead.")
    return bind(E.neg, x)



UFUNCS[np.absolute] = _unary(E.abs_, to_float=False)
UFUNCS[np.fabs] = _unary(E.abs_, np_name="np.fabs")  # numpy: fabs of ints is float64
@ufunc(np.sign)
def sign(x):
    x = asvalue(x)
    if _dtype(x) == np.bool_:
        raise TypeError("ufunc 'sign' did not contain a loop with signature matching types "
                        "bool (as in numpy); use x.astype(np.int64) or np.where")
    return bind(E.sign, x)
UFUNCS[np.logical_not] = lambda x: bind(E.logical_not, E.cast(asvalue(x), np.bool_))
@ufunc(np.positive)
def positive(x):
    x = asvalue(x)  # the same value: ArrayOps hands back a new array object
    if _dtype(x) == np.bool_:
        raise TypeError("ufunc 'positive' did not contain a loop with signature matching types "
                        "bool (as in numpy)")
    return x


# Whether this numpy's power loop takes sqrt for a scalar exponent 0.5 (newer releases do;
# numpy 2.2 calls C's pow there, while its `x ** 0.5` operator always takes sqrt): asked once,
# so every mode follows the installed numpy.
with np.errstate(all="ignore"):
    _NUMPY_SQRT_FOR_HALF = bool(np.isnan(np.power(np.array([-np.inf, 1.0]), 0.5)[0]))


def _scalar_exponent(b):
    return b.item() if isinstance(b, np.generic) or (isinstance(b, np.ndarray) and b.ndim == 0) \
        else b


def _is_half(a, exponent) -> bool:
    return isinstance(exponent, float) and exponent == 0.5 and is_float(_dtype(a))


def _constant_exponent_base(a, b):
    """The base cast to the dtype numpy computes `a ** b` in, for a constant exponent b:
    Python numbers are weak (float32 ** 2.0 is float32), numpy scalars and 0-d arrays are not
    (float32 ** np.float64(2) is float64, int32 ** np.int64(2) is int64; NEP 50)."""
    if isinstance(b, np.ndarray):
        b = b.dtype.type(b[()])
    return E.cast(a, np.result_type(_dtype(a), b))


def power_operator(a, b):
    """`a ** b`: ndarray.__pow__ takes sqrt for a scalar exponent 0.5 in every numpy."""
    a, b = asvalue(a), asvalue(b)
    exponent = _scalar_exponent(b)
    if not _is_traced(a) or _dtype(a) == np.bool_ or not _is_half(a, exponent):
        return power(a, b)
    return UFUNCS[np.sqrt](_constant_exponent_base(a, b))


@ufunc(np.power)
def power(a, b):
    a, b = asvalue(a), asvalue(b)
    if _dtype(a) == np.bool_ and not isinstance(b, (bool, int, float)) and \
            _dtype(b) == np.bool_:
        _no_bool("np.power", a, "int8")
    exponent = _scalar_exponent(b)
    if _is_traced(b) and not is_float(_dtype(b)) and (
            isinstance(a, (bool, int)) or not isinstance(a, float) and not is_float(_dtype(a))):
        raise NotImplementedError(
            "np.power of integers with a traced integer exponent is not supported (numpy "
            "computes it in integers); cast the base or the exponent to float first")
    if not _is_traced(b) and _is_traced(a):
        if _dtype(a) == np.bool_ and isinstance(exponent, bool):
            raise TypeError("np.power of two bools is int8 in numpy, a dtype autodiff_jit does "
                            "not support; cast first, e.g. x.astype(np.int64)")
        if _dtype(a) == np.bool_ and isinstance(exponent, numbers.Integral) and \
                not isinstance(b, np.generic) and not isinstance(b, np.ndarray):
            a = E.cast(a, np.int64)   # numpy: bool ** 3 is int64 (int32 for np.int32(3))
        a = _constant_exponent_base(a, b)
        if _NUMPY_SQRT_FOR_HALF and _is_half(a, exponent):
            # numpy's power loop takes sqrt for a scalar exponent 0.5: (-inf) ** 0.5 is nan and
            # (-0.0) ** 0.5 is -0.0 (C's pow gives inf and 0.0)
            return UFUNCS[np.sqrt](a)
        if isinstance(exponent, numbers.Real) and float(exponent).is_integer() and \
                abs(exponent) <= 64:
            # Integer exponents keep numpy's meaning for negative bases (-2.0**3 == -8).
            if not is_float(_dtype(a)) and exponent < 0:
                raise ValueError("Integers to negative integer powers are not allowed (as in "
                                 "numpy)")
            return E.integer_pow(a, int(exponent))
    a, b = E.promote(a, b, to_float=True)
    return bind(E.pow_, a, b)


@ufunc(np.square)
def square(x):
    return E.integer_pow(_no_bool("np.square", asvalue(x), "int8"), 2)


@ufunc(np.reciprocal)
def reciprocal(x):
    x = _no_bool("np.reciprocal", asvalue(x), "int8")
    if not is_float(_dtype(x)):  # numpy: integer 1 // x (0 for |x| > 1; INT_MIN for 0)
        dt = _dtype(x)
        zero_case = E.select(UFUNCS[np.equal](x, 0), E.cast(np.iinfo(dt).min, dt),
                             E.cast(0, dt))
        return E.select(UFUNCS[np.equal](UFUNCS[np.absolute](x), 1), x, zero_case)
    return divide(1.0, x)


@ufunc(np.exp2)
def exp2(x):
    return power(2.0, _no_bool("np.exp2", asvalue(x)))


@ufunc(np.log2)
def log2(x):
    return divide(UFUNCS[np.log](x), float(np.log(2.0)))


@ufunc(np.log10)
def log10(x):
    return divide(UFUNCS[np.log](x), float(np.log(10.0)))


@ufunc(np.hypot)
def hypot(a, b):
    # scaled as C's hypot (numpy's): big * sqrt(1 + (small/big)**2) neither overflows for
    # 1e300 nor underflows for 1e-300; hypot(inf, nan) is inf
    a, b = asvalue(a), asvalue(b)
    if _dtype(a) == np.bool_ and _dtype(b) == np.bool_:
        _no_bool("np.hypot", a)
    a, b = E.promote(a, b, to_float=True)
    a, b = UFUNCS[np.absolute](a), UFUNCS[np.absolute](b)
    a_big = UFUNCS[np.greater_equal](a, b)  # one select: at a tie big is a, small is b
    big, small = E.select(a_big, a, b), E.select(a_big, b, a)
    ratio = E.select(UFUNCS[np.equal](big, 0.0) | isinf(big), 0.0, divide(small, big))
    res = multiply(big, UFUNCS[np.sqrt](add(1.0, square(ratio))))
    return E.select(isinf(a) | isinf(b), np.inf, res)


@ufunc(np.logaddexp)
def logaddexp(a, b):
    # log(e^a + e^b) = m + log(e^(a-m) + e^(b-m)), m = max(a, b) held constant for the
    # gradient; an infinite m is replaced by 0, so (inf, x) is inf and (-inf, -inf) is -inf
    a, b = asvalue(a), asvalue(b)
    if _dtype(a) == np.bool_ and _dtype(b) == np.bool_:
        _no_bool("np.logaddexp", a)
    a, b = E.promote(a, b, to_float=True)
    m = maximum(a, b)
    m = stop_gradient(E.select(isfinite(m), m, 0.0))
    return add(m, UFUNCS[np.log](add(UFUNCS[np.exp](subtract(a, m)),
                                     UFUNCS[np.exp](subtract(b, m)))))


@ufunc(np.isnan)
def isnan(x):
    return UFUNCS[np.not_equal](x, x)


@ufunc(np.isinf)
def isinf(x):
    return UFUNCS[np.equal](UFUNCS[np.absolute](x), np.inf)


@ufunc(np.isfinite)
def isfinite(x):
    return UFUNCS[np.logical_not](UFUNCS[np.logical_or](isnan(x), isinf(x)))


def stop_gradient(x):
    """Identity on values; the gradient does not flow through it."""
    if not _is_traced(x):
        return x
    return bind(stop_gradient_p, x)



@implements(np.where)
def where(condition, x=None, y=None):
    if x is None or y is None:
        raise NotImplementedError("np.where(condition) with one argument gives a data-dependent "
                                  "shape; use the three-argument form np.where(c, x, y)")
    c = asvalue(condition)
    if _dtype(c) != np.bool_:
        c = UFUNCS[np.not_equal](c, 0)
    return E.select(c, asvalue(x), asvalue(y))


@implements(np.clip, defaults_only=("out",))
def clip(x, a_min=None, a_max=None, out=None, *, min=None, max=None):
    a_min = a_min if min is None else min
    a_max = a_max if max is None else max
    if a_min is not None:
        x = maximum(x, a_min)
    if a_max is not None:
        x = minimum(x, a_max)
    return x
