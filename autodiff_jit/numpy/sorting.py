"""numpy's sorting and searching (numpy/_core/fromnumeric, _multiarray): sort, argsort,
partition, argpartition, lexsort, searchsorted, digitize; isin (a comparison with each of the
test elements).

Two primitives: argsort (stable, NaNs last) and sort (the sorted values and that permutation),
whose gradient flows back along the permutation (JAX's convention; ties are a measure-zero
kink). Orders are
always the stable ones: where numpy's default (non-stable) kind orders tied elements
differently, argsort's indices may differ on ties, never the sorted values. partition and
argpartition use the partition and argpartition primitives (a radix select of the kth
elements, then one placing pass writing the values or the indices; no full sort): the
element at each kth is the stable sort's, and between them the elements of the ranks in
between stay in index order. Rows of up to 128, or up to 1024
when there are 8 rows or more, are sorted instead (the stable order; faster there). numpy
allows any order inside the partitions; these are deterministic, the same in every mode.
"""
from __future__ import annotations

import numpy as np

from ..ir import is_float
from ..primitives import bind
from ..primitives import elementwise as E
from ..primitives.selection import argpartition_p, partition_p
from ..primitives.sorting import argsort_p, sort_p
from ._base import UFUNCS, _dtype, _is_traced, _shape, asvalue, implements, normalize_axes
from .indexing import gather_along_axis, take_along_axis
from .reductions import any_, sum_
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


def _kth(kth, n):
    """numpy's kth (an int or a sequence, negative from the end) as increasing positions."""
    if _is_traced(kth):
        raise NotImplementedError("np.partition's kth must be a constant")
    ks = np.atleast_1d(np.asarray(kth))
    if ks.dtype.kind not in "iu" or ks.ndim != 1:
        raise TypeError("kth must be an integer or a 1-d sequence of integers")
    if n == 0:   # numpy checks no kth against an empty axis
        return ()
    for k in ks:
        if not -n <= int(k) < n:
            raise ValueError(f"kth(={int(k)}) out of bounds ({n})")
    return tuple(sorted({int(k) % n for k in ks}))


def _kind(kind):
    if kind != "introselect":
        raise ValueError(f"kind must be 'introselect' (got {kind!r})")


# Short rows, many of them: the compiled argsort sorts them in vector registers, 8 rows at a
# time, faster than selecting and placing (1000 rows of 100, kth=[10, 90]: 0.5x numpy's
# partition sorted, 0.9x partitioned), and a sorted row is a partition too.
SORT_ROWS_UP_TO, SORT_SHORT_ROWS_UP_TO = 128, 1024


def _sorts_instead(shape, axis):
    n = shape[axis]
    rows = int(np.prod(shape, dtype=np.int64)) // max(n, 1)
    return n <= SORT_ROWS_UP_TO or (rows >= 8 and n <= SORT_SHORT_ROWS_UP_TO)


@implements(np.argpartition)
def argpartition(a, kth, axis=-1, kind="introselect", order=None):
    _no_order(order)
    _kind(kind)
    a2, ax = _prep(a, axis)
    if len(_shape(a2)) == 0:
        raise ValueError("Cannot partition a 0-d array")
    ks = _kth(kth, _shape(a2)[ax])
    if 0 in _shape(a2):
        return np.zeros(_shape(a2), np.int64)
    if _sorts_instead(_shape(a2), ax):
        return bind(argsort_p, _keys(a2), axis=ax)
    return bind(argpartition_p, _keys(a2), axis=ax, kth=ks)


@implements(np.partition)
def partition(a, kth, axis=-1, kind="introselect", order=None):
    """The values of argpartition's order, written by the partitioning pass itself (the
    partition primitive; sort's values on the rows argpartition sorts): no gather after."""
    _no_order(order)
    _kind(kind)
    a2, ax = _prep(a, axis)
    if len(_shape(a2)) == 0:
        raise ValueError("Cannot partition a 0-d array")
    ks = _kth(kth, _shape(a2)[ax])
    if 0 in _shape(a2):
        return a2
    keys = _keys(a2)
    if _sorts_instead(_shape(a2), ax):
        values = bind(sort_p, keys, axis=ax)[0]
    else:
        values = bind(partition_p, keys, axis=ax, kth=ks)[0]
    # narrower dtypes partition as their (exact) widening and are narrowed back
    return values if _dtype(keys) == _dtype(a2) else E.cast(values, _dtype(a2))


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
    vv = expand_dims(v, -1)
    hits = cmp(a, vv)
    if is_float(_dtype(a)):
        # numpy's order puts NaN last: a NaN v is above every number (strict) or every value
        nan_v = UFUNCS[np.isnan](vv)
        hits = UFUNCS[np.logical_or](hits, UFUNCS[np.logical_and](
            nan_v, UFUNCS[np.logical_not](UFUNCS[np.isnan](a))) if strict else nan_v)
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


def _monotonicity(b):
    """numpy's check of constant bins (NaN comparisons false): 1 increasing (or constant),
    -1 decreasing, 0 neither; the first step that is not a repeat decides the direction."""
    if b.size == 0 or np.all(b[1:] == b[0]):
        return 1
    first = int(np.flatnonzero(b != b[0])[0])   # (0 if b[0] is NaN: its comparisons are false)
    rest = b[first:]
    if b[0] < b[first]:
        return 0 if np.any(rest[:-1] > rest[1:]) else 1
    return 0 if np.any(rest[:-1] < rest[1:]) else -1


@implements(np.digitize)
def digitize(x, bins, right=False):
    bins = asvalue(bins)
    if len(_shape(bins)) != 1:
        raise ValueError("bins must be one-dimensional")
    x = asvalue(x)
    n = _shape(bins)[0]
    up = searchsorted(bins, x, "left" if right else "right")
    # numpy: len(bins) - searchsorted(bins[::-1], x, side) with the same side as `up`
    down = UFUNCS[np.subtract](n, searchsorted(flip(bins), x, "left" if right else "right"))
    if not _is_traced(bins):
        mono = _monotonicity(np.asarray(bins))
        if mono == 0:
            raise ValueError("bins must be monotonically increasing or decreasing")
        return up if mono == 1 else down
    return E.select(UFUNCS[np.less_equal](bins[0], bins[n - 1]), up, down)


_ = reshape


@implements(np.isin)
def isin(element, test_elements, assume_unique=False, invert=False, *, kind=None):
    """Whether each element occurs in test_elements (no derivative: a comparison); `kind` and
    `assume_unique` only choose numpy's algorithm."""
    e, t = asvalue(element), ravel(asvalue(test_elements))
    if kind not in (None, "sort", "table"):
        raise ValueError(f"Invalid kind: '{kind}'. Please use None, 'sort' or 'table'.")
    if kind == "table" and not all(np.dtype(_dtype(v)).kind in "biu" for v in (e, t)):
        raise ValueError("The 'table' method is only supported for boolean or integer arrays. "
                         "Please select 'sort' or None for kind.")
    hit = any_(UFUNCS[np.equal](expand_dims(e, -1), t), -1) if _shape(t)[0] else \
        np.zeros(_shape(e), bool)
    return UFUNCS[np.logical_not](hit) if invert else hit
