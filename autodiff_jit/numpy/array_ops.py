"""`ArrayOps`: numpy's protocols (`__array_ufunc__`, `__array_function__`), Python operators,
attributes and methods for values whose operations go through `bind` (tracers, tape Tensors)."""
from __future__ import annotations

import re

import numpy as np

from ..primitives import aval_of
from ..primitives import elementwise as E
from ._base import FUNCTIONS, UFUNCS
from .indexing import getitem
from .products import dot, matmul
from .reductions import amax, amin, argmax, argmin, cumsum, mean, prod, std, sum_, var
from .shape import ravel, reshape, squeeze, swapaxes, transpose
from .ufuncs import add, clip, divide, multiply, power, subtract

def _not_supported(name):
    def fn(*a, **k):
        raise NotImplementedError(f"numpy function {name} is not supported on traced values; "
                                  f"write it with supported numpy functions")
    return fn


class ArrayOps:
    """numpy's protocols, operators and methods for values whose operations go through `bind`."""
    __array_priority__ = 1000
    __hash__ = object.__hash__

    def __array_ufunc__(self, uf, method, *inputs, **kwargs):
        if method != "__call__":
            raise NotImplementedError(f"np.{uf.__name__}.{method} is not supported on traced "
                                      f"values; use the matching numpy function (e.g. np.sum)")
        if kwargs.get("out") is not None:
            raise NotImplementedError(f"np.{uf.__name__}(..., out=) is not supported: traced "
                                      f"values are immutable")
        fn = UFUNCS.get(uf)
        if fn is None:
            raise NotImplementedError(f"numpy ufunc np.{uf.__name__} has no autodiff_jit rule")
        return fn(*inputs)

    def __array_function__(self, func, types, args, kwargs):
        fn = FUNCTIONS.get(func)
        if fn is None:
            mod = getattr(func, "__module__", "numpy") or "numpy"
            name = f"{mod.replace('numpy.linalg', 'np.linalg').replace('numpy', 'np')}." \
                   f"{func.__name__}"
            name = re.sub(r"^np\._core\.\w+\.", "np.", name)
            raise NotImplementedError(f"numpy function {name} has no autodiff_jit rule; "
                                      f"write it with supported numpy functions "
                                      f"(see docs/api.md)")
        return fn(*args, **kwargs)

    # operators
    def __add__(self, o): return add(self, o)
    def __radd__(self, o): return add(o, self)
    def __sub__(self, o): return subtract(self, o)
    def __rsub__(self, o): return subtract(o, self)
    def __mul__(self, o): return multiply(self, o)
    def __rmul__(self, o): return multiply(o, self)
    def __truediv__(self, o): return divide(self, o)
    def __rtruediv__(self, o): return divide(o, self)
    def __pow__(self, o): return power(self, o)
    def __rpow__(self, o): return power(o, self)
    def __matmul__(self, o): return matmul(self, o)
    def __rmatmul__(self, o): return matmul(o, self)
    def __neg__(self): return UFUNCS[np.negative](self)
    def __pos__(self): return self
    def __abs__(self): return UFUNCS[np.absolute](self)
    def __lt__(self, o): return UFUNCS[np.less](self, o)
    def __le__(self, o): return UFUNCS[np.less_equal](self, o)
    def __gt__(self, o): return UFUNCS[np.greater](self, o)
    def __ge__(self, o): return UFUNCS[np.greater_equal](self, o)
    def __eq__(self, o): return UFUNCS[np.equal](self, o)  # noqa: E704
    def __ne__(self, o): return UFUNCS[np.not_equal](self, o)
    def __and__(self, o): return UFUNCS[np.logical_and](self, o)
    def __or__(self, o): return UFUNCS[np.logical_or](self, o)
    def __invert__(self): return UFUNCS[np.logical_not](self)

    def __getitem__(self, key):
        return getitem(self, key)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    # attributes and methods
    @property
    def ndim(self): return len(self.shape)

    @property
    def size(self): return aval_of(self).size

    @property
    def T(self): return transpose(self)

    @property
    def mT(self): return swapaxes(self, -1, -2)

    def sum(self, axis=None, dtype=None, keepdims=False): return sum_(self, axis, dtype, keepdims)
    def mean(self, axis=None, dtype=None, keepdims=False): return mean(self, axis, dtype, keepdims)
    def var(self, axis=None, ddof=0, keepdims=False): return var(self, axis, ddof=ddof, keepdims=keepdims)
    def std(self, axis=None, ddof=0, keepdims=False): return std(self, axis, ddof=ddof, keepdims=keepdims)
    def max(self, axis=None, keepdims=False): return amax(self, axis, keepdims=keepdims)
    def min(self, axis=None, keepdims=False): return amin(self, axis, keepdims=keepdims)
    def prod(self, axis=None, keepdims=False): return prod(self, axis, keepdims=keepdims)
    def argmax(self, axis=None): return argmax(self, axis)
    def argmin(self, axis=None): return argmin(self, axis)
    def cumsum(self, axis=None): return cumsum(self, axis)
    def dot(self, o): return dot(self, o)
    def clip(self, a_min=None, a_max=None): return clip(self, a_min, a_max)
    def ravel(self): return ravel(self)
    def flatten(self): return ravel(self)
    def copy(self): return self
    def astype(self, dtype, copy=True): return E.cast(self, dtype)
    def squeeze(self, axis=None): return squeeze(self, axis)
    def swapaxes(self, a, b): return swapaxes(self, a, b)

    def reshape(self, *shape, order="C"):
        return reshape(self, shape[0] if len(shape) == 1 else shape, order)

    def transpose(self, *axes):
        return transpose(self, axes[0] if len(axes) == 1 else (axes or None))
