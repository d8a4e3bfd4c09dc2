"""The methods of numpy's ufuncs on traced values: np.add.reduce, np.multiply.accumulate,
np.maximum.outer, np.add.at, np.add.reduceat, ... Each maps onto the matching function
(reduce: sum/prod/max/min/all/any and a shifted log-sum-exp for logaddexp; accumulate:
cumsum/cumprod, other ufuncs by a log-depth doubling scan of the ufunc itself)."""
from __future__ import annotations

import numpy as np

from ..primitives import elementwise as E, indexing as I
from ._base import UFUNCS, _dtype, _is_traced, _shape, asvalue, implements, normalize_axes
from .reductions import _NoValue, all_, amax, amin, any_, cumprod, cumsum, prod, sum_
from .shape import concatenate, expand_dims, moveaxis, ravel, reshape
from .shape_base import broadcast_to
from .ufuncs import stop_gradient


def _logsumexp(x, axis=None, dtype=None, out=None, keepdims=False, initial=_NoValue,
               where=True):
    if initial is not _NoValue or where is not True:
        raise NotImplementedError("np.logaddexp.reduce(..., initial=/where=) is not supported")
    m = stop_gradient(amax(x, axis, keepdims=True))
    m = E.select(UFUNCS[np.isfinite](m), m, np.zeros((), _dtype(m))[()])
    s = sum_(UFUNCS[np.exp](UFUNCS[np.subtract](x, m)), axis, keepdims=True)
    res = UFUNCS[np.add](UFUNCS[np.log](s), m)
    if not keepdims:
        res = reshape(res, tuple(d for i, d in enumerate(_shape(res))
                                 if i not in normalize_axes(axis, len(_shape(res)))))
    return res


def _no_dtype(fn):
    return lambda x, axis, dtype=None, out=None, keepdims=False, initial=_NoValue, where=True: \
        fn(x, axis, keepdims=keepdims, initial=initial, where=where) if initial is not _NoValue \
        else fn(x, axis, keepdims=keepdims, where=where)


def _boolean(fn):
    def f(x, axis, dtype=None, out=None, keepdims=False, initial=_NoValue, where=True):
        if initial is not _NoValue:
            raise NotImplementedError("initial= with a logical ufunc's reduce is not supported")
        return fn(x, axis, keepdims=keepdims, where=where)
    return f


_REDUCERS = {np.add: sum_, np.multiply: prod, np.maximum: _no_dtype(amax),
             np.minimum: _no_dtype(amin), np.logical_and: _boolean(all_),
             np.logical_or: _boolean(any_), np.logaddexp: _logsumexp}
_ACCUMULATORS = {np.add: cumsum, np.multiply: cumprod}


def _name(uf, method):
    return f"np.{uf.__name__}.{method}"


@implements()  # declares the keywords it takes (no table: ArrayOps dispatches)
def reduce(uf, array, axis=0, dtype=None, out=None, keepdims=False, initial=_NoValue,
           where=True):
    fn = _REDUCERS.get(uf)
    if fn is None:
        raise NotImplementedError(f"{_name(uf, 'reduce')} is not supported; supported: "
                                  f"{', '.join('np.' + u.__name__ for u in _REDUCERS)}")
    if out is not None:
        raise NotImplementedError(f"{_name(uf, 'reduce')}(..., out=) is not supported")
    return fn(asvalue(array), axis, dtype, keepdims=keepdims, initial=initial, where=where)


def _scan(uf, x, axis):
    """Inclusive scan by doubling (Hillis-Steele): log2(n) applications of the ufunc."""
    fn = UFUNCS[uf]
    x = moveaxis(x, axis, 0)
    n = _shape(x)[0]
    k = 1
    while k < n:
        shifted = fn(I.slice_along(x, 0, k, n - k), I.slice_along(x, 0, 0, n - k))
        x = concatenate([I.slice_along(x, 0, 0, k), shifted], 0)
        k *= 2
    return moveaxis(x, 0, axis)


@implements()  # declares the keywords it takes (no table: ArrayOps dispatches)
def accumulate(uf, array, axis=0, dtype=None, out=None):
    if out is not None:
        raise NotImplementedError(f"{_name(uf, 'accumulate')}(..., out=) is not supported")
    x = asvalue(array)
    if dtype is not None:
        x = E.cast(x, dtype)
    axis = normalize_axes(axis, len(_shape(x)))[0]
    if uf in _ACCUMULATORS:
        return _ACCUMULATORS[uf](x, axis)
    if uf not in (np.maximum, np.minimum, np.logaddexp, np.logaddexp2, np.fmax, np.fmin,
                  np.logical_and, np.logical_or, np.hypot):
        raise NotImplementedError(f"{_name(uf, 'accumulate')} is not supported")
    return _scan(uf, x, axis)


@implements()  # declares the keywords it takes (no table: ArrayOps dispatches)
def outer(uf, A, B, /):
    a, b = asvalue(A), asvalue(B)
    a = reshape(a, _shape(a) + (1,) * len(_shape(b)))
    return UFUNCS[uf](a, b)


@implements()  # declares the keywords it takes (no table: ArrayOps dispatches)
def at(uf, a, indices, b=None, /):
    """In place, as numpy: `a` (a traced value) is rebound to the result."""
    if uf not in (np.add, np.subtract):
        raise NotImplementedError(f"{_name(uf, 'at')} is not supported (np.add.at and "
                                  f"np.subtract.at are)")
    if not _is_traced(a):
        raise TypeError(f"{_name(uf, 'at')} writes into its first argument: pass a traced array")
    if any(_is_traced(k) for k in (indices if isinstance(indices, tuple) else (indices,))):
        raise NotImplementedError(f"{_name(uf, 'at')} with traced indices is not supported")
    shape = _shape(a)
    size = int(np.prod(shape, dtype=np.int64))
    pos = np.arange(size).reshape(shape)[indices]
    vals = broadcast_to(E.cast(asvalue(b), _dtype(a)), np.shape(pos))
    if uf is np.subtract:
        vals = UFUNCS[np.negative](vals)
    added = I.take_add(ravel(vals), np.asarray(pos, np.int64).ravel(), 0, size)
    a[...] = UFUNCS[np.add](a, reshape(added, shape))


@implements()  # declares the keywords it takes (no table: ArrayOps dispatches)
def reduceat(uf, array, indices, axis=0, dtype=None, out=None):
    if uf not in _REDUCERS:
        raise NotImplementedError(f"{_name(uf, 'reduceat')} is not supported")
    if _is_traced(indices):
        raise NotImplementedError(f"{_name(uf, 'reduceat')} needs constant indices")
    x = asvalue(array)
    axis = normalize_axes(axis, len(_shape(x)))[0]
    n = _shape(x)[axis]
    idx = [int(i) for i in np.asarray(indices).ravel()]
    parts = []
    for j, start in enumerate(idx):
        if not 0 <= start < n:
            raise IndexError(f"index {start} out-of-bounds in {_name(uf, 'reduceat')} [0, {n})")
        stop = idx[j + 1] if j + 1 < len(idx) else n
        seg = I.slice_along(x, axis, start, max(stop - start, 1) if stop > start else 1)
        parts.append(expand_dims(reduce(uf, seg, axis, dtype), axis))
    return concatenate(parts, axis)


METHODS = {"reduce": reduce, "accumulate": accumulate, "outer": outer, "at": at,
           "reduceat": reduceat}
