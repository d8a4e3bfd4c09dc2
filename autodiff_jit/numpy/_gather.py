"""Data movement by index maps: numpy's own function, run on an array of positions, says where
each output element comes from; one gather (the `take` primitive, whose VJP scatter-adds)
moves the traced values there. This gives numpy's exact semantics for roll, tile, repeat,
rot90, pad, diagonal, delete, ... with a single differentiable rule."""
from __future__ import annotations

import numpy as np

from ..primitives import aval_of, bind
from ..primitives import elementwise as E, indexing as I, shape as S
from ._base import _shape, asvalue


def positions(shape) -> np.ndarray:
    """The flat position of every element of an array of `shape`."""
    return np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)


def gather(x, pos, fill=None):
    """out[i] = ravel(x)[pos[i]] for a constant integer array `pos`; where pos[i] < 0 the
    element is `fill` (its derivative is then zero)."""
    x = asvalue(x)
    pos = np.asarray(pos, np.int64)
    size = aval_of(x).size
    if pos.size == size and np.array_equal(pos.ravel(), np.arange(size)):
        return S.reshape(x, pos.shape)  # the identity map is a reshape
    flat = S.reshape(x, (size,))
    missing = pos < 0
    if size == 0 or pos.size == 0:
        return E.cast(np.full(pos.shape, 0 if fill is None else fill), aval_of(x).dtype)
    out = S.reshape(bind(I.take_p, flat, np.where(missing, 0, pos).ravel(), axis=0), pos.shape)
    if missing.any():
        out = E.select(missing, E.cast(asvalue(fill), aval_of(x).dtype)
                       if fill is not None else np.zeros((), aval_of(x).dtype)[()], out)
    return out


def remap(x, index_fn):
    """numpy's `index_fn` applied to x's values: index_fn receives x's position array."""
    x = asvalue(x)
    return gather(x, index_fn(positions(_shape(x))))


def take_runs(x, axis, idx):
    """x's entries idx (a constant 1-D index list, -1: zero) along `axis`, as strided slices
    of its runs (step +1 or -1) joined by one concatenate: views the backend fuses, instead
    of a gather through a stored index array."""
    x = asvalue(x)
    idx = [int(i) for i in idx]
    shape = _shape(x)
    parts, k = [], 0
    while k < len(idx):
        j = k + 1
        if idx[k] >= 0 and j < len(idx) and idx[j] >= 0 and abs(idx[j] - idx[k]) == 1:
            step = idx[j] - idx[k]
            while j + 1 < len(idx) and idx[j + 1] >= 0 and idx[j + 1] - idx[j] == step:
                j += 1
            j += 1
        else:
            step = 1
        if idx[k] < 0:
            zshape = list(shape)
            zshape[axis] = j - k
            parts.append(E.cast(np.zeros(zshape), aval_of(x).dtype))
        else:
            parts.append(I.slice_along(x, axis, idx[k], j - k, step=step))
        k = j
    return parts[0] if len(parts) == 1 else S.concatenate(
        [p if not isinstance(p, np.ndarray) else p for p in E.promote(*parts)], axis)
