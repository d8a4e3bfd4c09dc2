"""Forward mode: the JVP transform (IR -> tangent IR).

`jvp_function(fn, wrt)` is the forward-mode twin of `ad.vjp_function`: it replays `fn` through
`bind` and pushes tangents forward equation by equation with each primitive's JVP rule, so
the tangent IR is recorded alongside the primal IR in one new Function.

The user API built on it (jvp, vjp, jacfwd, jacrev, hessian) is in jacobians.py, above `api`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .ir import Function, Lit, Var, ZeroCotangent, is_float
from .primitives import bind
from .primitives.elementwise import fit_cotangent as _fit
from .primitives.shape import broadcast_to_p
from .trace import Trace


def jvp_function(fn: Function, wrt: Sequence[int], *, name: str | None = None) -> Function:
    """Tangent IR of `fn`: takes fn's arguments then one tangent per `wrt` argument; returns
    fn's results followed by one tangent per result."""
    trace = Trace()
    env: dict[int, object] = {}
    tangents: dict[int, object] = {}
    for var in fn.args:
        env[id(var)] = trace.new_arg(var.aval, var.hint)
    for i in wrt:
        var = fn.args[i]
        tangents[id(var)] = trace.new_arg(var.aval, f"t_{var.hint}" if var.hint else "t")
    env.update({id(v): val for v, val in fn.consts.items()})

    def read(atom):
        return atom.value if isinstance(atom, Lit) else env[id(atom)]

    for eqn in fn.eqns:
        ins = [read(i) for i in eqn.inputs]
        outs = bind(eqn.prim, *ins, **eqn.params)
        outs_list = list(outs) if eqn.prim.multiple_results else [outs]
        for var, val in zip(eqn.outputs, outs_list):
            env[id(var)] = val
        t_in = [tangents.get(id(i)) if isinstance(i, Var) else None for i in eqn.inputs]
        if not eqn.prim.differentiable or all(t is None for t in t_in):
            continue
        if eqn.prim.jvp is None:
            raise NotImplementedError(f"primitive '{eqn.prim.name}' has no JVP rule, so {fn.name} "
                                      f"cannot be differentiated in forward mode; use grad/jacrev")
        t_out = eqn.prim.jvp(t_in, outs_list if eqn.prim.multiple_results else outs,
                             *ins, **eqn.params)
        t_out = list(t_out) if eqn.prim.multiple_results else [t_out]
        for var, t in zip(eqn.outputs, t_out):
            if t is not None and is_float(var.dtype):
                tangents[id(var)] = _fit(t, var, eqn.prim.name)

    results = [read(r) for r in fn.results]
    t_results = []
    for r in fn.results:
        t = tangents.get(id(r)) if isinstance(r, Var) else None
        if t is None:  # the result does not depend on the perturbed arguments
            t = trace.process(broadcast_to_p, [ZeroCotangent(0, r.dtype)], {"shape": r.shape})
        t_results.append(t)
    return trace.to_function(name or f"jvp_{fn.name}", results + t_results)
