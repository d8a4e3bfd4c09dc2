"""Jacobian-vector products and Jacobians, with JAX's names: `jvp(fun, primals, tangents)`,
`vjp(fun, *primals)`, `jacfwd`, `jacrev`, `hessian`.

Each traces `fun`, applies the forward-mode (jvp.jvp_function) or reverse-mode
(ad.vjp_function) transform, and compiles the result once per signature through `api.jit`;
inside another transformation it records into the enclosing trace instead.
"""
from __future__ import annotations

import weakref

import numpy as np

from . import tree
from .ad import vjp_function
from .api import grad, jit
from .interpret import eval_function
from .ir import Function, is_float
from .jvp import jvp_function
from .primitives import aval_of
from .trace import Trace


def _record(outer_values, fn: Function, inputs):
    """Evaluate `fn` on `inputs`: recording every equation into the trace of the traced ones,
    or (eager use, e.g. mode="tape") computing it with numpy."""
    contexts = [x._adj_context for x in outer_values if hasattr(x, "_adj_context")]
    if not contexts:
        return eval_function(fn, inputs)
    ctx = max(contexts, key=lambda c: c.level)
    return eval_function(fn, inputs, apply=lambda prim, *a, **p: ctx.process(prim, a, p))


def _trace_leaves(fun, leaves, treedef, name):
    trace = Trace()
    tracers = [trace.new_arg(aval_of(x)) for x in leaves]
    out = fun(*tree.unflatten(treedef, tracers))
    out_leaves, out_tree = tree.flatten(out)
    return trace.to_function(name, out_leaves), out_tree, trace.captured_outer


def _cached(table, fun, mode, build):
    per_fun = table.setdefault(mode, weakref.WeakKeyDictionary())
    try:
        compiled = per_fun.get(fun)
    except TypeError:  # not weak-referenceable: no cache
        return build()
    if compiled is None:
        compiled = build()
        per_fun[fun] = compiled
    return compiled


_JVP: dict = {}


def _leaf_dtype(x):
    return np.asarray(x).dtype if not isinstance(x, float) else np.dtype(np.float64)


def _is_float_leaf(x):
    return is_float(_leaf_dtype(x))
_VJP: dict = {}


def jvp(fun, primals, tangents, *, mode="compiled"):
    """(fun(*primals), J(primals) @ tangents), as jax.jvp. `primals` and `tangents` are tuples
    with the same structure, shapes and dtypes."""
    primals, tangents = tuple(primals), tuple(tangents)
    p_leaves, p_tree = tree.flatten(primals)
    t_leaves, t_tree = tree.flatten(tangents)
    if p_tree != t_tree or any(np.shape(p) != np.shape(t) for p, t in zip(p_leaves, t_leaves)):
        raise TypeError("jvp: primals and tangents must have the same structure and shapes")
    # a tangent has its primal's dtype (a Python-float primal is float64)
    t_leaves = [np.asarray(t, dtype=_leaf_dtype(p)) if _is_float_leaf(p) else t
                for p, t in zip(p_leaves, t_leaves)]
    tangents = tree.unflatten(t_tree, t_leaves)
    name = getattr(fun, "__name__", "fun").replace("<", "").replace(">", "")

    def body(primals, tangents):
        p_leaves, p_tree = tree.flatten(primals)
        t_leaves = tree.flatten(tangents)[0]
        fn, out_tree, captured = _trace_leaves(fun, p_leaves, p_tree, name)
        n = len(p_leaves)
        tfn = jvp_function(fn, [i for i in range(n) if is_float(fn.args[i].dtype)])
        floats = [t for t, a in zip(t_leaves, fn.args) if is_float(a.dtype)]
        outs = _record(p_leaves, tfn, list(p_leaves) + captured + floats)
        k = len(fn.results)
        return tree.unflatten(out_tree, outs[:k]), tree.unflatten(out_tree, outs[k:])

    compiled = _cached(_JVP, fun, mode, lambda: jit(body, mode=mode))
    return compiled(primals, tangents)


def vjp(fun, *primals, mode="compiled"):
    """(fun(*primals), vjp_fn) as jax.vjp: vjp_fn(cotangent) returns one cotangent per primal
    (zeros for non-float ones), each with its primal's structure."""
    name = getattr(fun, "__name__", "fun").replace("<", "").replace(">", "")

    def body(primals, cts):
        p_leaves, p_tree = tree.flatten(primals)
        fn, out_tree, captured = _trace_leaves(fun, p_leaves, p_tree, name)
        wrt = [i for i in range(len(p_leaves)) if is_float(fn.args[i].dtype)]
        adj = vjp_function(fn, wrt, seed_args=True, name=f"vjp_{name}")
        outs = _record(p_leaves, adj, list(p_leaves) + captured + tree.flatten(cts)[0])
        k = len(fn.results)
        grads = iter(outs[k:])
        leaves = [next(grads) if i in wrt else np.zeros(np.shape(x))
                  for i, x in enumerate(p_leaves)]
        return tree.unflatten(out_tree, outs[:k]), tree.unflatten(p_tree, leaves)

    compiled = _cached(_VJP, fun, mode, lambda: jit(body, mode=mode))
    value = _cached(_VALUE, fun, mode, lambda: jit(fun, mode=mode))(*primals)

    def vjp_fn(ct):
        return compiled(primals, ct)[1]

    return value, vjp_fn


_VALUE: dict = {}


def _basis(x):
    x = np.asarray(x)
    eye = np.eye(x.size, dtype=x.dtype if is_float(x.dtype) else np.float64)
    return [row.reshape(x.shape) for row in eye]


def jacfwd(fun, argnums=0, *, mode="compiled"):
    """The Jacobian of `fun` with respect to argument `argnums` (an int), by forward mode: one
    compiled JVP per input element. Result shape: output shape + input shape."""
    def jac(*args):
        x = np.asarray(args[argnums])
        if not is_float(x.dtype):
            x = x.astype(np.float64)
        zeros = [np.zeros(np.shape(a)) if is_float(np.asarray(a).dtype) else a for a in args]
        cols = []
        for direction in _basis(x):
            tangents = list(zeros)
            tangents[argnums] = direction
            cols.append(np.asarray(jvp(fun, args, tuple(tangents), mode=mode)[1]))
        out_shape = cols[0].shape
        return np.stack(cols, axis=-1).reshape(out_shape + x.shape)
    return jac


def jacrev(fun, argnums=0, *, mode="compiled"):
    """The Jacobian of `fun` with respect to argument `argnums` (an int), by reverse mode: one
    compiled VJP per output element. Result shape: output shape + input shape."""
    def jac(*args):
        out, pullback = vjp(fun, *args, mode=mode)
        out = np.asarray(out)
        rows = [np.asarray(pullback(ct)[argnums]) for ct in _basis(out)]
        return np.stack(rows).reshape(out.shape + np.shape(args[argnums]))
    return jac


def hessian(fun, argnums=0, *, mode="compiled"):
    """The Hessian of a scalar `fun`: forward mode over the compiled reverse-mode gradient."""
    return jacfwd(grad(fun, argnums=argnums, mode=mode), argnums=argnums, mode=mode)
