"""numpy's array creation from traced values (zeros_like, ones_like, full_like, copy, astype)."""
from __future__ import annotations

import numpy as np

from ..primitives import elementwise as E
from ._base import _dtype, _shape, implements

@implements(np.zeros_like)
def zeros_like(x, dtype=None, **kw):
    return np.zeros(_shape(x), dtype or _dtype(x))


@implements(np.ones_like)
def ones_like(x, dtype=None, **kw):
    return np.ones(_shape(x), dtype or _dtype(x))


@implements(np.full_like)
def full_like(x, fill_value, dtype=None, **kw):
    return np.full(_shape(x), fill_value, dtype or _dtype(x))




@implements(np.copy)
def copy(x, *args, **kw):
    return x




@implements(np.astype) if hasattr(np, "astype") else (lambda f: f)
def astype(x, dtype, copy=True):
    return E.cast(x, dtype)
