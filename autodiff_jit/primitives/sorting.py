"""argsort: the stable sorting permutation along one axis (NaNs last, as numpy). It has no
derivative. sort: the sorted values and that permutation (two results); its gradient flows back
along the permutation (as in JAX, whose sort VJP scatters through the permutation). With both
results in one primitive, a program that never reads the permutation (np.sort, np.median
without a gradient) lets the compiled kernel sort the keys alone."""
from __future__ import annotations

import math

import numpy as np

from ..ir import AVal
from .broadcast import reshape
from .core import Primitive, aval_of, bind, register
from . import batching as B
from . import elementwise as E
from . import indexing as I
from . import shape as S


def _argsort_rule(x, *, axis):
    if not 0 <= axis < x.ndim:
        raise ValueError(f"argsort: axis {axis} out of range for rank {x.ndim}")
    if x.dtype.kind not in "fi":
        raise TypeError(f"argsort: float or int64 input expected, got {x.dtype}")
    return AVal(x.shape, np.dtype(np.int64))


argsort_p = register(Primitive(
    "argsort", _argsort_rule,
    lambda x, *, axis: np.argsort(x, axis=axis, kind="stable").astype(np.int64),
    differentiable=False, family="sort", batch=B.along_axis))


def _sort_rule(x, *, axis):
    if not 0 <= axis < x.ndim:
        raise ValueError(f"sort: axis {axis} out of range for rank {x.ndim}")
    if x.dtype not in (np.float64, np.float32, np.int64):
        raise TypeError(f"sort: float64, float32 or int64 input expected, got {x.dtype}")
    return [AVal(x.shape, x.dtype), AVal(x.shape, np.dtype(np.int64))]


def _sort_impl(x, *, axis):
    perm = np.argsort(x, axis=axis, kind="stable")
    return [np.take_along_axis(x, perm, axis), perm.astype(np.int64)]


def _flat_positions(perm, axis):
    """The C-order flat position, in the sorted array, of the input element each sorted
    element came from: perm * stride + (the flat position with coordinate 0 on `axis`)."""
    shape = aval_of(perm).shape
    stride = math.prod(shape[axis + 1:])
    base = np.take(np.arange(math.prod(shape), dtype=np.int64).reshape(shape), [0], axis=axis)
    scaled = bind(E.mul, perm, np.int64(stride)) if stride != 1 else perm
    return reshape(bind(E.add, scaled, base), (math.prod(shape),))


def gather_sorted(t, perm, axis):
    """t's elements in the order of the sorting permutation perm (along axis)."""
    shape = aval_of(t).shape
    return reshape(bind(I.take_p, reshape(t, (math.prod(shape),)), _flat_positions(perm, axis),
                        axis=0), shape)


def _unpermute_rule(g, perm, *, axis):
    if perm.shape != g.shape or perm.dtype != np.int64 or not 0 <= axis < g.ndim:
        raise TypeError(f"unpermute: an int64 permutation of the values' shape {g.shape} "
                        f"expected, got {perm.dtype} {perm.shape} (axis {axis})")
    return AVal(g.shape, g.dtype)


def _unpermute_impl(g, perm, *, axis):
    out = np.empty_like(g)
    np.put_along_axis(out, perm, g, axis)
    return out


# unpermute(g, perm, axis): out[..., perm[..., j], ...] = g[..., j, ...] for a permutation
# perm along axis (each row's indices distinct): the scatter that undoes a gather by perm,
# one store per element (no zero fill, no adds: take_add's general scatter costs 3x more)
unpermute_p = register(Primitive(
    "unpermute", _unpermute_rule, _unpermute_impl,
    vjp=lambda ct, out, g, perm, *, axis: (gather_sorted(ct, perm, axis), None),
    jvp=lambda t, out, g, perm, *, axis: None if t[0] is None else
    bind(unpermute_p, t[0], perm, axis=axis),
    family="index", batch=S.along_axis_batch))


def permuted_vjp(cts, outs, x, *, axis, **params):
    """The VJP of (values, perm) = x reordered along axis by perm (sort, partition): the
    values' cotangent scattered back through the permutation."""
    g = cts[0]
    if g is None:
        return (None,)
    return (bind(unpermute_p, g, outs[1], axis=axis),)


def permuted_jvp(t, outs, x, *, axis, **params):
    return [None if t[0] is None else gather_sorted(t[0], outs[1], axis), None]


def _sort_batch(prim, axis_size, vals, dims, *, axis):
    (x,), (d,) = vals, dims
    return bind(prim, x, axis=B.shift(axis, d)), [d, d]


sort_p = register(Primitive(
    "sort", _sort_rule, _sort_impl, vjp=permuted_vjp, jvp=permuted_jvp, multiple_results=True,
    torch_name="SortBackward0", family="sort", batch=_sort_batch))
