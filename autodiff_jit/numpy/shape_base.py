"""numpy's joining, splitting, tiling and rearranging functions (numpy/lib/_shape_base_impl,
_function_base_impl): atleast_2d/3d, dstack, column_stack, block, append/insert/delete,
split family, unstack, tile, repeat, roll, rot90, flipud/fliplr, rollaxis, resize,
broadcast_arrays. Pure data movement is an index map (see _gather.py); joins concatenate."""
from __future__ import annotations

import numbers

import numpy as np

from ..primitives import aval_of
from ..primitives import elementwise as E, indexing as I
from ._base import _dtype, _is_traced, _shape, asvalue, implements, normalize_axes
from ._gather import gather, positions, remap
from .shape import _common, broadcast_to, concatenate, expand_dims, flip, moveaxis, ravel, \
    reshape, swapaxes


def _static(what, *values):
    for v in values:
        if _is_traced(v):
            raise NotImplementedError(f"{what} must be a constant (not a traced value): it "
                                      f"decides the output's shape")


@implements(np.atleast_2d)
def atleast_2d(*arys):
    out = []
    for a in arys:
        a = asvalue(a)
        nd = len(_shape(a))
        out.append(reshape(a, (1,) * (2 - nd) + _shape(a)) if nd < 2 else a)
    return out[0] if len(out) == 1 else tuple(out)


@implements(np.atleast_3d)
def atleast_3d(*arys):
    out = []
    for a in arys:
        a = asvalue(a)
        s = _shape(a)
        new = {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}.get(len(s), s)
        out.append(reshape(a, new) if new != s else a)
    return out[0] if len(out) == 1 else tuple(out)


@implements(np.dstack)
def dstack(tup):
    return concatenate([atleast_3d(asvalue(v)) for v in tup], 2)


@implements(np.column_stack)
def column_stack(tup):
    cols = []
    for v in tup:
        v = asvalue(v)
        cols.append(reshape(v, (-1, 1)) if len(_shape(v)) < 2 else v)
    return concatenate(cols, 1)


if hasattr(np, "row_stack"):
    implements(np.row_stack)(lambda tup, *, dtype=None, casting="same_kind":
                             concatenate([atleast_2d(asvalue(v)) for v in tup], 0))


@implements(np.block)
def block(arrays):
    def depth(a):
        return 1 + depth(a[0]) if isinstance(a, list) and a else 0

    d = depth(arrays)

    def go(a, level):
        if not isinstance(a, list):
            return asvalue(a)
        parts = [go(v, level + 1) for v in a]
        nd = max(d, max(len(_shape(p)) for p in parts))
        parts = [reshape(p, (1,) * (nd - len(_shape(p))) + _shape(p)) for p in parts]
        return concatenate(parts, nd - (d - level))

    return go(arrays, 0)


@implements(np.append)
def append(arr, values, axis=None):
    arr, values = asvalue(arr), asvalue(values)
    if axis is None:
        return concatenate([ravel(arr), ravel(values)], 0)
    return concatenate([arr, values], axis)


@implements(np.delete)
def delete(arr, obj, axis=None):
    _static("np.delete's obj", obj)
    arr = asvalue(arr)
    if axis is None:
        arr, axis = ravel(arr), 0
    return remap(arr, lambda p: np.delete(p, obj, axis))


@implements(np.insert)
def insert(arr, obj, values, axis=None):
    _static("np.insert's obj", obj)
    arr = asvalue(arr)
    values = asvalue(values)
    if _dtype(values) != _dtype(arr):   # numpy casts the values to the array's dtype
        values = E.cast(values, _dtype(arr)) if _is_traced(values) else \
            np.asarray(values).astype(_dtype(arr))
    if axis is None:
        arr, axis = ravel(arr), 0
    # the values' positions follow the array's in one flat index space; numpy broadcasts them
    # into the new slots exactly as it would the values
    n = aval_of(arr).size
    pos = np.insert(positions(_shape(arr)), obj, positions(_shape(values)) + n, axis)
    return gather(concatenate([ravel(arr), ravel(values)], 0), pos)


def _split_points(n, indices_or_sections, strict):
    if isinstance(indices_or_sections, numbers.Integral):
        k = int(indices_or_sections)
        if k <= 0:
            raise ValueError("number sections must be larger than 0.")
        if strict and n % k:
            raise ValueError("array split does not result in an equal division")
        q, r = divmod(n, k)
        sizes = [q + 1] * r + [q] * (k - r)
        return list(np.cumsum([0] + sizes))
    pts = [0] + [min(max(int(i) if i >= 0 else n + int(i), 0), n) for i in indices_or_sections]
    return pts + [n]


def _split(ary, indices_or_sections, axis, strict):
    _static("the split points", indices_or_sections)
    ary = asvalue(ary)
    axis = normalize_axes(axis, len(_shape(ary)))[0]
    pts = _split_points(_shape(ary)[axis], indices_or_sections, strict)
    out = []
    for a, b in zip(pts[:-1], pts[1:]):
        b = max(a, b)
        out.append(I.slice_along(ary, axis, a, b - a))
    return out


@implements(np.split)
def split(ary, indices_or_sections, axis=0):
    return _split(ary, indices_or_sections, axis, strict=True)


@implements(np.array_split)
def array_split(ary, indices_or_sections, axis=0):
    return _split(ary, indices_or_sections, axis, strict=False)


@implements(np.hsplit)
def hsplit(ary, indices_or_sections):
    ary = asvalue(ary)
    return split(ary, indices_or_sections, 1 if len(_shape(ary)) > 1 else 0)


@implements(np.vsplit)
def vsplit(ary, indices_or_sections):
    return split(ary, indices_or_sections, 0)


@implements(np.dsplit)
def dsplit(ary, indices_or_sections):
    return split(ary, indices_or_sections, 2)


if hasattr(np, "unstack"):
    @implements(np.unstack)
    def unstack(x, /, *, axis=0):
        x = asvalue(x)
        x = moveaxis(x, axis, 0)
        return tuple(reshape(I.slice_along(x, 0, i, 1), _shape(x)[1:])
                     for i in range(_shape(x)[0]))


@implements(np.tile)
def tile(A, reps):
    return remap(A, lambda p: np.tile(p, reps))


@implements(np.repeat)
def repeat(a, repeats, axis=None):
    _static("np.repeat's repeats", repeats)
    return remap(a, lambda p: np.repeat(p, repeats, axis))


@implements(np.roll)
def roll(a, shift, axis=None):
    _static("np.roll's shift", shift)
    return remap(a, lambda p: np.roll(p, shift, axis))


@implements(np.rot90)
def rot90(m, k=1, axes=(0, 1)):
    return remap(m, lambda p: np.rot90(p, k, axes))


@implements(np.fliplr)
def fliplr(m):
    return flip(m, 1)


@implements(np.flipud)
def flipud(m):
    return flip(m, 0)


@implements(np.rollaxis)
def rollaxis(a, axis, start=0):
    return remap(a, lambda p: np.rollaxis(p, axis, start))


if hasattr(np, "matrix_transpose"):
    @implements(np.matrix_transpose)
    def matrix_transpose(x, /):
        x = asvalue(x)
        if len(_shape(x)) < 2:
            raise ValueError("Input array must be at least 2-dimensional")
        return swapaxes(x, -1, -2)


@implements(np.resize)
def resize(a, new_shape):
    return remap(a, lambda p: np.resize(p, new_shape))


@implements(np.broadcast_arrays)
def broadcast_arrays(*args, subok=False):
    vals = [asvalue(a) for a in args]
    shape = np.broadcast_shapes(*[_shape(v) for v in vals])
    return tuple(broadcast_to(v, shape) if _shape(v) != shape else v for v in vals)


_ = expand_dims  # re-exported for the modules above this one
