"""numpy's array creation from traced values (zeros_like, ones_like, full_like, copy, astype).

`order=` and `subok=` only choose a memory layout or an array subclass, never values, so they
are accepted; `device=` is accepted at "cpu"/None only.
"""
from __future__ import annotations

import numpy as np

from ..primitives import elementwise as E
from ._base import _dtype, _shape, implements


def _like_shape(x, shape):
    return _shape(x) if shape is None else shape


@implements(np.zeros_like, defaults_only=("device",))
def zeros_like(x, dtype=None, order="K", subok=True, shape=None, *, device=None):
    return np.zeros(_like_shape(x, shape), dtype or _dtype(x))


@implements(np.ones_like, defaults_only=("device",))
def ones_like(x, dtype=None, order="K", subok=True, shape=None, *, device=None):
    return np.ones(_like_shape(x, shape), dtype or _dtype(x))


@implements(np.full_like, defaults_only=("device",))
def full_like(x, fill_value, dtype=None, order="K", subok=True, shape=None, *, device=None):
    return np.full(_like_shape(x, shape), fill_value, dtype or _dtype(x))


@implements(np.copy)
def copy(x, order="K", subok=False):
    return x


@implements(np.astype, defaults_only=("device",)) if hasattr(np, "astype") else (lambda f: f)
def astype(x, dtype, /, *, copy=True, device=None):
    return E.cast(x, dtype)
