"""Indexing on traced values and tape Tensors: x[key], np.take, and x[key] = v as a pure update."""
from __future__ import annotations

import operator

import numpy as np

from ..primitives import aval_of, bind
from ..primitives import elementwise as E, indexing as I, shape as S
from ._base import (UFUNCS, _dtype, _is_traced, _shape, asvalue, implements, normalize_axes,
                    numpy_target)
from ._gather import gather, remap
from .shape import broadcast_to, ravel
from .ufuncs import add, multiply, subtract

@implements(np.take, defaults_only=("out",))
def take(x, indices, axis=None, out=None, mode="raise"):
    x = asvalue(x)
    if axis is None:
        x, axis = ravel(x), 0
    axis = normalize_axes(axis, len(_shape(x)))[0]
    dim = _shape(x)[axis]
    if mode in ("clip", "wrap"):
        if dim == 0:
            raise IndexError("cannot do a non-empty take from an empty axes.")
        indices = _clip_or_wrap(asvalue(indices), dim, mode)
    elif mode != "raise":
        raise ValueError(f"clipmode must be one of 'clip', 'raise', or 'wrap' (got {mode!r})")
    return bind(I.take_p, x, _index_array(indices, dim, axis), axis=axis)


def _clip_or_wrap(idx, dim, mode):
    """numpy's mode='clip' (negative indices clip to 0) and mode='wrap' (modulo dim)."""
    if not _is_traced(idx):
        idx = np.asarray(idx)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"Cannot cast array data from {idx.dtype} to int64")
        idx = idx.astype(np.int64)
        return np.clip(idx, 0, dim - 1) if mode == "clip" else np.mod(idx, dim)
    if _dtype(idx).kind not in "iu":
        raise IndexError("arrays used as indices must be of integer type")
    idx = E.cast(idx, np.int64)
    if mode == "clip":
        return UFUNCS[np.minimum](UFUNCS[np.maximum](idx, 0), dim - 1)
    # wrap: idx - dim * floor(idx / dim), exact in float64 for |idx| < 2**52
    q = UFUNCS[np.floor](UFUNCS[np.true_divide](idx, float(dim)))
    return E.cast(subtract(idx, multiply(E.cast(q, np.int64), dim)), np.int64)




def _index_array(idx, dim, axis=0, wrapped=False):
    """An integer index array into an axis of size `dim`, checked as numpy checks it.

    Constants are checked now (numpy's IndexError) and returned wrapped into [0, dim). A traced
    index is checked when it runs: left as is (int64) for a take that consumes it directly --
    take wraps negative entries and raises (flags, in compiled code) out-of-range ones -- or,
    with `wrapped=True` (for callers that combine indices arithmetically, where a bad entry
    could land on a valid flat position), normalized by a gather from arange(dim), which
    checks it the same way."""
    if _is_traced(idx):
        if _dtype(idx).kind not in "iu":
            raise IndexError("arrays used as indices must be of integer type")
        idx = E.cast(idx, np.int64)
        if not wrapped:
            return idx
        # arange(dim) laid along `axis`, so an error names the axis as numpy does
        ar = np.arange(dim).reshape((1,) * axis + (dim,))
        return S.reshape(bind(I.take_p, ar, idx, axis=axis), _shape(idx))
    arr = np.asarray(idx)
    if arr.dtype.kind not in "iu":
        raise IndexError(f"arrays used as indices must be of integer (or boolean) type, "
                         f"got {arr.dtype}")
    bad = np.flatnonzero((arr >= dim) | (arr < -dim))
    if bad.size:   # numpy names the first offending entry
        raise IndexError(f"index {arr.reshape(-1)[bad[0]]} is out of bounds for axis {axis} "
                         f"with size {dim}")
    return np.where(arr < 0, arr + dim, arr).astype(np.int64)


def _scalar_bools(key):
    """numpy reads a Python/numpy bool in a key as a 0-d mask, not as the integer 0 or 1:
    `True` adds a length-1 axis (with slices, None and Ellipsis around it that is exactly a
    None), `False` a length-0 one."""
    bools = [k for k in key if isinstance(k, (bool, np.bool_))]
    others = [k for k in key if not isinstance(k, (bool, np.bool_, slice, type(None)))
              and k is not Ellipsis]
    if others or not all(bools):
        raise NotImplementedError(
            "a scalar boolean index (x[True], x[False]) together with integer or array indices, "
            "or x[False], is not supported; use x[None] for x[True], or index with an array")
    return tuple(None if isinstance(k, (bool, np.bool_)) else k for k in key)


def _expand_key(key, ndim):
    if not isinstance(key, tuple):
        key = (key,)
    if any(isinstance(k, (bool, np.bool_)) for k in key):
        key = _scalar_bools(key)
    out = []
    for k in key:
        if isinstance(k, (list,)):
            k = np.asarray(k)
        if isinstance(k, np.ndarray) and k.dtype == np.bool_:
            out.extend(np.nonzero(k))  # a constant mask is a set of constant index arrays
        elif _is_traced(k) and _dtype(k) == np.bool_:
            raise IndexError("boolean mask indexing with a traced mask has a data-dependent "
                             "shape; use np.where(mask, x, 0) instead")
        else:
            out.append(k)
    used = sum(1 for k in out if k is not None and k is not Ellipsis)
    ellipses = [i for i, k in enumerate(out) if k is Ellipsis]  # `is`: items may be arrays
    if len(ellipses) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if used > ndim:
        raise IndexError(f"too many indices for array: array is {ndim}-dimensional, "
                         f"but {used} were indexed")
    if ellipses:
        i = ellipses[0]
        out[i:i + 1] = [slice(None)] * (ndim - used)
    else:
        out += [slice(None)] * (ndim - used)
    return out


def getitem(x, key):
    x = asvalue(x)
    shape = _shape(x)
    if type(key) is slice and shape:  # x[a:b:c], the most common key: no key expansion needed
        s, e, st = key.indices(shape[0])
        n = len(range(s, e, st))
        if n == shape[0] and st == 1:
            return x
        rest = len(shape) - 1
        return bind(I.slice_p, x, start=(s if n else 0,) + (0,) * rest, step=(st,) + (1,) * rest,
                    shape=(n,) + shape[1:])
    items = _expand_key(key, len(shape))
    is_adv = [not isinstance(k, (slice, type(None))) and
              (_is_traced(k) or isinstance(k, np.ndarray)) for k in items]
    if any(is_adv):
        if any(k is None for k in items):
            # numpy: each np.newaxis is a new length-1 axis of x at its place, taken whole
            dims = iter(shape)
            x = S.reshape(x, tuple(1 if k is None else next(dims) for k in items))
            items = [slice(None) if k is None else k for k in items]
        return _advanced(x, items)
    # basic indexing: strided slice, then a reshape for integers and None
    start, step, sizes, out_shape = [], [], [], []
    axis = 0
    for k in items:
        if k is None:
            out_shape.append(1)
            continue
        d = shape[axis]
        if isinstance(k, slice):
            s, e, st = k.indices(d)
            n = len(range(s, e, st))
            start.append(s if n else 0)
            step.append(st)
            sizes.append(n)
            out_shape.append(n)
        else:
            i = operator.index(k)
            if not -d <= i < d:
                raise IndexError(f"index {i} is out of bounds for axis {axis} with size {d}")
            start.append(i % d)
            step.append(1)
            sizes.append(1)
        axis += 1
    if tuple(sizes) != shape or any(st != 1 for st in step) or any(start):
        x = bind(I.slice_p, x, start=tuple(start), step=tuple(step), shape=tuple(sizes))
    return S.reshape(x, out_shape)


def _advanced(x, items):
    """Array indices (plus any ints among them) gather from the flattened indexed axes."""
    shape = _shape(x)
    adv_axes = [i for i, k in enumerate(items) if not isinstance(k, slice)]
    # apply the slices first; they keep every axis
    sliced = tuple(k if isinstance(k, slice) else slice(None) for k in items)
    x = getitem(x, sliced)
    shape = _shape(x)
    # move advanced axes to the front, flatten them into one axis, gather with a flat index
    rest = [i for i in range(len(shape)) if i not in adv_axes]
    x = S.transpose(x, adv_axes + rest)
    adv_dims = [shape[i] for i in adv_axes]
    x = S.reshape(x, [int(np.prod(adv_dims, dtype=np.int64))] + [shape[i] for i in rest])
    # one advanced axis: the take checks its index; several are combined into a flat index,
    # so each is checked first
    idx_vals = [_index_array(items[i], shape[i], i, wrapped=len(adv_axes) > 1) for i in adv_axes]
    bshape = np.broadcast_shapes(*[_shape(v) for v in idx_vals])
    flat = None
    for v, d in zip(idx_vals, adv_dims):
        flat = v if flat is None else add(multiply(flat, d), v)
    if not _is_traced(flat):
        flat = np.broadcast_to(np.asarray(flat, np.int64), bshape)
    else:
        flat = S.broadcast_to(flat, bshape)
    res = bind(I.take_p, x, flat, axis=0)
    contiguous = adv_axes == list(range(adv_axes[0], adv_axes[-1] + 1))
    if contiguous and adv_axes[0] > 0:
        # numpy keeps adjacent advanced dims in place of the indexed axes
        k, nb = adv_axes[0], len(bshape)
        perm = list(range(nb, nb + k)) + list(range(nb)) + list(range(nb + k, len(_shape(res))))
        res = S.transpose(res, perm)
    return res


# ---------------------------------------------------------------------------------------------
# x[key] = v, as a pure update

def setitem(x, key, value):
    """The value of `x` after numpy's `x[key] = value`, as new IR: the written positions are
    worked out now (the key must not hold traced values), the new values are scattered to
    them and `select` keeps x elsewhere. Repeated positions keep the last write, as numpy."""
    if any(_is_traced(k) for k in (key if isinstance(key, tuple) else (key,))):
        return _setitem_traced(x, key, value)
    positions = np.arange(aval_of(x).size).reshape(_shape(x))[key]  # numpy decides what key selects
    return setitem_positions(x, positions, value)


def setitem_positions(x, positions, value):
    """The value of `x` after writing `value` (broadcast to positions' shape) to the flat
    positions `positions` of x (a view's write lands in its root this way)."""
    shape = _shape(x)
    size = aval_of(x).size
    flat = np.asarray(positions).ravel()
    value = E.cast(asvalue(value), _dtype(x))
    src = ravel(broadcast_to(value, np.shape(positions)))
    if flat.size == 0:
        return x
    targets, first_from_end = np.unique(flat[::-1], return_index=True)
    winners = (len(flat) - 1 - first_from_end).astype(np.int64)  # last write to each target
    # each position gathers the value written to it (no arithmetic: a scatter-add into zeros
    # would turn a written -0.0 into 0.0)
    source = np.zeros(size, np.int64)
    source[targets] = winners
    mask = np.zeros(size, bool)
    mask[targets] = True
    written = bind(I.take_p, src, source, axis=0)
    return S.reshape(E.select(mask, written, ravel(x)), shape)


# ---------------------------------------------------------------------------------------------
# x[i] = v with traced integer indices: a mask compares each axis' position to the index

def _setitem_traced(x, key, value):
    """x[key] = v where key holds traced values: one traced boolean mask, traced integer
    scalars with ints and full slices (a mask compares each axis' position to the index:
    elementwise work that fuses), or any other key with traced index arrays (a scatter)."""
    mask = key[0] if isinstance(key, tuple) and len(key) == 1 else key
    if _is_traced(mask) and _dtype(mask) == np.bool_:
        return _setitem_traced_mask(x, mask, value)
    shape = _shape(x)
    items = _expand_key(key, len(shape))
    if len(items) != len(shape) or any(not _is_scalar_item(k, d) for k, d in zip(items, shape)):
        return _setitem_scatter(x, key, value)
    mask = np.True_
    kept = []
    for axis, (k, d) in enumerate(zip(items, shape)):
        if isinstance(k, slice):
            kept.append(d)
            continue
        at = np.arange(d).reshape((d,) + (1,) * (len(shape) - axis - 1))
        mask = UFUNCS[np.logical_and](mask, UFUNCS[np.equal](at, _index_array(k, d, axis,
                                                                              wrapped=True)))
        kept.append(None)
    value = E.cast(asvalue(value), _dtype(x))
    region = tuple(d for d in kept if d is not None)
    value = broadcast_to(value, region)
    value = S.reshape(value, tuple(1 if d is None else d for d in kept))
    return E.select(mask, value, x)


def _is_scalar_item(k, d) -> bool:
    """An integer, a traced integer scalar, or a full slice: what the mask path handles."""
    if isinstance(k, slice):
        return k.indices(d) == (0, d, 1)
    if k is None or isinstance(k, np.ndarray):
        return False
    return _shape(k) == () if _is_traced(k) else isinstance(k, (int, np.integer))


def _setitem_scatter(x, key, value):
    """x[key] = v with traced index arrays: numpy's getitem rules pick the written positions
    (the same key applied to x's flat positions, bounds checked when the code runs), and a
    scatter writes the values there in numpy's order, a repeated position keeping its last."""
    shape = _shape(x)
    size = aval_of(x).size
    only = key[0] if isinstance(key, tuple) and len(key) == 1 else key
    if len(shape) == 1 and _is_traced(only) and _dtype(only).kind in "iu":
        # the index is the position: the scatter wraps negative entries and checks the rest
        positions = E.cast(only, np.int64)
    else:
        positions = getitem(np.arange(size, dtype=np.int64).reshape(shape), key)
    pshape = _shape(positions)
    value = broadcast_to(E.cast(asvalue(value), _dtype(x)), pshape)
    if int(np.prod(pshape, dtype=np.int64)) == 0:
        return x
    return S.reshape(I.scatter(ravel(x), ravel(positions), ravel(value)), shape)


def count_free_shape(vshape, rest):
    """The shape a value written at a boolean mask's selected elements (each of shape `rest`)
    has once its leading length-1 axis is dropped, when it does not depend on how many the
    mask selects (broadcasting against `rest` alone); None when it does."""
    if len(vshape) == len(rest) + 1 and vshape[0] == 1:
        vshape = vshape[1:]
    if len(vshape) > len(rest) or any(v not in (1, r) for v, r in zip(vshape[::-1], rest[::-1])):
        return None
    return tuple(vshape)


def _setitem_traced_mask(x, mask, value):
    """x[mask] = v for a traced boolean mask over x's leading axes: how many elements the
    mask selects is not known, but a v that does not depend on it (a scalar, or one value for
    every selected row) writes the same as np.where(mask, v, x)."""
    shape, mshape = _shape(x), _shape(mask)
    for axis, (d, m) in enumerate(zip(shape, mshape)):
        if d != m:
            raise IndexError(f"boolean index did not match indexed array along axis {axis}; "
                             f"size of axis is {d} but size of corresponding boolean axis is {m}")
    if len(mshape) > len(shape):
        raise IndexError(f"too many indices for array: array is {len(shape)}-dimensional, but "
                         f"{len(mshape)} were indexed")
    rest = shape[len(mshape):]
    value = E.cast(asvalue(value), _dtype(x))
    vshape = count_free_shape(_shape(value), rest)
    if vshape is None:
        raise NotImplementedError(
            f"x[mask] = v with a traced mask needs a v that does not depend on how many "
            f"elements the mask selects: a scalar, or one value per selected element of shape "
            f"{rest} (got shape {_shape(value)}); otherwise build the result with "
            f"np.where(mask, v, x)")
    if vshape != _shape(value):
        value = S.reshape(value, vshape)
    value = broadcast_to(value, rest)
    return E.select(S.reshape(mask, mshape + (1,) * len(rest)), value, x)


# ---------------------------------------------------------------------------------------------
# numpy's index-array functions

@implements(np.take_along_axis)
def take_along_axis(arr, indices, axis=-1):
    arr = asvalue(arr)
    if axis is None:
        arr, axis = ravel(arr), 0
    shape = _shape(arr)
    axis = normalize_axes(axis, len(shape))[0]
    if len(_shape(indices)) != len(shape):
        raise ValueError("`indices` and `arr` must have the same number of dimensions")
    if not _is_traced(indices):
        return remap(arr, lambda p: np.take_along_axis(p, np.asarray(indices), axis))
    return gather_along_axis(arr, _index_array(indices, shape[axis], axis, wrapped=True), axis)


def gather_along_axis(arr, indices, axis):
    """take_along_axis by traced int64 `indices` already in [0, arr.shape[axis]) (argsort's,
    or checked ones), so no check runs: one gather."""
    shape = _shape(arr)
    # flat position = (positions with this axis' coordinate 0) + index * stride
    out_shape = np.broadcast_shapes(shape[:axis] + (1,) + shape[axis + 1:], _shape(indices))
    stride = int(np.prod(shape[axis + 1:], dtype=np.int64))
    base = np.arange(aval_of(arr).size).reshape(shape)
    base = np.take(base, [0], axis=axis)
    flat = add(multiply(indices, stride), base) if stride != 1 else add(indices, base)
    flat = S.broadcast_to(flat, out_shape)
    return S.reshape(bind(I.take_p, ravel(arr), ravel(flat), axis=0), out_shape)


@implements(np.put_along_axis)
def put_along_axis(arr, indices, values, axis):
    """In place, as numpy: `arr` (a traced value) is rebound to the updated array."""
    if not _is_traced(arr):
        raise NotImplementedError(numpy_target("np.put_along_axis"))
    shape = _shape(arr)
    pos = np.arange(aval_of(arr).size).reshape(shape)
    if axis is None:
        pos, axis = pos.ravel(), 0
    if _is_traced(indices):  # the positions are traced: scatter, then rebind arr to the result
        targets = take_along_axis(pos, indices, axis)
        value = broadcast_to(E.cast(asvalue(values), _dtype(arr)), _shape(targets))
        arr[...] = S.reshape(I.scatter(ravel(arr), ravel(targets), ravel(value)), shape)
        return
    targets = np.take_along_axis(pos, np.asarray(indices), axis)
    arr[np.unravel_index(targets, shape)] = broadcast_to(asvalue(values), targets.shape)


def _written(np_name, a, where):
    """The flat positions numpy's in-place writer `np_name` touches (a constant `where`)."""
    if not _is_traced(a):
        raise NotImplementedError(numpy_target(np_name))
    if _is_traced(where):
        raise NotImplementedError(f"{np_name} with traced positions or mask is not supported; "
                                  f"use np.where(mask, v, a)")
    return aval_of(a).size


def _cycled(values, n):
    """numpy's values for n written slots: flattened and repeated as needed (np.resize)."""
    values = asvalue(values)
    size = aval_of(values).size
    if not _is_traced(values):
        return np.resize(np.ravel(values), n)
    return gather(values, np.arange(n) % size) if size else values


def _write_flat(a, flat_positions, values):
    """a.flat[positions] = values in place, in order (a repeated position keeps the last)."""
    last = {int(p): k for k, p in enumerate(flat_positions)}
    if not last:
        return
    pos, order = np.fromiter(last, np.int64), np.fromiter(last.values(), np.int64)
    if _is_traced(values):
        values = gather(values, order)
    else:
        values = np.asarray(values)[order]
    a[np.unravel_index(pos, _shape(a))] = values


@implements(np.put)
def put(a, ind, v, mode="raise"):
    """In place, as numpy: a.flat[ind] = v (v repeated as needed)."""
    size = _written("np.put", a, False)
    if _is_traced(ind):
        _put_traced(a, ind, v, mode, size)
        return
    ind = np.asarray(ind, np.int64).ravel()
    if mode == "raise":
        bad = ind[(ind >= size) | (ind < -size)]
        if bad.size:
            raise IndexError(f"index {bad[0]} is out of bounds for axis 0 with size {size}")
    elif mode == "clip":
        ind = np.clip(ind, 0, size - 1)
    elif mode != "wrap":
        raise ValueError(f"clipmode not understood: {mode!r} (use 'raise', 'wrap' or 'clip')")
    if ind.size and aval_of(asvalue(v)).size:
        _write_flat(a, ind % size, _cycled(v, ind.size))


def _put_traced(a, ind, v, mode, size):
    """np.put with traced indices: the positions are computed (mode 'raise' checks them when
    the code runs, as a gather does), and a scatter writes v there in order."""
    ind = ravel(asvalue(ind))
    if _dtype(ind).kind not in "iu":
        raise TypeError(f"Cannot cast array data from dtype('{np.dtype(_dtype(ind))}') to "
                        f"dtype('int64') according to the rule 'safe'")
    n = _shape(ind)[0]
    if not n or not aval_of(asvalue(v)).size:
        return
    ind = E.cast(ind, np.int64)
    if mode == "raise":
        ind = getitem(np.arange(size, dtype=np.int64), ind)
    elif mode == "clip":
        ind = UFUNCS[np.minimum](UFUNCS[np.maximum](ind, np.int64(0)), np.int64(size - 1))
    elif mode == "wrap":
        ind = UFUNCS[np.remainder](ind, np.int64(size))
    else:
        raise ValueError(f"clipmode not understood: {mode!r} (use 'raise', 'wrap' or 'clip')")
    values = E.cast(ravel(asvalue(_cycled(v, n))), _dtype(a))
    a[...] = S.reshape(I.scatter(ravel(a), ind, values), _shape(a))


@implements(np.place)
def place(arr, mask, vals):
    """In place, as numpy: the True positions of a constant mask take vals in turn."""
    _written("np.place", arr, mask)
    slots = np.flatnonzero(np.asarray(mask))
    if slots.size and not aval_of(asvalue(vals)).size:
        raise ValueError("Cannot insert from an empty array!")
    if slots.size:
        _write_flat(arr, slots, _cycled(vals, slots.size))


@implements(np.putmask)
def putmask(a, mask, values):
    """In place, as numpy: a.flat[i] = values.flat[i % values.size] where the mask is True
    (a traced mask selects, position by position: no count of True entries is needed)."""
    size = _written("np.putmask", a, False)
    if _is_traced(mask):
        if _dtype(mask) != np.bool_ or _shape(mask) != _shape(a):
            raise ValueError("putmask: mask and data must be the same size")
        if aval_of(asvalue(values)).size:
            vals = S.reshape(E.cast(asvalue(_cycled(values, size)), _dtype(a)), _shape(a))
            a[...] = E.select(mask, vals, a)
        return
    mask = np.asarray(mask, bool)
    if mask.shape != _shape(a):
        raise ValueError("putmask: mask and data must be the same size")
    slots = np.flatnonzero(mask)
    if slots.size and aval_of(asvalue(values)).size:
        _write_flat(a, slots, gather(_cycled(values, size), slots)
                    if _is_traced(asvalue(values)) else _cycled(values, size)[slots])


@implements(np.copyto)
def copyto(dst, src, casting="same_kind", where=True):
    """In place, as numpy: dst takes src (broadcast) where `where` is True (a constant or a
    traced mask: the write is a select either way, so no position needs to be known)."""
    _written("np.copyto", dst, False)
    src, where = asvalue(src), asvalue(where)
    if where is not True and _dtype(where) != np.bool_:
        raise TypeError(f"Cannot cast array data from dtype('{np.dtype(_dtype(where))}') to "
                        f"dtype('bool') according to the rule 'safe'")
    if not np.can_cast(_dtype(src), _dtype(dst), casting):
        raise TypeError(f"Cannot cast array data from dtype('{np.dtype(_dtype(src))}') to "
                        f"dtype('{np.dtype(_dtype(dst))}') according to the rule '{casting}'")
    src = broadcast_to(E.cast(src, _dtype(dst)), _shape(dst))
    dst[...] = src if where is True else E.select(broadcast_to(where, _shape(dst)), src, dst)


@implements(np.select)
def select(condlist, choicelist, default=0):
    if len(condlist) != len(choicelist):
        raise ValueError("list of cases must be same length as list of conditions")
    out = asvalue(default)
    for c, v in reversed(list(zip(condlist, choicelist))):
        c = asvalue(c)
        if _dtype(c) != np.bool_:
            raise TypeError("invalid entry in condlist: should be boolean ndarray")
        out = E.select(c, asvalue(v), out)
    return out


@implements(np.choose, defaults_only=("out", "mode"))
def choose(a, choices, out=None, mode="raise"):
    a = asvalue(a)
    choices = [asvalue(c) for c in choices]
    if not _is_traced(a):
        arr = np.asarray(a)
        if arr.size and (arr.min() < 0 or arr.max() >= len(choices)):
            raise ValueError("invalid entry in choice array")
    out = choices[-1]
    for k in range(len(choices) - 2, -1, -1):
        out = E.select(UFUNCS[np.equal](a, k), choices[k], out)
    return out


def _static_condition(name, condition):
    if _is_traced(condition):
        raise NotImplementedError(f"np.{name} with a traced condition has a data-dependent "
                                  f"shape; use np.where(condition, x, 0) instead")
    return np.asarray(condition)


@implements(np.compress, defaults_only=("out",))
def compress(condition, a, axis=None, out=None):
    cond = _static_condition("compress", condition)
    return remap(a, lambda p: np.compress(cond, p, axis))


@implements(np.extract)
def extract(condition, arr):
    cond = _static_condition("extract", condition)
    return remap(arr, lambda p: np.extract(cond, p))


@implements(np.piecewise)
def piecewise(x, condlist, funclist):
    """numpy's piecewise; each callable receives all of x (not x[cond]: shapes stay static),
    so it must act elementwise."""
    x = asvalue(x)
    if not isinstance(condlist, (list, tuple)) or (condlist and not isinstance(
            condlist[0], (list, tuple)) and len(_shape(asvalue(condlist[0]))) == 0
            and len(_shape(x)) > 0):
        condlist = [condlist]
    conds = [asvalue(c) for c in condlist]
    n = len(conds)
    if len(funclist) not in (n, n + 1):
        raise ValueError(f"with {n} condition(s), either {n} or {n + 1} functions are expected")

    def value(f):
        return f(x) if callable(f) else f

    out = value(funclist[n]) if len(funclist) == n + 1 else np.zeros((), _dtype(x))[()]
    if len(funclist) == n + 1:  # the last function applies where no condition holds
        other = conds[0]
        for c in conds[1:]:
            other = UFUNCS[np.logical_or](other, c)
        out = E.select(other, np.zeros((), _dtype(x))[()], out)
    for c, f in zip(conds, funclist[:n]):
        out = E.select(c, E.cast(asvalue(value(f)), _dtype(x)), out)
    return broadcast_to(E.cast(asvalue(out), _dtype(x)), _shape(x))
