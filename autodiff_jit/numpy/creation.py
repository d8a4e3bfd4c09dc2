"""numpy's array creation on traced values: zeros_like/ones_like/full_like/empty_like, copy,
astype, linspace/logspace/geomspace (traced endpoints), meshgrid, and `array`/`asarray` for
lists of traced values (numpy's own np.array cannot see them: see docs/numpy.md).

`order=` and `subok=` only choose a memory layout or an array subclass, never values, so they
are accepted; `device=` is accepted at "cpu"/None only.

The *_like functions of a traced value give a traced constant, so that numpy's idiom
`y = np.zeros_like(x); y[0] = traced` records a pure update instead of failing.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..ir import is_float
from ..primitives import elementwise as E, shape as S
from ..primitives import indexing as I
from ._base import _dtype, _is_traced, _shape, asvalue, implements
from .shape import broadcast_to, concatenate, moveaxis, reshape
from .ufuncs import add, divide, multiply, power


def _like_shape(x, shape):
    if shape is None:
        return _shape(x)
    return (int(shape),) if isinstance(shape, numbers.Integral) else tuple(shape)


def _constant_like(x, shape, value, dtype):
    """np.full(shape, value, dtype), recorded in x's trace when x is traced (compiled and
    interpret modes), a plain array otherwise (tape mode, constants)."""
    ctx = getattr(x, "_adj_context", None)
    if ctx is None or not hasattr(ctx, "eqns"):
        return np.full(shape, value, dtype)
    return ctx.process(S.broadcast_to_p, (np.asarray(value, dtype)[()],), {"shape": tuple(shape)})


@implements(np.zeros_like, defaults_only=("device",))
def zeros_like(x, dtype=None, order="K", subok=True, shape=None, *, device=None):
    return _constant_like(x, _like_shape(x, shape), 0, dtype or _dtype(x))


@implements(np.ones_like, defaults_only=("device",))
def ones_like(x, dtype=None, order="K", subok=True, shape=None, *, device=None):
    return _constant_like(x, _like_shape(x, shape), 1, dtype or _dtype(x))


@implements(np.empty_like, defaults_only=("device",))
def empty_like(x, dtype=None, order="K", subok=True, shape=None, *, device=None):
    return _constant_like(x, _like_shape(x, shape), 0, dtype or _dtype(x))


@implements(np.full_like, defaults_only=("device",))
def full_like(x, fill_value, dtype=None, order="K", subok=True, shape=None, *, device=None):
    shape, dtype = _like_shape(x, shape), np.dtype(dtype or _dtype(x))
    fill_value = asvalue(fill_value)
    if _is_traced(fill_value):
        return broadcast_to(E.cast(fill_value, dtype), shape)
    return _constant_like(x, shape, fill_value, dtype)


@implements(np.full, defaults_only=("device", "like"))
def full(shape, fill_value, dtype=None, order="C", *, device=None, like=None):
    """np.full with a traced fill value (numpy/lists.py routes np.full to this then): its
    dtype unless dtype= is given, broadcast to shape as numpy's np.copyto does."""
    fill_value = asvalue(fill_value)
    if not _is_traced(fill_value):
        return np.full(shape, fill_value, dtype, order)
    shape = (int(shape),) if isinstance(shape, numbers.Integral) else tuple(shape)
    return broadcast_to(E.cast(fill_value, np.dtype(dtype or _dtype(fill_value))), shape)


@implements(np.copy)
def copy(x, order="K", subok=False):
    return x


@implements(np.astype, defaults_only=("device",)) if hasattr(np, "astype") else (lambda f: f)
def astype(x, dtype, /, *, copy=True, device=None):
    return E.cast(x, dtype)


def _refuse_like(like):
    if like is not None:
        raise NotImplementedError("np.array(..., like=) is not supported on traced values; "
                                  "leave it out")


@implements()  # not numpy-dispatched (numpy/lists.py routes np.array): declares its keywords
def array(obj, dtype=None, *, copy=True, order="K", subok=False, ndmin=0, like=None):
    """np.array for (nested) lists and tuples holding traced values, which numpy's own np.array
    cannot see (it asks each element for its value): numpy's dtype and shape rules, ragged
    lists refused as numpy does. Plain values give np.array(obj). `order`/`subok` choose only
    a memory layout or a subclass; copy=False is refused where numpy would have to copy."""
    _refuse_like(like)
    v = asvalue(obj, dtype)
    if not _is_traced(v):
        return np.array(v, dtype, copy=copy, order=order, subok=subok, ndmin=ndmin)
    if copy is False and (isinstance(obj, (list, tuple)) or
                          dtype is not None and np.dtype(dtype) != _dtype(v)):
        raise ValueError("Unable to avoid copy while creating an array as requested.")
    if dtype is not None:
        v = E.cast(v, dtype)
    nd = len(_shape(v))
    if nd < ndmin:
        new_shape = (1,) * (ndmin - nd) + _shape(v)
        # copy=False / None: numpy hands back a view of obj (writes to it reach obj)
        v = v.reshape(new_shape) if v is obj and not copy and hasattr(v, "_track_view") \
            else reshape(v, new_shape)
    elif v is obj and copy and hasattr(v, "_alias"):
        v = v._alias()  # np.array copies: a new array object (a later y[k] = v leaves x alone)
    return v            # copy=False / None: the same array, as numpy (writes are shared)


@implements()
def asarray(a, dtype=None, order=None, *, device=None, copy=None, like=None):
    """np.asarray (also np.asanyarray while lists are routed: it differs only in subclass)."""
    _refuse_like(like)
    if device not in (None, "cpu"):
        raise NotImplementedError("np.asarray(..., device=) is supported for 'cpu' only")
    v = asvalue(a, dtype)
    if not _is_traced(v):
        return np.asarray(v, dtype, copy=copy)
    if copy is False and (isinstance(a, (list, tuple)) or
                          dtype is not None and np.dtype(dtype) != _dtype(v)):
        raise ValueError("Unable to avoid copy while creating an array as requested.")
    if dtype is not None:
        v = E.cast(v, dtype)
    if v is a and copy and hasattr(v, "_alias"):
        v = v._alias()   # copy=True: a new array object, as numpy (y[k] = v leaves a alone)
    elif v is a and order in ("C", "F") and hasattr(v, "_track_view"):
        v = _layout_copy(v, lambda lay: np.asarray(lay, order=order))
    return v


def _layout_copy(v, np_op):
    """v itself where numpy's np_op hands back (a view of) the array, a copy where numpy
    copies to change the layout: numpy decides, on v's layout stand-in."""
    return v._track_view(v._alias(), np_op)


def ascontiguousarray(a, dtype=None, *, like=None):
    """np.ascontiguousarray while lists are routed: a copy unless a is C-contiguous."""
    v = asarray(a, dtype, like=like)
    return _layout_copy(v, np.ascontiguousarray) if v is a and hasattr(v, "_track_view") else v


def asfortranarray(a, dtype=None, *, like=None):
    """np.asfortranarray while lists are routed: a copy unless a is Fortran-contiguous."""
    v = asarray(a, dtype, like=like)
    return _layout_copy(v, np.asfortranarray) if v is a and hasattr(v, "_track_view") else v


# ---------------------------------------------------------------------------------------------
# ranges with traced endpoints (numpy's algorithms, so the values match numpy's)

def _num(num):
    if _is_traced(num):
        raise NotImplementedError("linspace's num must be a constant: it is the output's length")
    num = int(num)
    if num < 0:
        raise ValueError(f"Number of samples, {num}, must be non-negative.")
    return num


@implements(np.linspace, defaults_only=("device",))
def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, *,
             device=None):
    num = _num(num)
    start, stop = E.promote(asvalue(start), asvalue(stop), to_float=True)
    div = (num - 1) if endpoint else num
    delta = add(stop, multiply(start, -1.0))
    nd = len(_shape(delta))
    # numpy computes in result_type(start, stop, float(num)): float32 endpoints stay float32
    y = np.arange(num, dtype=_dtype(start)).reshape((-1,) + (1,) * nd)
    if div > 0:
        step = divide(delta, float(div))
        y = add(multiply(y, step), start)
    else:
        step = np.nan
        y = add(multiply(y, delta), start)
    y = broadcast_to(y, (num,) + _shape(delta))
    if endpoint and num > 1:
        last = reshape(broadcast_to(stop, _shape(delta)), (1,) + _shape(delta))
        y = concatenate([I.slice_along(y, 0, 0, num - 1), E.cast(last, _dtype(y))], 0)
    if axis != 0:
        y = moveaxis(y, 0, axis)
    if dtype is not None:
        dtype = np.dtype(dtype)
        if not is_float(dtype):
            y = E.cast(np.floor(y), dtype)
        else:
            y = E.cast(y, dtype)
    return (y, step) if retstep else y


@implements(np.logspace)
def logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    y = linspace(start, stop, num, endpoint, axis=axis)
    y = power(base, y)
    return y if dtype is None else E.cast(y, dtype)


@implements(np.geomspace)
def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    num = _num(num)
    start, stop = E.promote(asvalue(start), asvalue(stop), to_float=True)
    # the sign is constant almost everywhere; NaN (numpy's np.sign) for a NaN or zero start
    sign = np.sign(start) if not _is_traced(start) else \
        E.select(start < 0, -1.0, E.select(start > 0, 1.0, np.nan))
    start, stop = divide(start, sign), divide(stop, sign)
    res = logspace(np.log10(start), np.log10(stop), num, endpoint, 10.0)
    shape = _shape(res)
    parts = []
    if num > 0:
        parts.append(reshape(broadcast_to(start, shape[1:]), (1,) + shape[1:]))
        mid_end = num - 1 if (num > 1 and endpoint) else num
        if mid_end > 1:
            parts.append(I.slice_along(res, 0, 1, mid_end - 1))
        if num > 1 and endpoint:
            parts.append(reshape(broadcast_to(stop, shape[1:]), (1,) + shape[1:]))
        elif num > 1:
            parts.append(I.slice_along(res, 0, num - 1, 1))
        res = concatenate([E.cast(p, _dtype(res)) for p in parts], 0)
    res = multiply(res, sign)
    if axis != 0:
        res = moveaxis(res, 0, axis)
    return res if dtype is None else E.cast(res, dtype)


@implements(np.meshgrid)
def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    xs = [asvalue(x) for x in xi]
    n = len(xs)
    shapes = [(1,) * i + (-1,) + (1,) * (n - i - 1) for i in range(n)]
    out = [reshape(x, s) for x, s in zip(xs, shapes)]
    if indexing == "xy" and n > 1:
        out = [reshape(o, (1, -1) + (1,) * (n - 2)) if i == 0 else
               reshape(o, (-1, 1) + (1,) * (n - 2)) if i == 1 else o for i, o in enumerate(out)]
    if sparse:
        return tuple(out)
    full = np.broadcast_shapes(*[_shape(o) for o in out])
    return tuple(broadcast_to(o, full) for o in out)
