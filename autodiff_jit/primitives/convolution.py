"""convolve: a window of the full 1-D convolution of two vectors, each output the sum of only
the products that overlap (numpy's convolve: no padding terms, so an inf in one input never
meets a padding 0 to give NaN), as one primitive (compiled: one dot product per output over
its overlap, backend/convolve_kernels.py), with rules that reuse it.

The vectors are the last axis of a and v; leading axes (equal in both) are a batch of
independent convolutions, which is how vmap batches it (one loop over the batch)."""
from __future__ import annotations

import numpy as np

from ..ir import AVal, is_float
from .core import Primitive, aval_of, bind, register
from . import indexing as I
from .matrix_ops import stack_batch


def _convolve_rule(a, v, *, lo, size):
    if a.ndim < 1 or a.ndim != v.ndim or a.shape[:-1] != v.shape[:-1] or \
            a.dtype != v.dtype or a.shape[-1] == 0 or v.shape[-1] == 0 or size < 0 or \
            not (is_float(a.dtype) or a.dtype == np.int64):
        raise ValueError(f"convolve: two non-empty vectors (or batches of them, the same leading "
                         f"axes) of one float or int64 dtype and a size >= 0, got "
                         f"{a.dtype}{a.shape}, {v.dtype}{v.shape}, size {size}")
    return AVal(a.shape[:-1] + (size,), a.dtype)


def _convolve_impl(a, v, *, lo, size):
    """out[..., t] = full[lo + t], full = np.convolve(a[...], v[...]) (0 outside it)."""
    out = np.zeros(a.shape[:-1] + (size,), a.dtype)
    start = max(lo, 0)
    for ix in np.ndindex(*a.shape[:-1]):
        full = np.convolve(a[ix], v[ix])
        stop = min(lo + size, full.shape[0])
        if stop > start:
            out[ix + (slice(start - lo, stop - lo),)] = full[start:stop]
    return out


def _flip(x):
    s = aval_of(x).shape
    return x if s[-1] == 1 else I.slice_along(x, len(s) - 1, s[-1] - 1, s[-1], step=-1)


# out[t] = sum_k a[lo + t - k] v[k]: d/da[j] = sum_t g[t] v[lo + t - j], the convolution of g
# with flip(v) at j + m - 1 - lo; likewise for v (the transpose of a convolution is a
# correlation: derived here, checked against finite differences)
def _convolve_vjp(g, out, a, v, *, lo, size):
    n, m = aval_of(a).shape[-1], aval_of(v).shape[-1]
    if size == 0:   # no outputs: no gradient
        return (None, None)
    return (bind(convolve_p, g, _flip(v), lo=m - 1 - lo, size=n),
            bind(convolve_p, g, _flip(a), lo=n - 1 - lo, size=m))


def _convolve_jvp(t, out, a, v, *, lo, size):
    # bilinear: d(a * v) = da * v + a * dv
    ta, tv = t
    terms = []
    if ta is not None:
        terms.append(bind(convolve_p, ta, v, lo=lo, size=size))
    if tv is not None:
        terms.append(bind(convolve_p, a, tv, lo=lo, size=size))
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


# vmap: the batch axis moves to the front of both inputs (an unbatched one is broadcast), one
# batched convolve for all examples
convolve_p = register(Primitive("convolve", _convolve_rule, _convolve_impl, vjp=_convolve_vjp,
                                jvp=_convolve_jvp, torch_name="ConvolutionBackward0",
                                batch=stack_batch))


def convolve(a, v, lo, size):
    """full[..., lo:lo + size] of the full convolution of vectors a and v (one dtype; leading
    axes, the same in both, are a batch)."""
    return bind(convolve_p, a, v, lo=int(lo), size=int(size))
