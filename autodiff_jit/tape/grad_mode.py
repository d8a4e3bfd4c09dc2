"""Grad mode (torch.autograd.grad_mode): whether operations on Tensors are recorded."""
from __future__ import annotations

import functools

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled"]

_GRAD = [True]  # grad mode (a list: one global lookup + index, the cheapest read on hot paths)


def is_grad_enabled() -> bool:
    return _GRAD[0]


class set_grad_enabled:
    """Context manager / decorator setting grad mode (as torch.set_grad_enabled)."""

    def __init__(self, mode: bool = True):
        self.mode = bool(mode)
        self.prev = []

    def __enter__(self):
        self.prev.append(_GRAD[0])
        _GRAD[0] = self.mode
        return self

    def __exit__(self, *exc):
        _GRAD[0] = self.prev.pop()
        return False

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)
        return wrapper


class no_grad(set_grad_enabled):
    """`with no_grad():` (or `@no_grad()`): operations inside record nothing."""

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """`with enable_grad():` re-enables recording inside a no_grad block."""

    def __init__(self):
        super().__init__(True)
