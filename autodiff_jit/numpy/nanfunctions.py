"""numpy's NaN-ignoring reductions (numpy/lib/_nanfunctions_impl): each is its plain
reduction of x with NaNs replaced by the reduction's identity (or masked out of the count).
An all-NaN slice gives NaN for nanmax/nanmin, as numpy (which also warns)."""
from __future__ import annotations

import numpy as np

from ..ir import is_float
from ..primitives import elementwise as E
from ._base import UFUNCS, _dtype, _shape, asvalue, implements
from .reductions import _NoValue, _ddof, amax, amin, argmax, argmin, cumprod, cumsum, prod, \
    sum_
from .shape import broadcast_to
from .ufuncs import divide, multiply, subtract


def _nan(x):
    x = asvalue(x)
    return UFUNCS[np.isnan](x) if is_float(_dtype(x)) else None


def _replace(x, fill):
    x = asvalue(x)
    m = _nan(x)
    return x if m is None else E.select(m, np.asarray(fill, _dtype(x))[()], x)


def _count(x, axis, keepdims):
    m = _nan(x)
    ok = np.True_ if m is None else UFUNCS[np.logical_not](m)
    ft = _dtype(x) if is_float(_dtype(x)) else np.dtype(np.float64)  # numpy: float32 stays
    ok = E.select(ok, ft.type(1.0), ft.type(0.0))
    return sum_(broadcast_to(ok, _shape(asvalue(x))), axis, keepdims=keepdims)


@implements(np.nansum, defaults_only=("out",))
def nansum(a, axis=None, dtype=None, out=None, keepdims=False, initial=_NoValue, where=True):
    return sum_(_replace(a, 0), axis, dtype, keepdims=keepdims, initial=initial, where=where)


@implements(np.nanprod, defaults_only=("out",))
def nanprod(a, axis=None, dtype=None, out=None, keepdims=False, initial=_NoValue, where=True):
    return prod(_replace(a, 1), axis, dtype, keepdims=keepdims, initial=initial, where=where)


@implements(np.nanmean, defaults_only=("out", "where"))
def nanmean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=True):
    total = sum_(_replace(a, 0), axis, dtype, keepdims=keepdims)
    # numpy divides the sum by the count in place: the sum's dtype (float32 for dtype=)
    mean = divide(total, _count(a, axis, keepdims))
    return E.cast(mean, _dtype(total)) if is_float(_dtype(total)) else mean


def _nanextremum(fn, fill):
    def f(a, axis=None, out=None, keepdims=False, initial=_NoValue, where=True):
        a = asvalue(a)
        res = fn(_replace(a, fill), axis, keepdims=keepdims, initial=initial, where=where)
        if _nan(a) is None:
            return res
        return E.select(UFUNCS[np.equal](_count(a, axis, keepdims), 0.0), np.nan, res)
    return f


nanmax = implements(np.nanmax, defaults_only=("out",))(_nanextremum(amax, -np.inf))
nanmin = implements(np.nanmin, defaults_only=("out",))(_nanextremum(amin, np.inf))


@implements(np.nanvar, defaults_only=("out", "where", "mean"))
def nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True,
           mean=_NoValue, correction=_NoValue):
    ddof = _ddof(ddof, correction)
    a = asvalue(a)
    if dtype is not None:   # as np.var: the input is cast to the float dtype it computes in
        if not is_float(np.dtype(dtype)):
            raise NotImplementedError(f"np.nanvar/np.nanstd(..., dtype={np.dtype(dtype).name}) "
                                      f"is not supported by autodiff_jit; use a float dtype")
        if _dtype(a) != np.dtype(dtype):
            a = E.cast(a, np.dtype(dtype))
    n = _count(a, axis, True)
    mu = divide(sum_(_replace(a, 0), axis, keepdims=True), n)
    # zero where a is NaN, not where a - mu is (inf - inf is NaN, and so is numpy's nanvar)
    m = _nan(a)
    d = subtract(a, mu)
    d = d if m is None else E.select(m, np.zeros((), _dtype(d))[()], d)
    return divide(sum_(multiply(d, d), axis, keepdims=keepdims),
                  subtract(_count(a, axis, keepdims), float(ddof)))


@implements(np.nanstd, defaults_only=("out", "where", "mean"))
def nanstd(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True,
           mean=_NoValue, correction=_NoValue):
    return UFUNCS[np.sqrt](nanvar(a, axis, dtype, ddof=ddof, keepdims=keepdims,
                                  correction=correction))


@implements(np.nancumsum, defaults_only=("out",))
def nancumsum(a, axis=None, dtype=None, out=None):
    return cumsum(_replace(a, 0), axis, dtype)


@implements(np.nancumprod, defaults_only=("out",))
def nancumprod(a, axis=None, dtype=None, out=None):
    return cumprod(_replace(a, 1), axis, dtype)


@implements(np.nanargmax, defaults_only=("out",))
def nanargmax(a, axis=None, out=None, *, keepdims=False):
    return argmax(_replace(a, -np.inf), axis, keepdims=keepdims)


@implements(np.nanargmin, defaults_only=("out",))
def nanargmin(a, axis=None, out=None, *, keepdims=False):
    return argmin(_replace(a, np.inf), axis, keepdims=keepdims)
