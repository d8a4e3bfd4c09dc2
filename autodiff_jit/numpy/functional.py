"""numpy's functional helpers (numpy/lib/_shape_base_impl): apply_along_axis and
apply_over_axes, traced once per 1-D slice / per axis (shapes are static, so the loop
unrolls at trace time)."""
from __future__ import annotations

import numpy as np

from ._base import _shape, asvalue, implements, normalize_axes
from .shape import expand_dims, moveaxis, reshape, stack


@implements(np.apply_along_axis)
def apply_along_axis(func1d, axis, arr, *args):
    """numpy's extra keyword arguments for func1d are not forwarded: bind them with a lambda."""
    arr = asvalue(arr)
    nd = len(_shape(arr))
    axis = normalize_axes(axis, nd)[0]
    moved = moveaxis(arr, axis, -1)
    outer = _shape(moved)[:-1]
    if not outer:
        return asvalue(func1d(moved, *args))
    n = int(np.prod(outer, dtype=np.int64))
    if n == 0:
        raise ValueError("Cannot apply_along_axis when any iteration dimensions are 0")
    flat = reshape(moved, (n, _shape(moved)[-1]))
    results = [asvalue(func1d(flat[i], *args)) for i in range(n)]
    res = stack(results, 0)
    res = reshape(res, outer + _shape(results[0]))
    # numpy puts the function's output dimensions where the axis was
    k = len(_shape(results[0]))
    src = list(range(len(outer), len(outer) + k))
    return moveaxis(res, src, list(range(axis, axis + k))) if k else res


@implements(np.apply_over_axes)
def apply_over_axes(func, a, axes):
    val = asvalue(a)
    nd = len(_shape(val))
    for ax in np.atleast_1d(axes):
        ax = normalize_axes(int(ax), nd)[0]
        res = asvalue(func(val, ax))
        if len(_shape(res)) == nd:
            val = res
        elif len(_shape(res)) == nd - 1:
            val = expand_dims(res, ax)
        else:
            raise ValueError("function is not returning an array of the correct shape")
    return val
