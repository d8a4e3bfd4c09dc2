"""Custom functions (torch.autograd.Function): user-written forward and backward."""
from __future__ import annotations

import numpy as np

from .grad_mode import _GRAD, no_grad
from .graph import _RETAIN_MSG, FunctionNode
from .tensor import Tensor, _wrap

__all__ = ["Function", "FunctionCtx"]


class FunctionCtx:
    """The `ctx` of a custom Function: save_for_backward / saved_tensors / attributes."""

    def __init__(self):
        self.saved_tensors_ = ()
        self.needs_input_grad = ()

    def save_for_backward(self, *tensors):
        self.saved_tensors_ = tensors

    @property
    def saved_tensors(self):
        if self.saved_tensors_ is None:
            raise RuntimeError(_RETAIN_MSG)
        return self.saved_tensors_

    def mark_non_differentiable(self, *args):
        pass


class Function:
    """A tape operation with user-written forward and backward (torch.autograd.Function):

        class MultiplyByTwo(Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * 2
            @staticmethod
            def backward(ctx, grad_output):
                return grad_output * 2

        y = MultiplyByTwo.apply(x)
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("Function subclasses define a static forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("Function subclasses define a static backward(ctx, grad)")

    @classmethod
    def apply(cls, *args):
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with no_grad():
            out = cls.forward(ctx, *args)
        if not isinstance(out, Tensor):
            out = _wrap(np.asarray(out), None, 0)
        if _GRAD[0] and any(ctx.needs_input_grad):
            node = FunctionNode(cls, ctx, tuple(args))
            return _wrap(out._data, node, 0)
        return _wrap(out._data, None, 0)
