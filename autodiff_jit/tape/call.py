"""`grad(f, mode="tape")` / `value_and_grad(f, mode="tape")`: f run on Tensors, one backward.

Nested use: called on Tensors of an enclosing tape, or from inside another tape-mode grad (a
closure may capture the outer function's Tensors), the gradient is computed with
create_graph=True and returned as Tensors recorded on the enclosing tape, so the outer grad
differentiates through it.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import tree
from ..backend import buffers
from ..config import config
from ..convert import converted
from ..convert.writes import explain_numpy_write, register_array_type
from ..ir import dtype_name, is_float
from ..numpy.lists import routing_lists
from ..primitives.core import leaf_aval as _leaf_aval
from ..trace import max_level
from . import engine, operands
from .grad_mode import _GRAD
from .tensor import _FLOATS, _STRICT, Tensor, _wrap

# numpy names bound at import: numpy has a module __getattr__, so Python 3.11 never
# specializes an `np.name` lookup (~40 ns each, several per tape node)
_ND = np.ndarray
_GENERIC = np.generic

__all__ = ["tape_call"]


def _buffer_support_compiler():
    """The buffer cache's allocator (support code) through the disk cache's default directory."""
    from ..backend import cache as disk
    return disk.support_compiler(disk.support_dir(None), warn=False)


buffers.SUPPORT_COMPILER[0] = _buffer_support_compiler


# `y = np.zeros(n); y[0] = t` with t a Tensor that requires grad: y becomes a Tensor (as the
# traced modes make it a traced array), through the same rewrite of `y[key] = v`
register_array_type(Tensor, lambda a: _wrap(a, None, 0))


def _fun_to_run(t):
    """The user's function with `y[key] = v` rewritten (control flow runs as Python here).
    Kept on the transformed function per (function, convert setting): `converted` answers
    the same for the same function object, and its weak-dictionary lookup is ~0.5 us of
    every call."""
    on = config.convert if t.convert is None else t.convert
    f = t.fun
    hit = t.__dict__.get("_tape_fun")
    if hit is not None and hit[0] is f and hit[1] is on:
        return hit[2]
    run = converted(f, writes_only=True) if on else f
    t._tape_fun = (f, on, run)
    return run


def _out(x):
    """Tensor/array results as compiled mode gives them: arrays, 0-d results as numpy scalars."""
    if isinstance(x, Tensor):
        x = x._data
    if isinstance(x, _ND) and x.ndim == 0:
        return x[()]
    return x


def tape_call(transformed, args, kwargs):
    """Run `grad`/`value_and_grad(f, mode="tape")`: f on Tensors, then one backward pass.
    Large numpy arrays the recorded operations use stay read-only until the outermost such
    call returns (tape/operands.py). numpy allocates the call's arrays through the buffer
    cache (backend/buffers.py): a call's large arrays reuse the blocks the last call freed."""
    allocator = buffers.push()
    operands.enter()
    try:
        return _tape_call(transformed, args, kwargs)
    except ValueError as exc:
        clearer = operands.explain(exc)
        if clearer is None:
            raise
        raise clearer from None
    finally:
        buffers.pop(allocator)
        operands.leave()


def _tape_call(transformed, args, kwargs):
    t = transformed
    t._check_argnums(args)
    given = tuple(args)
    args = list(args)
    groups = []
    single = True   # every argument in argnums is one leaf
    # Called on Tensors of an enclosing tape (grad of a tape-mode grad): differentiate with
    # respect to those Tensors themselves and keep the backward pass on the tape.
    # Inside another tape-mode grad (grad mode on, _STRICT > 0) f may close over the outer
    # function's Tensors, so the backward pass is recorded there too.
    nested = _STRICT[0] > 0 and _GRAD[0]
    for a in t.argnums_tuple:
        arg = args[a]
        ta = type(arg)
        if ta is _ND and arg.dtype in _FLOATS:
            # the common argument, a native float array: its leaf Tensor without the checks
            x = _wrap(arg if arg.ndim else arg[()], None, 0)
            x.requires_grad = True
            x._past = ()   # f may write into its argument, as numpy code may (_target)
            args[a] = x
            groups.append(((x,), "*"))
            continue
        if ta is float or ta is _ND:  # a single leaf: skip pytree work
            leaves, td = [arg], "*"
        else:
            leaves, td = tree.flatten(arg)
        tens = []
        for leaf in leaves:
            tl = type(leaf)
            if tl is float:
                arr = np.float64(leaf)  # 0-d values live as numpy scalars (see _arr)
            elif tl is _ND:
                arr = leaf if leaf.ndim else leaf[()]
            elif isinstance(leaf, Tensor):
                if leaf.requires_grad and _GRAD[0]:
                    nested = True
                arr = leaf._data
            else:
                if not (isinstance(leaf, (_ND, _GENERIC, numbers.Number))
                        or hasattr(leaf, "__array_interface__")):
                    raise TypeError(f"{t.kind}: argument {a} of {t._fun_name} is not an array or a "
                                    f"pytree of arrays")
                aval = _leaf_aval(leaf)
                arr = np.asarray(leaf, dtype=aval.dtype)
            if not arr.dtype.isnative:  # byte-swapped ('>f8'): converted, as the other modes do
                arr = arr.astype(arr.dtype.newbyteorder("="))
            if arr.dtype not in _FLOATS:
                raise TypeError(
                    f"{t.kind} requires real floating-point inputs to differentiate, but an "
                    f"argument in argnums={t.argnums!r} of {t._fun_name} has dtype "
                    f"{dtype_name(arr.dtype)}; pass floats (e.g. 3.0 rather than 3, or "
                    f"x.astype(float)), or leave it out of argnums")
            if isinstance(leaf, Tensor) and leaf.requires_grad and _GRAD[0]:
                x = leaf
            else:
                x = _wrap(arr, None, 0)
                x.requires_grad = True
                x._past = ()   # f may write into its argument, as numpy code may (_target)
            tens.append(x)
        args[a] = tens[0] if td == "*" else tree.unflatten(td, tens)
        groups.append((tens, td))
        if len(tens) != 1:
            single = False
    prev = _GRAD[0]
    _GRAD[0] = True
    _STRICT[0] += 1
    try:
        with routing_lists():  # np.array([Tensor, ...]): numpy/lists.py
            try:
                out = _fun_to_run(t)(*args, **kwargs)
            except ValueError as exc:
                raise explain_numpy_write(exc) or exc
    finally:
        _GRAD[0] = prev
        _STRICT[0] -= 1
    if type(out) is not Tensor and max_level(tree.flatten(out)[0]):  # (a Tensor: level 0)
        # f closes over traced values of an enclosing trace (a tape-mode grad inside jvp, jit
        # or another traced transform): its result is traced, so no tape can see through it;
        # record the gradient into that trace instead, as the other modes do
        return t._call(given, kwargs)
    aux = None
    if t.has_aux:
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(f"{t._fun_name} was transformed with has_aux=True, so it must return a "
                            f"pair (value, aux); got {type(out).__name__}")
        out, aux = out
        aux = _map_out(aux)
    if isinstance(out, Tensor):
        od = out._data
    elif isinstance(out, (_ND, _GENERIC, numbers.Number)):
        od = np.asarray(out)
    else:
        od = None
    if od is None or od.shape != () or od.dtype not in _FLOATS and not is_float(od.dtype):
        what = f"shape {od.shape} and dtype {dtype_name(od.dtype)}" if od is not None else \
            f"a {type(out).__name__}"
        raise TypeError(f"{t.kind} requires a function with a scalar float output, but {t._fun_name} "
                        f"returned {what}; reduce it to a scalar (e.g. np.sum) before "
                        f"differentiating")
    flat_targets = [_target(x) for tens, _ in groups for x in tens]
    if nested:
        return _nested_result(t, out, od, aux, groups, flat_targets)
    if isinstance(out, Tensor) and out.requires_grad:
        gs = engine._run(out, od.dtype.type(1), targets=flat_targets)
    else:
        gs = [None] * len(flat_targets)
    given_out = set()   # buffers already returned: each gradient is the caller's own array
    if single:   # every argument a single leaf
        grads = [_returned(tens[0], g, given_out) if td == "*" else
                 tree.unflatten(td, [_returned(tens[0], g, given_out)])
                 for (tens, td), g in zip(groups, gs)]
    else:
        grads, pos = [], 0
        for tens, td in groups:
            vals = [_returned(x, g, given_out) for x, g in zip(tens, gs[pos:pos + len(tens)])]
            pos += len(tens)
            grads.append(vals[0] if td == "*" else tree.unflatten(td, vals))
    an = t.argnums   # (a tuple first: isinstance against numbers.Integral is an ABC check)
    g = tuple(grads) if type(an) is tuple else grads[0] if type(an) is int or \
        isinstance(an, numbers.Integral) else tuple(grads)
    if t.kind == "grad":
        return (g, aux) if t.has_aux else g
    value = _out(od)
    return ((value, aux) if t.has_aux else value), g


def _returned(x, g, given_out):
    """The gradient for leaf x as the caller gets it: x's dtype, 0-d as a numpy scalar, zeros
    for None, and an array of its own (`given_out`: the buffers already returned)."""
    dt = x._data.dtype
    if type(g) is _ND:
        if g.dtype is not dt and g.dtype != dt:
            g = g.astype(dt)
        elif g.ndim:
            # a rule may pass one cotangent to two inputs (x + y) or give a read-only
            # broadcast view (the gradient of a sum): copy those, as compiled mode
            # returns separate writable arrays
            base = g.base
            buf = id(g if base is None else base)
            if buf in given_out or not g.flags.writeable:
                g = np.array(g)
                buf = id(g)
            given_out.add(buf)
        return g[()] if g.ndim == 0 else g
    if g is None:
        return np.zeros(x._data.shape, dt)[()]
    # a numpy scalar (0-d values are kept as scalars)
    return g if type(g) is dt.type else np.asarray(g, dt)[()]


def _target(x):
    """The leaf to differentiate with respect to: an argument f wrote into in place is now a
    non-leaf; its value on entry is the history before the first write."""
    past = getattr(x, "_past", None)
    return past[0][1] if past else x


def _nested_result(t, out, od, aux, groups, flat_targets):
    """Gradients as Tensors recorded on the enclosing tape (create_graph), so that an outer
    tape-mode grad differentiates through them."""
    if isinstance(out, Tensor) and out.requires_grad:
        gs = engine._run(out, od.dtype.type(1), targets=flat_targets, create_graph=True,
                  retain_graph=True)
    else:
        gs = [None] * len(flat_targets)
    grads, pos = [], 0
    for tens, td in groups:
        vals = [g if isinstance(g, Tensor) else
                _wrap(np.zeros(x._data.shape, x._data.dtype) if g is None else np.asarray(g), None, 0)
                for x, g in zip(tens, gs[pos:pos + len(tens)])]
        pos += len(tens)
        grads.append(vals[0] if td == "*" else tree.unflatten(td, vals))
    g = grads[0] if isinstance(t.argnums, numbers.Integral) else tuple(grads)
    if t.kind == "grad":
        return (g, aux) if t.has_aux else g
    return ((out, aux) if t.has_aux else out), g


def _map_out(tree_):
    leaves, td = tree.flatten(tree_, is_leaf=lambda v: isinstance(v, Tensor))
    return tree.unflatten(td, [_out(v) if isinstance(v, (Tensor, _ND)) else v
                               for v in leaves])
