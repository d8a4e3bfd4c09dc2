"""argsort: the stable sorting permutation along one axis (NaNs last, as numpy). It has no
derivative; np.sort is a gather through it, so its gradient flows back along the permutation
(as in JAX, whose sort VJP scatters through the permutation)."""
from __future__ import annotations

import numpy as np

from ..ir import AVal
from .core import Primitive, register
from . import batching as B


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
