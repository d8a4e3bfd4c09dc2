"""Linear solves and the LU log-determinant: `solve`, `triangular_solve`, `slogdet`.

All act on stacks of matrices: a (..., n, n), b (..., n, k) with the same leading axes (the
numpy layer broadcasts and turns vector right-hand sides into one column). The impls call
numpy.linalg (LAPACK getrf/gesv underneath); compiled code calls LAPACK directly
(backend/lapack_kernels.py). A singular matrix raises numpy.linalg.LinAlgError in every mode.
"""
from __future__ import annotations

import numpy as np

from ..ir import AVal, is_float
from .core import Primitive, aval_of, bind, register
from . import reductions as R, shape as S
from .matrix_ops import diag_part, mT, mm, tril, triu


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


# -- solve: x = a^{-1} b ----------------------------------------------------------------------

def _solve_impl(a, b):
    return np.linalg.solve(a, b)


# Giles 2008, "Collected matrix derivative results", sec. 2.3.1 (C = A^{-1} B)
def _solve_vjp(g, x, a, b):
    gb = solve(mT(a), g)
    return -mm(gb, mT(x)), gb


def _solve_jvp(t, x, a, b):
    ta, tb = t
    rhs = tb
    if ta is not None:
        rhs = -mm(ta, x) if rhs is None else rhs - mm(ta, x)
    return solve(a, rhs)


solve_p = register(Primitive("solve", _solve_rule("solve"), _solve_impl, vjp=_solve_vjp,
                             jvp=_solve_jvp, torch_name="LinalgSolveExBackward0",
                             family="linalg"))


def solve(a, b):
    return bind(solve_p, a, b)


# -- triangular_solve: x = op(a)^{-1} b, a lower or upper triangular --------------------------

def _tri(x, lower):
    return tril(x) if lower else triu(x)


def _trsolve_impl(a, b, *, lower, transpose_a):
    if np.any(np.diagonal(a, axis1=-2, axis2=-1) == 0):  # exactly singular, as trtrs reports
        raise np.linalg.LinAlgError("Singular matrix")
    t = np.tril(a) if lower else np.triu(a)
    if transpose_a:
        t = np.swapaxes(t, -1, -2)
    return np.linalg.solve(t, b)


# Giles 2008, sec. 2.3.1, with dA restricted to the triangle the solve reads
def _trsolve_vjp(g, x, a, b, *, lower, transpose_a):
    gb = triangular_solve(a, g, lower=lower, transpose_a=not transpose_a)
    ga = -mm(x, mT(gb)) if transpose_a else -mm(gb, mT(x))
    return _tri(ga, lower), gb


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
    jvp=_trsolve_jvp, torch_name="LinalgSolveTriangularBackward0", family="linalg"))


def triangular_solve(a, b, *, lower=True, transpose_a=False):
    """op(tri(a))^{-1} b, tri = the lower (upper) triangle of a, op = transpose if asked."""
    return bind(triangular_solve_p, a, b, lower=bool(lower), transpose_a=bool(transpose_a))


# -- slogdet: (sign, log|det a|) --------------------------------------------------------------

def _slogdet_rule(a):
    _float_square("slogdet", a)
    return [AVal(a.shape[:-2], a.dtype), AVal(a.shape[:-2], a.dtype)]


def _slogdet_impl(a):
    sign, logdet = np.linalg.slogdet(a)
    return [np.asarray(sign, a.dtype), np.asarray(logdet, a.dtype)]


# Giles 2008, sec. 2.2.4: d log|det A| = tr(A^{-1} dA); the sign is piecewise constant
def _slogdet_vjp(cts, outs, a):
    g = cts[1]
    if g is None:
        return (None,)
    av = aval_of(a)
    inv_t = solve(mT(a), np.broadcast_to(np.eye(av.shape[-1], dtype=av.dtype), av.shape))
    return (inv_t * S.reshape(g, aval_of(g).shape + (1, 1)),)


def _slogdet_jvp(t, outs, a):
    ta = t[0]
    if ta is None:
        return [None, None]
    d = diag_part(solve(a, ta))
    return [None, R.reduce_sum(d, (aval_of(d).ndim - 1,))]


slogdet_p = register(Primitive("slogdet", _slogdet_rule, _slogdet_impl, vjp=_slogdet_vjp,
                               jvp=_slogdet_jvp, multiple_results=True,
                               torch_name="LinalgSlogdetBackward0", family="linalg"))


def slogdet(a):
    return bind(slogdet_p, a)
