"""Optimizers with PyTorch's update formulas, usable two ways.

Tape mode (PyTorch style): give it parameters, then `step()` / `zero_grad()`:

    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss.backward(); opt.step(); opt.zero_grad()

Compiled mode (functional): give it no parameters, then `update(params, grads)` with any pytree
of numpy arrays (e.g. gradients from `autodiff_jit.grad`); it keeps its own state per leaf and
returns the new pytree:

    opt = optim.Adam(lr=1e-3)
    params = opt.update(params, ad.grad(loss)(params, x, y))

Both paths run the same `_rule` on numpy arrays, so a loop written either way takes the same
steps (up to the float order of operations PyTorch uses, which is followed here).
"""
from __future__ import annotations

import math

import numpy as np

from . import tree
from .backend import buffers
from .tape import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


class Optimizer:
    def __init__(self, params=None, defaults=None):
        self.defaults = dict(defaults or {})
        self.state: dict = {}           # tape mode: id(param) -> state dict
        self._fstate: list | None = None  # functional mode: per-leaf state, in leaf order
        self._ftreedef = None
        self.param_groups: list[dict] = []
        if params is not None:
            params = list(params)
            if not params:
                raise ValueError("optimizer got an empty parameter list")
            if isinstance(params[0], dict):
                for g in params:
                    self.add_param_group(g)
            else:
                self.add_param_group({"params": params})

    def add_param_group(self, group: dict):
        g = dict(self.defaults)
        g.update(group)
        g["params"] = list(g["params"])
        for p in g["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, got {type(p).__name__}; "
                                f"for numpy pytrees create the optimizer without parameters and "
                                f"call update(params, grads)")
        self.param_groups.append(g)

    # -- tape mode -------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True):
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def step(self, closure=None):
        loss = None
        if closure is not None:
            from .tape import enable_grad
            with enable_grad():
                loss = closure()
        allocator = buffers.push()   # the update's temporaries from the buffer cache
        try:
            self._step_tensors()
        finally:
            buffers.pop(allocator)
        return loss

    def _step_tensors(self):
        for g in self.param_groups:
            hp = {k: v for k, v in g.items() if k != "params"}
            for p in g["params"]:
                if p.grad is None:
                    continue
                grad = p.grad._data
                state = self.state.setdefault(id(p), {})
                new = self._rule(p._data, grad, state, **hp)
                # in place, as torch does: references to the parameter see the update
                if p._data.flags.writeable:
                    np.copyto(p._data, new, casting="unsafe")
                else:
                    p._data = np.array(new, dtype=p._data.dtype)
                p._bump_version()  # an in-place write, as torch's step (graphs saving p see it)

    # -- functional mode (pytrees of numpy arrays) ---------------------------------------
    def update(self, params, grads):
        """New params = one optimizer step from `grads` (same pytree structure as params)."""
        p_leaves, td = tree.flatten(params)
        g_leaves, gtd = tree.flatten(grads)
        if len(p_leaves) != len(g_leaves):
            raise ValueError(f"update: params have {len(p_leaves)} leaves but grads have "
                             f"{len(g_leaves)}")
        if self._fstate is None or self._ftreedef != td:
            self._fstate = [{} for _ in p_leaves]
            self._ftreedef = td
        hp = dict(self.defaults)
        out = []
        for p, g, st in zip(p_leaves, g_leaves, self._fstate):
            scalar = np.ndim(p) == 0
            p_arr = np.asarray(p)
            g_arr = np.asarray(g, dtype=p_arr.dtype)
            new = np.asarray(self._rule(p_arr, g_arr, st, **hp), dtype=p_arr.dtype)
            out.append(new[()] if scalar and not isinstance(p, np.ndarray) else new)
        return tree.unflatten(td, out)

    def init(self, params):
        """Reset the functional state (optional: `update` initialises it on first use)."""
        self._fstate = [{} for _ in tree.flatten(params)[0]]
        self._ftreedef = tree.flatten(params)[1]
        return self

    def _rule(self, p, g, state, **hp):  # pragma: no cover - abstract
        raise NotImplementedError


class SGD(Optimizer):
    """torch.optim.SGD: weight decay, momentum (with dampening), Nesterov, maximize."""

    def __init__(self, params=None, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _rule(self, p, g, state, *, lr, momentum, dampening, weight_decay, nesterov, maximize):
        dt = p.dtype
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + dt.type(weight_decay) * p
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = np.array(g, dtype=dt, copy=True)
            else:
                buf = dt.type(momentum) * buf + dt.type(1 - dampening) * g
            state["momentum_buffer"] = buf
            g = g + dt.type(momentum) * buf if nesterov else buf
        return p - dt.type(lr) * g


class Adam(Optimizer):
    """torch.optim.Adam (amsgrad optional), with bias correction as PyTorch computes it:
    p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)."""

    def __init__(self, params=None, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    _decoupled = False

    def _rule(self, p, g, state, *, lr, betas, eps, weight_decay, amsgrad, maximize):
        dt = p.dtype
        b1, b2 = betas
        if maximize:
            g = -g
        if weight_decay != 0:
            if self._decoupled:
                p = p * dt.type(1 - lr * weight_decay)
            else:
                g = g + dt.type(weight_decay) * p
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
            if amsgrad:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1
        t = state["step"]
        # torch: exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(g, g, 1 - beta2)
        m = state["exp_avg"] = state["exp_avg"] + (g - state["exp_avg"]) * dt.type(1 - b1)
        v = state["exp_avg_sq"] = state["exp_avg_sq"] * dt.type(b2) + g * g * dt.type(1 - b2)
        bc1 = 1 - b1 ** t
        bc2 = 1 - b2 ** t
        step_size = lr / bc1
        if amsgrad:
            v = state["max_exp_avg_sq"] = np.maximum(state["max_exp_avg_sq"], v)
        denom = np.sqrt(v) / dt.type(math.sqrt(bc2)) + dt.type(eps)
        return p - dt.type(step_size) * (m / denom)


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay (default 0.01)."""
    _decoupled = True

    def __init__(self, params=None, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
