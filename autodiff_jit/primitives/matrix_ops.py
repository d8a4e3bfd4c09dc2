"""Small matrix helpers shared by the linear-algebra rules: batched transpose and matmul of the
last two axes, triangle masks, diagonals. Written on primitives (`bind`) and numpy operators so
one rule serves tracers, tape Tensors and plain arrays."""
from __future__ import annotations

import functools

import numpy as np

from .core import aval_of, bind
from . import linalg as L, reductions as R, shape as S


def mT(x):
    """Swap the last two axes."""
    nd = aval_of(x).ndim
    return S.transpose(x, tuple(range(nd - 2)) + (nd - 1, nd - 2))


def mm(a, b):
    """a @ b over the last two axes with equal leading (batch) axes."""
    nd = aval_of(a).ndim
    batch = tuple(range(nd - 2))
    return L.dot_general(a, b, ((nd - 1,), (nd - 2,)), (batch, batch))


# Masks and identities are rebuilt on every rule call otherwise: for n = 500 that is 2 MB
# written twice (bool, then cast), often more than the multiply they serve. Cached read-only
# up to this size (bytes), so the cache stays small.
_CACHED_BYTES = 1 << 23


def _constant(make):
    cached = functools.lru_cache(maxsize=16)(lambda *a, **kw: _frozen(make(*a, **kw)))

    @functools.wraps(make)
    def get(n, dtype, *rest, **kw):
        dtype = np.dtype(dtype)
        if n * n * dtype.itemsize > _CACHED_BYTES:
            return make(n, dtype, *rest, **kw)
        return cached(n, dtype, *rest, **kw)
    return get


def _frozen(a):
    a.flags.writeable = False
    return a


@_constant
def tri_mask(n, dtype, k=0, lower=True, value=1):
    """The (n, n) matrix with `value` on the lower (upper) triangle from diagonal k on, 0 (times
    value: -0.0 for -1) elsewhere (read-only)."""
    m = np.tri(n, n, k, dtype=bool) if lower else ~np.tri(n, n, k - 1, dtype=bool)
    m = m.astype(dtype)
    return m if value == 1 else m * dtype.type(value)


@_constant
def phi_mask(n, dtype):
    """The strict lower triangle of ones with 1/2 on the diagonal (read-only): x * phi_mask
    is Murray 2016's Phi(x)."""
    return np.tri(n, n, -1, dtype=dtype) + np.eye(n, dtype=dtype) * dtype.type(0.5)


def phi(x):
    """Lower triangle with the diagonal halved (Murray 2016's Phi), one masked multiply."""
    a = aval_of(x)
    return x * phi_mask(a.shape[-1], a.dtype)


@_constant
def eye(n, dtype):
    """The (n, n) identity (read-only)."""
    return np.eye(n, dtype=dtype)


def tril(x, k=0):
    n = aval_of(x).shape[-1]
    return x * tri_mask(n, aval_of(x).dtype, k, lower=True)


def triu(x, k=0):
    n = aval_of(x).shape[-1]
    return x * tri_mask(n, aval_of(x).dtype, k, lower=False)


def eye_like(x):
    a = aval_of(x)
    return eye(a.shape[-1], a.dtype)


def diag_part(x):
    """x[..., i, i] of square matrices as (..., n)."""
    a = aval_of(x)
    return R.reduce_sum(x * eye(a.shape[-1], a.dtype), (a.ndim - 1,))


def diag_embed(v):
    """(..., n) -> (..., n, n) with v on the diagonal."""
    a = aval_of(v)
    n = a.shape[-1]
    return S.reshape(v, a.shape + (1,)) * eye(n, a.dtype)


def col(v):
    """(..., n) -> (..., n, 1)."""
    return S.reshape(v, aval_of(v).shape + (1,))


def row(v):
    """(..., n) -> (..., 1, n)."""
    a = aval_of(v)
    return S.reshape(v, a.shape[:-1] + (1, a.shape[-1]))


def lower_adjoint(s):
    """Cotangent of A for a function reading only A's lower triangle, given the cotangent `s`
    of the symmetric matrix tril(A) + tril(A, -1)^T it builds: tril(s) + tril(s^T, -1)."""
    return tril(s) + tril(mT(s), -1)


def from_lower(t):
    """The symmetric matrix tril(t) + tril(t, -1)^T a lower-triangle reader sees."""
    return tril(t) + mT(tril(t, -1))


def stack_batch(prim, axis_size, vals, dims, **params):
    """vmap rule of the linear-algebra primitives, which already map over leading axes: the
    batch axis moves to the front of every input (unbatched inputs are broadcast), the
    primitive runs on the larger stack, every output's batch axis is 0."""
    moved = []
    for v, d in zip(vals, dims):
        shape = aval_of(v).shape
        if d is None:
            v = S.broadcast_to(v, (axis_size,) + shape)
        elif d != 0:
            v = S.transpose(v, (d,) + tuple(i for i in range(len(shape)) if i != d))
        moved.append(v)
    out = bind(prim, *moved, **params)
    return out, ([0] * len(out) if prim.multiple_results else 0)
