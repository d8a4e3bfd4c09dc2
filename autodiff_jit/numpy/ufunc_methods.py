"""The methods of numpy's ufuncs on traced values: np.add.reduce, np.multiply.accumulate,
np.maximum.outer, np.add.at, np.add.reduceat, ... Each maps onto the matching function
(reduce: sum/prod/max/min/all/any, a shifted log-sum-exp for logaddexp and a balanced tree of
the ufunc for the other associative ones; accumulate: cumsum/cumprod, other ufuncs by a
log-depth doubling scan of the ufunc itself; at: a scatter-add for add/subtract, rounds of
gather-apply-update for any other ufunc)."""
from __future__ import annotations

import numpy as np

from ..primitives import elementwise as E, indexing as I
from ._base import (UFUNCS, _dtype, _is_traced, _shape, asvalue, implements, normalize_axes,
                    numpy_target)
from .reductions import _NoValue, all_, amax, amin, any_, cumprod, cumsum, prod, sum_
from .shape import concatenate, expand_dims, moveaxis, ravel, reshape
from .shape_base import broadcast_to
from .ufuncs import stop_gradient


def _logsumexp(x, axis=None, dtype=None, out=None, keepdims=False, initial=_NoValue,
               where=True):
    if initial is not _NoValue or where is not True:
        raise NotImplementedError("np.logaddexp.reduce(..., initial=/where=) is not supported")
    if dtype is not None:   # numpy computes in dtype
        x = E.cast(x, dtype)
    elif _dtype(x) == np.bool_:
        raise TypeError("np.logaddexp.reduce of a bool array is float16 in numpy, a dtype "
                        "autodiff_jit does not support; cast first, e.g. x.astype(np.float64)")
    m = stop_gradient(amax(x, axis, keepdims=True))
    m = E.select(UFUNCS[np.isfinite](m), m, np.zeros((), _dtype(m))[()])
    s = sum_(UFUNCS[np.exp](UFUNCS[np.subtract](x, m)), axis, keepdims=True)
    res = UFUNCS[np.add](UFUNCS[np.log](s), m)
    if not keepdims:
        res = reshape(res, tuple(d for i, d in enumerate(_shape(res))
                                 if i not in normalize_axes(axis, len(_shape(res)))))
    return res


def _in_dtype(fn):
    """np.maximum.reduce / np.minimum.reduce: amax / amin computed in `dtype` (numpy casts
    the elements first, unsafe casting as a reduction allows)."""
    def f(x, axis, dtype=None, out=None, keepdims=False, initial=_NoValue, where=True):
        if dtype is not None:
            x = E.cast(x, dtype)
        if initial is not _NoValue:
            return fn(x, axis, keepdims=keepdims, initial=initial, where=where)
        return fn(x, axis, keepdims=keepdims, where=where)
    return f


def _boolean(fn):
    def f(x, axis, dtype=None, out=None, keepdims=False, initial=_NoValue, where=True):
        if initial is not _NoValue:
            raise NotImplementedError("initial= with a logical ufunc's reduce is not supported")
        if dtype is not None and np.dtype(dtype) != np.bool_:   # numpy has no such loop
            raise TypeError(f"No loop matching the specified signature and casting was found "
                            f"for ufunc {fn.__name__.rstrip('_')} (dtype={np.dtype(dtype)})")
        return fn(x, axis, keepdims=keepdims, where=where)
    return f


_REDUCERS = {np.add: sum_, np.multiply: prod, np.maximum: _in_dtype(amax),
             np.minimum: _in_dtype(amin), np.logical_and: _boolean(all_),
             np.logical_or: _boolean(any_), np.logaddexp: _logsumexp}
_ACCUMULATORS = {np.add: cumsum, np.multiply: cumprod}


def _name(uf, method):
    return f"np.{uf.__name__}.{method}"


# ufuncs whose reduce may group the elements in any order (numpy folds left to right; these
# give the same value either way, up to rounding): a balanced tree of log2(n) applications
_ASSOCIATIVE = (np.fmax, np.fmin, np.hypot, np.logaddexp2, np.logical_xor)


def _tree(uf, x, axis, keepdims):
    fn = UFUNCS[uf]
    x = asvalue(x)
    nd = len(_shape(x))
    if axis is None or (isinstance(axis, tuple) and len(axis) != 1):
        if axis is not None and normalize_axes(axis, nd) != tuple(range(nd)):
            raise NotImplementedError(f"{_name(uf, 'reduce')} over several (not all) axes is "
                                      f"not supported; reduce one axis at a time")
        kept = (1,) * nd
        x, ax = ravel(x), 0
    else:
        ax = normalize_axes(axis, nd)[0]
        kept = tuple(1 if i == ax else d for i, d in enumerate(_shape(x)))
    y = moveaxis(x, ax, 0)
    y = E.cast(y, uf.reduce(np.zeros(1, _dtype(y))).dtype)  # logical_xor of floats: booleans
    n = _shape(y)[0]
    if n == 0:
        if uf.identity is None:
            raise ValueError(f"zero-size array to reduction operation {uf.__name__} which has "
                             f"no identity")
        y = concatenate([y, E.cast(np.full((1,) + _shape(y)[1:], uf.identity), _dtype(y))], 0)
        n = 1
    while n > 1:
        h = n // 2
        head = fn(I.slice_along(y, 0, 0, h), I.slice_along(y, 0, h, h))
        y = concatenate([head, I.slice_along(y, 0, 2 * h, n - 2 * h)], 0) if n % 2 else head
        n -= h
    rest = _shape(y)[1:]
    out = reshape(y, rest)
    if keepdims:
        out = reshape(out, kept)
    elif axis is None or isinstance(axis, tuple) and len(axis) != 1:
        out = reshape(out, ())
    return out


@implements()  # declares the keywords it takes (no table: ArrayOps dispatches)
def reduce(uf, array, axis=0, dtype=None, out=None, keepdims=False, initial=_NoValue,
           where=True):
    fn = _REDUCERS.get(uf)
    if fn is None and uf in _ASSOCIATIVE:
        if out is not None or initial is not _NoValue or where is not True:
            raise NotImplementedError(f"{_name(uf, 'reduce')}(..., out=/initial=/where=) is "
                                      f"not supported")
        x = asvalue(array)
        return _tree(uf, E.cast(x, dtype) if dtype is not None else x, axis, keepdims)
    if fn is None:
        raise NotImplementedError(f"{_name(uf, 'reduce')} is not supported; supported: "
                                  f"{', '.join('np.' + u.__name__ for u in _REDUCERS)}")
    if out is not None:
        raise NotImplementedError(f"{_name(uf, 'reduce')}(..., out=) is not supported")
    return fn(asvalue(array), axis, dtype, keepdims=keepdims, initial=initial, where=where)


def _scan(uf, x, axis):
    """Inclusive scan by doubling (Hillis-Steele): log2(n) applications of the ufunc."""
    fn = UFUNCS[uf]
    # the elements in numpy's result dtype first (logical_and of floats accumulates booleans)
    x = E.cast(moveaxis(x, axis, 0), uf.accumulate(np.zeros(1, _dtype(x))).dtype)
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
                  np.logical_and, np.logical_or, np.logical_xor, np.hypot):
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
    if not _is_traced(a):
        raise TypeError(numpy_target(_name(uf, 'at')))
    if any(_is_traced(k) for k in (indices if isinstance(indices, tuple) else (indices,))):
        raise NotImplementedError(f"{_name(uf, 'at')} with traced indices is not supported")
    shape = _shape(a)
    size = int(np.prod(shape, dtype=np.int64))
    pos = np.arange(size).reshape(shape)[indices]
    if uf not in (np.add, np.subtract):
        return _at_in_rounds(uf, a, pos, b)
    vals = broadcast_to(E.cast(asvalue(b), _dtype(a)), np.shape(pos))
    if uf == np.subtract:  # ==: while routed, np.subtract is numpy/lists.py's wrapper
        vals = UFUNCS[np.negative](vals)
    flat = np.asarray(pos, np.int64).ravel()
    added = reshape(I.take_add(ravel(vals), flat, 0, size), shape)
    touched = np.zeros(size, bool)
    touched[flat] = True   # elsewhere a is kept as it is (a + 0.0 would turn -0.0 into 0.0)
    a[...] = E.select(touched.reshape(shape), UFUNCS[np.add](a, added), a)


def _at_in_rounds(uf, a, pos, b):
    """uf.at for any ufunc: numpy applies it once per index in order, so the r-th occurrence
    of every position is applied in round r (each round one gather, ufunc and update)."""
    fn = UFUNCS.get(uf)
    if fn is None or uf.nin not in (1, 2) or uf.nout != 1:
        raise NotImplementedError(f"{_name(uf, 'at')} is not supported")
    if (uf.nin == 2) != (b is not None):
        raise ValueError(f"{_name(uf, 'at')} takes {'a second operand' if uf.nin == 2 else 'no second operand'}")
    shape, flat = _shape(a), np.asarray(pos, np.int64).ravel()
    seen: dict = {}
    rounds = np.zeros(flat.size, np.int64)  # rounds[k]: how often flat[k] occurred before k
    for k, p in enumerate(flat.tolist()):
        rounds[k] = seen[p] = seen.get(p, -1) + 1
    vals = None if b is None else ravel(broadcast_to(asvalue(b), np.shape(pos)))
    for r in range(int(rounds.max()) + 1 if flat.size else 0):
        sel = np.flatnonzero(rounds == r)
        where = np.unravel_index(flat[sel], shape)
        args = (a[where],) if vals is None else (a[where], vals[sel])
        a[where] = E.cast(fn(*args), _dtype(a))


@implements()  # declares the keywords it takes (no table: ArrayOps dispatches)
def reduceat(uf, array, indices, axis=0, dtype=None, out=None):
    if uf not in _REDUCERS and uf not in _ASSOCIATIVE:
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
