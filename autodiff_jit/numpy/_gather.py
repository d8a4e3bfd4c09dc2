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


def index_runs(idx):
    """A constant 1-D index list as runs (start, length, step), step 1, 0 or -1, laid end to
    end: np.pad's index maps are a few such runs per axis."""
    idx = [int(i) for i in idx]
    runs, k = [], 0
    while k < len(idx):
        j = k + 1
        step = idx[j] - idx[k] if j < len(idx) and abs(idx[j] - idx[k]) <= 1 else 1
        while j < len(idx) and idx[j] - idx[j - 1] == step:
            j += 1
        runs.append((idx[k], j - k, step if j - k > 1 else 1))
        k = j
    return tuple(runs)


def take_runs(x, idx_per_axis):
    """x[np.ix_(*idx_per_axis)] for constant index lists made of runs (see index_runs): one
    copy loop nest (the take_runs primitive), whose VJP adds the runs back."""
    x = asvalue(x)
    shape = _shape(x)
    if all(np.array_equal(i, np.arange(d)) for i, d in zip(idx_per_axis, shape)):
        return x
    return I.take_runs(x, [index_runs(i) for i in idx_per_axis])
