"""Lists of traced values given to numpy: `np.array([x[1], -x[0]])`, `np.mean([a, b])`,
`np.sin([a, b])`, `np.r_[x, c]`, `np.full(shape, a)`, `np.int64(x)`, `np.float32(a)`.

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
Ufuncs are wrapped by an object that answers as the ufunc (isinstance, ==, hash, attributes,
and its methods .reduce/.accumulate/.outer/.at/.reduceat, routed the same way). While routed,
a warning that numpy issues inside a wrapper names the user's line, not the wrapper's
(`_warning_site`). docs/design/numpy.md explains why this design and not another.
"""
from __future__ import annotations

import functools
import os
import sys
import threading
import warnings

import numpy as np

from ..errors import ArrayConversion
from ..primitives import elementwise as E
from ._base import FUNCTIONS, UFUNCS, _dtype, _is_traced, _shape, asvalue, call, holds_traced
from .creation import array, asarray, ascontiguousarray, asfortranarray, full, full_like
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
# float scalar types: np.float32(traced) is a cast the gradient flows through (JAX's
# jnp.float32(x)); of a non-0-d value it is numpy's array cast
_FLOAT_TYPES = ("float32", "float64", "single", "double")

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


def _traced_item(x) -> bool:
    return _is_traced(x) or isinstance(x, (list, tuple)) and holds_traced(x)


def _routed_fill(orig, ours):
    """np.full / np.full_like: ours when the fill value is traced (numpy would write it into
    an ndarray with np.copyto, which no protocol lets a traced value through), numpy's
    otherwise."""
    @functools.wraps(orig)
    def wrapper(*args, **kwargs):
        fill = args[1] if len(args) > 1 else kwargs.get("fill_value")
        if _traced_item(fill) and _active():
            return ours(*args, **kwargs)
        return orig(*args, **kwargs)
    return wrapper


def _values(args):
    """args with each list or tuple that holds traced values built into one value."""
    return tuple(asvalue(a) if isinstance(a, (list, tuple)) and holds_traced(a) else a
                 for a in args)


_UFUNC_METHODS = ("reduce", "accumulate", "outer", "at", "reduceat")


class _RoutedUfunc:
    """A numpy ufunc that accepts lists of traced values: numpy's ufunc first, unchanged; on
    this thread's conversion error the lists are built into values and numpy's ufunc called
    again (it then dispatches to the values' __array_ufunc__). It answers as the ufunc does:
    isinstance(np.sin, np.ufunc), np.sin == numpy's sin (and the same hash, so tables keyed
    by ufuncs still find it), its attributes, and its methods routed the same way."""
    __slots__ = ("_orig", "_methods")

    def __init__(self, orig):
        self._orig = orig
        self._methods = {}   # made on first use: ~90 ufuncs x 5 methods at the first install

    def __call__(self, *args, **kwargs):
        try:
            return self._orig(*args, **kwargs)
        except ArrayConversion:
            if not _active() or _from_numpy(sys._getframe(1)):
                raise
        return self._orig(*_values(args), **kwargs)

    def __getattr__(self, name):
        method = self._methods.get(name)
        if method is None:
            if name not in _UFUNC_METHODS:
                return getattr(self._orig, name)
            method = self._methods.setdefault(name, _routed_method(getattr(self._orig, name)))
        return method

    @property
    def __class__(self):  # isinstance(np.add, np.ufunc) while routed
        return np.ufunc

    @property
    def __doc__(self):
        return self._orig.__doc__

    def __eq__(self, other):
        return self._orig == (other._orig if type(other) is _RoutedUfunc else other)

    def __hash__(self):
        return hash(self._orig)

    def __repr__(self):
        return repr(self._orig)

    def __reduce__(self):  # numpy pickles a ufunc by its name
        return _numpy_ufunc, (self._orig.__name__,)


def _numpy_ufunc(name):
    return getattr(np, name)


def _routed_method(orig):
    """A ufunc method (np.add.reduce, ...) falling back as _RoutedUfunc.__call__ does."""
    @functools.wraps(orig)
    def method(*args, **kwargs):
        try:
            return orig(*args, **kwargs)
        except ArrayConversion:
            if not _active() or _from_numpy(sys._getframe(1)):
                raise
        return orig(*_values(args), **kwargs)
    return method


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
# integer and float scalar types

class _SameType(type):
    """isinstance/issubclass against a routed scalar type mean the same as against numpy's
    (np.int64(3) still makes numpy's np.int64, not the subclass)."""
    def __instancecheck__(cls, obj):
        return isinstance(obj, cls.__bases__[0])

    def __subclasscheck__(cls, sub):
        return issubclass(sub, cls.__bases__[0])


def _routed_scalar_type(orig):
    """A subclass of numpy's scalar type whose constructor casts a traced value, or a list
    holding traced values, as numpy casts an array (np.dtype of the subclass is the
    original's, so `dtype=np.int64` keeps working while routed)."""
    def __new__(cls, *args, **kwargs):
        if len(args) == 1 and not kwargs and _traced_item(args[0]) and _active():
            return E.cast(asvalue(args[0]), orig)
        return orig(*args, **kwargs)
    return _SameType(orig.__name__, (orig,), {"__new__": __new__, "__module__": "numpy",
                                              "__doc__": orig.__doc__})


# ---------------------------------------------------------------------------------------------
# np.vectorize instances

# autodiff_jit.vectorize, registered by vectorize.py (a layer above this one)
_VECTORIZE = [None]


def register_vectorize(fn):
    _VECTORIZE[0] = fn


def _vectorize_call(orig):
    """numpy's vectorize.__call__ while routed: numpy's first, unchanged; when it asks a traced
    argument for its value, the same pyfunc, otypes, excluded and signature go to
    autodiff_jit.vectorize (which traces pyfunc once and vmaps it). numpy converts every
    argument before it calls pyfunc, so pyfunc has not run when the fallback starts. A class
    attribute rather than a module one: a vectorize object is usually made at import time,
    before any trace, and its class is numpy's."""
    @functools.wraps(orig)
    def __call__(self, *args, **kwargs):
        try:
            return orig(self, *args, **kwargs)
        except ArrayConversion:
            if not _active() or _from_numpy(sys._getframe(1)) or _VECTORIZE[0] is None:
                raise
        return _VECTORIZE[0](self.pyfunc, otypes=self.otypes or None,
                             excluded=self.excluded, signature=self.signature)(*args, **kwargs)
    return __call__


_VECTORIZE_CALL = (np.vectorize.__call__, _vectorize_call(np.vectorize.__call__))


# ---------------------------------------------------------------------------------------------
# what is routed

def _replacements() -> dict:
    """(module, name) -> the routed attribute, for every numpy attribute that is routed."""
    out = {}
    for name, ours in (("array", array), ("asarray", asarray), ("asanyarray", asarray),
                       ("ascontiguousarray", ascontiguousarray),
                       ("asfortranarray", asfortranarray)):
        out[(np, name)] = _routed(getattr(np, name), _calling(ours, f"np.{name}"))
    for mod in (np, np.linalg):
        prefix = mod.__name__.replace("numpy", "np") + "."
        for name in _FUNCTIONS[mod.__name__].split():
            fn = getattr(mod, name, None)
            if fn is not None and FUNCTIONS.get(fn) is not None:
                out[(mod, name)] = _routed(fn, _calling(FUNCTIONS[fn], prefix + name))
    out[(np, "full")] = _routed_fill(np.full, _calling(full, "np.full"))
    out[(np, "full_like")] = _routed_fill(np.full_like, _calling(full_like, "np.full_like"))
    for name, uf in list(np.__dict__.items()):  # not dir(np): getattr imports submodules
        if isinstance(uf, np.ufunc) and uf in UFUNCS and not name.startswith("_"):
            out[(np, name)] = _RoutedUfunc(uf)
    out[(np, "r_")] = _RoutedConcatenator(np.r_, 0, 1, -1)
    out[(np, "c_")] = _RoutedConcatenator(np.c_, -1, 2, 0)
    made = {}  # np.double is np.float64: one subclass for both names
    for name in _INT_TYPES + _FLOAT_TYPES:
        t = getattr(np, name, None)
        if isinstance(t, type) and issubclass(t, (np.integer, np.floating)) and \
                (np, name) not in out:
            out[(np, name)] = made.get(t) or made.setdefault(t, _routed_scalar_type(t))
    return out


# ---------------------------------------------------------------------------------------------
# warnings

_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_SHOWWARNMSG = [None]  # warnings' display hook while not routed


def _is_library(frame) -> bool:
    name = str(frame.f_globals.get("__name__", ""))
    return name.split(".")[0] in ("numpy", "autodiff_jit")


def _warning_site(msg):
    """(the frame a warning names, the user's frame) when the warning names our own code: a
    warning that numpy issues in a routed wrapper (a ufunc's "invalid value encountered")
    is located at the innermost Python frame, or numpy's `stacklevel=2` one, and that is
    the wrapper (or the source rewrite's call helper) instead of the user's line. None
    otherwise."""
    if not os.path.abspath(msg.filename).startswith(_OWN_DIR):
        return None
    frame = sys._getframe(2)
    while frame is not None and not (frame.f_code.co_filename == msg.filename and
                                     frame.f_lineno == msg.lineno):
        frame = frame.f_back
    site = frame
    while site is not None and _is_library(site):
        site = site.f_back
    return None if frame is None or site is None else (frame, site)


def _showwarnmsg(msg):
    """warnings' display hook while routed: a warning located in autodiff_jit's code is issued
    again at the user's line, so filters, the once-per-location registry and the message
    name that line (the first issue, at our line, only decided that it is not ignored)."""
    found = _warning_site(msg)
    if found is None:
        return _SHOWWARNMSG[0](msg)
    ours, site = found
    ours.f_globals.get("__warningregistry__", {}).clear()  # dedup by the user's line instead
    warnings.onceregistry.pop((str(msg.message), msg.category), None)
    g = site.f_globals
    try:
        warnings.warn_explicit(msg.message, msg.category, site.f_code.co_filename,
                               site.f_lineno, module=g.get("__name__"),
                               registry=g.setdefault("__warningregistry__", {}),
                               source=msg.source)
    except Warning:  # an "error" filter for the user's line
        raise
    except Exception:  # noqa: BLE001 - never fail a computation over where a warning points
        _SHOWWARNMSG[0](msg)


# ---------------------------------------------------------------------------------------------
# installation

_CLASSES: dict = {}  # module -> (numpy's class of the module, the routed subclass)


def _set_through(name, module, value):   # a write while routed goes to the module's dict
    module.__dict__[name] = value


def _del_through(name, module):
    del module.__dict__[name]


def _routed_class(mod, routed: dict):
    """A subclass of the module's class whose data descriptors give the routed attributes: a
    data descriptor of the class shadows the module's own __dict__ entry, so assigning the
    subclass to `mod.__class__` routes every name at once and assigning numpy's class back
    restores them (a trace or a tape-mode grad call enters this each time: one assignment
    instead of an update per name). Each getter is a C-level dict.get, so reading a routed
    attribute costs about what a module attribute does."""
    ns = {name: property({mod: value}.get, functools.partial(_set_through, name),
                         functools.partial(_del_through, name))
          for name, value in routed.items()}
    return type(type(mod).__name__, (type(mod),), ns)


_SWAPS: list = []   # (module, numpy's class, routed class) per routed module, from _CLASSES
_NP_VECTORIZE = np.vectorize   # (bound once: numpy's module __getattr__ makes np.x lookups slow)


def _install():
    if not _CLASSES:
        by_module: dict = {}
        for (mod, name), routed in _replacements().items():
            by_module.setdefault(mod, {})[name] = routed
        for mod, routed in by_module.items():
            _CLASSES[mod] = (type(mod), _routed_class(mod, routed))
        _SWAPS[:] = [(mod, orig, routed) for mod, (orig, routed) in _CLASSES.items()]
    for mod, _, routed in _SWAPS:
        mod.__class__ = routed
    _NP_VECTORIZE.__call__ = _VECTORIZE_CALL[1]
    _SHOWWARNMSG[0] = warnings._showwarnmsg
    warnings._showwarnmsg = _showwarnmsg


def _uninstall():
    for mod, orig, _ in _SWAPS:
        mod.__class__ = orig
    _NP_VECTORIZE.__call__ = _VECTORIZE_CALL[0]
    if warnings._showwarnmsg is _showwarnmsg:
        warnings._showwarnmsg = _SHOWWARNMSG[0]


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
