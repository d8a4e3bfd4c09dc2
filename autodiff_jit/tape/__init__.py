"""Tape mode: a PyTorch-style `Tensor` that records a run-time tape of primitives.

Laid out as torch.autograd is:
  grad_mode   no_grad / enable_grad / set_grad_enabled
  graph       the nodes a Tensor's grad_fn points to (PrimNode, CompositeNode, ...)
  engine      backward: the walk over the nodes, calling the primitives' shared VJP rules
  tensor      Tensor, Parameter, the fast paths, torch-style functions (sigmoid, mean, ...)
  function    Function / FunctionCtx (custom forward/backward)
  factories   tensor, zeros, randn, ... and dtypes
  functional  vjp / jacobian / hessian (torch.autograd.functional)
  call        grad(f, mode="tape") / value_and_grad(f, mode="tape")
There are no derivative formulas here: every node's backward is a primitive's VJP rule.
"""
from __future__ import annotations

from ..backend import buffers as _buffers
from . import functional
from .call import tape_call
from .engine import backward as _backward, grad
from .factories import (arange, as_tensor, bool_, eye, float16, float32, float64, from_numpy,
                        full, generator, int32, int64, linspace, manual_seed, ones, ones_like,
                        rand, randn, tensor, zeros, zeros_like)
from .function import Function, FunctionCtx
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .graph import (_REWIRED, AccumulateGrad, CompositeNode, FunctionNode, Node, PrimNode,
                    RemovableHandle, record_as)
from .tensor import (TAPE, Parameter, Tensor, TapeContext, abs, clamp, cos, exp, log, matmul,
                     maximum, mean, minimum, mm, pow, relu, sigmoid, sin, sqrt, sum, tanh,
                     where)

__all__ = ["Tensor", "Parameter", "tensor", "as_tensor", "from_numpy", "no_grad", "enable_grad",
           "set_grad_enabled", "is_grad_enabled", "Function", "FunctionCtx", "record_as",
           "grad", "backward", "functional", "randn", "rand", "zeros", "ones", "zeros_like",
           "ones_like", "full", "arange", "linspace", "eye", "manual_seed", "tape_call",
           "empty_cache", "memory_stats"]


def empty_cache() -> None:
    """Free the blocks the buffer cache holds (torch.cuda.empty_cache's counterpart): numpy's
    allocator inside tape-mode calls, backward passes, nn module calls and optimizer steps
    keeps freed arrays of 64 kB and more, up to ad.config.buffer_cache_bytes, for the next
    arrays of the same size."""
    _buffers.release()


def memory_stats() -> dict:
    """The buffer cache's counters: cached_bytes, cached_blocks (now); hits, misses (large
    arrays served from / not from the cache), stores, releases (so far)."""
    return _buffers.stats()


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """torch.autograd.backward: `t.backward(g)` for each (t, g) pair."""
    ts = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    gs = [grad_tensors] if grad_tensors is None or isinstance(grad_tensors, Tensor) else \
        list(grad_tensors)
    if len(gs) == 1 and len(ts) > 1 and gs[0] is None:
        gs = gs * len(ts)
    for t, g in zip(ts, gs):
        _backward(t, g, retain_graph, create_graph, inputs)
