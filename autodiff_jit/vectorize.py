"""vmap, the user API of the batching transform (JAX's semantics). It returns a
`jit`-transformed function, so one call signature is traced, batched (autodiff_jit/vmap.py),
optimized and compiled once, and then runs as one compiled call; called on traced values
(inside grad, jit, jvp or another vmap) it records into the enclosing trace. jacobians.py
builds jacfwd, jacrev and hessian on the helpers here.

    per_example_grads = ad.vmap(ad.grad(loss), in_axes=(None, 0, 0))(params, xs, ys)
"""
from __future__ import annotations

import functools
import inspect
import numbers
import re

import numpy as np

from . import tree
from .api import _is_dynamic, _leaf_aval, jit
from .config import config
from .numpy.lists import register_vectorize, routing_lists
from .convert import converted
from .interpret import eval_function
from .ir import AVal
from .primitives import aval_of
from .primitives.linalg import dot_general_p
from .trace import Trace
from .vmap import batch_function

__all__ = ["vmap", "vectorize"]


# ---------------------------------------------------------------------------------------------
# helpers

def _name(fun) -> str:
    name = getattr(fun, "__name__", "fun")
    for ch in "<>()":
        name = name.replace(ch, "")
    return name or "fun"


_FOLD_MAX = 1 << 20  # elements: larger constant products are left to run time


def _record(fn, inputs, fold=False):
    """Evaluate `fn` on `inputs`: recorded into the innermost trace (or tape) among them, or
    computed with numpy when none is traced. With `fold`, a dot_general of constants only
    whose result is no larger than its inputs is computed now (a Jacobian's `W @ I` is `W`:
    no identity matrix is multiplied at run time). Everything else is recorded: the basis
    stays one constant that the fused kernels read through slice views, and nothing large is
    built at trace time."""
    contexts = [x._adj_context for x in inputs if getattr(x, "_adj_context", None) is not None]
    if not contexts:
        return eval_function(fn, inputs)
    ctx = max(contexts, key=lambda c: c.level)

    def apply(prim, *args, **params):
        if fold and prim is dot_general_p and \
                not any(getattr(a, "_adj_context", None) is not None for a in args):
            in_size = sum(aval_of(a).size for a in args)
            if prim.abstract_eval([aval_of(a) for a in args], params)[0].size <= \
                    min(in_size, _FOLD_MAX):
                return prim.impl(*args, **params)
        return ctx.process(prim, args, params)
    return eval_function(fn, inputs, apply=apply)


def _trace(fun, args, kwargs, dyn_avals, dynamic=None):
    """Trace fun on fresh tracers of `dyn_avals` standing for the dynamic leaves of
    (args, kwargs) (per leaf, `dynamic`; default: arrays and numbers); other leaves are passed
    as they are. Returns (the Trace, fun's output)."""
    leaves, treedef = tree.flatten((tuple(args), dict(kwargs)))
    if dynamic is None:
        dynamic = [_is_dynamic(x) for x in leaves]
    trace = Trace()
    tracers = iter([trace.new_arg(a) for a in dyn_avals])
    full = [next(tracers) if d else x for x, d in zip(leaves, dynamic)]
    a, kw = tree.unflatten(treedef, full)
    with routing_lists():  # np.array([traced, ...]): numpy/lists.py
        out = (converted(fun) if config.convert else fun)(*a, **kw)  # control flow: convert/
    return trace, out


def _param_names(fun) -> list[str]:
    try:
        return [p.name for p in inspect.signature(fun).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return []


# ---------------------------------------------------------------------------------------------
# in_axes / out_axes: pytree prefixes of the arguments / outputs

class _Axis:
    """One leaf's mapped axis and a name for messages."""
    __slots__ = ("axis", "name")

    def __init__(self, axis, name):
        self.axis = axis
        self.name = name


def _is_axis_spec(a) -> bool:
    return a is None or (isinstance(a, numbers.Integral) and not isinstance(a, bool))


def _label(value, axis, name):
    """value's structure with every leaf replaced by _Axis(axis, its name)."""
    if value is None:
        return None
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*[_label(v, axis, f"{name}.{f}") for f, v in zip(value._fields, value)])
    if isinstance(value, (tuple, list)):
        return type(value)(_label(v, axis, f"{name}[{i}]") for i, v in enumerate(value))
    if isinstance(value, dict):
        return {k: _label(v, axis, f"{name}[{k!r}]") for k, v in value.items()}
    return _Axis(axis, name)


def _broadcast_prefix(prefix, value, name, what):
    """Match an in_axes/out_axes prefix against a value: its structure with an _Axis per leaf."""
    if _is_axis_spec(prefix):
        return _label(value, None if prefix is None else int(prefix), name)
    if isinstance(prefix, (tuple, list)):
        if not isinstance(value, (tuple, list)) or len(value) != len(prefix):
            got = f"a {type(value).__name__}" + (f" of length {len(value)}"
                                                 if isinstance(value, (tuple, list)) else "")
            raise ValueError(f"vmap {what}: {name} is {got}, but its {what} entry {prefix!r} "
                             f"expects a tuple or list of length {len(prefix)}")
        children = [_broadcast_prefix(p, v, f"{name}[{i}]", what)
                    for i, (p, v) in enumerate(zip(prefix, value))]
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return type(value)(*children)
        return type(value)(children)
    if isinstance(prefix, dict):
        if not isinstance(value, dict) or set(value) != set(prefix):
            raise ValueError(f"vmap {what}: {name} has keys "
                             f"{sorted(value, key=repr) if isinstance(value, dict) else None}, "
                             f"but its {what} entry has keys {sorted(prefix, key=repr)}")
        return {k: _broadcast_prefix(prefix[k], value[k], f"{name}[{k!r}]", what) for k in value}
    raise TypeError(f"vmap {what} must be an int, None, or a tuple/list/dict of them matching "
                    f"the structure of {name}; got {prefix!r}")


def _in_axes_leaves(in_axes, args, kwargs, fun):
    names = _param_names(fun)
    arg_name = [names[i] if i < len(names) else f"argument {i}" for i in range(len(args))]
    if isinstance(in_axes, (tuple, list)):
        if len(in_axes) != len(args):
            raise ValueError(f"vmap in_axes has {len(in_axes)} entries but {_name(fun)} was "
                             f"called with {len(args)} positional arguments; give one entry "
                             f"per positional argument (None for an unmapped one)")
        per_arg = [_broadcast_prefix(p, a, n, "in_axes")
                   for p, a, n in zip(in_axes, args, arg_name)]
    elif _is_axis_spec(in_axes):
        per_arg = [_broadcast_prefix(in_axes, a, n, "in_axes") for a, n in zip(args, arg_name)]
    else:
        raise TypeError(f"vmap in_axes must be an int, None, or a tuple with one entry per "
                        f"positional argument; got {in_axes!r}")
    # keyword arguments are mapped over their leading axis, as in JAX
    per_kw = {k: _broadcast_prefix(0, v, k, "in_axes") for k, v in kwargs.items()}
    return tree.flatten((tuple(per_arg), per_kw))[0]


# ---------------------------------------------------------------------------------------------
# vmap

def _vmap_call(fun, in_axes, out_axes, axis_size, args, kwargs):
    leaves = tree.flatten((tuple(args), dict(kwargs)))[0]
    specs = _in_axes_leaves(in_axes, args, kwargs, fun)
    size, first = axis_size, None
    dyn, dyn_avals, in_dims, dynamic = [], [], [], []
    for leaf, spec in zip(leaves, specs):
        # unmapped Python ints and bools stay Python values (sizes, flags), as in JAX
        static = not _is_dynamic(leaf) or (type(leaf) in (int, bool) and spec.axis is None)
        dynamic.append(not static)
        if static:
            if spec.axis is not None:
                raise TypeError(f"vmap: {spec.name} is a {type(leaf).__name__}, not an array, so "
                                f"it cannot be mapped; give it in_axes None")
            continue
        aval = _leaf_aval(leaf)
        d = spec.axis
        if d is not None:
            if aval.ndim == 0:
                raise ValueError(f"vmap: in_axes {d} for {spec.name}, but it is a scalar (rank 0) "
                                 f"and has no axis to map; give it in_axes None")
            if not -aval.ndim <= d < aval.ndim:
                raise ValueError(f"vmap: in_axes {d} is out of range for {spec.name} of shape "
                                 f"{aval.shape}")
            d %= aval.ndim
            n = aval.shape[d]
            if size is None:
                size, first = n, (spec.name, d)
            elif n != size:
                where = f"{first[0]} (axis {first[1]}) has size {size}" if first else \
                    f"axis_size is {size}"
                raise ValueError(f"vmap got inconsistent sizes for the mapped axis: {where}, "
                                 f"but {spec.name} (axis {d}) has size {n}")
            aval = AVal(aval.shape[:d] + aval.shape[d + 1:], aval.dtype)
        dyn.append(leaf)
        dyn_avals.append(aval)
        in_dims.append(d)
    if size is None:
        raise ValueError(f"vmap of {_name(fun)}: no argument is mapped (in_axes are all None), "
                         f"so the batch size is unknown; pass axis_size=...")
    trace, out = _trace(fun, args, kwargs, dyn_avals, dynamic)
    out_leaves, out_tree = tree.flatten(out)
    fn = trace.to_function(_name(fun), out_leaves)
    captured = trace.captured_outer
    out_dims = [s.axis for s in tree.flatten(_broadcast_prefix(out_axes, out, "the output",
                                                               "out_axes"))[0]]
    bfn, _ = batch_function(fn, in_dims + [None] * len(captured), int(size), out_dims,
                            name=f"vmap_{_name(fun)}")
    return tree.unflatten(out_tree, _record(bfn, dyn + captured))


def vmap(fun, in_axes=0, out_axes=0, axis_size=None, *, mode="compiled"):
    """vmap(fun, in_axes=0, out_axes=0, axis_size=None, mode="compiled")

    `fun` mapped over an axis of its arguments, as jax.vmap: the result's examples are
    `fun` of the arguments' examples, computed at once by batched IR (one compiled call).
    in_axes: an int (every positional argument mapped over that axis), None (not mapped), or
    a tuple with one entry per positional argument, each an int, None or a pytree prefix of
    that argument (a tuple/list/dict of ints and Nones). Keyword arguments are mapped over
    axis 0. out_axes: likewise for the output (where each result's mapped axis goes; None
    for a result that does not depend on the mapped inputs). axis_size: the batch size when
    no argument is mapped. Composes with grad, jit, jvp, jacfwd/jacrev and itself.
    """
    if not callable(fun):
        raise TypeError(f"vmap expects a function, got {type(fun).__name__}")
    if not (_is_axis_spec(in_axes) or isinstance(in_axes, (tuple, list))):
        raise TypeError(f"vmap in_axes must be an int, None, or a tuple with one entry per "
                        f"positional argument; got {in_axes!r}")
    if axis_size is not None and (not isinstance(axis_size, numbers.Integral) or axis_size < 0):
        raise TypeError(f"vmap axis_size must be a non-negative int, got {axis_size!r}")

    def batched(*args, **kwargs):
        return _vmap_call(fun, in_axes, out_axes, axis_size, args, kwargs)

    batched.__name__ = f"vmap_{_name(fun)}"
    try:  # the IR's argument names are fun's
        batched.__signature__ = inspect.signature(fun)
    except (TypeError, ValueError):
        pass

    def unmapped(i):
        return in_axes is None or (isinstance(in_axes, (tuple, list)) and i < len(in_axes)
                                   and in_axes[i] is None)

    return _jit_static_ints(batched, mode, unmapped, f"vmap({_name(fun)})", fun)


def _jit_static_ints(body, mode, candidate, name, wraps):
    """`jit(body)`, with the positional Python int and bool arguments at positions where
    `candidate(i)` holds static (compiled in, one version per value), as JAX keeps unmapped or
    undifferentiated Python scalars concrete. The result also has `.ir(*args)` and `.jits`
    (one jit-transformed function per set of static positions)."""
    jits: dict = {}

    def compiled_for(args):
        static = tuple(i for i, a in enumerate(args) if type(a) in (int, bool) and candidate(i))
        compiled = jits.get(static)
        if compiled is None:
            compiled = jits[static] = jit(body, mode=mode, static_argnums=static)
        return compiled

    def call(*args, **kwargs):
        return compiled_for(args)(*args, **kwargs)

    functools.update_wrapper(call, wraps)
    call.__name__ = name
    call.ir = lambda *args, **kwargs: compiled_for(args).ir(*args, **kwargs)
    call.jits = jits
    return call


# ---------------------------------------------------------------------------------------------
# np.vectorize's interface on vmap (numpy's np.vectorize asks each element for its value, so
# it cannot take traced values or tape Tensors; this one traces pyfunc once)

_CORE_GROUP = re.compile(r"\(([^()]*)\)")
_ARGLIST = re.compile(r"^\((?:\w+(?:,\w+)*)?\)(?:,\((?:\w+(?:,\w+)*)?\))*$")  # numpy's rule


def _parse_signature(signature):
    """'(m,n),(n)->(m)' as ([('m', 'n'), ('n',)], [('m',)]) (numpy's gufunc signature)."""
    ins, arrow, outs = signature.replace(" ", "").partition("->")
    if not arrow or not _ARGLIST.match(ins) or not _ARGLIST.match(outs):
        raise ValueError(f"not a valid gufunc signature: {signature}")
    return [[tuple(d for d in g.split(",") if d) for g in _CORE_GROUP.findall(side)]
            for side in (ins, outs)]


def _otypes(otypes):
    if otypes is None:
        return None
    return [np.dtype(t) for t in (list(otypes) if isinstance(otypes, str) else otypes)]


def vectorize(pyfunc, otypes=None, doc=None, excluded=None, cache=False, signature=None, *,
              mode="compiled"):
    """np.vectorize(pyfunc, otypes, doc, excluded, cache, signature) for traced values and tape
    Tensors too: pyfunc is traced once on one element (or one core-dimension slice with
    `signature`) and mapped over the broadcast loop shape with vmap, as jax.numpy.vectorize.

    Arguments at the positions or names in `excluded` are passed through unchanged; `otypes`
    casts the outputs. `cache` changes nothing here (numpy's avoids calling pyfunc twice on
    the first element; pyfunc is traced once either way). Differences from numpy: pyfunc sees
    traced 0-d arrays of the inputs' dtype (numpy passes Python scalars, so a float32 input is
    computed in float64 and rounded at the end), and Python `if` on its argument needs
    np.where (or autodiff_jit.cond). mode: as vmap's, for calls on plain arrays."""
    if not callable(pyfunc):
        raise TypeError(f"vectorize expects a function, got {type(pyfunc).__name__}")
    excluded = set(excluded or ())
    out_types = _otypes(otypes)
    in_core, out_core = _parse_signature(signature) if signature is not None else (None, None)

    def call(*args, **kwargs):
        pos = [i for i in range(len(args)) if i not in excluded]
        names = [k for k in kwargs if k not in excluded]
        values = [args[i] for i in pos] + [kwargs[k] for k in names]
        cores = in_core if in_core is not None else [()] * len(values)
        if len(cores) != len(values):
            raise TypeError(f"wrong number of positional arguments: expected {len(cores)}, "
                            f"got {len(values)}")
        shapes = [np.shape(v) for v in values]
        sizes = {}
        for shape, core in zip(shapes, cores):
            if len(shape) < len(core):
                raise ValueError(f"input with shape {shape} does not have enough dimensions "
                                 f"for its core dimensions {core} (signature {signature!r})")
            for name, n in zip(core, shape[len(shape) - len(core):]):
                if sizes.setdefault(name, n) != n:
                    raise ValueError(f"inconsistent size for core dimension {name!r}: "
                                     f"{n} vs {sizes[name]}")
        loop = np.broadcast_shapes(*[s[:len(s) - len(c)] for s, c in zip(shapes, cores)])
        count = int(np.prod(loop, dtype=np.int64))
        if count == 0:
            raise NotImplementedError("vectorize on size-0 inputs is not supported (numpy "
                                      "needs otypes there and never calls pyfunc)")
        flat = [np.reshape(np.broadcast_to(v, loop + s[len(s) - len(c):]),
                           (count,) + s[len(s) - len(c):]) for v, s, c in zip(values, shapes, cores)]

        def one(*items):
            a, kw, it = list(args), dict(kwargs), iter(items)
            for i in pos:
                a[i] = next(it)
            for k in names:
                kw[k] = next(it)
            # pyfunc is the user's: its `if`/`while` on an element are rewritten as in grad
            return (converted(pyfunc) if config.convert else pyfunc)(*a, **kw)

        one.__name__ = _name(pyfunc)
        out = vmap(one, mode=mode)(*flat)
        outs = list(out) if isinstance(out, tuple) else [out]
        if out_core is not None and len(out_core) != len(outs):
            raise ValueError(f"wrong number of outputs from pyfunc: expected {len(out_core)}, "
                             f"got {len(outs)}")
        if out_types is not None and len(out_types) != len(outs):
            raise ValueError(f"otypes names {len(out_types)} outputs; pyfunc returned "
                             f"{len(outs)}")
        res = []
        for k, o in enumerate(outs):
            o = np.reshape(o, loop + np.shape(o)[1:])
            if out_types is not None:
                o = o.astype(out_types[k])
            res.append(o)
        return tuple(res) if isinstance(out, tuple) else res[0]

    call.__name__ = f"vectorize_{_name(pyfunc)}"
    call.__doc__ = pyfunc.__doc__ if doc is None else doc
    return call


register_vectorize(vectorize)   # np.vectorize(f)(traced) falls back to it while routed
