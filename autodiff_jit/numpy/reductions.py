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


def _check_out(kw):
    for key in ("out", "where", "initial"):
        if kw.get(key) is not None and not (key == "where" and kw[key] is True):
            raise NotImplementedError(f"the {key}= argument is not supported on traced values")


@implements(np.sum)
def sum_(x, axis=None, dtype=None, keepdims=False, **kw):
    _check_out(kw)
    x = asvalue(x)
    if dtype is not None:
        x = E.cast(x, dtype)
    elif _dtype(x) == np.bool_ or _dtype(x) == np.int32:
        x = E.cast(x, np.int64)
    axes = normalize_axes(axis, len(_shape(x)))
    return _keep(R.reduce_sum(x, axes) if axes else x, x, axes, keepdims)


@implements(np.mean)
def mean(x, axis=None, dtype=None, keepdims=False, **kw):
    x = asvalue(x)
    if not is_float(_dtype(x)):
        x = E.cast(x, dtype or np.float64)
    axes = normalize_axes(axis, len(_shape(x)))
    count = int(np.prod([_shape(x)[a] for a in axes], dtype=np.int64))
    return divide(sum_(x, axes, dtype, keepdims, **kw), float(count))


@implements(np.var)
def var(x, axis=None, dtype=None, ddof=0, keepdims=False, **kw):
    x = asvalue(x)
    if not is_float(_dtype(x)):
        x = E.cast(x, np.float64)
    axes = normalize_axes(axis, len(_shape(x)))
    count = int(np.prod([_shape(x)[a] for a in axes], dtype=np.int64))
    centered = subtract(x, mean(x, axes, keepdims=True))
    return divide(sum_(multiply(centered, centered), axes, keepdims=keepdims), float(count - ddof))


@implements(np.std)
def std(x, axis=None, dtype=None, ddof=0, keepdims=False, **kw):
    return UFUNCS[np.sqrt](var(x, axis, dtype, ddof, keepdims, **kw))


def _extremum(prim):
    def fn(x, axis=None, out=None, keepdims=False, **kw):
        _check_out(dict(kw, out=out))
        x = asvalue(x)
        axes = normalize_axes(axis, len(_shape(x)))
        if any(_shape(x)[a] == 0 for a in axes):
            raise ValueError("zero-size array to reduction operation which has no identity")
        return _keep(bind(prim, x, axes=axes) if axes else x, x, axes, keepdims)
    return fn


amax = implements(np.max, np.amax)(_extremum(R.reduce_max_p))
amin = implements(np.min, np.amin)(_extremum(R.reduce_min_p))


@implements(np.prod)
def prod(x, axis=None, dtype=None, keepdims=False, **kw):
    _check_out(kw)
    x = asvalue(x)
    if dtype is not None:
        x = E.cast(x, dtype)
    axes = normalize_axes(axis, len(_shape(x)))
    return _keep(R.reduce_prod(x, axes) if axes else x, x, axes, keepdims)


def _arg(prim):
    def fn(x, axis=None, out=None, keepdims=False):
        x = asvalue(x)
        if axis is None:
            x, axis = ravel(x), 0
        axis = normalize_axes(axis, len(_shape(x)))[0]
        res = bind(prim, x, axis=axis)
        return _keep(res, x, (axis,), keepdims)
    return fn


argmax = implements(np.argmax)(_arg(R.argmax_p))
argmin = implements(np.argmin)(_arg(R.argmin_p))


@implements(np.cumsum)
def cumsum(x, axis=None, dtype=None, out=None):
    x = asvalue(x)
    if dtype is not None:
        x = E.cast(x, dtype)
    if axis is None:
        x, axis = ravel(x), 0
    return R.cumsum(x, normalize_axes(axis, len(_shape(x)))[0])


@implements(np.average)
def average(x, axis=None, weights=None, returned=False, keepdims=False):
    if weights is None:
        return mean(x, axis, keepdims=keepdims)
    total = sum_(multiply(x, weights), axis, keepdims=keepdims)
    return divide(total, sum_(multiply(np.ones(_shape(x)), weights), axis, keepdims=keepdims))
