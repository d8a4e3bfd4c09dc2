"""Indexing primitives: strided slices and integer gathers, each with its transpose
(`scatter_slice`, `take_add`) so that gradients of indexing, and gradients of those
gradients, stay in the IR."""
from __future__ import annotations

import functools

import math

import numpy as np

from ..ir import AVal
from .core import Primitive, aval_of, bind, register
from . import host

# numpy names bound at import: numpy has a module __getattr__, so Python 3.11 never
# specializes an `np.name` lookup (~40 ns each, several per tape node)
_ND = np.ndarray
_NP_ADD = np.add


@functools.lru_cache(maxsize=1024)
def _slices(start, step, shape):
    out = []
    for s, st, n in zip(start, step, shape):
        stop = s + n * st
        out.append(slice(s, None if stop < 0 else stop, st))
    return tuple(out)


def _slice_rule(x, *, start, step, shape):
    if not (len(start) == len(step) == len(shape) == x.ndim):
        raise ValueError(f"slice: start/step/shape must have one entry per axis of {x.shape}")
    for s, st, n, d in zip(start, step, shape, x.shape):
        if st == 0 or n < 0 or (n > 0 and not (0 <= s < d and 0 <= s + (n - 1) * st < d)):
            raise ValueError(f"slice: start {start}, step {step}, shape {shape} leave the "
                             f"bounds of {x.shape}")
    return AVal(shape, x.dtype)


def _slice_impl(x, *, start, step, shape):
    return np.asarray(x)[_slices(start, step, shape)]


def _slice_vjp(g, out, x, *, start, step, shape):
    if type(g) is _ND:  # plain numpy (tape backward): bind would call the impl anyway
        return (_scatter_slice_impl(g, start=start, step=step, in_shape=aval_of(x).shape),)
    return (scatter_slice(g, aval_of(x).shape, start, step),)


def _slice_vjp_add(acc, g, out, x, *, start, step, shape):
    """g added into acc's sliced entries in place. acc + _slice_vjp(g) (g scattered into zeros)
    also adds +0.0 to the others, which turns a -0.0 there into +0.0. A slice of step 1 that
    leaves at most an eighth of acc does that here, in the slabs around it (Rosenbrock's x[:-1]:
    one entry), and returns False; else True: the caller does it once for all such slices
    (`zero_signs_outside`)."""
    view = acc[_slices(start, step, shape)]
    _NP_ADD(view, g, out=view)
    if len(shape) == 1:   # (vectors, the common case, without the loop below)
        s, n, m = start[0], shape[0], acc.shape[0]
        if 8 * (m - n) > m or step[0] != 1 and n > 1:
            return True
        if m - n <= 4:   # a few entries (x[1:], x[:-1]): read in Python, not a ufunc call
            for i in (*range(s), *range(s + n, m)):
                if acc[i] == 0.0:
                    acc[i] = 0.0
            return False
        if s:
            t = acc[:s]
            _NP_ADD(t, 0.0, out=t)
        if s + n < m:
            t = acc[s + n:]
            _NP_ADD(t, 0.0, out=t)
        return False
    if 8 * (acc.size - view.size) > acc.size or \
            any(st != 1 and n > 1 for st, n in zip(step, shape)):
        return True
    lead = ()
    for k, (s, n) in enumerate(zip(start, shape)):
        if s:
            slab = acc[lead + (slice(0, s),)]
            _NP_ADD(slab, 0.0, out=slab)
        if s + n < acc.shape[k]:
            slab = acc[lead + (slice(s + n, None),)]
            _NP_ADD(slab, 0.0, out=slab)
        lead += (slice(None),)
    return False


def zero_signs_outside(acc, params_list):
    """acc += +0.0 in place outside the entries every slice in `params_list` (slice params)
    covers: what adding each slice's scatter into zeros would have done, after the slices
    were added in place (_slice_vjp_add). A -0.0 result needs every term -0.0, so an entry
    outside one slice (which added +0.0 there) ends +0.0; nothing else changes. Slices of step
    1 meet in a box: +0.0 goes only into the slabs around it (Rosenbrock's x[1:] and x[:-1]:
    two entries; column slices that do not meet: everything), adding +0.0 twice where slabs
    overlap changing nothing."""
    nd = acc.ndim
    lo, hi = [0] * nd, list(acc.shape)
    for p in params_list:
        for k, (s, st, n) in enumerate(zip(p["start"], p["step"], p["shape"])):
            if st != 1 and n > 1:
                return _zero_signs_outside_masks(acc, params_list)
            if s > lo[k]:
                lo[k] = s
            if s + n < hi[k]:
                hi[k] = s + n
    for k in range(nd):
        if lo[k] >= hi[k]:               # no entry in every slice
            _NP_ADD(acc, 0.0, out=acc)
            return
    lead = ()
    for k in range(nd):
        if lo[k]:
            slab = acc[lead + (slice(0, lo[k]),)]
            _NP_ADD(slab, 0.0, out=slab)
        if hi[k] < acc.shape[k]:
            slab = acc[lead + (slice(hi[k], None),)]
            _NP_ADD(slab, 0.0, out=slab)
        lead += (slice(None),)


def _zero_signs_outside_masks(acc, params_list):
    """zero_signs_outside for slices with other steps: the common entries as a mask."""
    common = np.zeros(acc.shape, bool)
    common[_slices(**params_list[0])] = True
    for p in params_list[1:]:
        mask = np.zeros(acc.shape, bool)
        mask[_slices(**p)] = True
        common &= mask
    _NP_ADD(acc, 0.0, out=acc, where=~common)


slice_p = register(Primitive(
    "slice", _slice_rule, _slice_impl,
    vjp=_slice_vjp, vjp_add=_slice_vjp_add, vjp_add_done=zero_signs_outside,
    jvp=lambda t, out, x, **p: None if t[0] is None else bind(slice_p, t[0], **p),
    torch_name="SliceBackward0", family="index"))


def _scatter_slice_rule(g, *, start, step, in_shape):
    _slice_rule(AVal(in_shape, g.dtype), start=start, step=step, shape=g.shape)
    return AVal(in_shape, g.dtype)


def _scatter_slice_impl(g, *, start, step, in_shape):
    if type(g) is not _ND:
        g = np.asarray(g)
    out = np.zeros(in_shape, g.dtype)
    out[_slices(start, step, g.shape)] = g
    return out


scatter_slice_p = register(Primitive(
    "scatter_slice", _scatter_slice_rule, _scatter_slice_impl,
    vjp=lambda g, out, x, *, start, step, in_shape:
        (bind(slice_p, g, start=start, step=step, shape=aval_of(x).shape),),
    jvp=lambda t, out, x, **p: None if t[0] is None else bind(scatter_slice_p, t[0], **p),
    torch_name="SliceBackwardBackward0", family="index"))


def _take_rule(x, idx, *, axis):
    if idx.dtype.kind not in "iu":
        raise TypeError(f"take: indices must be integers, got {idx.dtype}")
    if not 0 <= axis < x.ndim:
        raise ValueError(f"take: axis {axis} out of range for rank {x.ndim}")
    return AVal(x.shape[:axis] + idx.shape + x.shape[axis + 1:], x.dtype)


take_p = register(Primitive(
    "take", _take_rule, lambda x, idx, *, axis: np.take(x, idx, axis=axis),
    vjp=lambda g, out, x, idx, *, axis: (take_add(g, idx, axis, aval_of(x).shape[axis]), None),
    jvp=lambda t, out, x, idx, *, axis: None if t[0] is None else bind(take_p, t[0], idx, axis=axis),
    torch_name="IndexBackward0", family="index"))


def _take_add_rule(g, idx, *, axis, size):
    if idx.dtype.kind not in "iu":
        raise TypeError(f"take_add: indices must be integers, got {idx.dtype}")
    k = idx.ndim
    if g.shape[axis:axis + k] != idx.shape:
        raise ValueError(f"take_add: update shape {g.shape} does not hold index shape "
                         f"{idx.shape} at axis {axis}")
    return AVal(g.shape[:axis] + (size,) + g.shape[axis + k:], g.dtype)


def _take_add_impl(g, idx, *, axis, size):
    g = np.asarray(g)
    idx = np.asarray(idx)
    if idx.size >= 64:
        rows = host.scatter()
        out = _take_add_as_rows(rows, g, idx, axis=axis, size=size) if rows is not None \
            else None
        if out is not None:
            return out
        if axis == 0 and idx.ndim == 1 and g.dtype == np.float64:
            return _take_add_rows(g, idx, size)
    out = np.zeros(g.shape[:axis] + (size,) + g.shape[axis + idx.ndim:], g.dtype)
    # np.add.at accumulates repeated indices, which is what the gradient of a gather needs.
    _NP_ADD.at(out, (slice(None),) * axis + (idx,), g)
    return out


def _take_add_as_rows(rows, g, idx, *, axis, size):
    """take_add through the compiled row scatter-add `rows` (backend/scatter.py), or None where
    it does not apply: the index axes flattened into one (np.add.at walks a 2-D index in C
    order) and moved to the front (each output entry still gets its updates in index order,
    as np.add.at adds them), the result moved back into a C-order array."""
    k = idx.ndim
    lead, rest = g.shape[:axis], g.shape[axis + k:]
    if k != 1:
        g = g.reshape(lead + (idx.size,) + rest)
    if axis:
        g = np.moveaxis(g, axis, 0)
    out = rows(g, idx.reshape(-1), size, axis)
    if out is None or not axis:
        return out
    return np.ascontiguousarray(np.moveaxis(out, 0, axis))


def _take_add_rows(g, idx, size):
    """np.add.at(zeros, idx, g) for float64 rows gathered by a 1-D index (the gradient of
    X[idx], cams[cam]) through np.bincount: the same sums in the same order (each output entry
    accumulates its updates in index order, from 0.0), several times faster than np.add.at."""
    n = idx.shape[0]
    rest = g.shape[1:]
    m = math.prod(rest)
    idx = np.where(idx < 0, idx + size, idx) if idx.dtype.kind == "i" else idx
    if m == 1:
        flat = idx
    else:
        flat = (idx.astype(np.intp)[:, None] * m + np.arange(m)).reshape(n * m)
    out = np.bincount(flat, weights=g.reshape(n * m), minlength=size * m)
    return out.reshape((size,) + rest)


take_add_p = register(Primitive(
    "take_add", _take_add_rule, _take_add_impl,
    vjp=lambda g, out, upd, idx, *, axis, size: (bind(take_p, g, idx, axis=axis), None),
    jvp=lambda t, out, upd, idx, **p: None if t[0] is None else bind(take_add_p, t[0], idx, **p),
    torch_name="IndexPutBackward0", family="index"))


def _scatter_rule(x, idx, upd):
    if idx.dtype.kind not in "iu":
        raise TypeError(f"scatter: indices must be integers, got {idx.dtype}")
    if x.ndim != 1 or idx.ndim != 1 or upd.shape != idx.shape:
        raise ValueError(f"scatter: a flat array, flat indices and one update per index "
                         f"expected, got {x.shape}, {idx.shape}, {upd.shape}")
    if upd.dtype != x.dtype:
        raise TypeError(f"scatter: updates of {upd.dtype} into {x.dtype}")
    return AVal(x.shape, x.dtype)


def _scatter_impl(x, idx, upd):
    out = np.array(x)  # a copy: the primitive is pure
    out[np.asarray(idx)] = upd  # numpy: a repeated index keeps its last update
    return out


def _scatter_vjp(g, out, x, idx, upd):
    # x's entries that an update overwrote get no gradient; an update gets its target's
    # gradient when it is the last update to that target (numpy's, and scatter's, winner):
    # each target's winner is itself a scatter of the update numbers, and the targets then
    # send their gradients to their winners (targets nobody wrote name -1, a spare last slot)
    k = aval_of(idx).shape[0]
    n = aval_of(x).shape[0]
    dt = aval_of(g).dtype
    dx = bind(scatter_p, g, idx, np.zeros(k, dt))
    winner = bind(scatter_p, np.full(n, -1, np.int64), idx, np.arange(k, dtype=np.int64))
    picked = bind(scatter_p, np.zeros(k + 1, dt), winner, g)
    return dx, None, slice_along(picked, 0, 0, k)


def _scatter_jvp(t, out, x, idx, upd):
    tx, _, tu = t
    if tx is None and tu is None:
        return None
    dt = aval_of(x).dtype
    tx = np.zeros(aval_of(x).shape, dt) if tx is None else tx
    tu = np.zeros(aval_of(upd).shape, dt) if tu is None else tu
    return bind(scatter_p, tx, idx, tu)


# x with x[idx[k]] = upd[k] for k in order (flat x, flat indices): numpy's `x[idx] = v` with
# traced indices, a repeated index keeping its last update
scatter_p = register(Primitive(
    "scatter", _scatter_rule, _scatter_impl, vjp=_scatter_vjp, jvp=_scatter_jvp,
    torch_name="IndexPutBackward0", family="index"))


def scatter(x, idx, upd):
    return bind(scatter_p, x, idx, upd)


def _run_indices(runs):
    """Per axis, the source index of each output position: the runs (start, length, step) laid
    end to end."""
    return [np.concatenate([st + sp * np.arange(n, dtype=np.int64) for st, n, sp in axis_runs])
            if axis_runs else np.zeros(0, np.int64) for axis_runs in runs]


def _take_runs_rule(x, *, runs):
    if x.ndim == 0 or len(runs) != x.ndim:
        raise ValueError(f"take_runs: one run list per axis of {x.shape} expected, got {runs}")
    for d, axis_runs in zip(x.shape, runs):
        for st, n, sp in axis_runs:
            if n < 0 or sp not in (1, 0, -1) or n and not (0 <= st < d and
                                                             0 <= st + sp * (n - 1) < d):
                raise ValueError(f"take_runs: run (start={st}, length={n}, step={sp}) leaves an "
                                 f"axis of length {d} (steps are 1, 0 or -1)")
    return AVal(tuple(sum(n for _, n, _ in r) for r in runs), x.dtype)


def _take_runs_impl(x, *, runs):
    return np.asarray(x)[np.ix_(*_run_indices(runs))]


# x[np.ix_(i0, i1, ...)], each i a few runs of step 1, 0 or -1 (np.pad's index maps)
take_runs_p = register(Primitive(
    "take_runs", _take_runs_rule, _take_runs_impl,
    vjp=lambda g, out, x, *, runs: (take_runs_add(g, runs, aval_of(x).shape),),
    jvp=lambda t, out, x, **p: None if t[0] is None else bind(take_runs_p, t[0], **p),
    torch_name="IndexBackward0", family="index"))


def _take_runs_add_rule(g, *, runs, in_shape):
    out = _take_runs_rule(AVal(in_shape, g.dtype), runs=runs)
    if out.shape != g.shape:
        raise ValueError(f"take_runs_add: update shape {g.shape} is not the runs' {out.shape}")
    return AVal(tuple(in_shape), g.dtype)


def _take_runs_add_impl(g, *, runs, in_shape):
    out = np.zeros(in_shape, np.asarray(g).dtype)
    _NP_ADD.at(out, np.ix_(*_run_indices(runs)), g)  # an index repeated across runs accumulates
    return out


# transpose of take_runs: zeros of in_shape with every run's update added at its source
take_runs_add_p = register(Primitive(
    "take_runs_add", _take_runs_add_rule, _take_runs_add_impl,
    vjp=lambda g, out, upd, *, runs, in_shape: (bind(take_runs_p, g, runs=runs),),
    jvp=lambda t, out, upd, **p: None if t[0] is None else bind(take_runs_add_p, t[0], **p),
    torch_name="IndexPutBackward0", family="index"))


def take_runs(x, runs):
    return bind(take_runs_p, x, runs=_norm_runs(runs))


def take_runs_add(g, runs, in_shape):
    return bind(take_runs_add_p, g, runs=_norm_runs(runs), in_shape=tuple(int(d) for d in in_shape))


def _norm_runs(runs):
    return tuple(tuple((int(st), int(n), int(sp)) for st, n, sp in r) for r in runs)


def scatter_slice(g, in_shape, start, step):
    return bind(scatter_slice_p, g, start=tuple(start), step=tuple(step), in_shape=tuple(in_shape))


def take_add(g, idx, axis, size):
    return bind(take_add_p, g, idx, axis=int(axis), size=int(size))


def slice_along(x, axis, start, length, step=1):
    """x[..., start:start+length*step:step, ...] on one axis."""
    shape = aval_of(x).shape
    if start == 0 and step == 1 and length == shape[axis]:
        return x
    starts = tuple(start if i == axis else 0 for i in range(len(shape)))
    steps = tuple(step if i == axis else 1 for i in range(len(shape)))
    out_shape = tuple(length if i == axis else d for i, d in enumerate(shape))
    return bind(slice_p, x, start=starts, step=steps, shape=out_shape)


# ---------------------------------------------------------------------------------------------
# batching rules (vmap; see batching.py; take's and take_add's are in batch_rules.py, as they
# need the shape ops above this module)

def _insert(t, d, v):
    return tuple(t[:d]) + (v,) + tuple(t[d:])


def _slice_batch(prim, axis_size, vals, dims, *, start, step, shape):
    d = dims[0]  # slice the batch axis whole, in place
    return bind(slice_p, vals[0], start=_insert(start, d, 0), step=_insert(step, d, 1),
                shape=_insert(shape, d, axis_size)), d


def _scatter_slice_batch(prim, axis_size, vals, dims, *, start, step, in_shape):
    d = dims[0]
    return bind(scatter_slice_p, vals[0], start=_insert(start, d, 0), step=_insert(step, d, 1),
                in_shape=_insert(in_shape, d, axis_size)), d


def _take_runs_batch(prim, axis_size, vals, dims, *, runs):
    d = dims[0]  # the batch axis is one whole run
    return bind(take_runs_p, vals[0], runs=_insert(runs, d, ((0, axis_size, 1),))), d


def _take_runs_add_batch(prim, axis_size, vals, dims, *, runs, in_shape):
    d = dims[0]
    return bind(take_runs_add_p, vals[0], runs=_insert(runs, d, ((0, axis_size, 1),)),
                in_shape=_insert(in_shape, d, axis_size)), d


slice_p.batch = _slice_batch
scatter_slice_p.batch = _scatter_slice_batch
take_runs_p.batch = _take_runs_batch
take_runs_add_p.batch = _take_runs_add_batch
