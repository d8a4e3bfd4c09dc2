"""Call signatures and result assembly for the fast call path of transformed functions.

A *call signature* is a hashable summary of a call's arguments -- per array its shape and
dtype, per scalar its type, the nesting of tuples/lists/dicts/namedtuples, static values --
computed in one walk, which also collects the dynamic leaves. api.Transformed maps signatures
seen before straight to an entry into compiled code; `assembler` rebuilds the result
structure of one specialization with the structure walk done once.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import tree

NO_SIG = object()   # in a positional signature: a leaf it does not cover (never registered)


def fast_sig(x):
    """Cheap signature of a plain positional argument; NO_SIG for anything else (no exception:
    raising one costs about as much as the whole fast call)."""
    t = type(x)
    if t is np.ndarray and x.dtype.isnative:  # byte-swapped arrays take the converting path
        return (x.shape, x.dtype)
    if t is float or t is np.float64 or t is np.float32:
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
