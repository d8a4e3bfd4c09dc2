"""numpy's shape functions (reshape, transpose, concatenate, stack, flip, diff, ...) on traced
values and tape Tensors."""
from __future__ import annotations

import numbers
import operator

import numpy as np

from ..primitives import aval_of
from ..primitives import indexing as I, shape as S
from ._base import UFUNCS, _shape, asvalue, check_axis, implements, normalize_axes
from ..primitives import elementwise as E
from .ufuncs import subtract

def _resolve_shape(shape, size):
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    shape = [int(d) for d in shape]
    if shape.count(-1) > 1:
        raise ValueError("can only specify one unknown dimension")
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape array of size {size} into shape {tuple(shape)}")
        shape[shape.index(-1)] = size // known
    return tuple(shape)


@implements(np.reshape, defaults_only=("copy",))
def reshape(x, /, shape=None, order="C", *, newshape=None, copy=None):
    if shape is None:
        if newshape is None:
            raise TypeError("reshape() missing the required argument 'shape'")
        shape = newshape
    if order not in ("C", "F"):
        raise NotImplementedError(
            f"reshape/ravel/flatten with order={order!r} follows the array's memory layout, "
            f"which traced values do not have; use order='C' or order='F'")
    x = asvalue(x)
    shape = _resolve_shape(shape, aval_of(x).size)
    if order == "F":   # first index fastest on both sides: reverse the axes around a C reshape
        return transpose(S.reshape(transpose(x), shape[::-1]))
    return S.reshape(x, shape)


@implements(np.ravel)
def ravel(x, order="C"):
    return reshape(x, (-1,), order)


@implements(np.transpose)
def transpose(x, axes=None):
    x = asvalue(x)
    nd = len(_shape(x))
    if axes is None:
        return S.transpose(x, tuple(reversed(range(nd))))
    axes = (axes,) if isinstance(axes, numbers.Integral) else tuple(axes)
    if len(axes) != nd:
        raise ValueError("axes don't match array")
    perm = []
    for a in axes:   # numpy's checks: each axis in range, none repeated
        a = operator.index(a)
        if not -nd <= a < nd:
            raise np.exceptions.AxisError(a, nd)
        perm.append(a % nd)
    if len(set(perm)) != nd:
        raise ValueError("repeated axis in transpose")
    return S.transpose(x, tuple(perm))


@implements(np.swapaxes)
def swapaxes(x, axis1, axis2):
    nd = len(_shape(x))
    a1, a2 = check_axis(axis1, nd, "axis1"), check_axis(axis2, nd, "axis2")
    perm = list(range(nd))
    perm[a1], perm[a2] = perm[a2], perm[a1]
    return S.transpose(x, perm)


@implements(np.moveaxis)
def moveaxis(x, source, destination):
    nd = len(_shape(x))

    def axes(v, what):
        out = [check_axis(a, nd, what) for a in
               ((v,) if isinstance(v, numbers.Integral) else v)]
        if len(set(out)) != len(out):
            raise ValueError(f"repeated axis in `{what}` argument")
        return out
    src, dst = axes(source, "source"), axes(destination, "destination")
    if len(src) != len(dst):
        raise ValueError("`source` and `destination` arguments must have the same number of "
                         "elements")
    order = [a for a in range(nd) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return S.transpose(x, order)


@implements(np.expand_dims)
def expand_dims(x, axis):
    shape = list(_shape(x))
    axes = (axis,) if isinstance(axis, numbers.Integral) else axis
    nd = len(shape) + len(axes)
    where = [check_axis(a, nd) for a in axes]
    if len(set(where)) != len(where):
        raise ValueError("repeated axis")
    for a in sorted(where):
        shape.insert(a, 1)
    return S.reshape(x, shape)


@implements(np.squeeze)
def squeeze(x, axis=None):
    shape = _shape(x)
    if axis is None:
        axes = [i for i, d in enumerate(shape) if d == 1]
    else:
        axes = normalize_axes(axis, len(shape))
        for a in axes:
            if shape[a] != 1:
                raise ValueError("cannot select an axis to squeeze out which has size not equal "
                                 "to one")
    return S.reshape(x, [d for i, d in enumerate(shape) if i not in axes])


@implements(np.broadcast_to)
def broadcast_to(x, shape, subok=False):
    return S.broadcast_to(asvalue(x), _resolve_shape(shape, 0) if -1 not in np.atleast_1d(shape)
                          else shape)


@implements(np.atleast_1d)
def atleast_1d(*arys):
    out = [reshape(a, (1,)) if len(_shape(a)) == 0 else a for a in map(asvalue, arys)]
    return out[0] if len(out) == 1 else tuple(out)


def _common(values):
    values = [asvalue(v) for v in values]
    return E.promote(*values)


_JOIN_DEFAULTS = ("out", "dtype", "casting")


@implements(np.concatenate, defaults_only=_JOIN_DEFAULTS)
def concatenate(values, axis=0, out=None, *, dtype=None, casting="same_kind"):
    values = _common(values)
    if axis is None:
        values, axis = [ravel(v) for v in values], 0
    return S.concatenate(values, normalize_axes(axis, len(_shape(values[0])))[0])


@implements(np.stack, defaults_only=_JOIN_DEFAULTS)
def stack(values, axis=0, out=None, *, dtype=None, casting="same_kind"):
    values = _common(values)
    shapes = {_shape(v) for v in values}
    if len(shapes) != 1:
        raise ValueError(f"all input arrays must have the same shape, got {sorted(shapes)}")
    nd = len(_shape(values[0])) + 1
    axis = normalize_axes(axis, nd)[0]
    return S.concatenate([expand_dims(v, axis) for v in values], axis)


@implements(np.hstack, defaults_only=("dtype", "casting"))
def hstack(values, *, dtype=None, casting="same_kind"):
    values = [atleast_1d(asvalue(v)) for v in values]
    return concatenate(values, 0 if len(_shape(values[0])) == 1 else 1)


@implements(np.vstack, defaults_only=("dtype", "casting"))
def vstack(values, *, dtype=None, casting="same_kind"):
    values = [asvalue(v) for v in values]
    values = [reshape(v, (1, -1)) if len(_shape(v)) <= 1 else v for v in values]
    return concatenate(values, 0)


@implements(np.flip)
def flip(x, axis=None):
    x = asvalue(x)
    for a in normalize_axes(axis, len(_shape(x))):
        n = _shape(x)[a]
        if n > 1:
            x = I.slice_along(x, a, n - 1, n, step=-1)
    return x


_UNSET = object()   # (numpy's own default is the private np._NoValue)


@implements(np.diff)
def diff(x, n=1, axis=-1, prepend=_UNSET, append=_UNSET):
    if n < 0:
        raise ValueError(f"order must be non-negative but got {n!r}")
    x = asvalue(x)
    nd = len(_shape(x))
    if nd == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    axis = normalize_axes(axis, nd)[0]
    if prepend is not _UNSET or append is not _UNSET:
        def edge(v):   # numpy: a scalar is one slice along axis, an array goes in as it is
            if np.ndim(v) > 0:
                return v
            edge_shape = list(_shape(x))
            edge_shape[axis] = 1
            return broadcast_to(asvalue(v), tuple(edge_shape))
        parts = [x]
        if prepend is not _UNSET:
            parts.insert(0, edge(prepend))
        if append is not _UNSET:
            parts.append(edge(append))
        x = concatenate(parts, axis)
    # numpy: booleans differ by not_equal (bool subtract is refused)
    op = UFUNCS[np.not_equal] if aval_of(x).dtype == np.bool_ else subtract
    for _ in range(n):
        m = _shape(x)[axis]
        if m == 0:   # numpy: differences of an empty axis stay empty
            break
        x = op(I.slice_along(x, axis, 1, m - 1), I.slice_along(x, axis, 0, m - 1))
    return x




@implements(np.shape)
def shape_of(x):
    return _shape(x)


@implements(np.ndim)
def ndim_of(x):
    return len(_shape(x))


@implements(np.size)
def size_of(x, axis=None):
    if axis is None:
        return aval_of(x).size
    shape = _shape(x)
    if isinstance(axis, numbers.Integral):
        return shape[normalize_axes(axis, len(shape))[0]]
    return int(np.prod([shape[a] for a in normalize_axes(axis, len(shape))], dtype=np.int64))
