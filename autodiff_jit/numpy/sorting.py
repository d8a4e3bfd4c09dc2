"""numpy's sorting and searching (numpy/_core/fromnumeric, _multiarray): sort, argsort,
partition, argpartition, lexsort, searchsorted, digitize.

Two primitives: argsort (stable, NaNs last) and sort (the sorted values and that permutation),
whose gradient flows back along the permutation (JAX's convention; ties are a measure-zero
kink). Orders are
always the stable ones: where numpy's default (non-stable) kind orders tied elements
differently, argsort's indices may differ on ties, never the sorted values. partition returns
the fully sorted array, which satisfies numpy's partition contract.
"""
from __future__ import annotations

import numpy as np

from ..ir import is_float
from ..primitives import bind
from ..primitives import elementwise as E
from ..primitives.sorting import argsort_p, sort_p
from ._base import UFUNCS, _dtype, _is_traced, _shape, asvalue, implements, normalize_axes
from .indexing import gather_along_axis, take_along_axis
from .reductions import sum_
from .shape import expand_dims, flip, ravel, reshape


def _keys(a):
    a = asvalue(a)
    dt = _dtype(a)
    if dt == np.float16:
        return E.cast(a, np.float32)
    if not is_float(dt) and dt != np.int64:
        return E.cast(a, np.int64)
    return a


def _prep(a, axis):
    a = asvalue(a)
    if axis is None:
        return ravel(a), 0
    return a, normalize_axes(axis, len(_shape(a)))[0]


def _no_order(order):
    if order is not None:
        raise NotImplementedError("sorting by field (order=) needs structured arrays, which "
                                  "autodiff_jit does not support")


@implements(np.argsort)
def argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    _no_order(order)
    a, axis = _prep(a, axis)
    if len(_shape(a)) == 0:
        return np.zeros((), np.int64)[()]
    return bind(argsort_p, _keys(a), axis=axis)


@implements(np.sort)
def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    _no_order(order)
    a, axis = _prep(a, axis)
    if len(_shape(a)) == 0 or 0 in _shape(a):  # nothing to reorder (and no index to gather by)
        return a
    keys = _keys(a)
    values = bind(sort_p, keys, axis=axis)[0]
    # narrower dtypes sort as their (exact) widening and are narrowed back
    return values if _dtype(keys) == _dtype(a) else E.cast(values, _dtype(a))


def _check_kth(kth, n):
    for k in np.atleast_1d(kth):
        if not -n <= int(k) < n:
            raise ValueError(f"kth(={int(k)}) out of bounds ({n})")


@implements(np.partition)
def partition(a, kth, axis=-1, kind="introselect", order=None):
    _no_order(order)
    a2, ax = _prep(a, axis)
    _check_kth(kth, _shape(a2)[ax])
    return sort(a2, ax)


@implements(np.argpartition)
def argpartition(a, kth, axis=-1, kind="introselect", order=None):
    _no_order(order)
    a2, ax = _prep(a, axis)
    _check_kth(kth, _shape(a2)[ax])
    return argsort(a2, ax)


@implements(np.lexsort)
def lexsort(keys, axis=-1):
    """The last key sorts first: stable sorts by each key in turn, first key first (LSD)."""
    keys = [asvalue(k) for k in keys]
    if not keys:
        raise TypeError("need sequence of keys with len > 0 in lexsort")
    idx = argsort(keys[0], axis)
    for k in keys[1:]:
        ax = normalize_axes(axis, len(_shape(k)))[0]
        idx = gather_along_axis(idx, argsort(gather_along_axis(k, idx, ax), ax), ax)
    return idx


def _count(a, v, strict):
    """For each v: how many a are < v (strict) or <= v; a 1-D, sorted."""
    a = asvalue(a)
    v = asvalue(v)
    cmp = UFUNCS[np.less] if strict else UFUNCS[np.less_equal]
    # NaN in a sorts last: it counts as larger than everything but NaN
    hits = cmp(a, expand_dims(v, -1))
    if is_float(_dtype(a)):
        hits = UFUNCS[np.logical_or](hits, UFUNCS[np.logical_and](
            UFUNCS[np.isnan](a), UFUNCS[np.isnan](expand_dims(v, -1)) if not strict
            else UFUNCS[np.logical_and](UFUNCS[np.isnan](a), False)))
    return sum_(hits, -1)


@implements(np.searchsorted)
def searchsorted(a, v, side="left", sorter=None):
    a = asvalue(a)
    if len(_shape(a)) != 1:
        raise ValueError("object too deep for desired array")
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right' (got {side!r})")
    if sorter is not None:
        a = take_along_axis(a, asvalue(sorter), 0) if _is_traced(sorter) else \
            a[np.asarray(sorter)]
    a = E.promote(a, asvalue(v))[0]
    v = E.promote(asvalue(v), a)[0]
    return _count(a, v, side == "left")


@implements(np.digitize)
def digitize(x, bins, right=False):
    bins = asvalue(bins)
    if len(_shape(bins)) != 1:
        raise ValueError("bins must be one-dimensional")
    x = asvalue(x)
    n = _shape(bins)[0]
    up = searchsorted(bins, x, "left" if right else "right")
    down = UFUNCS[np.subtract](n, searchsorted(flip(bins), x, "right" if right else "left"))
    if not _is_traced(bins):
        b = np.asarray(bins)
        if n > 1 and not (np.all(b[1:] >= b[:-1]) or np.all(b[1:] <= b[:-1])):
            raise ValueError("bins must be monotonically increasing or decreasing")
        return up if n <= 1 or b[0] <= b[-1] else down
    return E.select(UFUNCS[np.less_equal](bins[0], bins[n - 1]), up, down)


_ = reshape
