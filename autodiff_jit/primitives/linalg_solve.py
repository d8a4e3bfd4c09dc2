"""Linear solves and the LU log-determinant: `solve`, `triangular_solve`, `slogdet`, and the
triangular helpers of the Cholesky rules, `triangular_matmul` and `congruence_solve`.

All act on stacks of matrices: a (..., n, n), b (..., n, k) with the same leading axes (the
numpy layer broadcasts and turns vector right-hand sides into one column). The impls call
LAPACK getrf/getrs/sygst and BLAS trsm/trmm through the host routines (host.py) when
installed, else numpy.linalg (gesv underneath), blocked numpy substitution and matmul;
compiled code calls LAPACK directly (backend/lapack_kernels.py). A singular matrix raises
numpy.linalg.LinAlgError in every mode.
"""
from __future__ import annotations

import numpy as np

from ..ir import AVal, is_float
from .core import Primitive, aval_of, bind, register
from . import host, reductions as R, shape as S
from .elementwise import mul_into_fresh
from .linalg import outer_np
from .matrix_ops import diag_part, eye, from_lower, mT, mm, phi, stack_batch, tri_mask, \
    tril, triu

_ND = np.ndarray


def _float_square(name, a):
    if not is_float(a.dtype):
        raise TypeError(f"{name} needs a float32 or float64 matrix, got {a.dtype}")
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise np.linalg.LinAlgError(f"{name}: last 2 dimensions of the array must be square, "
                                    f"got shape {a.shape}")


def _solve_rule(name):
    def rule(a, b, **params):
        _float_square(name, a)
        if b.dtype != a.dtype:
            raise TypeError(f"{name}: dtypes {a.dtype} and {b.dtype} differ")
        if b.ndim != a.ndim or b.shape[:-2] != a.shape[:-2] or b.shape[-2] != a.shape[-1]:
            raise ValueError(f"{name}: right-hand side of shape {b.shape} does not fit a matrix "
                             f"stack of shape {a.shape} (want {a.shape[:-1]} + (k,))")
        return AVal(b.shape, b.dtype)
    return rule


# -- solve: x = a^{-1} b, and lu_solve: the same with a's LU factors at hand --------------------
#
# solve has three outputs: x, then an LU factorization of a and its pivots, a cache that the
# gradient's second solve (a^T g) reuses through lu_solve instead of factoring a again. The
# cache is LAPACK getrf's factors of column-major a and its 1-based pivots, what compiled code
# and the host routines (host.py) compute; the numpy fallback leaves it empty (zero pivots)
# and lu_solve then solves with a itself. Either way lu_solve(a, lu, piv, b) *is*
# op(a)^{-1} b, a function of a and b only: its rules are those of a solve, and the cache gets
# no derivative (exact to any order).

PIVOT_DTYPE = np.dtype(np.int64)


def _solve3_rule(a, b):
    x = _solve_rule("solve")(a, b)
    return [x, AVal(a.shape, a.dtype), AVal(a.shape[:-1], PIVOT_DTYPE)]


def _solve_impl(a, b):
    k = host.for_stack(a)
    if k is not None and b.shape[-1]:
        return list(k.solve(a, b))
    x = np.linalg.solve(a, b)
    return [x, np.broadcast_to(np.zeros((), a.dtype), a.shape),
            np.broadcast_to(np.zeros((), PIVOT_DTYPE), a.shape[:-1])]


def _outer(u, v):
    """u v^T over the last two axes (u (..., n, k), v (..., m, k)): for one column (k = 1) the
    products, not a matrix product of inner length 1 that would add each to +0.0 (a -0.0
    product would come out +0.0); on numpy matrices (tape backward) outer_np, which takes
    the faster GEMM where that cannot happen."""
    if aval_of(u).shape[-1] == 1:
        if type(u) is _ND and type(v) is _ND and u.ndim == 2:
            return outer_np(u[:, 0], v[:, 0])
        return u * mT(v)
    return mm(u, mT(v))


def _op_a_x(ta, x, trans):
    return mm(mT(ta), x) if trans else mm(ta, x)


# Giles 2008, "Collected matrix derivative results", sec. 2.3.1 (C = A^{-1} B)
def _solve_vjp(cts, outs, a, b):
    x, lu, piv = outs
    gb = lu_solve(a, lu, piv, cts[0], trans=True)
    # -(gb x^T) as (-gb) x^T: the negation on the n x k factor, not the n x n product (the
    # same values: rounding is symmetric in sign)
    return _outer(-gb, x), gb


def _solve_jvp(t, outs, a, b):
    x, lu, piv = outs
    ta, tb = t
    rhs = tb
    if ta is not None:
        rhs = -mm(ta, x) if rhs is None else rhs - mm(ta, x)
    return [lu_solve(a, lu, piv, rhs, trans=False), None, None]


solve_p = register(Primitive("solve", _solve3_rule, _solve_impl, vjp=_solve_vjp,
                             jvp=_solve_jvp, multiple_results=True,
                             torch_name="LinalgSolveExBackward0", family="linalg", batch=stack_batch))


def solve(a, b):
    """a^{-1} b (a (..., n, n), b (..., n, k))."""
    return bind(solve_p, a, b)[0]


def _lu_solve_rule(a, lu, piv, b, *, trans):
    return _solve_rule("lu_solve")(a, b)


def _factored(piv):
    """solve left real factors (getrf's pivots are >= 1), not the empty cache."""
    return piv.size and piv[(0,) * piv.ndim] != 0


def _lu_solve_impl(a, lu, piv, b, *, trans):
    k = host.for_stack(a)
    if k is not None and b.shape[-1] and _factored(piv):
        # slogdet keeps the factors of a singular matrix too: a solve with them fails as
        # numpy's does (getrs would divide by the zero pivot)
        if not lu.diagonal(0, -2, -1).all():
            raise np.linalg.LinAlgError("Singular matrix")
        return k.lu_solve(lu, piv, b, trans)
    return np.linalg.solve(np.swapaxes(a, -1, -2) if trans else a, b)


# Giles 2008, sec. 2.3.1, for op(A)^{-1} B; the factors are a cache of A (no derivative)
def _lu_solve_vjp(g, x, a, lu, piv, b, *, trans):
    gb = lu_solve(a, lu, piv, g, trans=not trans)
    ga = _outer(x, -gb) if trans else _outer(-gb, x)
    return ga, None, None, gb


def _lu_solve_jvp(t, x, a, lu, piv, b, *, trans):
    ta, _, _, tb = t
    rhs = tb
    if ta is not None:
        d = _op_a_x(ta, x, trans)
        rhs = -d if rhs is None else rhs - d
    if rhs is None:
        return None
    return lu_solve(a, lu, piv, rhs, trans=trans)


lu_solve_p = register(Primitive("lu_solve", _lu_solve_rule, _lu_solve_impl, vjp=_lu_solve_vjp,
                                jvp=_lu_solve_jvp, torch_name="LinalgLuSolveBackward0",
                                family="linalg", batch=stack_batch))


def lu_solve(a, lu, piv, b, *, trans=False):
    """op(a)^{-1} b given solve's LU cache (lu, piv) of a."""
    return bind(lu_solve_p, a, lu, piv, b, trans=bool(trans))


# -- triangular_solve: x = op(a)^{-1} b, a lower or upper triangular --------------------------

def _tri(x, lower):
    return tril(x) if lower else triu(x)


_BLOCK = 64   # numpy has no triangular solve: blocks of this size are LU-solved, the rest is matmul


def _trsolve_impl(a, b, *, lower, transpose_a):
    """BLAS trsm through the host routines, else blocked substitution in numpy: O(n^2 k) (an
    LU solve of the whole triangle is O(n^3))."""
    if np.any(np.diagonal(a, axis1=-2, axis2=-1) == 0):  # exactly singular, as trtrs reports
        raise np.linalg.LinAlgError("Singular matrix")
    k = host.for_stack(a)
    if k is not None and b.shape[-1]:
        return k.triangular_solve(a, b, lower, transpose_a)
    t = np.tril(a) if lower else np.triu(a)
    if transpose_a:
        t = np.swapaxes(t, -1, -2)
    n = t.shape[-1]
    if n <= _BLOCK:
        return np.linalg.solve(t, b)
    forward = lower != transpose_a    # op(a) is lower triangular
    x = np.empty(b.shape, b.dtype)
    starts = range(0, n, _BLOCK) if forward else reversed(range(0, n, _BLOCK))
    for s in starts:
        e = min(s + _BLOCK, n)
        rhs = b[..., s:e, :]
        if forward and s:
            rhs = rhs - t[..., s:e, :s] @ x[..., :s, :]
        elif not forward and e < n:
            rhs = rhs - t[..., s:e, e:] @ x[..., e:, :]
        x[..., s:e, :] = np.linalg.solve(t[..., s:e, s:e], rhs)
    return x


# Giles 2008, sec. 2.3.1, with dA restricted to the triangle the solve reads
def _trsolve_vjp(g, x, a, b, *, lower, transpose_a):
    gb = triangular_solve(a, g, lower=lower, transpose_a=not transpose_a)
    p = _outer(x, gb) if transpose_a else _outer(gb, x)
    av = aval_of(p)
    # tri(-p) as one multiply by the negated mask: the same values, signed zeros included
    m = tri_mask(av.shape[-1], av.dtype, lower=lower, value=-1)
    return (mul_into_fresh(m, p, x, gb) if type(p) is np.ndarray else p * m), gb


def _trsolve_jvp(t, x, a, b, *, lower, transpose_a):
    ta, tb = t
    rhs = tb
    if ta is not None:
        da = _tri(ta, lower)
        dax = mm(mT(da) if transpose_a else da, x)
        rhs = -dax if rhs is None else rhs - dax
    return triangular_solve(a, rhs, lower=lower, transpose_a=transpose_a)


triangular_solve_p = register(Primitive(
    "triangular_solve", _solve_rule("triangular_solve"), _trsolve_impl, vjp=_trsolve_vjp,
    jvp=_trsolve_jvp, torch_name="LinalgSolveTriangularBackward0", family="linalg", batch=stack_batch))


def triangular_solve(a, b, *, lower=True, transpose_a=False):
    """op(tri(a))^{-1} b, tri = the lower (upper) triangle of a, op = transpose if asked."""
    return bind(triangular_solve_p, a, b, lower=bool(lower), transpose_a=bool(transpose_a))


# -- triangular_matmul: y = op(tri(a)) b ------------------------------------------------------

def _trmm_impl(a, b, *, lower, transpose_a):
    """BLAS trmm through the host routines (half a GEMM's work: it reads one triangle), else
    numpy's matmul of the masked triangle."""
    k = host.for_stack(a)
    if k is not None and b.shape[-1]:
        return k.triangular_matmul(a, b, lower, transpose_a)
    t = np.tril(a) if lower else np.triu(a)
    return np.matmul(np.swapaxes(t, -1, -2) if transpose_a else t, b)


# Giles 2008, sec. 2.2.2 (C = AB), with dA restricted to the triangle the product reads
def _trmm_vjp(g, y, a, b, *, lower, transpose_a):
    gb = triangular_matmul(a, g, lower=lower, transpose_a=not transpose_a)
    return _tri(_outer(b, g) if transpose_a else _outer(g, b), lower), gb


def _trmm_jvp(t, y, a, b, *, lower, transpose_a):
    ta, tb = t
    out = None
    if ta is not None:
        out = triangular_matmul(ta, b, lower=lower, transpose_a=transpose_a)
    if tb is not None:
        d = triangular_matmul(a, tb, lower=lower, transpose_a=transpose_a)
        out = d if out is None else out + d
    return out


triangular_matmul_p = register(Primitive(
    "triangular_matmul", _solve_rule("triangular_matmul"), _trmm_impl, vjp=_trmm_vjp,
    jvp=_trmm_jvp, torch_name="TriangularMatmulBackward0", family="linalg",
    batch=stack_batch))


def triangular_matmul(a, b, *, lower=True, transpose_a=False):
    """op(tri(a)) @ b, tri = the lower (upper) triangle of a, op = transpose if asked."""
    return bind(triangular_matmul_p, a, b, lower=bool(lower), transpose_a=bool(transpose_a))


# -- congruence_solve: the lower triangle of B^{-1} S B^{-T} ---------------------------------
#
# S is the symmetric matrix whose lower triangle is c's (c's upper triangle is never read), B
# is tril(l), or its transpose with transpose=True. The Cholesky rules need exactly this (the
# VJP: L^{-T} S L^{-1}; the JVP: L^{-1} S L^{-T}): one LAPACK sygst call does the work of two
# triangular solves in about two thirds of their time, and only one triangle is formed.

def _congruence_rule(l, c, *, transpose):
    _float_square("congruence_solve", l)
    if c.dtype != l.dtype or c.shape != l.shape:
        raise ValueError(f"congruence_solve: c of shape {c.shape} and dtype {c.dtype} does not "
                         f"match l of shape {l.shape} and dtype {l.dtype}")
    return AVal(l.shape, l.dtype)


def _congruence_impl(l, c, *, transpose):
    """LAPACK sygst through the host routines, else two triangular solves."""
    if np.any(np.diagonal(l, axis1=-2, axis2=-1) == 0):  # exactly singular, as trsm's callers
        raise np.linalg.LinAlgError("Singular matrix")
    k = host.for_stack(l)
    if k is not None:
        return k.congruence_solve(l, c, transpose)
    s = np.tril(c) + np.swapaxes(np.tril(c, -1), -1, -2)
    # B^{-1} S B^{-T} = B^{-1} (B^{-1} S)^T, S symmetric
    half = _trsolve_impl(l, s, lower=True, transpose_a=transpose)
    full = _trsolve_impl(l, np.ascontiguousarray(np.swapaxes(half, -1, -2)), lower=True,
                         transpose_a=transpose)
    return np.tril(full)


# M = B^{-1} S B^{-T}: dM = B^{-1} dS B^{-T} - (N + N^T), N = B^{-1} dB M (Giles 2008, sec.
# 2.2.3, d(B^{-1}) = -B^{-1} dB B^{-1}, for each factor); the cotangents are the adjoints of
# that, restricted to the triangles read (S: through c's lower triangle; B: l's lower one)
def _congruence_vjp(gy, y, l, c, *, transpose):
    m = from_lower(y)
    t = tril(gy)
    w = t + mT(t)                 # T + T^T: <T, tril(X)> with X symmetric pairs X with it
    # c: lower_adjoint(R) = Phi(R + R^T), R = B^{-T} T B^{-1}, and R + R^T = B^{-T} W B^{-1}
    # is the flipped congruence of W
    gc = phi(congruence_solve(l, w, transpose=not transpose))
    wm = mm(w, m)
    if transpose:                 # gL = -tril(M W L^{-T}) = -tril((L^{-1} W M)^T)
        gl = -tril(mT(triangular_solve(l, wm, lower=True)))
    else:                         # gL = -tril(L^{-T} W M)
        gl = -tril(triangular_solve(l, wm, lower=True, transpose_a=True))
    return gl, gc


def _congruence_jvp(t, y, l, c, *, transpose):
    tl, tc = t
    out = None
    if tc is not None:
        out = congruence_solve(l, tc, transpose=transpose)
    if tl is not None:
        m = from_lower(y)
        bm = triangular_matmul(tl, m, lower=True, transpose_a=transpose)   # dB M
        n = triangular_solve(l, bm, lower=True, transpose_a=transpose)      # B^{-1} dB M
        d = tril(n) + tril(mT(n))
        out = -d if out is None else out - d
    return out


congruence_solve_p = register(Primitive(
    "congruence_solve", _congruence_rule, _congruence_impl, vjp=_congruence_vjp,
    jvp=_congruence_jvp, torch_name="CongruenceSolveBackward0", family="linalg",
    batch=stack_batch))


def congruence_solve(l, c, *, transpose=False):
    """tril(B^{-1} S B^{-T}): S the symmetric matrix with c's lower triangle, B = tril(l)
    (transpose: tril(l)^T)."""
    return bind(congruence_solve_p, l, c, transpose=bool(transpose))


# -- slogdet: (sign, log|det a|), keeping the LU factors ------------------------------------
#
# As solve: two more outputs, the LU cache of a (getrf's factors and pivots from the host
# routines or compiled code; empty from the numpy fallback), which the gradient's solve with
# a^T reuses through lu_solve instead of factoring a again. No derivative flows into them.

def _slogdet_rule(a):
    _float_square("slogdet", a)
    return [AVal(a.shape[:-2], a.dtype), AVal(a.shape[:-2], a.dtype), AVal(a.shape, a.dtype),
            AVal(a.shape[:-1], PIVOT_DTYPE)]


def _slogdet_of_lu(lu, piv):
    """numpy's slogdet from getrf's factors: the sign from the pivots' row swaps and U's
    negative diagonal entries, log|det| summed in order (numpy's loop), (0, -inf) for an
    exactly zero pivot (getrf's info > 0)."""
    n = lu.shape[-1]
    d = np.diagonal(lu, axis1=-2, axis2=-1)
    swaps = np.count_nonzero(piv != np.arange(1, n + 1), axis=-1) + \
        np.count_nonzero(d < 0, axis=-1)
    sign = np.where(swaps % 2, lu.dtype.type(-1), lu.dtype.type(1))
    with np.errstate(divide="ignore"):
        logdet = np.cumsum(np.log(np.abs(d)), axis=-1)[..., -1]
    singular = np.any(d == 0, axis=-1)
    sign = np.where(singular, lu.dtype.type(0), sign)
    logdet = np.where(singular, lu.dtype.type(-np.inf), logdet)
    return np.asarray(sign, lu.dtype), np.asarray(logdet, lu.dtype)


def _slogdet_impl(a):
    k = host.for_stack(a)
    if k is not None:
        lu, piv = k.lu_factor(a, check=False)
        return [*_slogdet_of_lu(lu, piv), lu, piv]
    sign, logdet = np.linalg.slogdet(a)
    return [np.asarray(sign, a.dtype), np.asarray(logdet, a.dtype),
            np.broadcast_to(np.zeros((), a.dtype), a.shape),
            np.broadcast_to(np.zeros((), PIVOT_DTYPE), a.shape[:-1])]


# Giles 2008, sec. 2.2.4: d log|det A| = tr(A^{-1} dA); the sign is piecewise constant
def _slogdet_vjp(cts, outs, a):
    g = cts[1]
    if g is None:
        return (None,)
    lu, piv = outs[2], outs[3]
    av = aval_of(a)
    inv_t = lu_solve(a, lu, piv, np.broadcast_to(eye(av.shape[-1], av.dtype), av.shape),
                     trans=True)
    return (inv_t * S.reshape(g, aval_of(g).shape + (1, 1)),)


def _slogdet_jvp(t, outs, a):
    ta = t[0]
    if ta is None:
        return [None, None, None, None]
    d = diag_part(lu_solve(a, outs[2], outs[3], ta))
    return [None, R.reduce_sum(d, (aval_of(d).ndim - 1,)), None, None]


slogdet_p = register(Primitive("slogdet", _slogdet_rule, _slogdet_impl, vjp=_slogdet_vjp,
                               jvp=_slogdet_jvp, multiple_results=True,
                               torch_name="LinalgSlogdetBackward0", family="linalg", batch=stack_batch))


def slogdet(a):
    """(sign, log|det a|)."""
    sign, logdet, _, _ = bind(slogdet_p, a)
    return sign, logdet
