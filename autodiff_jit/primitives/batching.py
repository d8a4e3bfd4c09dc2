"""Batching rules (vmap) shared by primitive families, for the rules that move no data.

A batching rule `rule(prim, axis_size, vals, dims, **params) -> (outputs, out_dims)` receives one
value per input and, per input, the axis that carries the batch (`None`: the input is the same
for every example). It returns the primitive's outputs for the whole batch and the axis of each
output that carries the batch (`None`: unbatched). Rules are written with `bind`, so on tracers
they record IR; the vmap transform (autodiff_jit/vmap.py) calls them.

This module imports only core, so every family can use it:
- `unary`: a one-input op with elementwise semantics keeps the batch axis where it is;
- `reduce_axes` / `reduce_axis` / `along_axis`: reductions, arg-reductions and scans over
  static axes shift those axes past the batch axis.
Rules that move data live with their primitives (elementwise broadcasting in elementwise.py,
shape ops in shape.py, dot_general in linalg.py) or, where a primitive's module sits below the
shape ops they need, in batch_rules.py.
"""
from __future__ import annotations

from .core import aval_of, bind


def example_ndim(x, d) -> int:
    """The rank of one example of x."""
    return aval_of(x).ndim - (d is not None)


def unary(prim, axis_size, vals, dims, **params):
    return bind(prim, *vals, **params), dims[0]


def shift(axis: int, d: int) -> int:
    """An example's axis, as an axis of the batched value whose batch axis is d."""
    return axis + (axis >= d)


def reduce_axes(prim, axis_size, vals, dims, *, axes, **params):
    (x,), (d,) = vals, dims
    new = tuple(shift(a, d) for a in axes)
    return bind(prim, x, axes=new, **params), d - sum(a < d for a in new)


def reduce_axis(prim, axis_size, vals, dims, *, axis, **params):
    """An arg-reduction over one axis (argmax, argmin)."""
    (x,), (d,) = vals, dims
    new = shift(axis, d)
    return bind(prim, x, axis=new, **params), d - (new < d)


def along_axis(prim, axis_size, vals, dims, *, axis, **params):
    """An op along one axis that keeps the shape (cumsum)."""
    (x,), (d,) = vals, dims
    return bind(prim, x, axis=shift(axis, d), **params), d
