"""Primitives that steer differentiation rather than compute: stop_gradient and custom_vjp_call.

`custom_vjp_call` is a region op: its params hold the traced forward function (returning the
outputs followed by residuals) and the traced backward function (residuals, cotangents ->
input cotangents). The same mechanism will carry loops and branches.
"""
from __future__ import annotations

import numpy as np

from .core import Primitive, register

stop_gradient_p = register(Primitive(
    "stop_gradient", lambda x: x, lambda x: x, differentiable=False, family="unary"))


def _custom_rule(*avals, fwd, bwd, num_outputs):
    return fwd.out_avals


def _custom_impl(*args, fwd, bwd, num_outputs):
    from ..interpret import eval_function
    return eval_function(fwd, args)


def _custom_vjp(cts, outs, *args, fwd, bwd, num_outputs):
    from ..interpret import eval_function
    residuals = list(outs[num_outputs:])
    cts = list(cts[:num_outputs])
    for i, c in enumerate(cts):
        if c is None:  # the user's bwd expects every cotangent; give zeros
            cts[i] = np.zeros(fwd.out_avals[i].shape, fwd.out_avals[i].dtype)
    return tuple(eval_function(bwd, residuals + cts))


custom_vjp_call_p = register(Primitive(
    "custom_vjp_call", _custom_rule, _custom_impl, vjp=_custom_vjp, multiple_results=True,
    torch_name="CustomFunctionBackward", family="call"))
