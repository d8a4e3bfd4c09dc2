"""Jacobian-vector products and Jacobians, with JAX's names: `jvp(fun, primals, tangents)`,
`vjp(fun, *primals)`, `jacfwd`, `jacrev`, `hessian`.

jvp and vjp trace `fun`, apply the forward-mode (jvp.jvp_function) or reverse-mode
(ad.vjp_function) transform, and compile the result once per signature through `api.jit`.
jacfwd and jacrev batch those transforms with vmap (vmap.batch_function) over the basis of
input directions / output cotangents, and hessian is jacfwd(jacrev(f)): each is one compiled
call per Jacobian. Inside another transformation they record into the enclosing trace instead.

    H = ad.hessian(f)(x)
    J = ad.jacfwd(f, argnums=(0, 1))(a, b)
"""
from __future__ import annotations

import numbers
import weakref

import numpy as np

from . import tree
from .ad import vjp_function
from .numpy.lists import routing_lists
from .api import _is_dynamic, _leaf_aval, jit
from .config import config
from .convert import converted
from .ir import dtype_name, is_float
from .jvp import jvp_function
from .primitives import aval_of, shape as S
from .primitives.indexing import slice_along
from .trace import Trace
from .vectorize import _jit_static_ints, _name, _record, _trace
from .vmap import batch_function

__all__ = ["jvp", "vjp", "jacfwd", "jacrev", "hessian"]


def _trace_leaves(fun, leaves, treedef, name):
    trace = Trace()
    tracers = [trace.new_arg(aval_of(x)) for x in leaves]
    with routing_lists():
        out = (converted(fun) if config.convert else fun)(*tree.unflatten(treedef, tracers))
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
    if hasattr(x, "_adj_context"):  # traced (jvp inside vmap or jit): no value to look at
        return aval_of(x).dtype
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
    t_leaves = [np.asarray(t, dtype=_leaf_dtype(p))
                if _is_float_leaf(p) and not hasattr(t, "_adj_context") else t
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
        outs = _record(tfn, list(p_leaves) + captured + floats)
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
        outs = _record(adj, list(p_leaves) + captured + tree.flatten(cts)[0])
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


# ---------------------------------------------------------------------------------------------
# Jacobians on vmap

def _argnums(argnums, kind):
    nums = (argnums,) if isinstance(argnums, numbers.Integral) else argnums
    if not isinstance(nums, tuple) or not nums or \
            not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in nums):
        raise TypeError(f"{kind}: argnums must be an int or a tuple of ints, got {argnums!r}")
    return tuple(int(a) for a in nums)


class _Jacobian:
    """The pieces every Jacobian body needs: fun traced on the call's arguments, the
    positions (into the traced function's arguments) of the differentiated leaves, and how to
    put the result back into JAX's nesting (output structure of argnums structures)."""

    def __init__(self, fun, argnums, has_aux, kind, args, kwargs):
        nums = _argnums(argnums, kind)
        for a in nums:
            if not -len(args) <= a < len(args):
                raise TypeError(f"{kind}: argnums={argnums!r} but {_name(fun)} was called with "
                                f"{len(args)} positional argument(s)")
        nums = tuple(a % len(args) for a in nums)
        # dynamic leaves, in flatten order, and which belong to which differentiated argument
        self.dyn, self.groups = [], []
        pos = {}
        dynamic = []  # per leaf of (args, kwargs): traced?
        for i, arg in enumerate(args):
            arg_leaves, td = tree.flatten(arg)
            idx = []
            for leaf in arg_leaves:
                # a positional Python int/bool not differentiated stays a Python value
                dyn = _is_dynamic(leaf) and not (i not in nums and type(arg) in (int, bool))
                dynamic.append(dyn)
                if dyn:
                    idx.append(len(self.dyn))
                    self.dyn.append(leaf)
            pos[i] = (idx, td, len(idx) == len(arg_leaves))
        for leaf in tree.flatten(dict(kwargs))[0]:
            dynamic.append(_is_dynamic(leaf))
            if dynamic[-1]:
                self.dyn.append(leaf)
        avals = [_leaf_aval(x) for x in self.dyn]
        for a in nums:
            idx, td, all_dyn = pos[a]
            if not all_dyn or not idx:
                raise TypeError(f"{kind}: argument {a} of {_name(fun)} is not an array or a pytree "
                                f"of arrays (got {type(args[a]).__name__}); differentiate with "
                                f"respect to float arrays or scalars")
            for i in idx:
                if not is_float(avals[i].dtype):
                    raise TypeError(
                        f"{kind} requires real floating-point inputs to differentiate, but an "
                        f"argument in argnums={argnums!r} of {_name(fun)} has dtype "
                        f"{dtype_name(avals[i].dtype)}; pass floats (e.g. 3.0 rather than 3, or "
                        f"x.astype(float)), or leave it out of argnums")
            self.groups.append((idx, td))
        self.int_argnums = isinstance(argnums, numbers.Integral)
        self.wrt = [i for idx, _ in self.groups for i in idx]
        self.in_avals = [avals[i] for i in self.wrt]
        trace, out = _trace(fun, args, kwargs, avals, dynamic)
        if has_aux:
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError(f"{_name(fun)} was transformed with has_aux=True, so it must "
                                f"return a pair (value, aux); got {type(out).__name__}")
            out, aux = out
        else:
            aux = None
        out_leaves, self.out_tree = tree.flatten(out)
        aux_leaves, self.aux_tree = tree.flatten(aux)
        self.n_out = len(out_leaves)
        self.fn = trace.to_function(_name(fun), out_leaves + aux_leaves)
        self.captured = trace.captured_outer
        self.out_avals = self.fn.out_avals[:self.n_out]
        self.has_aux = has_aux

    @property
    def inputs(self):
        return list(self.dyn) + list(self.captured)

    def assemble(self, blocks, aux_values):
        """blocks[i][j]: d out_i / d in_j (shape out_i + in_j) -> JAX's nesting."""
        per_out = []
        for row in blocks:
            it = iter(row)
            per_arg = [tree.unflatten(td, [next(it) for _ in idx]) for idx, td in self.groups]
            per_out.append(per_arg[0] if self.int_argnums else tuple(per_arg))
        jac = tree.unflatten(self.out_tree, per_out)
        if self.has_aux:
            return jac, tree.unflatten(self.aux_tree, aux_values)
        return jac


def _basis(avals, n):
    """Per aval, an (n, *shape) stack: row k is the k-th unit vector of all avals laid end to
    end, restricted to this aval."""
    out, off = [], 0
    for a in avals:
        size = a.size
        block = np.zeros((n, size), a.dtype if is_float(a.dtype) else np.float64)
        block[np.arange(off, off + size), np.arange(size)] = 1
        block = block.reshape((n,) + a.shape)
        block.flags.writeable = False  # (traced as one constant, not copied per use)
        out.append(block)
        off += size
    return out


def _split_last(x, lead_shape, avals, n):
    """x: lead_shape + (n,) -> one block lead_shape + aval.shape per aval (along the last
    axis)."""
    blocks, off = [], 0
    for a in avals:
        part = slice_along(x, len(lead_shape), off, a.size)
        blocks.append(S.reshape(part, tuple(lead_shape) + a.shape))
        off += a.size
    return blocks


def _zeros_jacobian(j):
    return [[np.zeros(o.shape + a.shape, o.dtype if is_float(o.dtype) else a.dtype)
             for a in j.in_avals] for o in j.out_avals]


def jacfwd(fun, argnums=0, has_aux=False, *, mode="compiled", _kind="jacfwd"):
    """The Jacobian of `fun` by forward mode, as jax.jacfwd: the JVP batched over the basis of
    input directions (one compiled call). For argnums an int, each output leaf's Jacobian has
    the differentiated argument's structure, with shape output shape + input shape; for a
    tuple, a tuple of those. has_aux: `fun` returns (value, aux) and the result is
    (Jacobian, aux)."""
    _argnums(argnums, _kind)

    def body(*args, **kwargs):
        j = _Jacobian(fun, argnums, has_aux, _kind, args, kwargs)
        n = sum(a.size for a in j.in_avals)
        n_res = len(j.fn.results)
        if n == 0 or any(o.size == 0 for o in j.out_avals):
            outs = _record(j.fn, j.inputs)
            return j.assemble(_zeros_jacobian(j), outs[j.n_out:])
        tfn = jvp_function(j.fn, j.wrt)
        tangents = _basis(j.in_avals, n)
        if n == 1:  # one direction: the JVP itself, no batch axis
            outs = _record(tfn, j.inputs + [t.reshape(t.shape[1:]) for t in tangents], fold=True)
            cols = [S.reshape(t, tuple(o.shape) + (1,)) for t, o in zip(outs[n_res:], j.out_avals)]
        else:
            # the directions go on the last axis of the tangents, where the Jacobian wants them
            # in the result: elementwise rules then broadcast the primal values against
            # them without moving either (and the identity basis is its own transpose)
            n_args = len(j.fn.args)
            bfn, _ = batch_function(tfn, [None] * n_args + [a.ndim for a in j.in_avals], n,
                                    [None] * n_res + [-1] * n_res, name=f"jacfwd_{j.fn.name}")
            outs = _record(bfn, j.inputs + [np.moveaxis(t, 0, -1) for t in tangents], fold=True)
            cols = outs[n_res:]
        blocks = [_split_last(c, o.shape, j.in_avals, n) for c, o in zip(cols, j.out_avals)]
        return j.assemble(blocks, outs[j.n_out:n_res])

    body.__name__ = f"jacfwd_{_name(fun)}"
    nums = _argnums(argnums, _kind)
    return _jit_static_ints(body, mode, lambda i: i not in nums, f"{_kind}({_name(fun)})", fun)


def jacrev(fun, argnums=0, has_aux=False, *, mode="compiled", _kind="jacrev"):
    """The Jacobian of `fun` by reverse mode, as jax.jacrev: the VJP batched over the basis of
    output cotangents (one compiled call). Result structure as jacfwd."""
    _argnums(argnums, _kind)

    def body(*args, **kwargs):
        j = _Jacobian(fun, argnums, has_aux, _kind, args, kwargs)
        m = sum(o.size for o in j.out_avals)
        n_res = len(j.fn.results)
        if m == 0 or any(a.size == 0 for a in j.in_avals):
            outs = _record(j.fn, j.inputs)
            return j.assemble(_zeros_jacobian(j), outs[j.n_out:])
        adj = vjp_function(j.fn, j.wrt, seed_args=True, n_seeded=j.n_out,
                           name=f"jacrev_{j.fn.name}")
        seeds = _basis(j.out_avals, m)
        if m == 1:  # one output element (a gradient): the VJP itself, no batch axis
            outs = _record(adj, j.inputs + [s.reshape(s.shape[1:]) for s in seeds])
            blocks = [[S.reshape(g, o.shape + a.shape) if o.size else
                       np.zeros(o.shape + a.shape, a.dtype)
                       for g, a in zip(outs[n_res:], j.in_avals)] for o in j.out_avals]
            return j.assemble(blocks, outs[j.n_out:n_res])
        bfn, _ = batch_function(adj, [None] * len(j.fn.args) + [0] * j.n_out, m,
                                [None] * n_res + [0] * len(j.wrt), name=f"jacrev_{j.fn.name}")
        outs = _record(bfn, j.inputs + seeds, fold=True)
        # outs[n_res + k]: (m, *in_k); output i's block is rows off_i .. off_i + size_i
        blocks = [[None] * len(j.in_avals) for _ in j.out_avals]
        for k, (g, a) in enumerate(zip(outs[n_res:], j.in_avals)):
            off = 0
            for i, o in enumerate(j.out_avals):
                blocks[i][k] = S.reshape(slice_along(g, 0, off, o.size), o.shape + a.shape)
                off += o.size
        return j.assemble(blocks, outs[j.n_out:n_res])

    body.__name__ = f"jacrev_{_name(fun)}"
    nums = _argnums(argnums, _kind)
    return _jit_static_ints(body, mode, lambda i: i not in nums, f"{_kind}({_name(fun)})", fun)


def hessian(fun, argnums=0, has_aux=False, *, mode="compiled"):
    """The Hessian of `fun`, as jax.hessian: jacfwd(jacrev(fun)), one compiled call. For a
    scalar `fun` of an array x the result has shape x.shape + x.shape."""
    return jacfwd(jacrev(fun, argnums, has_aux, mode=mode, _kind="hessian"), argnums, has_aux,
                  mode=mode, _kind="hessian")
