"""custom_vjp_call: the primitive behind `custom_vjp`, a user-given backward rule.

`custom_vjp_call` is a region op: its params hold the traced forward function (returning the
outputs followed by residuals) and the traced backward function (residuals, cotangents ->
input cotangents). The same mechanism will carry loops and branches.
"""
from __future__ import annotations

import numpy as np

from ..ad import vjp_function
from ..interpret import eval_function
from ..ir import is_float
from ..jvp import jvp_function
from ..primitives.core import Primitive, register


def _custom_rule(*avals, fwd, bwd, num_outputs):
    return fwd.out_avals


def _custom_impl(*args, fwd, bwd, num_outputs):
    return eval_function(fwd, args)


def _custom_vjp(cts, outs, *args, fwd, bwd, num_outputs):
    residuals = list(outs[num_outputs:])
    res_cts = list(cts[num_outputs:])
    cts = list(cts[:num_outputs])
    for i, c in enumerate(cts):
        if c is None:  # the user's bwd expects every cotangent; give zeros
            cts[i] = np.zeros(fwd.out_avals[i].shape, fwd.out_avals[i].dtype)
    in_cts = list(eval_function(bwd, residuals + cts))
    if any(c is not None for c in res_cts):
        # Residuals are ordinary functions of the inputs (computed by fwd); cotangents reaching
        # them (grad of grad: the outer pass differentiates bwd's use of the residuals) flow
        # back through fwd's own VJP.
        res_avals = fwd.out_avals[num_outputs:]
        seeds = [np.zeros(a.shape, a.dtype) if c is None else c for c, a in zip(res_cts, res_avals)]
        res_fn = fwd.replace(results=fwd.results[num_outputs:])
        adj = vjp_function(res_fn, list(range(len(fwd.args))), seed_args=True)
        extra = eval_function(adj, list(args) + seeds)[len(res_avals):]
        in_cts = [e if c is None else c + e for c, e in zip(in_cts, extra)]
    return tuple(in_cts)


def _custom_jvp(tangents, outs, *args, fwd, bwd, num_outputs):
    # Forward mode has no user rule to use: push tangents through the traced fwd itself.
    wrt = [i for i, a in enumerate(fwd.args) if is_float(a.dtype)]
    tfn = jvp_function(fwd, wrt)
    ts = [tangents[i] if tangents[i] is not None else np.zeros(fwd.args[i].shape, fwd.args[i].dtype)
          for i in wrt]
    return eval_function(tfn, list(args) + ts)[len(fwd.results):]


custom_vjp_call_p = register(Primitive(
    "custom_vjp_call", _custom_rule, _custom_impl, vjp=_custom_vjp, jvp=_custom_jvp,
    multiple_results=True,
    torch_name="CustomFunctionBackward", family="call"))
