"""Lists of traced values given to numpy: `np.array([x[1], -x[0]])`, `np.mean([a, b])`,
`np.r_[x, c]`, `np.int64(x)`.

numpy converts a list by asking each element for its value (`__array__`) before any
`__array_function__` dispatch, and np.array/np.asarray are not dispatched at all, so no numpy
protocol lets a traced value inside a list reach autodiff_jit. While grad/jit trace a function
(or a tape-mode grad runs one), `routing_lists()` therefore replaces the attributes of the
numpy module that users call with thin wrappers: each calls numpy's original unchanged and,
only when that raises the tracer's own conversion exception (errors.ArrayConversion, raised by
`__array__` of a traced value or of a Tensor that requires grad), calls autodiff_jit's
implementation instead, which builds the list as a stack of its values. On exit the original
attributes are put back. Entering is reference-counted and locked, so nested and concurrent
traces share one installation; whether a wrapper may take the slow path is per thread (a
thread that is not tracing keeps numpy's behaviour, including tape mode's RuntimeError).
Without traced values a wrapper costs one Python call and a try block: it never scans a list.
docs/design/numpy.md explains why this design and not another.
"""
from __future__ import annotations

import contextlib
import functools
import threading

import numpy as np

from ..errors import ArrayConversion
from ..primitives import elementwise as E
from ._base import FUNCTIONS, _is_traced, _shape, asvalue, call
from .creation import array, asarray
from .shape import concatenate, reshape, transpose

# numpy functions that call user code (a conversion error may come from inside it): not routed
_CALLBACKS = {"apply_along_axis", "apply_over_axes", "piecewise", "vectorize", "frompyfunc",
              "fromfunction"}
# integer scalar types: np.int64(traced) is a cast (zero gradient, as JAX's astype)
_INT_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "intp", "uintp", "int_", "uint", "longlong", "ulonglong", "short", "ushort",
              "byte", "ubyte", "intc", "uintc", "long", "ulong")

_lock = threading.Lock()
_installed = [0]          # how many routing_lists() are open, over all threads
_saved: dict = {}         # (module, name) -> numpy's own attribute while installed
_local = threading.local()  # .depth: this thread's open routing_lists(); .busy: inside numpy


def _active() -> bool:
    return getattr(_local, "depth", 0) > 0


def _routed(orig, ours):
    """numpy's `orig`, falling back to `ours` on a conversion error of this thread's trace.
    A wrapper called from inside numpy (numpy's Python code calls np.asarray too) defers to
    the outermost one, so numpy's internals never see a traced value."""
    @functools.wraps(orig)
    def wrapper(*args, **kwargs):
        if getattr(_local, "busy", False):
            return orig(*args, **kwargs)
        _local.busy = True
        try:
            return orig(*args, **kwargs)
        except ArrayConversion:
            if not _active():
                raise
        finally:
            _local.busy = False
        return ours(*args, **kwargs)
    return wrapper


def _dispatch(np_fn, name):
    impl = FUNCTIONS[np_fn]
    return lambda *args, **kwargs: call(impl, name, args, kwargs)


def _creation(ours, name):
    return lambda *args, **kwargs: call(ours, name, args, kwargs)


# ---------------------------------------------------------------------------------------------
# np.r_ and np.c_ (index expressions, not functions)

def _concat_items(key, axis, ndmin, trans1d):
    """numpy's AxisConcatenator (np.r_: axis 0, np.c_: last axis, items made 2-d with 1-d
    ones as columns) for items that may be traced; slices give numpy's constant ranges."""
    items = key if isinstance(key, tuple) else (key,)
    parts = []
    for item in items:
        if isinstance(item, str):
            raise NotImplementedError(
                f"np.r_/np.c_ with a directive string ({item!r}) and traced values is not "
                f"supported; use np.concatenate(..., axis=) or np.stack")
        if isinstance(item, slice):
            v = np.r_[item]
        else:
            v = asvalue(item)
        nd = len(_shape(v))
        if nd < ndmin:
            v = reshape(v, (1,) * (ndmin - nd) + _shape(v))
            if trans1d != -1:  # numpy's axis order for the new leading axes
                k2, k1 = ndmin - nd, trans1d if trans1d >= 0 else trans1d + ndmin - nd + 1
                axes = list(range(ndmin))
                v = transpose(v, axes[:k1] + axes[k2:] + axes[k1:k2])
        parts.append(v)
    return concatenate(parts, axis)


class _RoutedConcatenator:
    """np.r_ / np.c_ that accept traced items (numpy's own object first, as _routed)."""

    def __init__(self, orig, axis, ndmin, trans1d):
        self._orig, self._args = orig, (axis, ndmin, trans1d)

    def __getitem__(self, key):
        if getattr(_local, "busy", False):
            return self._orig[key]
        _local.busy = True
        try:
            return self._orig[key]
        except ArrayConversion:
            if not _active():
                raise
        finally:
            _local.busy = False
        return _concat_items(key, *self._args)

    def __len__(self):
        return len(self._orig)

    def __getattr__(self, name):
        return getattr(self._orig, name)


# ---------------------------------------------------------------------------------------------
# integer scalar types

def _routed_int_type(orig):
    """A subclass of numpy's integer type whose constructor casts a traced value (np.dtype of
    the subclass is the original's, so `dtype=np.int64` keeps working while installed)."""
    def __new__(cls, *args, **kwargs):
        if args and _is_traced(args[0]) and _active() and not kwargs and len(args) == 1:
            return E.cast(args[0], orig)
        return orig(*args, **kwargs)
    return type(orig.__name__, (orig,), {"__new__": __new__, "__module__": "numpy",
                                         "__doc__": orig.__doc__})


# ---------------------------------------------------------------------------------------------
# what is routed

def _replacements() -> dict:
    """(module, name) -> the routed attribute, for every numpy attribute that is routed."""
    out = {}
    for name, ours in (("array", array), ("asarray", asarray), ("asanyarray", asarray),
                       ("ascontiguousarray", asarray), ("asfortranarray", asarray)):
        out[(np, name)] = _routed(getattr(np, name), _creation(ours, f"np.{name}"))
    for mod, prefix in ((np, "np."), (np.linalg, "np.linalg.")):
        for name in dir(mod):
            if name.startswith("_") or name in _CALLBACKS or (mod, name) in out:
                continue
            fn = getattr(mod, name)
            # ufuncs stay (np.add.reduce, isinstance checks; they see lists only as operands)
            if not callable(fn) or isinstance(fn, (np.ufunc, type)):
                continue
            if FUNCTIONS.get(fn) is not None:
                out[(mod, name)] = _routed(fn, _dispatch(fn, prefix + name))
    out[(np, "r_")] = _RoutedConcatenator(np.r_, 0, 1, -1)
    out[(np, "c_")] = _RoutedConcatenator(np.c_, -1, 2, 0)
    for name in _INT_TYPES:
        t = getattr(np, name, None)
        if isinstance(t, type) and issubclass(t, np.integer) and (np, name) not in out:
            out[(np, name)] = _routed_int_type(t)
    return out


_REPLACEMENTS: dict = {}


def _install():
    if not _REPLACEMENTS:
        _REPLACEMENTS.update(_replacements())
    for (mod, name), routed in _REPLACEMENTS.items():
        _saved[(mod, name)] = mod.__dict__[name]
        setattr(mod, name, routed)


def _uninstall():
    for (mod, name), orig in _saved.items():
        setattr(mod, name, orig)
    _saved.clear()


@contextlib.contextmanager
def routing_lists():
    """Route the numpy module's attributes through autodiff_jit while the body runs (a trace,
    or a tape-mode grad call): lists holding traced values become stacks of them."""
    with _lock:
        if _installed[0] == 0:
            _install()
        _installed[0] += 1
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1
        with _lock:
            _installed[0] -= 1
            if _installed[0] == 0:
                _uninstall()


def routed_now() -> bool:
    """Whether numpy's attributes are routed at this moment (by any thread)."""
    return _installed[0] > 0
