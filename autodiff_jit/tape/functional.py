"""torch.autograd.functional-style helpers on tape Tensors: vjp, jacobian, hessian.

`inputs` is a Tensor or a tuple of Tensors (arrays are accepted); the helpers run `func` on
fresh leaves, so the caller's Tensors are not touched. As in torch, a tuple input gives a tuple
result, and jacobian(...)[i][j] is d outputs[i] / d inputs[j] with shape out.shape + in.shape.
With create_graph=True the results stay on the tape (differentiable again).
"""
from __future__ import annotations

import numpy as np

from . import engine
from .grad_mode import enable_grad
from .tensor import Tensor, _wrap

__all__ = ["vjp", "jacobian", "hessian"]


def _leaves(inputs, create_graph):
    single = not isinstance(inputs, (tuple, list))
    xs = (inputs,) if single else tuple(inputs)
    out = []
    for x in xs:
        if isinstance(x, Tensor):
            t = x if create_graph and x.requires_grad else _wrap(np.array(x._data), None, 0)
        else:
            t = _wrap(np.array(x, dtype=np.result_type(x, np.float32)), None, 0)
        if not t.requires_grad:
            t.requires_grad_(True)
        out.append(t)
    return single, tuple(out)


def _outputs(res, what):
    single = not isinstance(res, (tuple, list))
    outs = (res,) if single else tuple(res)
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(f"{what}: the function must return a Tensor or a tuple of Tensors, "
                            f"got {type(o).__name__}")
    return single, outs


def _grads(out, xs, v, create_graph):
    """d<out, v>/d xs, zeros where an input is unused."""
    if not out.requires_grad:
        return [_wrap(np.zeros(x.shape, x.dtype), None, 0) for x in xs]
    gs = engine.grad(out, xs, grad_outputs=v, retain_graph=True, create_graph=create_graph,
                     allow_unused=True)
    return [g if g is not None else _wrap(np.zeros(x.shape, x.dtype), None, 0)
            for g, x in zip(gs, xs)]


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), vᵀ J) as torch.autograd.functional.vjp (v may be None for a scalar)."""
    single_in, xs = _leaves(inputs, create_graph)
    with enable_grad():
        res = func(*xs)
        single_out, outs = _outputs(res, "vjp")
        vs = (v,) if single_out else tuple(v) if v is not None else (None,) * len(outs)
        total = None
        for o, vi in zip(outs, vs):
            if vi is None and np.size(o._data) != 1:
                raise RuntimeError("The vector v can only be None if the user-provided function "
                                   "returns a single Tensor with a single element.")
            gi = _grads(o, xs, vi if vi is not None else np.ones(o.shape, o.dtype), create_graph)
            total = gi if total is None else [a + b for a, b in zip(total, gi)]
    value = res if create_graph else (_detach_all(res))
    grads = total if create_graph else [g.detach() for g in total]
    return value, grads[0] if single_in else tuple(grads)


def _detach_all(res):
    if isinstance(res, (tuple, list)):
        return type(res)(r.detach() for r in res)
    return res.detach()


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """The Jacobian of func at inputs (torch.autograd.functional.jacobian), one backward pass
    per output element. Only strategy="reverse-mode" is implemented; vectorize is accepted and
    ignored (it changes speed, not values, in torch)."""
    if strategy != "reverse-mode":
        raise NotImplementedError("jacobian: only strategy='reverse-mode' is implemented")
    single_in, xs = _leaves(inputs, create_graph)
    with enable_grad():
        res = func(*xs)
        single_out, outs = _outputs(res, "jacobian")
        jac = []
        for o in outs:
            n = int(np.size(o._data))
            rows = []
            for i in range(n):
                e = np.zeros(n, o.dtype)
                e[i] = 1
                rows.append(_grads(o, xs, e.reshape(o.shape), create_graph))
            per_in = []
            for j, x in enumerate(xs):
                if n == 0:
                    block = _wrap(np.zeros(o.shape + x.shape, x.dtype), None, 0)
                elif create_graph:
                    block = np.stack([r[j] for r in rows]).reshape(o.shape + x.shape)
                else:
                    block = _wrap(np.stack([r[j]._data for r in rows]).reshape(o.shape + x.shape),
                                  None, 0)
                per_in.append(block)
            jac.append(per_in[0] if single_in else tuple(per_in))
    return jac[0] if single_out else tuple(jac)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a scalar func at inputs (torch.autograd.functional.hessian): the Jacobian
    of its gradient, the gradient taken with create_graph=True."""
    single_in, xs = _leaves(inputs, True)

    def gradient(*ys):
        out = func(*ys)
        if not isinstance(out, Tensor) or np.size(out._data) != 1:
            raise RuntimeError("The function given to hessian should return a single Tensor "
                               "with a single element")
        gs = _grads(out.reshape(()), ys, None, True)
        return gs[0] if single_in else tuple(gs)

    return jacobian(gradient, xs[0] if single_in else xs, create_graph=create_graph,
                    strategy=outer_jacobian_strategy)
