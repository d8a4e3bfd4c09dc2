"""What a transformed function reads from its environment, and the per-call guard on it.

A compiled specialization is reused on later calls, so everything the function read while it
was traced, other than its arguments, must still be what it was -- numpy's answer is the one
the function would compute now. `find_sources(fun)` lists the places the function (and the
user functions it reaches) reads values from: its globals named in its code, its closure
cells, its defaults, attributes of the objects it reaches (`self.W`) and the items of small
containers among those (`params["W"]`, `layers[0]`). Modules are not followed (`np.pi` costs
nothing).

`Guard` checks them on each call: every value must be the same object it was at trace time
(immutable scalars and strings: an equal value of the same type). A numpy array the trace used
as an operand is not copied into the compiled code: it is passed as an extra (hidden) argument,
so a write into it between calls is seen at once (see trace.Trace.lift_ids). A failed guard
sends the call to the general path, which specializes again.
"""
from __future__ import annotations

import functools
import types

import numpy as np

from .convert.core import _is_user_function

# Bounds on the walk (beyond them a value is guarded by identity only: documented).
MAX_DEPTH = 4          # function -> function / object -> attribute -> container item ...
MAX_ITEMS = 64         # items of one container that are checked
MAX_SOURCES = 256      # checks per specialization

_IMMUTABLE = (bool, int, float, complex, str, bytes, np.generic, type(None))
# dtypes an array operand can be passed in as a hidden argument (others stay constants)
LIFTABLE_KINDS = frozenset("fiub")


class Source:
    """One place a value was read from: `holder[key]` (a dict, list or tuple), or the contents
    of a closure cell (key None)."""
    __slots__ = ("holder", "key", "value", "label")

    def __init__(self, holder, key, value, label):
        self.holder, self.key, self.value, self.label = holder, key, value, label

    def read(self):
        if self.key is None:
            return self.holder.cell_contents
        return self.holder[self.key]

    def __repr__(self):
        return f"Source({self.label})"


def liftable(arr) -> bool:
    """Whether an array the trace uses as an operand is passed in as a hidden argument: a
    read-only array owning its memory cannot be written, so it stays a constant of the
    compiled code (which passes may fold); so do dtypes the backend takes no arguments of."""
    return type(arr) is np.ndarray and arr.ndim > 0 and arr.dtype.isnative and \
        arr.dtype.kind in LIFTABLE_KINDS and arr.dtype != np.float16 and \
        (arr.flags.writeable or arr.base is not None)


def _code_names(code: types.CodeType, out: set) -> set:
    """Global and attribute names the code (and code nested in it) reads."""
    out.update(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _code_names(c, out)
    return out


class _Walk:
    def __init__(self):
        self.sources: list[Source] = []
        self.seen: set[int] = set()     # ids of holders' items already listed
        self.visited: set[int] = set()  # ids of functions and objects already walked
        self.keep: list = []            # keeps what `seen`/`visited` ids name alive

    def add(self, holder, key, value, label, names, depth):
        mark = (id(holder), key if isinstance(key, (int, str)) else id(key))
        if mark in self.seen or len(self.sources) >= MAX_SOURCES:
            return
        self.seen.add(mark)
        self.keep.append(holder)
        if isinstance(value, types.ModuleType):
            return
        self.sources.append(Source(holder, key, value, label))
        self.value(value, label, names, depth)

    def value(self, v, label, names, depth):
        """Walk into what `v` holds that the function may read."""
        if depth >= MAX_DEPTH or isinstance(v, _IMMUTABLE) or isinstance(v, np.ndarray):
            return
        if isinstance(v, (dict, list, tuple)):
            if len(v) <= MAX_ITEMS:
                items = v.items() if isinstance(v, dict) else enumerate(v)
                for k, item in items:
                    self.add(v, k, item, f"{label}[{k!r}]", names, depth + 1)
            return
        self.callable_or_object(v, label, names, depth + 1)

    def callable_or_object(self, v, label, names, depth):
        if id(v) in self.visited:
            return
        self.visited.add(id(v))
        self.keep.append(v)
        try:   # (an object's __getattr__ may raise anything: then it is guarded by identity)
            wrapped = None if isinstance(v, type) else getattr(v, "__wrapped__", None)
            rules = (v.fwd, v.bwd) if hasattr(type(v), "defvjp") else ()   # custom_vjp
        except Exception:
            return
        if wrapped is not None:   # transformed functions, functools.wraps
            self.callable_or_object(wrapped, label, names, depth)
        for rule in rules:
            if rule is not None:
                self.callable_or_object(rule, label, names, depth)
        if isinstance(v, types.FunctionType):
            self.function(v, depth)
        elif isinstance(v, types.MethodType):
            self.function(v.__func__, depth, self_obj=v.__self__)
        elif isinstance(v, functools.partial):
            self.value(v.func, label, names, depth)
            self.add_items(v.args, f"{label}.args", names, depth)
            if v.keywords:
                self.add_items(v.keywords, f"{label}.keywords", names, depth)
        elif not isinstance(v, (type, types.BuiltinFunctionType)) and \
                hasattr(v, "__dict__") and _is_user_type(type(v)):
            self.object(v, label, names, depth)

    def add_items(self, container, label, names, depth):
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for k, item in items:
            self.add(container, k, item, f"{label}[{k!r}]", names, depth)

    def function(self, f, depth, self_obj=None):
        if not _is_user_function(f):
            # library code (a transform's wrapper closing over the user's function: jacfwd,
            # vmap): only the functions it closes over are followed
            for name, cell in zip(f.__code__.co_freevars, f.__closure__ or ()):
                try:
                    contents = cell.cell_contents
                except ValueError:
                    continue
                if callable(contents) and not isinstance(contents, type):
                    self.add(cell, None, contents, name, set(), depth)
            return
        names = _code_names(f.__code__, set())
        g = f.__globals__
        for name in sorted(names):
            if name in g:
                self.add(g, name, g[name], name, names, depth)
        for name, cell in zip(f.__code__.co_freevars, f.__closure__ or ()):
            try:
                contents = cell.cell_contents
            except ValueError:   # not assigned yet
                continue
            self.add(cell, None, contents, name, names, depth)
        if f.__defaults__:
            self.add_items(f.__defaults__, f"{f.__name__}.__defaults__", names, depth)
        if f.__kwdefaults__:
            self.add_items(f.__kwdefaults__, f"{f.__name__}.__kwdefaults__", names, depth)
        if self_obj is not None:
            self.object(self_obj, "self", names, depth)

    def object(self, obj, label, names, depth):
        """Attributes of `obj` that the walked code names (`self.W`), and the methods it
        names (`self.forward(x)`), walked with the same object."""
        if depth >= MAX_DEPTH:
            return
        attrs = getattr(obj, "__dict__", None)
        if not isinstance(attrs, dict):
            return
        cls = type(obj)
        for name in sorted(names):
            if name in attrs:
                self.add(attrs, name, attrs[name], f"{label}.{name}", names, depth)
            else:
                method = getattr(cls, name, None)
                if isinstance(method, types.FunctionType) and id(method) not in self.visited:
                    self.visited.add(id(method))
                    self.function(method, depth + 1, self_obj=obj)
        call = getattr(cls, "__call__", None)
        if isinstance(call, types.FunctionType) and id(call) not in self.visited:
            self.visited.add(id(call))
            self.function(call, depth + 1, self_obj=obj)


def _is_user_type(cls) -> bool:
    module = (getattr(cls, "__module__", None) or "").split(".")[0]
    return module not in ("builtins", "numpy", "autodiff_jit", "scipy", "torch", "jax")


def find_sources(fun) -> list[Source]:
    """Where `fun` (a function, bound method, transformed function, partial or callable
    object) and the user functions it reaches read values from, with the values now."""
    walk = _Walk()
    walk.callable_or_object(fun, getattr(fun, "__name__", "fun"), set(), 0)
    return walk.sources


class Stale(Exception):
    """Raised by a guarded call entry whose guard failed: the caller takes the general path."""


class Guard:
    """The per-call check of one specialization's sources, and the arrays passed in as hidden
    arguments (the user's own arrays, in the order of the IR's trailing arguments)."""

    def __init__(self, sources: list[Source], hidden: list):
        self.sources = sources
        self.hidden = tuple(hidden)
        self.holds = self._compile()

    def _compile(self):
        """`holds()` and `entry(raw)`: generated code, one comparison per source (no loop, no
        calls but the reads), failing when a read fails (a deleted global, a shorter list)."""
        env, terms = {"Stale": Stale}, []
        for i, s in enumerate(self.sources):
            env[f"h{i}"], env[f"e{i}"] = s.holder, s.value
            read = f"h{i}.cell_contents" if s.key is None else f"h{i}[k{i}]"
            if s.key is not None:
                env[f"k{i}"] = s.key
            v = s.value
            if isinstance(v, np.ndarray) and v.ndim == 0:
                # a 0-d array is read as a number when traced: its value is checked too
                env[f"b{i}"] = v.tobytes()
                terms.append(f"((v := {read}) is e{i} and v.tobytes() == b{i})")
            elif isinstance(v, _IMMUTABLE) and v is not None:
                env[f"t{i}"] = type(v)
                terms.append(f"((v := {read}) is e{i} or (type(v) is t{i} and v == e{i}))")
            else:
                terms.append(f"{read} is e{i}")
        for i, arr in enumerate(self.hidden):
            env[f"x{i}"] = arr
        body = " and ".join(terms) or "True"
        extra = "".join(f", x{i}" for i in range(len(self.hidden)))
        src = (f"def holds():\n"
               f"    try:\n        return bool({body})\n"
               f"    except Exception:\n        return False\n"
               f"def entry(raw):\n"
               f"    def guarded(*args):\n"
               f"        try:\n            ok = {body}\n"
               f"        except Exception:\n            ok = False\n"
               f"        if ok:\n            return raw(*args{extra})\n"
               f"        raise Stale\n"
               f"    return guarded\n")
        exec(compile(src, "<autodiff_jit guard>", "exec"), env)
        self._entry = env["entry"]
        return env["holds"]

    def wrap_raw(self, raw):
        """`raw(*leaves)` with the guard checked and the hidden arrays appended (raises Stale
        when the guard fails)."""
        return self._entry(raw)

    def describe(self) -> list[str]:
        return [s.label for s in self.sources]
