"""numpy's matrix-shaped helpers (numpy/lib/_twodim_base_impl) and np.pad: diag, diagflat,
diagonal, trace, tril, triu, vander, fill_diagonal, pad. Index maps (see _gather.py) where
the values only move; a constant mask where entries are zeroed."""
from __future__ import annotations

import numpy as np

from ..primitives import elementwise as E, indexing as I
from ._base import _dtype, _is_traced, _shape, asvalue, implements
from ._gather import gather, positions, remap, take_runs
from .reductions import sum_
from .shape import ravel, stack


@implements(np.diagonal)
def diagonal(a, offset=0, axis1=0, axis2=1):
    return remap(a, lambda p: np.diagonal(p, offset, axis1, axis2))


@implements(np.diag)
def diag(v, k=0):
    v = asvalue(v)
    if len(_shape(v)) == 1:
        return gather(v, np.diag(positions(_shape(v)) + 1, k) - 1)  # -1: a zero off the diagonal
    if len(_shape(v)) != 2:
        raise ValueError("Input must be 1- or 2-d.")
    return diagonal(v, k)


@implements(np.diagflat)
def diagflat(v, k=0):
    return diag(ravel(asvalue(v)), k)


@implements(np.trace, defaults_only=("out",))
def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    return sum_(diagonal(a, offset, axis1, axis2), -1, dtype)


def _triangle(m, k, lower):
    m = asvalue(m)
    s = _shape(m)
    # numpy's mask: tri(*m.shape[-2:]) (a 1-d m gives an (n, n) result, m broadcast along it)
    keep = np.tri(*s[-2:], k=k, dtype=bool) if lower else ~np.tri(*s[-2:], k=k - 1, dtype=bool)
    return E.select(keep, m, np.zeros((), _dtype(m))[()])


@implements(np.tril)
def tril(m, k=0):
    return _triangle(m, k, True)


@implements(np.triu)
def triu(m, k=0):
    return _triangle(m, k, False)


@implements(np.vander)
def vander(x, N=None, increasing=False):
    x = asvalue(x)
    if len(_shape(x)) != 1:
        raise ValueError("x must be a one-dimensional array or sequence.")
    dt = np.promote_types(_dtype(x), np.int64)   # numpy's: float32 and bool become float64/int64
    if _dtype(x) != dt:
        x = E.cast(x, dt)
    n = _shape(x)[0] if N is None else int(N)
    if n == 0:
        return np.zeros((_shape(x)[0], 0), _dtype(x))
    powers = range(n) if increasing else range(n - 1, -1, -1)
    return stack([E.integer_pow(x, p) for p in powers], 1)


@implements(np.fill_diagonal)
def fill_diagonal(a, val, wrap=False):
    """In place, as numpy: `a` (a traced value) is rebound to the filled array."""
    if not _is_traced(a):
        raise TypeError("np.fill_diagonal writes into its argument: pass an array")
    mask = positions(_shape(a)) + 1
    np.fill_diagonal(mask, 0, wrap)
    slots = mask == 0
    vals = asvalue(val)
    k = int(slots.sum())
    if len(_shape(vals)) and _shape(vals) != (k,):  # numpy repeats the values along the diagonal
        vals = gather(ravel(vals), np.resize(positions((int(np.prod(_shape(vals))),)), k))
    a[np.nonzero(slots)] = vals


_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap", "empty")


@implements(np.pad)
def pad(array, pad_width, mode="constant", *, constant_values=0, end_values=0,
        reflect_type="even", stat_length=None):
    if callable(mode) or mode not in _PAD_MODES:
        raise NotImplementedError(f"np.pad(mode={mode!r}) is not supported; supported modes: "
                                  f"{', '.join(_PAD_MODES)}")
    if end_values != 0 or stat_length is not None:
        raise NotImplementedError("np.pad(..., end_values=/stat_length=) is only meaningful for "
                                  "the linear_ramp and statistic modes, which are not supported")
    array = asvalue(array)
    nd = len(_shape(array))
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (nd, 2)) if \
        np.ndim(pad_width) else np.full((nd, 2), int(pad_width))
    if mode in ("constant", "empty"):
        if mode == "constant" and np.ndim(constant_values) != 0:
            raise NotImplementedError("np.pad(..., constant_values=) takes one scalar on traced "
                                      "values (per-axis pairs are not supported)")
        fill = 0 if mode == "empty" else constant_values
    elif reflect_type != "even":
        if mode not in ("reflect", "symmetric"):
            raise ValueError("reflect_type applies to the reflect and symmetric modes")
        raise NotImplementedError("np.pad(..., reflect_type='odd') is not supported")
    befores = tuple(int(w) for w in widths[:, 0])
    shape = _shape(array)
    out_shape = tuple(int(d + w0 + w1) for d, (w0, w1) in zip(shape, widths))
    if out_shape == shape:
        return array
    if mode not in ("constant", "empty"):
        # numpy's own pad of each axis' index range is the index map; one copy loop nest
        return take_runs(array, [np.pad(np.arange(d), (int(w0), int(w1)), mode)
                                 for d, (w0, w1) in zip(shape, widths)])
    # zeros around the array: a padding view, fused with the fill into one loop
    out = I.scatter_slice(array, out_shape, befores, (1,) * nd)
    # (a fill of -0.0 is not the view's +0.0)
    if mode == "constant" and not (isinstance(fill, (int, float)) and fill == 0
                                   and not np.signbit(fill)):
        keep = np.zeros(out_shape, bool)
        keep[tuple(slice(w, w + d) for w, d in zip(befores, shape))] = True
        out = E.select(keep, out, E.cast(asvalue(fill), _dtype(out)))
    return out
