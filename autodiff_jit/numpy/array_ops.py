"""`ArrayOps`: numpy's protocols (`__array_ufunc__`, `__array_function__`), Python operators,
attributes and methods for values whose operations go through `bind` (tracers, tape Tensors)."""
from __future__ import annotations

import re

from builtins import type as builtins_type

import numpy as np

from ..primitives import aval_of
from ..primitives import elementwise as E
from ._base import FUNCTIONS, REFUSED, UFUNCS, call
from .indexing import getitem
from .products import dot, matmul
from .mathematical import conjugate, imag, real, round_
from .indexing import compress, put, take
from .reductions import all_, amax, amin, any_, argmax, argmin, cumprod, cumsum, mean, prod, \
    std, sum_, var
from .shape_base import repeat
from .sorting import argpartition, argsort, partition, searchsorted, sort
from .twodim import diagonal, trace
from .ufunc_methods import METHODS
from .shape import ravel, reshape, squeeze, swapaxes, transpose
from .ufuncs import add, clip, divide, multiply, power, power_operator, subtract

def _not_supported(name):
    def fn(*a, **k):
        raise NotImplementedError(f"numpy function {name} is not supported on traced values; "
                                  f"write it with supported numpy functions")
    return fn


_NP_NAMES: dict = {}  # func -> its name (computed once: every tape-mode numpy call needs it)


def _np_name(func) -> str:
    """`np.linalg.norm` for numpy.linalg.norm, `np.sum` for numpy._core.fromnumeric.sum."""
    name = _NP_NAMES.get(func)
    if name is None:
        mod = getattr(func, "__module__", "numpy") or "numpy"
        name = f"{mod.replace('numpy.linalg', 'np.linalg').replace('numpy', 'np')}.{func.__name__}"
        name = _NP_NAMES[func] = re.sub(r"^np\._core\.\w+\.", "np.", name)
    return name


# ufunc keywords at their defaults mean nothing to a pure function: they are dropped
_NO = lambda v: False  # noqa: E731
_UFUNC_DEFAULTS = {"out": lambda v: v is None, "where": lambda v: v is True,
                   "casting": lambda v: v == "same_kind", "order": lambda v: v == "K",
                   "subok": lambda v: v is True, "dtype": lambda v: v is None,
                   "signature": lambda v: v is None}


def _arg(args, kwargs, pos, name, default):
    return args[pos] if len(args) > pos else kwargs.get(name, default)


def _always(args, kwargs):
    return True


# numpy functions that answer with a view of an array argument (or the argument itself) when
# numpy can, each with a guard: when it holds, numpy itself is asked, on layout stand-ins,
# which outputs are views of which argument (Tracer._track_view), and writes through them
# reach the argument as in numpy. Every other function gives new arrays (`_fresh`).
# tests/test_view_functions.py asks numpy which of the supported functions share memory
# with their argument, so a function missing here fails there.
VIEW_FUNCTIONS = {f: _always for f in (
    np.reshape, np.ravel, np.transpose, np.swapaxes, np.moveaxis, np.rollaxis, np.squeeze,
    np.expand_dims, np.atleast_1d, np.atleast_2d, np.atleast_3d, np.flip, np.fliplr, np.flipud,
    np.rot90, np.broadcast_to, np.broadcast_arrays, np.split, np.array_split, np.hsplit,
    np.vsplit, np.dsplit, np.diagonal, np.diag, np.real, np.real_if_close)}
for _module, _name in ((np, "unstack"), (np, "matrix_transpose"), (np, "permute_dims"),
                       (np.linalg, "matrix_transpose"), (np.linalg, "diagonal")):
    if hasattr(_module, _name):
        VIEW_FUNCTIONS[getattr(_module, _name)] = _always
VIEW_FUNCTIONS.update({
    # the degenerate cases in which numpy hands back its argument
    np.diff: lambda a, k: _arg(a, k, 1, "n", 1) == 0,
    np.polyder: lambda a, k: _arg(a, k, 1, "m", 1) == 0,
    np.polyint: lambda a, k: _arg(a, k, 1, "m", 1) == 0,
    np.linalg.matrix_power: lambda a, k: _arg(a, k, 1, "n", None) == 1,
    np.nan_to_num: lambda a, k: not _arg(a, k, 1, "copy", True),
    # one operand: a permutation or a diagonal is a view (more operands compute)
    np.einsum: lambda a, k: sum(hasattr(v, "shape") for v in a) == 1,
})


def _track_views(func, args, kwargs, result):
    """`result` = func(*args, **kwargs) where numpy may answer with views of the array
    arguments: each output that numpy makes a view of argument j (asked on layout stand-ins,
    every other array argument a stand-in of its own) is tracked as a view of it."""
    multi = isinstance(result, (tuple, list))
    outs = list(result) if multi else [result]
    for j, parent in enumerate(args):
        if not isinstance(parent, ArrayOps):
            continue

        def np_op(a, i, j=j):
            if isinstance(a, np.ndarray):  # the layout check: other arrays as stand-ins
                call_args = [a if k == j else np.empty(np.shape(v), np.uint8)
                             if isinstance(v, ArrayOps) else v for k, v in enumerate(args)]
            else:
                call_args = [a if k == j else v for k, v in enumerate(args)]
            r = func(*call_args, **kwargs)
            return r[i] if multi else r
        # which outputs numpy makes views of this argument (a tape Tensor records whatever
        # it is asked to, so only those are passed on)
        stand_in = np.empty(np.shape(parent), np.uint8)
        try:
            answer = np_op(stand_in, slice(None))   # all the outputs
        except Exception:  # noqa: BLE001 - numpy refuses the stand-ins: no view to track
            continue
        shares = [isinstance(o, np.ndarray) and np.may_share_memory(o, stand_in)
                  for o in (answer if multi else [answer])]
        for i, out in enumerate(outs):
            if i < len(shares) and shares[i]:
                outs[i] = parent._track_view(out, lambda a, i=i, op=np_op: op(a, i))
    if not multi:
        return outs[0]
    return type(result)(outs)


_NP_ASARRAY = np.asarray  # numpy's own (numpy/lists.py routes the attribute while tracing)
# numpy functions that hand back their argument itself when they can: no _fresh copy then
_SHARING = {_NP_ASARRAY: lambda kwargs: kwargs.get("copy") is not True}
if hasattr(np, "astype"):
    _SHARING[np.astype] = lambda kwargs: kwargs.get("copy", True) is False


def _fresh(result, args):
    """numpy's copying operations return a new array: never hand back an argument object
    itself (a later `y[k] = v` on the result would rewrite the argument too)."""
    if isinstance(result, tuple):
        items = [_fresh(r, args) for r in result]
        # a namedtuple (slogdet's, eigh's, svd's result) keeps its type and field names
        return type(result)(*items) if hasattr(result, "_fields") else tuple(items)
    alias = getattr(result, "_alias", None)
    if alias is None:
        return result
    for a in args:
        if a is result or (isinstance(a, (list, tuple)) and any(v is result for v in a)):
            return alias()
    return result


def _ufunc_into(uf, inputs, kwargs):
    """np.<ufunc>(..., out=o): numpy writes the result into o and returns o. A traced or tape
    `o` takes it as `o[...] = result`, so every name and view of o sees it, as in numpy; with
    where=, o keeps its old value where the mask is False. The result is computed before o
    is written, so `np.add(a, b, out=a)` reads the old a, as numpy's elementwise loop does."""
    kwargs = dict(kwargs)
    outs = kwargs.pop("out")
    where = kwargs.pop("where", True)
    results = uf(*inputs, **kwargs)
    results = results if uf.nout > 1 else (results,)
    for o, r in zip(outs, results):
        if o is None:
            continue
        if not isinstance(o, ArrayOps):
            raise NotImplementedError(
                f"np.{uf.__name__}(..., out=a numpy array): a numpy array cannot hold a traced "
                f"value; make the output traced too (y = np.empty_like(x)) or write "
                f"y = np.{uf.__name__}(...)")
        r_dtype = r.dtype if hasattr(r, "dtype") else np.result_type(r)
        if not np.can_cast(r_dtype, o.dtype, "same_kind"):
            raise TypeError(f"Cannot cast ufunc '{uf.__name__}' output from dtype('{r_dtype}') "
                            f"to dtype('{o.dtype}') with casting rule 'same_kind'")
        o[...] = r if where is True else np.where(where, r, o)
    if uf.nout == 1:
        return outs[0]
    return tuple(r if o is None else o for o, r in zip(outs, results))


class FlatIter:
    """`x.flat`: numpy's flatiter over a traced value (C order, whatever the layout). Reading
    gives x.ravel()[key]; writing, x.flat[key] = v, writes x's own elements at those flat
    positions (v repeated as needed, as np.put), so a view writes through to its base."""

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return self.base.size

    def __iter__(self):
        flat = ravel(self.base)
        return (flat[i] for i in range(self.base.size))

    def _positions(self, key):
        if any(isinstance(k, ArrayOps) for k in (key if isinstance(key, tuple) else (key,))):
            raise NotImplementedError("x.flat[key] with a traced key is not supported; use "
                                      "np.take(x, key) to read, np.where to write")
        return np.arange(self.base.size)[key]

    def __getitem__(self, key):
        return ravel(self.base)[self._positions(key) if key is not Ellipsis else slice(None)]

    def __setitem__(self, key, values):
        put(self.base, np.ravel(self._positions(key)), values)

    @property
    def shape(self):
        return (self.base.size,)


class ArrayOps:
    """numpy's protocols, operators and methods for values whose operations go through `bind`."""
    __array_priority__ = 1000
    __hash__ = object.__hash__

    def __array_ufunc__(self, uf, method, *inputs, **kwargs):
        if method != "__call__":
            if method not in METHODS:
                raise NotImplementedError(f"np.{uf.__name__}.{method} is not supported on "
                                          f"traced values")
            return call(METHODS[method], f"np.{uf.__name__}.{method}", (uf,) + inputs, kwargs)
        if kwargs.get("out") is not None:
            return _ufunc_into(uf, inputs, kwargs)
        fn = UFUNCS.get(uf)
        if fn is None:
            if uf in REFUSED:
                raise NotImplementedError(f"np.{uf.__name__} is not supported on traced values: "
                                          f"{REFUSED[uf]}")
            raise NotImplementedError(f"numpy ufunc np.{uf.__name__} has no autodiff_jit rule")
        if kwargs:  # where=, dtype=, casting=, ...: only what the implementation declares
            kwargs = {k: v for k, v in kwargs.items() if not _UFUNC_DEFAULTS.get(k, _NO)(v)}
            return _fresh(call(fn, f"np.{uf.__name__}", inputs, kwargs), inputs)
        return _fresh(fn(*inputs), inputs)

    def __array_function__(self, func, types, args, kwargs):
        fn = FUNCTIONS.get(func)
        if fn is None:
            if func in REFUSED:
                raise NotImplementedError(f"{_np_name(func)} is not supported on traced values: "
                                          f"{REFUSED[func]}")
            raise NotImplementedError(f"numpy function {_np_name(func)} has no autodiff_jit rule; "
                                      f"write it with supported numpy functions "
                                      f"(docs/numpy.md lists the supported ones)")
        result = call(fn, _np_name(func), args, kwargs)
        guard = VIEW_FUNCTIONS.get(func)
        if guard is not None and guard(args, kwargs):
            return _track_views(func, args, kwargs, _fresh(result, args))
        sharing = _SHARING.get(func)
        return result if sharing is not None and sharing(kwargs) else _fresh(result, args)

    def _track_view(self, result, np_op):
        """`result` = np_op(self) where numpy may answer with a view. Tracers track views
        (trace.Tracer); other values (tape Tensors) return result."""
        return result

    # operators
    def __add__(self, o): return add(self, o)
    def __radd__(self, o): return add(o, self)
    def __sub__(self, o): return subtract(self, o)
    def __rsub__(self, o): return subtract(o, self)
    def __mul__(self, o): return multiply(self, o)
    def __rmul__(self, o): return multiply(o, self)
    def __truediv__(self, o): return divide(self, o)
    def __rtruediv__(self, o): return divide(o, self)
    def __pow__(self, o):
        if type(o) is int and o == 2 and self.dtype == np.bool_:  # numpy's operator: square
            raise TypeError("bool_array ** 2 is int8 in numpy (np.square), a dtype autodiff_jit "
                            "does not support; cast first, e.g. x.astype(np.int64) ** 2")
        return power_operator(self, o)
    def __rpow__(self, o): return power(o, self)
    def __matmul__(self, o): return matmul(self, o)
    def __rmatmul__(self, o): return matmul(o, self)
    def __neg__(self): return UFUNCS[np.negative](self)
    def __pos__(self): return _fresh(UFUNCS[np.positive](self), (self,))
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
    def __rand__(self, o): return UFUNCS[np.logical_and](o, self)
    def __ror__(self, o): return UFUNCS[np.logical_or](o, self)
    def __xor__(self, o): return UFUNCS[np.bitwise_xor](self, o)
    def __rxor__(self, o): return UFUNCS[np.bitwise_xor](o, self)
    def __mod__(self, o): return UFUNCS[np.remainder](self, o)
    def __rmod__(self, o): return UFUNCS[np.remainder](o, self)
    def __floordiv__(self, o): return UFUNCS[np.floor_divide](self, o)
    def __rfloordiv__(self, o): return UFUNCS[np.floor_divide](o, self)
    def __divmod__(self, o): return UFUNCS[np.divmod](self, o)
    def __rdivmod__(self, o): return UFUNCS[np.divmod](o, self)

    def __getitem__(self, key):
        return self._track_view(getitem(self, key), lambda a: a[key])

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
    def T(self): return self._track_view(transpose(self), lambda a: a.T)

    @property
    def mT(self): return self._track_view(swapaxes(self, -1, -2), lambda a: np.swapaxes(a, -1, -2))

    # ndarray methods take numpy's function signature without the array: the same declared
    # implementation serves both, so a method refuses exactly what the function refuses
    def _method(self, fn, name, a, k):
        return _fresh(call(fn, f"ndarray.{name}", (self,) + a, k), (self,) + a)

    def sum(self, *a, **k): return self._method(sum_, "sum", a, k)
    def mean(self, *a, **k): return self._method(mean, "mean", a, k)
    def var(self, *a, **k): return self._method(var, "var", a, k)
    def std(self, *a, **k): return self._method(std, "std", a, k)
    def max(self, *a, **k): return self._method(amax, "max", a, k)
    def min(self, *a, **k): return self._method(amin, "min", a, k)
    def prod(self, *a, **k): return self._method(prod, "prod", a, k)
    def argmax(self, *a, **k): return self._method(argmax, "argmax", a, k)
    def argmin(self, *a, **k): return self._method(argmin, "argmin", a, k)
    def cumsum(self, *a, **k): return self._method(cumsum, "cumsum", a, k)
    def cumprod(self, *a, **k): return self._method(cumprod, "cumprod", a, k)
    def any(self, *a, **k): return self._method(any_, "any", a, k)
    def all(self, *a, **k): return self._method(all_, "all", a, k)
    def round(self, *a, **k): return self._method(round_, "round", a, k)
    def trace(self, *a, **k): return self._method(trace, "trace", a, k)
    def diagonal(self, *a, **k):  # numpy: a read-only view
        return self._track_view(self._method(diagonal, "diagonal", a, k),
                                lambda v: v.diagonal(*a, **k))
    def repeat(self, *a, **k): return self._method(repeat, "repeat", a, k)
    def take(self, *a, **k): return self._method(take, "take", a, k)
    def argsort(self, *a, **k): return self._method(argsort, "argsort", a, k)
    def dot(self, *a, **k): return self._method(dot, "dot", a, k)
    def clip(self, *a, **k): return self._method(clip, "clip", a, k)

    def argpartition(self, *a, **k): return self._method(argpartition, "argpartition", a, k)
    def searchsorted(self, *a, **k): return self._method(searchsorted, "searchsorted", a, k)

    def compress(self, condition, axis=None, out=None):
        return _fresh(call(compress, "ndarray.compress", (condition, self, axis, out), {}),
                      (self,))

    def sort(self, *a, **k):
        """In place, as numpy: every name for this value sees the sorted array."""
        self[...] = call(sort, "ndarray.sort", (self,) + a, k)

    def partition(self, *a, **k):
        """In place, as numpy's ndarray.partition."""
        self[...] = call(partition, "ndarray.partition", (self,) + a, k)

    def put(self, indices, values, mode="raise"):
        """In place, as numpy's ndarray.put."""
        call(put, "ndarray.put", (self, indices, values, mode), {})

    def fill(self, value):
        """In place, as numpy's ndarray.fill: every element becomes `value` (cast)."""
        self[...] = value

    def nonzero(self):
        raise NotImplementedError(
            "ndarray.nonzero() of a traced value is not supported: the number of indices "
            "depends on the values; use np.where(mask, x, 0) or a constant mask")

    def __round__(self, ndigits=None):
        """round(x) of a 0-d value as of a numpy scalar: rounded to `ndigits` decimals, or
        without them an integer (zero gradient, as JAX's casts); numpy arrays refuse it."""
        if self.shape:
            raise TypeError("type numpy.ndarray doesn't define __round__ method (round() "
                            "takes a 0-d value; use np.round(x, decimals))")
        if ndigits is None:
            return E.cast(round_(self), np.int64)
        return round_(self, ndigits)

    def conj(self): return conjugate(self)
    def conjugate(self): return conjugate(self)

    @property
    def flat(self): return FlatIter(self)

    @flat.setter
    def flat(self, values): FlatIter(self)[...] = values

    @property
    def real(self): return real(self)

    @property
    def imag(self): return imag(self)

    def squeeze(self, *a, **k):
        return self._track_view(call(squeeze, "ndarray.squeeze", (self,) + a, k),
                                lambda v: v.squeeze(*a, **k))

    def swapaxes(self, *a, **k):
        return self._track_view(call(swapaxes, "ndarray.swapaxes", (self,) + a, k),
                                lambda v: v.swapaxes(*a, **k))

    def ravel(self, order="C"):
        return self._track_view(ravel(self, order), lambda v: v.ravel(order))

    def view(self, dtype=None, type=None):
        """x.view(): the same values in a new array object sharing x's memory, as numpy."""
        if isinstance(dtype, builtins_type) and issubclass(dtype, np.ndarray):
            dtype, type = None, dtype
        if type not in (None, np.ndarray) or dtype is not None and np.dtype(dtype) != self.dtype:
            raise NotImplementedError(
                "x.view(dtype) reinterprets the bytes of the values (and x.view(subclass) "
                "changes the array type), which autodiff_jit does not model; to convert the "
                "values use x.astype(dtype)")
        return self._track_view(self._alias(), lambda v: v.view())

    def flatten(self, order="C"): return _fresh(ravel(self, order), (self,))
    def copy(self, order="C"): return _fresh(self, (self,))

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        result = E.cast(self, dtype)
        return _fresh(result, (self,)) if copy else result  # copy=False: self if no cast

    def reshape(self, *shape, order="C"):
        shape = shape[0] if len(shape) == 1 else shape
        return self._track_view(reshape(self, shape, order), lambda v: v.reshape(shape, order=order))

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 else (axes or None)
        return self._track_view(transpose(self, axes), lambda v: v.transpose(axes))
