"""np.linalg on traced values and tape Tensors."""
from __future__ import annotations

import numbers

import numpy as np

from ..primitives import elementwise as E, shape as S
from ._base import UFUNCS, _shape, asvalue, implements
from .reductions import amax, amin, sum_
from .ufuncs import multiply, power

@implements(np.linalg.norm)
def norm(x, ord=None, axis=None, keepdims=False):
    """numpy's vector norms (1-D, or one `axis`) and matrix norms (2-D, or two axes)."""
    x = asvalue(x)
    nd = len(_shape(x))
    if axis is None and ord is None:  # numpy: the 2-norm of the flattened array
        res = UFUNCS[np.sqrt](sum_(multiply(x, x)))
        return S.reshape(res, (1,) * nd) if keepdims else res
    if axis is None and nd not in (1, 2):
        raise ValueError("Improper number of dimensions to norm.")
    axes = tuple(range(nd)) if axis is None else \
        (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    axes = tuple(int(a) % nd if -nd <= int(a) < nd else _axis_error(a, nd) for a in axes)
    if len(axes) == 1:
        return _vector_norm(x, ord, axes[0], keepdims)
    if len(axes) == 2:
        if axes[0] == axes[1]:
            raise ValueError("Duplicate axes given.")
        return _matrix_norm(x, ord, axes, keepdims)
    raise ValueError("Improper number of dimensions to norm.")


def _axis_error(a, nd):
    raise np.exceptions.AxisError(a, nd)


def _vector_norm(x, ord, axis, keepdims):
    absx = lambda: UFUNCS[np.absolute](x)  # noqa: E731
    if ord is None or ord == 2:
        return UFUNCS[np.sqrt](sum_(multiply(x, x), axis, keepdims=keepdims))
    if isinstance(ord, str):
        raise ValueError(f"Invalid norm order '{ord}' for vectors")
    if ord == np.inf:
        return amax(absx(), axis, keepdims=keepdims)
    if ord == -np.inf:
        return amin(absx(), axis, keepdims=keepdims)
    if ord == 0:
        return sum_(E.cast(UFUNCS[np.not_equal](x, 0), np.float64), axis, keepdims=keepdims)
    if ord == 1:
        return sum_(absx(), axis, keepdims=keepdims)
    p = float(ord)
    return power(sum_(power(absx(), p), axis, keepdims=keepdims), 1.0 / p)


def _matrix_norm(x, ord, axes, keepdims):
    row, col = axes
    absx = lambda: UFUNCS[np.absolute](x)  # noqa: E731
    if ord in (None, "fro", "f"):
        res = UFUNCS[np.sqrt](sum_(multiply(x, x), axes))
    elif ord in (1, -1):   # largest / smallest column sum of |x|
        res = (amax if ord == 1 else amin)(sum_(absx(), row), col - (col > row))
    elif ord in (np.inf, -np.inf):  # largest / smallest row sum of |x|
        res = (amax if ord == np.inf else amin)(sum_(absx(), col), row - (row > col))
    elif ord in (2, -2, "nuc"):
        raise NotImplementedError(f"np.linalg.norm(..., ord={ord!r}) of a matrix needs its "
                                  f"singular values, which autodiff_jit does not compute yet; "
                                  f"use ord='fro', 1, -1, inf or -inf")
    else:
        raise ValueError("Invalid norm order for matrices.")
    if keepdims:
        shape = tuple(1 if i in axes else d for i, d in enumerate(_shape(x)))
        res = S.reshape(res, shape)
    return res
