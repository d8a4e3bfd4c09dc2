"""np.linalg on traced values and tape Tensors."""
from __future__ import annotations

import numpy as np

from ._base import UFUNCS, _shape, asvalue, implements
from .reductions import amax, sum_
from .ufuncs import multiply

@implements(np.linalg.norm)
def norm(x, ord=None, axis=None, keepdims=False):
    x = asvalue(x)
    if ord in (None, 2, "fro") and (ord != 2 or axis is not None or len(_shape(x)) == 1):
        return UFUNCS[np.sqrt](sum_(multiply(x, x), axis, keepdims=keepdims))
    if ord == 1 and (axis is not None or len(_shape(x)) == 1):
        return sum_(UFUNCS[np.absolute](x), axis, keepdims=keepdims)
    if ord == np.inf and (axis is not None or len(_shape(x)) == 1):
        return amax(UFUNCS[np.absolute](x), axis, keepdims=keepdims)
    raise NotImplementedError(f"np.linalg.norm with ord={ord!r} on a rank-{len(_shape(x))} value "
                              f"is not supported; use ord=None/1/2/inf on vectors or axis=")
