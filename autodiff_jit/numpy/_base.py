"""The dispatch tables and small helpers every module of the numpy layer shares.

`UFUNCS` maps numpy ufuncs and `FUNCTIONS` numpy functions to their implementations on traced
values and tape Tensors; `ArrayOps.__array_ufunc__` / `__array_function__` look them up.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..primitives import aval_of
from ..primitives import elementwise as E, shape as S

UFUNCS: dict = {}
FUNCTIONS: dict = {}


def implements(*np_fns, table=None):
    def deco(fn):
        for f in np_fns:
            (table if table is not None else FUNCTIONS)[f] = fn
        return fn
    return deco


def ufunc(*np_fns):
    return implements(*np_fns, table=UFUNCS)


def _shape(x):
    return aval_of(x).shape


def _dtype(x):
    return aval_of(x).dtype


def _is_traced(x):
    return getattr(x, "_adj_context", None) is not None



def asvalue(x):
    """Accept what numpy accepts: lists/tuples (possibly holding traced values) become arrays."""
    if isinstance(x, (list, tuple)):
        if any(_is_traced(v) or isinstance(v, (list, tuple)) for v in x):
            return stack_values([asvalue(v) for v in x])
        return np.asarray(x)
    return x


def stack_values(values):
    """np.stack(values, 0) of same-shape values, written on primitives (asvalue needs it below
    the shape module)."""
    values = E.promote(*values)
    shapes = {aval_of(v).shape for v in values}
    if len(shapes) != 1:
        raise ValueError(f"all input arrays must have the same shape, got {sorted(shapes)}")
    return S.concatenate([S.reshape(v, (1,) + aval_of(v).shape) for v in values], 0)


def normalize_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, numbers.Integral):
        axis = (axis,)
    out = []
    for a in axis:
        a = int(a)
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(a, ndim)
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"duplicate value in 'axis': {axis}")
    return tuple(sorted(out))
