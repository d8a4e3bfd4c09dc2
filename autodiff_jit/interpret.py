"""The IR interpreter: evaluates a Function equation by equation.

`run(fn, arrays)` executes on numpy with each primitive's reference implementation: it is the
reference that compiled code must match, and `mode="interpret"`. `eval_function(fn, values)`
applies each equation through `bind`, so on tracers it re-records the function into the
current trace (inlining) and on tape Tensors it records a tape.
"""
from __future__ import annotations

import numpy as np

from .ir import Function, Lit
from .primitives import bind


def _impl(prim, *args, **params):
    return prim.impl(*args, **params)


def run_equations(fn: Function, args, apply=bind, env: dict | None = None) -> dict:
    """Evaluate every equation of `fn` on `args`; returns the environment mapping id(Var) to
    the value of every argument, constant and equation output. `env` may hold values of
    variables captured from an enclosing scope."""
    if len(args) != len(fn.args):
        raise TypeError(f"{fn.name} takes {len(fn.args)} arguments, got {len(args)}")
    env = dict(env or {})
    for var, val in zip(fn.args, args):
        env[id(var)] = val
    for var, val in fn.consts.items():
        env[id(var)] = val
    for eqn in fn.eqns:
        outs = apply(eqn.prim, *[read(env, i) for i in eqn.inputs], **eqn.params)
        if not eqn.prim.multiple_results:
            outs = (outs,)
        for var, val in zip(eqn.outputs, outs):
            env[id(var)] = val
    return env


def read(env: dict, atom):
    """The value of an operand in an environment from `run_equations`."""
    return atom.value if isinstance(atom, Lit) else env[id(atom)]


def eval_function(fn: Function, args, apply=bind, env: dict | None = None) -> list:
    """Evaluate `fn` on `args`; returns the list of results."""
    env = run_equations(fn, args, apply, env)
    return [read(env, r) for r in fn.results]


def run(fn: Function, args) -> list[np.ndarray]:
    """Execute `fn` on numpy arrays with the primitives' numpy implementations."""
    outs = eval_function(fn, args, apply=_impl)
    return [np.asarray(o, dtype=r.dtype) for o, r in zip(outs, fn.results)]


class Interpreted:
    """Runs optimized IR with the numpy interpreter: mode='interpret', and the backend's
    fallback for a function it cannot lower."""

    def __init__(self, fn: Function):
        self.fn = fn

    def __call__(self, arrays):
        return run(self.fn, arrays)
