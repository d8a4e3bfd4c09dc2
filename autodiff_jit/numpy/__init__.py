"""numpy's API on autodiff values: what `np.exp(x)`, `x @ y`, `x.sum()` and `x[1:]` mean when x is
a tracer (compiled mode) or a tape Tensor (tape mode).

One module per numpy namespace, each a table of implementations registered with `implements`
(numpy functions) or `ufunc` (numpy ufuncs) into `FUNCTIONS` / `UFUNCS`; `ArrayOps` supplies
numpy's protocols, operators and methods. Every function is written once, in terms of
primitives through `bind`, so tracers and Tensors share every rule.
"""
from ._base import FUNCTIONS, UFUNCS, asvalue, implements, normalize_axes, ufunc
from . import (ufuncs, mathematical, shape, shape_base, reductions, linalg, products,  # noqa: F401
               creation, indexing, twodim, nanfunctions, sorting, statistics, signal, polynomial,
               functional, special)
from .array_ops import ArrayOps
from .creation import array, asarray
from .indexing import getitem, setitem, setitem_positions
from .products import matmul
from .ufuncs import stop_gradient

__all__ = ["ArrayOps", "FUNCTIONS", "UFUNCS", "array", "asarray", "asvalue", "getitem",
           "implements", "matmul", "normalize_axes", "setitem", "setitem_positions",
           "stop_gradient", "ufunc"]
