"""Batching (vmap) as an IR -> IR transform over the primitives' batching rules.

`batch_function(fn, in_dims, axis_size, out_dims)` builds the *batched IR* of `fn`: a new
Function whose arguments carry one more axis (at `in_dims[i]`, or none for an argument that is
the same for every example) and which computes `fn` on every example at once. It replays
`fn` equation by equation; each equation with a batched input runs its primitive's batching
rule (`Primitive.batch`, see primitives/batching.py), which records the batched equations
through `bind`, as `jvp_function` does for tangents. Equations whose inputs are all unbatched
are copied unchanged.

A primitive without a batching rule still works: the *slow path* slices out each example,
applies the primitive to it and stacks the results (IR linear in the batch size), and warns
once per primitive with a `BatchingFallbackWarning`; `fallback_primitives()` lists the
primitives that took it in this process.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from .ir import AVal, Function, Lit
from .primitives import aval_of, bind
from .primitives import shape as S
from .primitives.indexing import slice_along
from .trace import Trace


class BatchingFallbackWarning(UserWarning):
    """vmap met a primitive without a batching rule and looped over the batch instead."""


_FALLBACKS: set[str] = set()  # names of primitives that took the slow path (for reports)


def fallback_primitives() -> set[str]:
    """Primitives that vmap had to loop over in this process (they lack a batching rule)."""
    return set(_FALLBACKS)


def _example(x, d, b):
    """Example b of x, whose batch axis is d."""
    part = slice_along(x, d, b, 1)
    shape = aval_of(part).shape
    return S.reshape(part, shape[:d] + shape[d + 1:])


def _stack(parts):
    """The examples stacked along a new first axis."""
    return S.concatenate([S.reshape(p, (1,) + tuple(aval_of(p).shape)) for p in parts], 0)


def loop_rule(prim, axis_size, vals, dims, **params):
    """The batching slow path: apply `prim` to each example and stack the results."""
    if prim.name not in _FALLBACKS:
        _FALLBACKS.add(prim.name)
        warnings.warn(f"vmap: primitive '{prim.name}' has no batching rule, so it runs once per "
                      f"example (a loop over the batch in the IR); give it a `batch` rule for "
                      f"speed", BatchingFallbackWarning, stacklevel=2)
    if axis_size == 0:
        avals = [AVal(aval_of(v).shape[:d] + aval_of(v).shape[d + 1:], aval_of(v).dtype)
                 if d is not None else aval_of(v) for v, d in zip(vals, dims)]
        outs = [np.zeros((0,) + a.shape, a.dtype) for a in prim.abstract_eval(avals, params)]
        return (outs if prim.multiple_results else outs[0]), \
            ([0] * len(outs) if prim.multiple_results else 0)
    lanes = []
    for b in range(axis_size):
        ins = [v if d is None else _example(v, d, b) for v, d in zip(vals, dims)]
        out = bind(prim, *ins, **params)
        lanes.append(list(out) if prim.multiple_results else [out])
    outs = [_stack([lane[j] for lane in lanes]) for j in range(len(lanes[0]))]
    if prim.multiple_results:
        return outs, [0] * len(outs)
    return outs[0], 0


def move_batch_axis(x, d, dst, axis_size):
    """x with its batch axis at `dst` (an unbatched x is broadcast along a new axis there)."""
    if d is None:
        shape = tuple(aval_of(x).shape)
        x, d = S.broadcast_to(x, (axis_size,) + shape), 0
    return S.moveaxis(x, d, dst)


def _normalize(axis, ndim, what):
    if not -ndim <= axis < ndim:
        raise ValueError(f"{what}: axis {axis} is out of range for a batched value of rank {ndim}")
    return axis % ndim


def batch_function(fn: Function, in_dims: Sequence, axis_size: int, out_dims=0, *,
                   name: str | None = None) -> tuple[Function, list]:
    """The batched IR of `fn` and the batch axis of each of its results.

    in_dims: per argument, the axis of the batched argument that carries the examples (it is
    inserted into the argument's type), or None for an unbatched argument. out_dims: one int
    (or None) for all results or one per result: where each result carries the batch; None
    asks for an unbatched result (a ValueError if it depends on the batch); "any" leaves it
    where the rules put it (None when unbatched), as region ops want."""
    if len(in_dims) != len(fn.args):
        raise TypeError(f"batch_function: {len(in_dims)} in_dims for {len(fn.args)} arguments")
    trace = Trace()
    env: dict[int, tuple] = {}
    for var, d in zip(fn.args, in_dims):
        if d is None:
            env[id(var)] = (trace.new_arg(var.aval, var.hint), None)
        else:
            if not 0 <= d <= var.aval.ndim:
                raise ValueError(f"batch_function: batch axis {d} out of range for {var.aval}")
            shape = var.shape[:d] + (axis_size,) + var.shape[d:]
            env[id(var)] = (trace.new_arg(AVal(shape, var.dtype), var.hint), d)
    for var, val in fn.consts.items():
        env[id(var)] = (val, None)

    def read(atom):
        return (atom.value, None) if isinstance(atom, Lit) else env[id(atom)]

    for eqn in fn.eqns:
        vals, dims = zip(*[read(i) for i in eqn.inputs]) if eqn.inputs else ((), ())
        multi = eqn.prim.multiple_results
        if all(d is None for d in dims):
            outs = bind(eqn.prim, *vals, **eqn.params)
            odims = [None] * len(eqn.outputs)
        else:
            rule = eqn.prim.batch or loop_rule
            outs, odims = rule(eqn.prim, axis_size, list(vals), list(dims), **eqn.params)
            odims = list(odims) if multi else [odims]
        outs = list(outs) if multi else [outs]
        for var, val, d in zip(eqn.outputs, outs, odims):
            want = var.shape if d is None else var.shape[:d] + (axis_size,) + var.shape[d:]
            got = aval_of(val)
            if tuple(got.shape) != tuple(want) or got.dtype != var.dtype:
                raise AssertionError(f"internal error: the batching rule of '{eqn.prim.name}' "
                                     f"returned {got} with batch axis {d} for an output "
                                     f"{var.aval} batched to {want}")
            env[id(var)] = (val, d)

    per_result = list(out_dims) if isinstance(out_dims, (list, tuple)) else \
        [out_dims] * len(fn.results)
    results, final = [], []
    for j, (r, want) in enumerate(zip(fn.results, per_result)):
        val, d = read(r)
        if want == "any":
            final.append(d)
        elif want is None:
            if d is not None:
                raise ValueError(f"vmap: out_axes is None for result {j} of {fn.name}, but that "
                                 f"result depends on the mapped inputs (it differs between "
                                 f"examples); give it an integer out_axes")
            final.append(None)
        else:
            dst = _normalize(want, len(r.aval.shape) + 1, "vmap out_axes")
            val = move_batch_axis(val, d, dst, axis_size)
            final.append(dst)
        results.append(val)
    return trace.to_function(name or f"vmap_{fn.name}", results), final
