"""Batching rules (vmap; see batching.py) that move data, for primitives whose own module sits
below the shape ops the rule needs: reshape and broadcast_to (defined in broadcast.py, the
bottom family) and take / take_add (indexing.py, which the shape ops import). Imported last by
the package, so every family is loaded.
"""
from __future__ import annotations

import numpy as np

from .core import aval_of, bind
from . import elementwise as E
from .broadcast import broadcast_to_p, reshape_p
from .indexing import scatter_p, take_add_p, take_p
from .shape import broadcast_to, moveaxis, reshape, transpose


def _reshape_batch(prim, axis_size, vals, dims, *, shape):
    x, d = vals[0], dims[0]
    if d == aval_of(x).ndim - 1 and d > 0:  # batch last: row-major order keeps each example's
        return reshape(x, tuple(shape) + (axis_size,)), len(shape)  # elements in order
    return reshape(moveaxis(x, d, 0), (axis_size,) + tuple(shape)), 0


def _broadcast_batch(prim, axis_size, vals, dims, *, shape):
    x = moveaxis(vals[0], dims[0], 0)
    xs = aval_of(x).shape
    x = reshape(x, xs[:1] + (1,) * (len(shape) + 1 - len(xs)) + xs[1:])
    return broadcast_to(x, (axis_size,) + tuple(shape)), 0


def _lane_offsets(idx, size, n):
    """Indices of per-example rows of length n, as rows of all examples flattened into one
    axis of size*n (example b's row i is row b*n + i); negative indices first wrap, as in
    np.take."""
    dt = aval_of(idx).dtype
    idx = E.select(idx < 0, idx + dt.type(n), idx)
    shape = aval_of(idx).shape
    offsets = (np.arange(size, dtype=dt) * dt.type(n)).reshape((size,) + (1,) * (len(shape) - 1))
    return idx + offsets


def _take_batch(prim, axis_size, vals, dims, *, axis):
    (x, idx), (dx, di) = vals, dims
    if di is None:  # the same indices for every example
        return bind(take_p, x, idx, axis=axis + (axis >= dx)), dx
    if dx is None:  # the gathered axis takes the indices' axes, batch axis included
        return bind(take_p, x, idx, axis=axis), axis + di
    # both batched: gather rows of the examples' rows laid end to end
    x = moveaxis(x, dx, 0)
    idx = moveaxis(idx, di, 0)
    s = aval_of(x).shape[1:]
    k = aval_of(idx).ndim - 1
    x = transpose(x, (0, axis + 1) + tuple(i + 1 for i in range(len(s)) if i != axis))
    x = reshape(x, (axis_size * s[axis],) + s[:axis] + s[axis + 1:])
    out = bind(take_p, x, _lane_offsets(idx, axis_size, s[axis]), axis=0)
    # out: (size, *idx, *s[:axis], *s[axis+1:]) -> (size, *s[:axis], *idx, *s[axis+1:])
    pre = tuple(range(1 + k, 1 + k + axis))
    return transpose(out, (0,) + pre + tuple(range(1, 1 + k)) +
                     tuple(range(1 + k + axis, aval_of(out).ndim))), 0


def _take_add_batch(prim, axis_size, vals, dims, **params):
    # (take_add's own `size` param, the row count, arrives in params)
    axis, rows = params["axis"], params["size"]
    (g, idx), (dg, di) = vals, dims
    if di is None:
        return bind(take_add_p, g, idx, axis=axis + (axis >= dg), size=rows), dg
    g = moveaxis(g, dg, 0) if dg is not None else broadcast_to(g, (axis_size,) + aval_of(g).shape)
    idx = moveaxis(idx, di, 0)
    k = aval_of(idx).ndim - 1
    gs = aval_of(g).shape[1:]  # (*pre, *idx, *post) with len(pre) == axis
    post = gs[axis + k:]
    # g -> (axis_size, *idx, *pre, *post), accumulated into axis_size * rows rows, then split
    # into the examples again
    g = transpose(g, (0,) + tuple(range(1 + axis, 1 + axis + k)) + tuple(range(1, 1 + axis)) +
                  tuple(range(1 + axis + k, 1 + len(gs))))
    out = bind(take_add_p, g, _lane_offsets(idx, axis_size, rows), axis=0,
               size=axis_size * rows)
    out = reshape(out, (axis_size, rows) + gs[:axis] + post)
    return moveaxis(out, 1, 1 + axis), 0


def _scatter_batch(prim, axis_size, vals, dims):
    # the examples' flat arrays laid end to end, each example's indices offset to its own
    (x, idx, upd), (dx, di, du) = vals, dims

    def batched(v, d):
        return moveaxis(v, d, 0) if d is not None else \
            broadcast_to(v, (axis_size,) + aval_of(v).shape)
    x, idx, upd = batched(x, dx), batched(idx, di), batched(upd, du)
    n, k = aval_of(x).shape[1], aval_of(idx).shape[1]
    out = bind(scatter_p, reshape(x, (axis_size * n,)),
               reshape(_lane_offsets(idx, axis_size, n), (axis_size * k,)),
               reshape(upd, (axis_size * k,)))
    return reshape(out, (axis_size, n)), 0


reshape_p.batch = _reshape_batch
broadcast_to_p.batch = _broadcast_batch
take_p.batch = _take_batch
take_add_p.batch = _take_add_batch
scatter_p.batch = _scatter_batch
