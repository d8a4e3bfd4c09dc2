"""Reverse-mode AD as an IR-to-IR transform.

`vjp_function(fn, wrt)` builds the *adjoint IR* of `fn`: a new Function that recomputes the
forward values the backward pass needs and then runs each equation's VJP rule in reverse
order. The rules are ordinary `bind`-based code, so running them on tracers records the
adjoint equations; nothing is taped at run time. The result is built from primitives that
have VJP rules themselves, which is why grad(grad(f)) works.

Rules of the transform:
- activity: only values that depend on a differentiated argument (through differentiable
  primitives) get cotangents; everything else is pruned, not zero-filled;
- fan-out: a value used several times receives the sum of its cotangents;
- broadcasting and dtype: each cotangent is brought back to its input's shape and dtype.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from . import source
from .ir import Function, Lit, Var, ZeroCotangent, is_float
from .primitives.elementwise import fit_cotangent as _fit
from .primitives.shape import broadcast_to_p
from .interpret import run_equations
from .trace import Trace


def _active_vars(fn: Function, wrt: Sequence[int]) -> set[int]:
    active = {id(fn.args[i]) for i in wrt if is_float(fn.args[i].dtype)}
    for eqn in fn.eqns:
        if eqn.prim.differentiable and any(isinstance(i, Var) and id(i) in active
                                           for i in eqn.inputs):
            active.update(id(o) for o in eqn.outputs if is_float(o.dtype))
    return active


def vjp_function(fn: Function, wrt: Sequence[int], *, seed_args: bool = False,
                 n_seeded: int | None = None, name: str | None = None) -> Function:
    """The adjoint IR of `fn` with respect to the arguments at positions `wrt`.

    Only the first `n_seeded` results (default: all) are differentiated; later ones (e.g. aux
    outputs) are passed through. The new function takes fn's arguments (and, with `seed_args`,
    one cotangent per seeded result; otherwise each seeded result must be a scalar and its
    seed is 1) and returns fn's results followed by one gradient per `wrt` argument.
    """
    trace = Trace()
    arg_tracers = [trace.new_arg(var.aval, var.hint) for var in fn.args]
    seeded = fn.results[:len(fn.results) if n_seeded is None else n_seeded]
    if seed_args:
        seeds = [trace.new_arg(r.aval, "ct") for r in seeded]
    else:
        if any(r.shape != () for r in seeded):
            raise TypeError(f"a gradient needs a scalar output; {fn.name} returns "
                            f"{[str(r.aval) for r in seeded]}")
        # The seed is an equation, not a numpy constant, so that cotangents stay in the IR.
        with source.at(None):  # the seed is no user line's code
            seeds = [trace.process(broadcast_to_p, [np.ones((), r.dtype)[()]], {"shape": ()})
                     for r in seeded]
    # forward: re-record fn's equations in the new trace, keeping every value for the rules
    env = run_equations(fn, arg_tracers, locate=True)

    def read(atom):
        return atom.value if isinstance(atom, Lit) else env[id(atom)]

    active = _active_vars(fn, wrt)
    cts: dict[int, object] = {}
    for r, s in zip(seeded, seeds):
        if isinstance(r, Var) and id(r) in active:
            cts[id(r)] = s if id(r) not in cts else cts[id(r)] + s

    for eqn in reversed(fn.eqns):
        out_cts = [cts.pop(id(o), None) for o in eqn.outputs]
        if all(c is None for c in out_cts):
            continue
        if not any(isinstance(i, Var) and id(i) in active for i in eqn.inputs):
            continue
        rule = eqn.prim.vjp
        if rule is None:
            raise NotImplementedError(
                f"primitive '{eqn.prim.name}' has no VJP rule, so {fn.name} cannot be "
                f"differentiated through it; wrap that part in autodiff_jit.stop_gradient or "
                f"give it a custom_vjp")
        ins = [read(i) for i in eqn.inputs]
        outs = [read(o) for o in eqn.outputs]
        with source.at(eqn.loc, adjoint=True):  # adjoint code points at its forward line
            if eqn.prim.multiple_results:
                in_cts = rule(out_cts, outs, *ins, **eqn.params)
            else:
                in_cts = rule(out_cts[0], outs[0], *ins, **eqn.params)
            for var, ct in zip(eqn.inputs, in_cts):
                if ct is None or not isinstance(var, Var) or id(var) not in active:
                    continue
                ct = _fit(ct, var, eqn.prim.name)
                prev = cts.get(id(var))
                cts[id(var)] = ct if prev is None else prev + ct

    grads = []
    for i in wrt:
        var = fn.args[i]
        g = cts.get(id(var))
        if g is None:  # the result does not depend on this argument
            with source.at(None):
                g = trace.process(broadcast_to_p, [ZeroCotangent(0, var.dtype)],
                                  {"shape": var.shape})
        grads.append(g)
    primal = [read(r) for r in fn.results]
    return trace.to_function(name or f"grad_{fn.name}", primal + grads)
