"""Selection: order statistics without a full sort (numpy's np.partition contract, made
deterministic). Ranks and orders are those of the stable sort (NaNs last, -0.0 ties 0.0), so
every result equals what argsort would give:

- argselect(x, ranks, axis): for each requested rank r, the index of the element at position r
  of x's stable sort along `axis` (`ranks` has x's shape with that axis of any length);
- argpartition(x, axis, kth): a permutation that puts the stable rank-k element at each k in
  `kth` and, between those, the elements of the ranks in between in index order;
- partition(x, axis, kth): x reordered by that permutation, and the permutation (two results,
  as sort's: the forward kernel writes the values alone when the permutation is not read).

argselect and argpartition have no derivative; median and quantile gather through argselect,
so the gradient flows to the selected elements. partition's flows back along its permutation
(sort's rule); partition_grad(x, g) is that gradient computed from x, without the
permutation."""
from __future__ import annotations

import numpy as np

from ..ir import AVal
from .core import Primitive, bind, register
from . import batching as B, shape as S
from .sorting import gather_sorted, permuted_jvp, permuted_vjp


def _check_keys(name, x, axis):
    if not 0 <= axis < x.ndim:
        raise ValueError(f"{name}: axis {axis} out of range for rank {x.ndim}")
    if x.dtype.kind not in "fi":
        raise TypeError(f"{name}: float or int64 input expected, got {x.dtype}")


def _argselect_rule(x, ranks, *, axis):
    _check_keys("argselect", x, axis)
    want = x.shape[:axis] + x.shape[axis + 1:]
    if ranks.dtype != np.int64 or ranks.ndim != x.ndim or \
            ranks.shape[:axis] + ranks.shape[axis + 1:] != want:
        raise TypeError(f"argselect: ranks must be int64 of x's shape {x.shape} with axis "
                        f"{axis} of any length, got {ranks.dtype} {ranks.shape}")
    return AVal(ranks.shape, np.dtype(np.int64))


def _stable_order(x, axis):
    return np.argsort(x, axis=axis, kind="stable").astype(np.int64)


def _argselect_impl(x, ranks, *, axis):
    n = x.shape[axis]
    if n == 0:
        return np.zeros(np.shape(ranks), np.int64)
    return np.take_along_axis(_stable_order(x, axis), np.clip(ranks, 0, n - 1), axis)


argselect_p = register(Primitive(
    "argselect", _argselect_rule, _argselect_impl, differentiable=False, family="sort",
    batch=S.along_axis_batch))


def _argpartition_rule(x, *, axis, kth):
    _check_keys("argpartition", x, axis)
    n = x.shape[axis]
    if not kth or list(kth) != sorted(set(kth)) or kth[0] < 0 or kth[-1] >= n:
        raise ValueError(f"argpartition: kth must be increasing distinct positions in [0, {n}), "
                         f"got {kth}")
    return AVal(x.shape, np.dtype(np.int64))


def partition_segments(n, kth):
    """For each stable rank 0..n-1: its output key, 2j+1 for the pivot kth[j], 2s for the
    ranks between pivots s-1 and s; sorting by it (stably) gives argpartition's order."""
    ranks = np.arange(n)
    seg = np.searchsorted(np.asarray(kth), ranks, side="left")
    pivot = np.isin(ranks, kth)
    return np.where(pivot, 2 * seg + 1, 2 * seg)


def _argpartition_impl(x, *, axis, kth):
    n = x.shape[axis]
    order = np.moveaxis(_stable_order(x, axis), axis, -1)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n), -1)
    out = np.argsort(partition_segments(n, kth)[rank], axis=-1, kind="stable")
    return np.moveaxis(out.astype(np.int64), -1, axis)


argpartition_p = register(Primitive(
    "argpartition", _argpartition_rule, _argpartition_impl, differentiable=False, family="sort",
    batch=B.along_axis))


def _partition_rule(x, *, axis, kth):
    _argpartition_rule(x, axis=axis, kth=kth)
    return [AVal(x.shape, x.dtype), AVal(x.shape, np.dtype(np.int64))]


def _partition_impl(x, *, axis, kth):
    perm = _argpartition_impl(x, axis=axis, kth=kth)
    return [np.take_along_axis(x, perm, axis), perm]


def _partition_batch(prim, axis_size, vals, dims, *, axis, kth):
    (x,), (d,) = vals, dims
    return bind(prim, x, axis=B.shift(axis, d), kth=kth), [d, d]


# the VJP scatters through the permutation (sort's rule, reading no value of x, so tape mode
# allows writing x in place after it, as ndarray.partition does); in a compiled or
# interpreted program passes/simplify turns unpermute(g, partition(x)[1]) into
# partition_grad(x, g), which stores no permutation
partition_p = register(Primitive(
    "partition", _partition_rule, _partition_impl, vjp=permuted_vjp, jvp=permuted_jvp,
    multiple_results=True, family="sort", batch=_partition_batch))


def _partition_grad_rule(x, g, *, axis, kth):
    _argpartition_rule(x, axis=axis, kth=kth)
    if g.shape != x.shape or g.dtype.kind != "f":
        raise TypeError(f"partition_grad: a float cotangent of x's shape {x.shape} expected, "
                        f"got {g.dtype} {g.shape}")
    return AVal(g.shape, g.dtype)


def _partition_grad_impl(x, g, *, axis, kth):
    out = np.empty_like(g)
    np.put_along_axis(out, _argpartition_impl(x, axis=axis, kth=kth), g, axis)
    return out


# partition_grad(x, g): the cotangent g of partition(x)'s values sent back to the elements
# they came from (dx[perm[j]] = g[j]). The kernel selects x's pivots again and runs the
# placing pass backwards: no permutation stored by the forward, no scatter. Linear in g (its
# VJP: the gather by the permutation); x only chooses the order (no derivative).
partition_grad_p = register(Primitive(
    "partition_grad", _partition_grad_rule, _partition_grad_impl,
    vjp=lambda ct, out, x, g, *, axis, kth: (
        None, gather_sorted(ct, bind(argpartition_p, x, axis=axis, kth=kth), axis)),
    jvp=lambda t, out, x, g, **p: None if t[1] is None else bind(partition_grad_p, x, t[1], **p),
    family="sort", batch=S.along_axis_batch))
