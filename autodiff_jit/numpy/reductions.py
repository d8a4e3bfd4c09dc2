"""numpy's reductions (sum, mean, var, std, max, min, prod, argmax, cumsum, average) on traced
values and tape Tensors."""
from __future__ import annotations

import numpy as np

from ..ir import is_float
from ..primitives import bind
from ..primitives import elementwise as E, reductions as R, shape as S
from ._base import UFUNCS, _dtype, _shape, asvalue, implements, normalize_axes
from .shape import ravel
from .ufuncs import divide, multiply, subtract

def _keep(x, reduced, axes, keepdims):
    if not keepdims:
        return x
    shape = tuple(1 if i in axes else d for i, d in enumerate(_shape(reduced)))
    return S.reshape(x, shape)


_NoValue = np._NoValue  # numpy's marker for "argument not given"


@implements(np.sum, defaults_only=("out", "initial", "where"))
def sum_(x, axis=None, dtype=None, out=None, keepdims=False, initial=_NoValue, where=True):
    x = asvalue(x)
    if dtype is not None:
        x = E.cast(x, dtype)
    elif _dtype(x) == np.bool_ or _dtype(x) == np.int32:
        x = E.cast(x, np.int64)
    axes = normalize_axes(axis, len(_shape(x)))
    return _keep(R.reduce_sum(x, axes) if axes else x, x, axes, keepdims)


@implements(np.mean, defaults_only=("out", "where"))
def mean(x, axis=None, dtype=None, out=None, keepdims=False, *, where=True):
    x = asvalue(x)
    if not is_float(_dtype(x)):
        x = E.cast(x, dtype or np.float64)
    axes = normalize_axes(axis, len(_shape(x)))
    count = int(np.prod([_shape(x)[a] for a in axes], dtype=np.int64))
    return divide(sum_(x, axes, dtype, keepdims=keepdims), float(count))


@implements(np.var, defaults_only=("out", "where", "mean"))
def var(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True,
        mean=_NoValue, correction=_NoValue):
    ddof = _ddof(ddof, correction)
    x = asvalue(x)
    if not is_float(_dtype(x)):
        x = E.cast(x, np.float64)
    axes = normalize_axes(axis, len(_shape(x)))
    count = int(np.prod([_shape(x)[a] for a in axes], dtype=np.int64))
    centered = subtract(x, _mean(x, axes, keepdims=True))
    return divide(sum_(multiply(centered, centered), axes, keepdims=keepdims), float(count - ddof))


@implements(np.std, defaults_only=("out", "where", "mean"))
def std(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True,
        mean=_NoValue, correction=_NoValue):
    return UFUNCS[np.sqrt](var(x, axis, dtype, ddof=ddof, keepdims=keepdims,
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
        axes = normalize_axes(axis, len(_shape(x)))
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
    if dtype is not None:
        x = E.cast(x, dtype)
    axes = normalize_axes(axis, len(_shape(x)))
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
    if dtype is not None:
        x = E.cast(x, dtype)
    if axis is None:
        x, axis = ravel(x), 0
    return R.cumsum(x, normalize_axes(axis, len(_shape(x)))[0])


@implements(np.average, defaults_only=("returned",))
def average(x, axis=None, weights=None, returned=False, *, keepdims=False):
    if weights is None:
        return mean(x, axis, keepdims=keepdims)
    total = sum_(multiply(x, weights), axis, keepdims=keepdims)
    return divide(total, sum_(multiply(np.ones(_shape(x)), weights), axis, keepdims=keepdims))
