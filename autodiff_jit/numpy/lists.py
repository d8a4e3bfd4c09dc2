"""Lists of traced values given to numpy: `np.array([x[1], -x[0]])`, `np.mean([a, b])`,
`np.r_[x, c]`, `np.int64(x)`.

numpy converts a list by asking each element for its value (`__array__`) before any
`__array_function__` dispatch, and np.array/np.asarray are not dispatched at all, so no numpy
protocol lets a traced value inside a list reach autodiff_jit. While grad/jit trace a function
(or a tape-mode grad runs one), `routing_lists()` therefore replaces the attributes of the
numpy module that users call with thin wrappers: each calls numpy's original unchanged and,
only when that raises the tracer's own conversion exception (errors.ArrayConversion, raised by
`__array__` of a traced value or of a Tensor that requires grad), calls autodiff_jit's
implementation instead, which builds the list as a stack of its values. The swap is one
assignment of the module's type (a subclass whose descriptors give the wrappers, see
_routed_type), so entering costs well under a microsecond and numpy's module dict is never
written; on exit the module's own type is put back. Entering is reference-counted and
locked, so nested and concurrent traces share one installation; whether a wrapper may take the slow path is per thread (a
thread that is not tracing keeps numpy's behaviour, including tape mode's RuntimeError).
Without traced values a wrapper costs one Python call and a try block: it never scans a list.
docs/design/numpy.md explains why this design and not another.
"""
from __future__ import annotations

import functools
import sys
import threading

import numpy as np

from ..errors import ArrayConversion
from ..primitives import elementwise as E
from ._base import FUNCTIONS, _dtype, _is_traced, _shape, asvalue, call
from .creation import array, asarray
from .shape import concatenate, reshape, transpose

# the numpy functions routed: those whose array arguments users commonly write as lists.
# (Each routed name costs a little on every trace entry, and tape mode enters per grad call,
# so this is a table rather than every registered function; any other function given a list
# of traced values raises the tracer's TracingError, which names what to write instead.)
_FUNCTIONS = {
    "numpy": """sum prod mean std var max min amax amin ptp average median cumsum cumprod
        append concatenate stack hstack vstack dstack column_stack where dot vdot inner outer
        kron cross einsum clip diag trace reshape ravel transpose squeeze expand_dims
        atleast_1d atleast_2d sort argmax argmin tile repeat roll flip diff polyval interp
        linspace""",
    "numpy.linalg": "norm",
}
# integer scalar types: np.int64(traced) is a cast (zero gradient, as JAX's astype)
_INT_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "intp", "int_")

_lock = threading.Lock()
_installed = [0]            # how many routing_lists() are open, over all threads
_local = threading.local()  # .depth: how many are open in this thread


def _active() -> bool:
    return getattr(_local, "depth", 0) > 0


def _from_numpy(frame) -> bool:
    """Whether `frame` is numpy's own Python code (numpy's functions call np.asarray too: the
    outermost routed call, the user's, takes the fallback, so numpy's internals never see a
    traced value come back)."""
    if frame is None:
        return False
    name = str(frame.f_globals.get("__name__", ""))
    return name == "numpy" or name.startswith("numpy.")


def _routed(orig, ours):
    """numpy's `orig`, falling back to `ours` on a conversion error of this thread's trace.
    The fast path is the call and a try block; the checks run only after numpy refused."""
    @functools.wraps(orig)
    def wrapper(*args, **kwargs):
        try:
            return orig(*args, **kwargs)
        except ArrayConversion:
            if not _active() or _from_numpy(sys._getframe(1)):
                raise
        return ours(*args, **kwargs)
    return wrapper


def _calling(impl, name):
    """Our implementation of numpy's `name`, refusing the arguments it does not declare."""
    return lambda *args, **kwargs: call(impl, name, args, kwargs)


# ---------------------------------------------------------------------------------------------
# np.r_ and np.c_ (index expressions, not functions)

def _concat_items(key, axis, ndmin, trans1d):
    """numpy's AxisConcatenator (np.r_: axis 0, np.c_: last axis, items made 2-d with 1-d
    ones as columns) for items that may be traced; slices give numpy's constant ranges."""
    items = key if isinstance(key, tuple) else (key,)
    parts, kinds = [], []   # kinds: what numpy's result_type sees (a Python scalar stays weak)
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
        kinds.append(item if type(item) in np.ScalarType else np.dtype(_dtype(v)))
    # numpy casts every item to one result type first, so np.r_[x_f32, 1.0] stays float32
    final = np.result_type(*kinds) if kinds else None
    return concatenate([E.cast(v, final) if final is not None else v for v in parts], axis)


class _RoutedConcatenator:
    """np.r_ / np.c_ that accept traced items (numpy's own object first, as _routed)."""

    def __init__(self, orig, axis, ndmin, trans1d):
        self._orig, self._args = orig, (axis, ndmin, trans1d)

    def __getitem__(self, key):
        try:
            return self._orig[key]
        except ArrayConversion:
            if not _active() or _from_numpy(sys._getframe(1)):
                raise
        return _concat_items(key, *self._args)

    def __len__(self):
        return len(self._orig)

    def __getattr__(self, name):
        return getattr(self._orig, name)


# ---------------------------------------------------------------------------------------------
# integer scalar types

class _SameType(type):
    """isinstance/issubclass against a routed integer type mean the same as against numpy's
    (np.int64(3) still makes numpy's np.int64, not the subclass)."""
    def __instancecheck__(cls, obj):
        return isinstance(obj, cls.__bases__[0])

    def __subclasscheck__(cls, sub):
        return issubclass(sub, cls.__bases__[0])


def _routed_int_type(orig):
    """A subclass of numpy's integer type whose constructor casts a traced value (np.dtype of
    the subclass is the original's, so `dtype=np.int64` keeps working while routed)."""
    def __new__(cls, *args, **kwargs):
        if len(args) == 1 and not kwargs and _is_traced(args[0]) and _active():
            return E.cast(args[0], orig)
        return orig(*args, **kwargs)
    return _SameType(orig.__name__, (orig,), {"__new__": __new__, "__module__": "numpy",
                                              "__doc__": orig.__doc__})


# ---------------------------------------------------------------------------------------------
# what is routed

def _replacements() -> dict:
    """(module, name) -> the routed attribute, for every numpy attribute that is routed."""
    out = {}
    for name, ours in (("array", array), ("asarray", asarray), ("asanyarray", asarray),
                       ("ascontiguousarray", asarray), ("asfortranarray", asarray)):
        out[(np, name)] = _routed(getattr(np, name), _calling(ours, f"np.{name}"))
    for mod in (np, np.linalg):
        prefix = mod.__name__.replace("numpy", "np") + "."
        for name in _FUNCTIONS[mod.__name__].split():
            fn = getattr(mod, name, None)
            if fn is not None and FUNCTIONS.get(fn) is not None:
                out[(mod, name)] = _routed(fn, _calling(FUNCTIONS[fn], prefix + name))
    out[(np, "r_")] = _RoutedConcatenator(np.r_, 0, 1, -1)
    out[(np, "c_")] = _RoutedConcatenator(np.c_, -1, 2, 0)
    for name in _INT_TYPES:
        t = getattr(np, name, None)
        if isinstance(t, type) and issubclass(t, np.integer) and (np, name) not in out:
            out[(np, name)] = _routed_int_type(t)
    return out


_ROUTED: dict = {}    # module -> {name: routed attribute}
_SWAPS: list = []     # [module, its type when routing began, the routed subclass of that type]


def _routed_type(mod, base, routed):
    """A subclass of the module's type whose data descriptors give the routed attributes.
    Routing assigns it to `mod.__class__` (one store per module, whatever the number of
    names; a type's data descriptor wins over the module's own dict), and leaving assigns the
    old type back, so numpy's module dict is never written and numpy's objects stay in it."""
    ns = {"__slots__": (), "__module__": base.__module__, "__qualname__": base.__qualname__}
    for name, obj in routed.items():
        # fget is a C-level dict lookup: reading a routed name costs no Python frame.
        # A write or delete while routed goes to the module's dict (seen once routing ends).
        ns[name] = property({mod: obj}.__getitem__,
                            lambda m, v, n=name: m.__dict__.__setitem__(n, v),
                            lambda m, n=name: m.__dict__.__delitem__(n))
    return type(base.__name__, (base,), ns)


def _install():
    # a trace or a tape-mode grad call enters this each time: one class store per module
    if not _ROUTED:
        for (mod, name), routed in _replacements().items():
            _ROUTED.setdefault(mod, {})[name] = routed
        _SWAPS.extend([mod, None, None] for mod in _ROUTED)
    for swap in _SWAPS:
        mod = swap[0]
        base = type(mod)
        if base is not swap[1]:   # first use, or someone else changed the module's type
            swap[1:] = base, _routed_type(mod, base, _ROUTED[mod])
        mod.__class__ = swap[2]


def _uninstall():
    for mod, base, sub in _SWAPS:
        if type(mod) is sub:   # (unless someone else changed the module's type meanwhile)
            mod.__class__ = base


class _RoutingLists:
    """The context manager `routing_lists()` returns (a class: a tape-mode grad call enters
    it every time, and a generator-based one costs several microseconds more)."""
    __slots__ = ()

    def __enter__(self):
        with _lock:
            if _installed[0] == 0:
                _install()
            _installed[0] += 1
        _local.depth = getattr(_local, "depth", 0) + 1

    def __exit__(self, *exc):
        _local.depth -= 1
        with _lock:
            _installed[0] -= 1
            if _installed[0] == 0:
                _uninstall()
        return False


_ROUTING = _RoutingLists()


def routing_lists():
    """Route the numpy module's attributes through autodiff_jit while the body runs (a trace,
    or a tape-mode grad call): lists holding traced values become stacks of them.
    Reference-counted over threads; numpy's attributes come back when the last one exits."""
    return _ROUTING


def routed_now() -> bool:
    """Whether numpy's attributes are routed at this moment (by any thread)."""
    return _installed[0] > 0
