"""The dispatch tables and small helpers every module of the numpy layer shares.

`UFUNCS` maps numpy ufuncs and `FUNCTIONS` numpy functions to their implementations on traced
values and tape Tensors; `ArrayOps.__array_ufunc__` / `__array_function__` look them up.
"""
from __future__ import annotations

import inspect
import numbers
import operator

import numpy as np

from ..primitives import aval_of
from ..primitives import elementwise as E, shape as S

UFUNCS: dict = {}
FUNCTIONS: dict = {}


_VALUE_SHAPED = ("the output's shape depends on the values, which are not known while tracing; "
                 "use np.where(mask, x, 0) (or a constant mask)")
_COMPLEX = "its results are complex, and autodiff_jit differentiates real arrays only"
_BITS = ("an integer-only operation (bits, gcd/lcm) that autodiff_jit does not compile; the "
         "bitwise operations on booleans are supported (they are the logical ones)")
_FLOAT_BITS = "it reads the floating-point representation, which autodiff_jit does not model"
# numpy names refused on purpose: the dispatcher's message says why and what to write instead
REFUSED = {f: why for names, why in (
    ("nonzero argwhere flatnonzero unique unique_all unique_counts unique_inverse "
     "unique_values intersect1d union1d setdiff1d setxor1d trim_zeros", _VALUE_SHAPED),
    ("roots sort_complex linalg.eig linalg.eigvals", _COMPLEX),
    ("gcd lcm left_shift right_shift bitwise_left_shift bitwise_right_shift invert "
     "bitwise_not bitwise_invert bitwise_count packbits unpackbits", _BITS),
    ("frexp nextafter spacing", _FLOAT_BITS),
) for f in (getattr(np.linalg if n.startswith("linalg.") else np, n.split(".")[-1], None)
            for n in names.split()) if f is not None}


def implements(*np_fns, table=None, defaults_only=()):
    """Register `fn` as the implementation of each numpy function in `np_fns`.

    The implementation's signature declares what it accepts (habit 11 of STYLE.md): it may not
    take `**kwargs`, so a keyword it does not name is refused by `call` with NotImplementedError
    naming it instead of being ignored. Each name in `defaults_only` is a numpy parameter that
    is accepted at its default value only (e.g. `out=None`): any other value is refused too.
    """
    def deco(fn):
        params = inspect.signature(fn).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            raise TypeError(f"{fn.__qualname__}: a numpy implementation names the keyword "
                            f"arguments it handles; it may not take **kwargs")
        named = [n for n, p in params.items() if p.kind in
                 (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
        positions = [n for n, p in params.items() if p.kind in
                     (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        for n in defaults_only:
            if n not in params:
                raise TypeError(f"{fn.__qualname__}: defaults_only names {n!r}, which is not "
                                f"a parameter")
        fn._np_accepts = frozenset(named)
        fn._np_defaults_only = tuple(
            (n, params[n].default, positions.index(n) if n in positions else None)
            for n in defaults_only)
        for f in np_fns:
            (table if table is not None else FUNCTIONS)[f] = fn
        return fn
    return deco


def ufunc(*np_fns, defaults_only=()):
    return implements(*np_fns, table=UFUNCS, defaults_only=defaults_only)


def _is_default(value, default) -> bool:
    if value is default:
        return True
    plain = (str, bool, int, float, type(None))
    return type(value) in plain and type(value) is type(default) and value == default


def refuse(np_name: str, arg: str, why: str = ""):
    """The NotImplementedError for a numpy argument autodiff_jit does not handle."""
    return NotImplementedError(
        f"{np_name}(..., {arg}=) is not supported by autodiff_jit on traced values"
        f"{': ' + why if why else ''}; leave it at its default or write the computation with "
        f"supported numpy functions (docs/api.md lists what each accepts)")


def numpy_target(np_name: str) -> str:
    """Why numpy's in-place writer `np_name` cannot write a traced value into a numpy array
    given as its first argument, and what to write instead (the source rewrite handles a
    local array that nothing else sees: convert/writes.py)."""
    return (f"{np_name} writes into its first argument, a numpy array here, which cannot hold "
            f"a traced value. Inside grad/jit the statement `{np_name}(y, ...)` works when y "
            f"is the function's own local numpy array with no other name, view or container "
            f"referring to it; here it is not (a global, an attribute, an array captured from "
            f"outside, or conversion is off). Create the array from a traced value instead "
            f"(y = np.zeros_like(x, shape=...)), or build the result (np.where(mask, v, a))")


def call(fn, np_name: str, args, kwargs):
    """Call the implementation `fn` of numpy's `np_name`, refusing arguments it does not declare."""
    check_args(fn, np_name, args, kwargs)
    return fn(*args, **kwargs)


def check_args(fn, np_name: str, args, kwargs):
    """NotImplementedError for a keyword `fn` does not declare, or a defaults-only argument set."""
    if kwargs:
        extra = kwargs.keys() - getattr(fn, "_np_accepts", frozenset())
        if extra:
            raise refuse(np_name, sorted(extra)[0])
    for name, default, pos in getattr(fn, "_np_defaults_only", ()):
        if name in kwargs:
            value = kwargs[name]
        elif pos is not None and pos < len(args):
            value = args[pos]
        else:
            continue
        if not _is_default(value, default):
            raise refuse(np_name, name, f"only {name}={default!r} is")


def _shape(x):
    return aval_of(x).shape


def _dtype(x):
    return aval_of(x).dtype


def _is_traced(x):
    return getattr(x, "_adj_context", None) is not None



def holds_traced(x) -> bool:
    """Whether a (nested) list or tuple holds a traced value or tape Tensor anywhere."""
    return any(_is_traced(v) or isinstance(v, (list, tuple)) and holds_traced(v) for v in x)


def _skeleton(x):
    """x with every traced leaf replaced by a zero-stride array of its shape and dtype: numpy
    itself then decides the result's dtype and shape (or refuses a ragged list) exactly as
    it would for the values."""
    if isinstance(x, (list, tuple)):
        return [_skeleton(v) for v in x]
    if _is_traced(x):
        aval = aval_of(x)
        return np.broadcast_to(np.zeros((), aval.dtype), aval.shape)
    return x


def _build(x, dtype):
    if not isinstance(x, (list, tuple)) or not holds_traced(x):
        return E.cast(x, dtype) if _is_traced(x) else np.asarray(x, dtype)
    return stack_values([_build(v, dtype) for v in x])


def asvalue(x, dtype=None):
    """Accept what numpy accepts: a (nested) list or tuple becomes an array, built from its
    traced values when it holds any (with numpy's dtype, shape and ragged-list rules), and
    np.asarray(x, dtype) otherwise. Any other value is returned as it is."""
    if not isinstance(x, (list, tuple)):
        return x
    if not holds_traced(x):
        return np.asarray(x, dtype)
    like = np.array(_skeleton(x), dtype)
    if like.dtype == np.float16:  # computed in float32 (as every float16 value is)
        like = like.astype(np.float32)
    return _build(x, like.dtype)


def stack_values(values):
    """np.stack(values, 0) of same-shape values, written on primitives (asvalue needs it below
    the shape module)."""
    values = E.promote(*values)
    shapes = {aval_of(v).shape for v in values}
    if len(shapes) != 1:
        raise ValueError(f"all input arrays must have the same shape, got {sorted(shapes)}")
    return S.concatenate([S.reshape(v, (1,) + aval_of(v).shape) for v in values], 0)


def check_axis(axis, ndim, what=None) -> int:
    """One axis in [0, ndim), or numpy's AxisError (`what` names the argument, as numpy's
    message does: "source: axis 2 is out of bounds ...")."""
    a = operator.index(axis)
    if not -ndim <= a < ndim:
        raise np.exceptions.AxisError(a, ndim, what)
    return a % ndim


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
