"""reshape, broadcast_to and reduce_sum: the primitives every other family's rules use to fit
a cotangent or tangent to an input's shape (broadcast_to and reduce_sum are each other's
transpose), with the helpers `unbroadcast` (sum a broadcast cotangent back down) and
`expand_back` (broadcast a reduced value back up). This family imports only core (and
batching.py, which imports only core); elementwise,
shape and reductions re-export what they used to define here."""
from __future__ import annotations

import math

import numpy as np

from ..ir import AVal
from .core import Primitive, aval_of, bind, register
from . import batching as B

# numpy names bound at import: numpy has a module __getattr__, so Python 3.11 never
# specializes an `np.name` lookup (~40 ns each, several per tape node)
_ND = np.ndarray
_GENERIC = np.generic
_NP_ADD = np.add
_NP_EMPTY = np.empty

# numpy's scalar types captured at import: while a trace runs, numpy/lists.py routes the
# np.float64/np.float32 attributes (subclasses whose constructor casts traced values)
_F64, _F32 = np.float64, np.float32


def _reshape_rule(x, *, shape):
    if math.prod(shape) != x.size:
        raise ValueError(f"reshape: cannot reshape {x.shape} ({x.size} elements) into {shape}")
    return AVal(shape, x.dtype)


def _reshape_vjp(g, out, x, *, shape):
    if type(g) is _ND:   # tape backward: numpy's reshape, without bind
        return (g.reshape(shape_of(x)),)
    return (reshape(g, aval_of(x).shape),)


reshape_p = register(Primitive(
    "reshape", _reshape_rule, lambda x, *, shape: np.reshape(x, shape),
    vjp=_reshape_vjp,
    jvp=lambda t, out, x, *, shape: None if t[0] is None else reshape(t[0], shape),
    torch_name="ViewBackward0", family="shape"))


def _broadcast_rule(x, *, shape):
    try:
        if np.broadcast_shapes(x.shape, shape) != tuple(shape):
            raise ValueError
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast {x.shape} to {shape}") from None
    return AVal(shape, x.dtype)


def _broadcast_vjp(g, out, x, *, shape):
    return (unbroadcast(g, aval_of(x).shape),)


broadcast_to_p = register(Primitive(
    "broadcast_to", _broadcast_rule,
    lambda x, *, shape: np.broadcast_to(x, shape),
    vjp=_broadcast_vjp,
    jvp=lambda t, out, x, *, shape: None if t[0] is None else broadcast_to(t[0], shape),
    torch_name="ExpandBackward0", family="shape"))


# ---------------------------------------------------------------------------------------------
# reduce_sum, broadcast_to's transpose

def _check_axes(name, x, axes):
    if not isinstance(axes, tuple) or any(not 0 <= a < x.ndim for a in axes) or \
            list(axes) != sorted(set(axes)):
        raise ValueError(f"{name}: axes must be sorted distinct axes of a rank-{x.ndim} input, "
                         f"got {axes!r}")


def _reduce_rule(name, dtype=None):
    def rule(x, *, axes):
        _check_axes(name, x, axes)
        return AVal(tuple(d for i, d in enumerate(x.shape) if i not in axes), dtype or x.dtype)
    return rule


_FRESH_MAX = 1 << 14  # plain-numpy expand_back: up to this many elements, a fresh array


def expand_back(g, in_shape, axes):
    """Broadcast a reduced value back over the axes it was reduced on."""
    tg = type(g)
    if axes and (tg is _ND or isinstance(g, _GENERIC)):
        # plain numpy (tape backward): nothing to record, so no bind. Filling a fresh array is
        # ~10x cheaper than np.broadcast_to's Python layer for small results; large ones stay a
        # read-only broadcast view (no copy)
        in_shape = tuple(in_shape)
        if tg is not _ND or not g.ndim:
            # every axis was reduced (a sum to a scalar): one value fills the array
            if math.prod(in_shape) <= _FRESH_MAX:
                res = _NP_EMPTY(in_shape, g.dtype)
                res.fill(g)
                return res
            return np.broadcast_to(g, in_shape)
        kept = tuple(1 if i in axes else d for i, d in enumerate(in_shape))
        if g.shape != kept:
            g = g.reshape(kept)
        if math.prod(in_shape) <= _FRESH_MAX:
            res = _NP_EMPTY(in_shape, g.dtype)
            res[...] = g
            return res
        return np.broadcast_to(g, in_shape)
    kept = tuple(1 if i in axes else d for i, d in enumerate(in_shape))
    return broadcast_to(reshape(g, kept), tuple(in_shape))


def _sum_vjp(g, out, x, *, axes):
    return (expand_back(g, shape_of(x), axes),)


def _linear_jvp(prim):
    def jvp(t, out, x, **params):
        return None if t[0] is None else bind(prim, t[0], **params)
    return jvp


def _sum_impl(x, *, axes):
    """np.sum over `axes`. Summing the leading axes of a tall, narrow C-contiguous array (the
    bias gradient of X @ W + b: (n, 2) -> (2,)) is slow in numpy (an inner loop as long as the
    kept size, ~6x a transposed copy plus contiguous pairwise sums), so that case transposes
    first; the result is at least as accurate (pairwise instead of sequential accumulation).
    A short axis with little behind it (rows of 3-vectors summed, an (n, k, 2) array summed
    over k) is summed as slices added in numpy's own order: the same to the bit, 3-10x faster."""
    if type(x) is _ND and axes:
        dt = x.dtype
        if x.size >= 512 and dt.kind == "f":
            nd = x.ndim
            if axes[-1] == len(axes) - 1 and len(axes) < nd and x.flags.c_contiguous:
                kept = x.shape[len(axes):]
                m = math.prod(kept)
                n = x.size // m if m else 0
                if m <= 16 and n >= 512:
                    return _NP_ADD.reduce(np.ascontiguousarray(x.reshape(n, m).T),
                                         axis=1).reshape(kept)
            elif len(axes) == 1 and _SLICE_SUM_EXACT and x.size >= 1024:
                ax = axes[0]
                k = x.shape[ax]
                if ax == nd - 1 and 2 <= k < 8 or \
                        0 < ax < nd - 1 and 2 <= k <= 16 and math.prod(x.shape[ax + 1:]) <= 8:
                    return _sum_by_slices(x, ax)
        # what np.sum(x, axis, dtype) calls for an ndarray, without its Python layer (~2 us)
        return _NP_ADD.reduce(x, axis=axes, dtype=dt)
    return np.sum(x, axis=axes, dtype=np.result_type(x))  # keeps x's dtype (int32 stays)


def _sum_by_slices(x, axis):
    """np.sum(x, axis) as the slices along `axis` added one after another. numpy adds a short
    contiguous row (fewer than 8 elements) and a non-contiguous axis left to right, so this
    is its result to the bit, without its reduction loop, which is slow when the inner loop
    it runs is a few elements long."""
    lead = (slice(None),) * axis
    out = _NP_ADD(x[lead + (0,)], x[lead + (1,)])
    for j in range(2, x.shape[axis]):
        _NP_ADD(out, x[lead + (j,)], out=out)
    # numpy's sum starts from +0.0, so a row of -0.0s sums to +0.0 (x + 0.0 changes nothing
    # else, nan and infinities included)
    return _NP_ADD(out, 0.0, out=out)


def _slice_sum_is_exact():
    """Asked once at import: do slice adds reproduce the installed numpy's sums over a short
    last axis and over a middle axis bit for bit? (If a numpy ever sums these in another
    order, reduce_sum keeps numpy's reduction.)"""
    probe = np.sin(np.arange(16 * 64, dtype=np.float64) * 1.7) * \
        np.exp(np.cos(np.arange(16 * 64) * 0.3) * 20)
    for dt in (np.float64, np.float32):
        for m in range(2, 17):
            for shape, axis in (((64, m), 1), ((32, m, 2), 1)):
                if axis == len(shape) - 1 and m >= 8:
                    continue
                x = probe[:math.prod(shape)].astype(dt).reshape(shape)
                x[0] = -0.0
                x[1, :2] = (0.0, -0.0)
                got, want = _sum_by_slices(x, axis), np.sum(x, axis=axis)
                if not (np.array_equal(got, want) and np.array_equal(np.signbit(got),
                                                                     np.signbit(want))):
                    return False
    return True


_SLICE_SUM_EXACT = _slice_sum_is_exact()


reduce_sum_p = register(Primitive("reduce_sum", _reduce_rule("reduce_sum"), _sum_impl,
                                  vjp=_sum_vjp, torch_name="SumBackward0", family="reduce"))
reduce_sum_p.jvp = _linear_jvp(reduce_sum_p)
reduce_sum_p.batch = B.reduce_axes  # (reshape's and broadcast_to's need transpose: batch_rules)


# ---------------------------------------------------------------------------------------------
# fitting values to shapes

def shape_of(x) -> tuple:
    """The shape of any value; fast for the arrays and scalars tape mode passes around."""
    t = type(x)
    if t is _ND:
        return x.shape
    if t is float or t is _F64 or t is _F32 or t is int:
        return ()
    return aval_of(x).shape


_LEADING = [tuple(range(n)) for n in range(8)]


def unbroadcast(g, shape):
    """Sum a cotangent of a broadcast result back down to an input's `shape`."""
    if g is None:
        return None
    if type(g) is _ND:   # plain numpy (tape backward): no bind, nothing to record
        gshape = g.shape
        if gshape == shape:
            return g
        shape = tuple(shape)
        lead = len(gshape) - len(shape)
        axes = _LEADING[lead] if lead < 8 else tuple(range(lead))
        if 1 in shape:
            axes += tuple(i + lead for i, d in enumerate(shape)
                          if d == 1 and gshape[i + lead] != 1)
        if not axes:
            out = g
        elif g.size < 512 and g.dtype.kind == "f":
            out = _NP_ADD.reduce(g, axis=axes, dtype=g.dtype)   # _sum_impl's small case
        else:
            out = _sum_impl(g, axes=axes)
        if type(out) is _ND:
            return out if out.shape == shape else out.reshape(shape)
        return np.reshape(out, shape) if shape else out  # (a scalar: every axis was summed)
    gshape = shape_of(g)
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, d in enumerate(shape)
                                      if d == 1 and gshape[i + lead] != 1)
    out = reduce_sum(g, axes) if axes else g
    return reshape(out, tuple(shape))


def reshape(x, shape):
    shape = tuple(int(d) for d in shape)
    if aval_of(x).shape == shape:
        return x
    return bind(reshape_p, x, shape=shape)


def broadcast_to(x, shape):
    shape = tuple(int(d) for d in shape)
    if aval_of(x).shape == shape:
        return x
    return bind(broadcast_to_p, x, shape=shape)


def reduce_sum(x, axes):
    return bind(reduce_sum_p, x, axes=tuple(axes))
