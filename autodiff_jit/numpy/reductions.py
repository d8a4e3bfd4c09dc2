"""numpy's reductions (sum, mean, var, std, max, min, prod, argmax, cumsum, average) on traced
values and tape Tensors."""
from __future__ import annotations

import numpy as np

from ..ir import is_float
from ..primitives import bind
from ..primitives import elementwise as E, reductions as R, shape as S
from ._base import UFUNCS, _dtype, _is_traced, _shape, asvalue, implements, normalize_axes
from .shape import ravel
from .ufuncs import divide, multiply, subtract

def _keep(x, reduced, axes, keepdims):
    if not keepdims:
        return x
    shape = tuple(1 if i in axes else d for i, d in enumerate(_shape(reduced)))
    return S.reshape(x, shape)


_NoValue = np._NoValue  # numpy's marker for "argument not given"


def _accumulator(dtype):
    """numpy's sum/prod/cumsum dtype for `dtype`: bool and small integers widen to the platform
    integer (int64), small unsigned ones to uint64."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_ or (dtype.kind == "i" and dtype.itemsize < 8):
        return np.dtype(np.int64)
    if dtype.kind == "u" and dtype.itemsize < 8:
        return np.dtype(np.uint64)
    return dtype


def _scalar_axes(axis, x):
    """numpy scalars (what np.sum(x) returns) take axis=0/-1: a traced 0-d value does too."""
    if len(_shape(x)) == 0 and axis is not None and not isinstance(axis, tuple) and \
            axis in (0, -1):
        return ()
    return axis


def _masked(x, where, fill):
    """x where `where` holds, `fill` elsewhere (numpy's where= of reductions)."""
    if where is True:
        return x
    return E.select(S.broadcast_to(asvalue(where), _shape(x)) if _is_traced(where) else
                    np.broadcast_to(np.asarray(where, bool), _shape(x)), x,
                    E.cast(fill, _dtype(x)))


@implements(np.sum, defaults_only=("out", "initial"))
def sum_(x, axis=None, dtype=None, out=None, keepdims=False, initial=_NoValue, where=True):
    x = asvalue(x)
    x = E.cast(x, dtype if dtype is not None else _accumulator(_dtype(x)))
    x = _masked(x, where, 0)
    axes = normalize_axes(_scalar_axes(axis, x), len(_shape(x)))
    return _keep(R.reduce_sum(x, axes) if axes else x, x, axes, keepdims)


def _count(x, axes, where, keepdims):
    """How many elements each reduction over `axes` sees (an array of x's float dtype when
    where= is given)."""
    if where is True:
        return float(np.prod([_shape(x)[a] for a in axes], dtype=np.int64))
    ones = np.ones(_shape(x), _dtype(x))
    if _is_traced(where):
        return sum_(_masked(ones, where, 0.0), axes, keepdims=keepdims)
    mask = np.broadcast_to(np.asarray(where, bool), _shape(x))
    return np.sum(mask, axis=axes, keepdims=keepdims).astype(_dtype(x))


@implements(np.mean, defaults_only=("out",))
def mean(x, axis=None, dtype=None, out=None, keepdims=False, *, where=True):
    x = asvalue(x)
    if not is_float(_dtype(x)):
        x = E.cast(x, dtype or np.float64)
    axes = normalize_axes(axis, len(_shape(x)))
    total = sum_(x, axes, dtype, keepdims=keepdims, where=where)
    return divide(total, _count(x, axes, where, keepdims))


@implements(np.var, defaults_only=("out", "mean"))
def var(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True,
        mean=_NoValue, correction=_NoValue):
    ddof = _ddof(ddof, correction)
    x = asvalue(x)
    if not is_float(_dtype(x)):
        x = E.cast(x, np.float64)
    axes = normalize_axes(axis, len(_shape(x)))
    centered = subtract(x, _mean(x, axes, keepdims=True, where=where))
    count = _count(x, axes, where, keepdims)
    return divide(sum_(multiply(centered, centered), axes, keepdims=keepdims, where=where),
                  subtract(count, float(ddof)) if _is_traced(count) else count - ddof)


@implements(np.std, defaults_only=("out", "mean"))
def std(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True,
        mean=_NoValue, correction=_NoValue):
    return UFUNCS[np.sqrt](var(x, axis, dtype, ddof=ddof, keepdims=keepdims, where=where,
                               correction=correction))


def _ddof(ddof, correction):
    """numpy 2's `correction=` is the array-API name of `ddof=`; giving both is an error."""
    if correction is _NoValue:
        return ddof
    if ddof != 0:
        raise ValueError("ddof and correction can't be provided simultaneously.")
    return correction


_mean = mean  # var's own `mean=` parameter shadows the function inside it


def _extremum(prim):
    def fn(x, axis=None, out=None, keepdims=False, initial=_NoValue, where=True):
        x = asvalue(x)
        axes = normalize_axes(_scalar_axes(axis, x), len(_shape(x)))
        if any(_shape(x)[a] == 0 for a in axes):
            raise ValueError("zero-size array to reduction operation which has no identity")
        return _keep(bind(prim, x, axes=axes) if axes else x, x, axes, keepdims)
    return fn


_EXTREMUM_DEFAULTS = ("out", "initial", "where")
amax = implements(np.max, np.amax, defaults_only=_EXTREMUM_DEFAULTS)(_extremum(R.reduce_max_p))
amin = implements(np.min, np.amin, defaults_only=_EXTREMUM_DEFAULTS)(_extremum(R.reduce_min_p))


@implements(np.prod, defaults_only=("out", "initial", "where"))
def prod(x, axis=None, dtype=None, out=None, keepdims=False, initial=_NoValue, where=True):
    x = asvalue(x)
    x = E.cast(x, dtype if dtype is not None else _accumulator(_dtype(x)))
    axes = normalize_axes(_scalar_axes(axis, x), len(_shape(x)))
    return _keep(R.reduce_prod(x, axes) if axes else x, x, axes, keepdims)


def _arg(prim):
    def fn(x, axis=None, out=None, *, keepdims=False):
        x = asvalue(x)
        if axis is None:
            x, axis = ravel(x), 0
        axis = normalize_axes(axis, len(_shape(x)))[0]
        res = bind(prim, x, axis=axis)
        return _keep(res, x, (axis,), keepdims)
    return fn


argmax = implements(np.argmax, defaults_only=("out",))(_arg(R.argmax_p))
argmin = implements(np.argmin, defaults_only=("out",))(_arg(R.argmin_p))


@implements(np.cumsum, defaults_only=("out",))
def cumsum(x, axis=None, dtype=None, out=None):
    x = asvalue(x)
    x = E.cast(x, dtype if dtype is not None else _accumulator(_dtype(x)))
    if axis is None or len(_shape(x)) == 0:
        x, axis = ravel(x), 0
    return R.cumsum(x, normalize_axes(axis, len(_shape(x)))[0])


@implements(np.average)
def average(x, axis=None, weights=None, returned=False, *, keepdims=False):
    x = asvalue(x)
    if weights is None:
        avg = mean(x, axis, keepdims=keepdims)
        axes = normalize_axes(axis, len(_shape(x)))
        count = float(np.prod([_shape(x)[a] for a in axes], dtype=np.int64))
        scale = E.cast(count, _dtype(avg)) if is_float(_dtype(avg)) else count
        return (avg, S.broadcast_to(asvalue(np.asarray(scale, _dtype(avg))), _shape(avg))) \
            if returned else avg
    w = asvalue(weights)
    if _shape(w) != _shape(x):
        # numpy: 1-D weights lie along `axis` (which must then be one axis)
        if axis is None:
            raise TypeError("Axis must be specified when shapes of a and weights differ.")
        if len(_shape(w)) != 1 or isinstance(axis, tuple) and len(axis) != 1:
            raise TypeError("1D weights expected when shapes of a and weights differ.")
        ax = normalize_axes(axis, len(_shape(x)))[0]
        if _shape(w)[0] != _shape(x)[ax]:
            raise ValueError("Length of weights not compatible with specified axis.")
        along = tuple(_shape(w)[0] if i == ax else 1 for i in range(len(_shape(x))))
        w = S.broadcast_to(S.reshape(w, along), _shape(x))
    x, w = E.promote(x, w, to_float=True)
    scale = sum_(w, axis, keepdims=keepdims)
    avg = divide(sum_(multiply(x, w), axis, keepdims=keepdims), scale)
    if returned:
        return avg, S.broadcast_to(scale, _shape(avg)) if _shape(scale) != _shape(avg) else scale
    return avg
