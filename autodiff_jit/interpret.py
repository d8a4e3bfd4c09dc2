"""The IR interpreter: evaluates a Function equation by equation.

`run(fn, arrays)` executes on numpy with each primitive's reference implementation: it is the
reference that compiled code must match, and `mode="interpret"`. `eval_function(fn, values)`
applies each equation through `bind`, so on tracers it re-records the function into the
current trace (inlining) and on tape Tensors it records a tape.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

from . import source
from .ir import Function, Lit
from .primitives import bind


_debug = threading.local()  # .nans: check every value the interpreter produces


@contextmanager
def checking_nans():
    """Inside, run_equations raises FloatingPointError at the first equation that turns finite
    float inputs into a NaN or an infinity (nested regions included)."""
    prev = getattr(_debug, "nans", False)
    _debug.nans = True
    try:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # we raise instead
            yield
    finally:
        _debug.nans = prev


def _check_finite(eqn, ins, outs):
    for out in outs:
        if not isinstance(out, (np.ndarray, np.generic)) or out.dtype.kind != "f" or \
                np.all(np.isfinite(out)):
            continue
        floats = [x for x in ins if isinstance(x, (np.ndarray, np.generic, float))
                  and np.asarray(x).dtype.kind == "f"]
        if not all(np.all(np.isfinite(x)) for x in floats):
            continue  # not the producer: a non-finite value came in
        what = "nan" if np.any(np.isnan(out)) else "inf"
        loc = eqn.loc or "an unknown line"
        if loc.endswith(" (adjoint)"):
            where = f"in the adjoint (gradient) code of {loc[:-len(' (adjoint)')]}"
        else:
            where = f"in the forward code at {loc}"
        raise FloatingPointError(f"debug_nans: '{eqn.prim.name}' produced {what} {where} "
                                 f"(from finite inputs of shapes "
                                 f"{[np.shape(x) for x in ins]})")


def _impl(prim, *args, **params):
    return prim.impl(*args, **params)


def run_equations(fn: Function, args, apply=bind, env: dict | None = None,
                  locate: bool = False) -> dict:
    """Evaluate every equation of `fn` on `args`; returns the environment mapping id(Var) to
    the value of every argument, constant and equation output. `env` may hold values of
    variables captured from an enclosing scope. With `locate` (re-recording into a trace),
    the equations recorded keep each original equation's source location."""
    if len(args) != len(fn.args):
        raise TypeError(f"{fn.name} takes {len(fn.args)} arguments, got {len(args)}")
    env = dict(env or {})
    check = getattr(_debug, "nans", False)
    for var, val in zip(fn.args, args):
        env[id(var)] = val
    for var, val in fn.consts.items():
        env[id(var)] = val
    for eqn in fn.eqns:
        if locate:
            with source.at(eqn.loc):
                outs = apply(eqn.prim, *[read(env, i) for i in eqn.inputs], **eqn.params)
        else:
            outs = apply(eqn.prim, *[read(env, i) for i in eqn.inputs], **eqn.params)
        if not eqn.prim.multiple_results:
            outs = (outs,)
        if check:
            _check_finite(eqn, [read(env, i) for i in eqn.inputs], outs)
        for var, val in zip(eqn.outputs, outs):
            env[id(var)] = val
    return env


def read(env: dict, atom):
    """The value of an operand in an environment from `run_equations`."""
    return atom.value if isinstance(atom, Lit) else env[id(atom)]


def eval_function(fn: Function, args, apply=bind, env: dict | None = None,
                  locate: bool = False) -> list:
    """Evaluate `fn` on `args`; returns the list of results."""
    env = run_equations(fn, args, apply, env, locate)
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
