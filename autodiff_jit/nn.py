"""PyTorch-style layers and losses for tape mode: Module, Linear, MSELoss, ...

    import autodiff_jit as ad
    linear = ad.nn.Linear(3, 2)          # weight (2, 3), bias (2,), U(-1/sqrt(3), 1/sqrt(3))
    loss = ad.nn.MSELoss()(linear(x), y)
    loss.backward()

Layers hold `Parameter`s (tape Tensors with requires_grad=True); their forward passes are plain
numpy code on those Tensors, so every gradient comes from the shared primitive rules.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from . import tape
from .backend import buffers
from .tape import Parameter, Tensor, record_as

__all__ = ["Module", "Parameter", "Linear", "MSELoss", "L1Loss", "CrossEntropyLoss", "Sequential",
           "Tanh", "ReLU", "Sigmoid", "functional"]


class Module:
    """Base class: assign Parameters and sub-Modules as attributes; define forward()."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            Module.__init__(self)
        if isinstance(value, Parameter):
            self._parameters[name] = value
            self._modules.pop(name, None)
        elif isinstance(value, Module):
            self._modules[name] = value
            self._parameters.pop(name, None)
        object.__setattr__(self, name, value)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        # the forward pass's arrays from the buffer cache, as a backward pass's (tape.md, Memory)
        allocator = buffers.push()
        try:
            return self.forward(*args, **kwargs)
        finally:
            buffers.pop(allocator)

    def named_parameters(self, prefix=""):
        for name, p in self._parameters.items():
            yield prefix + name, p
        for mname, m in self._modules.items():
            yield from m.named_parameters(prefix + mname + ".")

    def parameters(self):
        seen = set()
        for _, p in self.named_parameters():
            if id(p) not in seen:
                seen.add(id(p))
                yield p

    def children(self):
        return iter(self._modules.values())

    def zero_grad(self, set_to_none: bool = True):
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def state_dict(self):
        return OrderedDict((n, p.detach()) for n, p in self.named_parameters())

    def load_state_dict(self, state):
        params = dict(self.named_parameters())
        for n, v in state.items():
            params[n]._data = np.array(np.asarray(v), dtype=params[n].dtype)

    def train(self, mode: bool = True):
        object.__setattr__(self, "training", mode)
        for m in self._modules.values():
            m.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = [f"({n}): {m!r}".replace("\n", "\n  ") for n, m in self._modules.items()]
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


class Linear(Module):
    """y = x @ weight.T + bias, weight (out_features, in_features); PyTorch's default init:
    weight and bias ~ U(-1/sqrt(in_features), 1/sqrt(in_features))."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        rng = tape.generator()
        dt = dtype or np.float32
        self.weight = Parameter(rng.uniform(-bound, bound, (out_features, in_features)).astype(dt))
        if bias:
            self.bias = Parameter(rng.uniform(-bound, bound, (out_features,)).astype(dt))
        else:
            self.bias = None

    def forward(self, x):
        y = x @ self.weight.T
        return y if self.bias is None else y + self.bias

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"


class Sequential(Module):
    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


class Tanh(Module):
    def forward(self, x):
        return np.tanh(x)


class ReLU(Module):
    def forward(self, x):
        return tape.relu(x)


class Sigmoid(Module):
    def forward(self, x):
        return tape.sigmoid(x)


def _reduce(x, reduction):
    if reduction == "mean":
        return np.mean(x)
    if reduction == "sum":
        return np.sum(x)
    if reduction == "none":
        return x
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def mse_loss(pred, target, reduction="mean"):
    """mean((pred - target)**2) as one MseLossBackward0 node on tape Tensors; plain numpy too."""
    return record_as("MseLossBackward0", lambda p, t: _reduce((p - t) ** 2, reduction),
                     pred, target)


def l1_loss(pred, target, reduction="mean"):
    return record_as("L1LossBackward0", lambda p, t: _reduce(np.abs(p - t), reduction),
                     pred, target)


def log_softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    m = m.detach() if isinstance(m, Tensor) else m
    z = x - m
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def cross_entropy(logits, target, reduction="mean"):
    """Softmax cross-entropy with integer class targets (as F.cross_entropy)."""
    def f(z, t):
        lp = log_softmax(z, axis=-1)
        idx = np.asarray(t._data if isinstance(t, Tensor) else t).astype(np.int64)
        picked = lp[np.arange(idx.shape[0]), idx]
        return _reduce(-picked, reduction)
    return record_as("NllLossBackward0", f, logits, target)


class MSELoss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, pred, target):
        return mse_loss(pred, target, self.reduction)


class L1Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, pred, target):
        return l1_loss(pred, target, self.reduction)


class CrossEntropyLoss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, logits, target):
        return cross_entropy(logits, target, self.reduction)


class _Functional:
    """`nn.functional` (F.mse_loss, F.relu, ...)."""
    mse_loss = staticmethod(mse_loss)
    l1_loss = staticmethod(l1_loss)
    cross_entropy = staticmethod(cross_entropy)
    log_softmax = staticmethod(log_softmax)
    relu = staticmethod(tape.relu)
    sigmoid = staticmethod(tape.sigmoid)
    tanh = staticmethod(np.tanh)

    @staticmethod
    def linear(x, weight, bias=None):
        y = x @ weight.T
        return y if bias is None else y + bias


functional = _Functional()
