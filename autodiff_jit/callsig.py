"""Call signatures and result assembly for the fast call path of transformed functions.

A *call signature* is a hashable summary of a call's arguments -- per array its shape and
dtype, per scalar its type, the nesting of tuples/lists/dicts/namedtuples, static values --
computed in one walk, which also collects the dynamic leaves. api.Transformed maps signatures
seen before straight to an entry into compiled code; `assembler` rebuilds the result
structure of one specialization with the structure walk done once.

For the pytree call it saw last, a transformed function also keeps a `matcher`: Python code
generated for that one structure (dict keys, tuple lengths, per leaf its type, shape and
dtype as constants) that checks a call against it and calls the entry with the leaves in
the order the IR wants -- no signature tuple to build and hash, no reordering step.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import tree

# numpy's scalar types captured at import: while a trace runs, numpy/lists.py routes the
# np.float64/np.float32 attributes (subclasses whose constructor casts traced values)
_F64, _F32 = np.float64, np.float32

NO_SIG = object()   # in a positional signature: a leaf it does not cover (never registered)


def fast_sig(x):
    """Cheap signature of a plain positional argument; NO_SIG for anything else (no exception:
    raising one costs about as much as the whole fast call)."""
    t = type(x)
    if t is np.ndarray and x.dtype.isnative:  # byte-swapped arrays take the converting path
        return (x.shape, x.dtype)
    if t is float or t is _F64 or t is _F32:
        return t
    return NO_SIG


TREE = object()     # first item of a pytree call signature (never equal to a positional one)
STATIC = object()   # marks a static value in a call signature
_SCALAR_TYPES = frozenset([float, int, bool, np.float64, np.float32, np.float16, np.int64,
                           np.int32, np.int16, np.int8, np.uint8, np.uint16, np.uint32, np.uint64,
                           np.bool_])


def tree_sig(x, leaves):
    """Call signature of one argument, appending its dynamic leaves to `leaves` (dict values
    in insertion order: the entry reorders them to tree.flatten's order); TypeError for
    anything the general path must handle (tracers, Tensors, array-likes, other containers)."""
    t = type(x)
    if t is np.ndarray:
        if not x.dtype.isnative:   # byte-swapped: the general path converts it
            raise TypeError
        leaves.append(x)
        return (x.shape, x.dtype)
    if t in _SCALAR_TYPES:
        leaves.append(x)
        return t
    if t is dict:
        return (tuple(x), seq_sig(x.values(), leaves))
    if t is tuple or t is list:
        return (t, seq_sig(x, leaves))
    if x is None:
        return None
    if t is str:   # a static leaf (e.g. an option passed by keyword)
        return (STATIC, t, x)
    if isinstance(x, tuple) and hasattr(x, "_fields"):   # namedtuple
        return (t, seq_sig(x, leaves))
    raise TypeError


def seq_sig(xs, leaves):
    sig = []
    for v in xs:   # arrays and dicts inline: the common cases, a call less each
        t = type(v)
        if t is np.ndarray and v.dtype.isnative:
            leaves.append(v)
            sig.append((v.shape, v.dtype))
        elif t is dict:
            sig.append((tuple(v), seq_sig(v.values(), leaves)))
        else:
            sig.append(tree_sig(v, leaves))
    return tuple(sig)


class _Slot:
    """Stands in for the leaf tree_sig collected at position `i` of its walk."""
    __slots__ = ("i",)

    def __init__(self, i):
        self.i = i


def walk_slots(args, kwargs, static=frozenset()):
    """(args, kwargs) with each leaf tree_sig collects replaced by a _Slot holding its position
    in that walk, and static positional arguments by None (as the general path's flattening
    sees them). Flattened like the call, its slots say, per dynamic leaf, where the walk put
    it: by position, so one object passed in two places is two leaves."""
    count = iter(range(1 << 62))
    marked_args = tuple(None if i in static else _mark(a, count) for i, a in enumerate(args))
    return marked_args, {k: _mark(v, count) for k, v in kwargs.items()}


def _mark(x, count):
    t = type(x)
    if t is np.ndarray or t in _SCALAR_TYPES:
        return _Slot(next(count))
    if t is dict:
        return {k: _mark(v, count) for k, v in x.items()}
    if t is tuple or t is list:
        return t([_mark(v, count) for v in x])
    if isinstance(x, tuple) and hasattr(x, "_fields"):   # namedtuple
        return t(*[_mark(v, count) for v in x])
    return x   # None; a str (a static leaf)


def dynamic_order(args, kwargs, static=frozenset()):
    """Per dynamic leaf of the general path (tree.flatten order: dict keys sorted), its
    position among the leaves tree_sig collects (dict values in insertion order)."""
    return [s.i for s in tree.flatten(walk_slots(args, kwargs, static))[0] if type(s) is _Slot]


MISS = object()   # what a matcher returns for a call of another structure


def matcher(args, kwargs, order, entry, lru, uid):
    """Generated `match(args, kwargs)` for calls structured like (args, kwargs): `entry(*leaves
    in `order`)` (after moving `uid` to the end of `lru`, the LRU order) when a call has the
    same positional count, keyword names, dict keys, tuple/list lengths and, per leaf, the
    same type (arrays: also shape and dtype), else MISS. None for structures it does not
    cover (namedtuples, strings: their signature path stays)."""
    src = _MatcherSource({"MISS": MISS, "entry": entry, "move": lru.move_to_end, "uid": uid,
                          "ndarray": np.ndarray})
    try:
        for i, a in enumerate(args):
            src.walk(a, f"args[{i}]")
        for k, v in kwargs.items():
            src.walk(v, f"kwargs[{src.const(k)}]")
    except TypeError:
        return None
    if len(order) != len(src.leaves):
        return None
    lines = ["def match(args, kwargs):",
             f"    if len(args) != {len(args)} or len(kwargs) != {len(kwargs)}: return MISS",
             "    try:"]
    lines += [f"        {line}" for line in src.body]
    lines += ["    except KeyError:   # a dict without one of the keys",
              "        return MISS",
              "    try:",
              "        move(uid)",
              "    except KeyError:   # evicted by another thread meanwhile: the entry still works",
              "        pass",
              f"    return entry({', '.join(src.leaves[i] for i in order)})"]
    env = src.env
    exec(compile("\n".join(lines), "<callsig.matcher>", "exec"), env)   # noqa: S102
    return env.pop("match")   # (left in its own globals it would be a reference cycle)


class _MatcherSource:
    """The checks of one generated matcher: `body` lines, leaf variable names in walk
    order, constants in `env` (the function's globals)."""

    def __init__(self, env):
        self.env, self.body, self.leaves = env, [], []

    def const(self, value) -> str:
        name = f"k{len(self.env)}"
        self.env[name] = value
        return name

    def walk(self, x, expr):
        t, body = type(x), self.body
        if t is np.ndarray or t in _SCALAR_TYPES:
            name = f"l{len(self.leaves)}"
            self.leaves.append(name)
            body.append(f"{name} = {expr}")
            if t is np.ndarray:
                body.append(f"if type({name}) is not ndarray or {name}.shape != "
                            f"{self.const(x.shape)} or {name}.dtype != {self.const(x.dtype)}: "
                            f"return MISS")
            else:
                body.append(f"if type({name}) is not {self.const(t)}: return MISS")
        elif t is dict or t is tuple or t is list:
            name = f"v{len(body)}"
            body.append(f"{name} = {expr}")
            body.append(f"if type({name}) is not {self.const(t)} or len({name}) != {len(x)}: "
                        f"return MISS")
            for k, v in (x.items() if t is dict else enumerate(x)):
                self.walk(v, f"{name}[{self.const(k)}]")
        elif x is None:
            body.append(f"if {expr} is not None: return MISS")
        else:   # namedtuple, str, ...: left to the signature path
            raise TypeError(t.__name__)


def assembler(kind, has_aux, argnums, spec):
    """flat results -> the transformed function's result structure, for one specialization
    (the structure walk done once; holds no reference to the transformed function)."""
    if kind == "jit":
        return tree.unflattener(spec.out_treedef)
    single = isinstance(argnums, numbers.Integral)
    first = 0 if kind == "grad" else 1     # grad does not return the value
    aux_of = tree.unflattener(spec.out_treedef) if has_aux else None
    n_aux = spec.n_aux   # (not `spec` itself in the closure: spec.assemble would be a cycle)
    lo_aux, pos = first, first + n_aux
    parts = []   # per differentiated argument: (rebuild its structure, first, end)
    for idx, td in spec.groups:
        parts.append((tree.unflattener(td), pos, pos + len(idx)))
        pos += len(idx)

    def assemble(outs):
        grads = [build(outs[lo:hi]) for build, lo, hi in parts]
        g = grads[0] if single else tuple(grads)
        if has_aux:
            aux = aux_of(outs[lo_aux:lo_aux + n_aux])
            return (g, aux) if kind == "grad" else ((outs[0], aux), g)
        return g if kind == "grad" else (outs[0], g)
    return assemble
