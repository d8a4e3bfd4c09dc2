"""Matrix decompositions: `cholesky`, `eigh`, `svd`, `qr`, on stacks of matrices (..., m, n).

Impls call numpy.linalg (LAPACK potrf, syevd, gesdd, geqrf+orgqr; cholesky calls potrf through
the host routines, host.py, when installed); compiled code calls the same LAPACK routines
directly (backend/lapack_kernels.py), so the factors agree (incl. signs).
cholesky and eigh read only the lower triangle, as numpy does: their cotangents are those of
that function of a (nonzero on the lower triangle only), which matches finite differences.
"""
from __future__ import annotations

import numpy as np

from ..ir import AVal, is_float
from .core import Primitive, aval_of, bind, register
from . import host
from .linalg_solve import congruence_solve, triangular_matmul, triangular_solve
from .matrix_ops import col, diag_embed, diag_part, from_lower, lower_adjoint, mT, mm, \
    phi, row, stack_batch, tril


def _float_matrix(name, a, square=True):
    if not is_float(a.dtype):
        raise TypeError(f"{name} needs a float32 or float64 matrix, got {a.dtype}")
    if a.ndim < 2:
        raise np.linalg.LinAlgError(f"{name}: {a.ndim}-dimensional array given. Array must be "
                                    f"at least two-dimensional")
    if square and a.shape[-1] != a.shape[-2]:
        raise np.linalg.LinAlgError(f"{name}: last 2 dimensions of the array must be square, "
                                    f"got shape {a.shape}")


# -- cholesky: a = L L^T, L lower ------------------------------------------------------------

def _cholesky_rule(a):
    _float_matrix("cholesky", a)
    return AVal(a.shape, a.dtype)


# Murray 2016, "Differentiation of the Cholesky decomposition", eqs. 8 and 10: gA = Phi(S +
# S^T) with S = L^{-T} P L^{-1}, P = Phi(L^T G), i.e. tril(S) + tril(S^T, -1) written on S's
# symmetric part L^{-T} (P + P^T) L^{-1}, whose middle has tril(L^T G)'s lower triangle
def _cholesky_vjp(g, l, a):
    ltg = triangular_matmul(l, g, lower=True, transpose_a=True)
    return (phi(congruence_solve(l, ltg, transpose=True)),)


# Murray 2016, eq. 7: dL = L Phi(L^{-1} dSigma L^{-T}), dSigma the symmetric matrix of dA's lower
# triangle
def _cholesky_jvp(t, l, a):
    inner = congruence_solve(l, t[0], transpose=False)
    return triangular_matmul(l, phi(inner), lower=True)


def _cholesky_impl(a):
    k = host.for_stack(a)
    return k.cholesky(a) if k is not None else np.linalg.cholesky(a)


cholesky_p = register(Primitive("cholesky", _cholesky_rule, _cholesky_impl,
                                vjp=_cholesky_vjp, jvp=_cholesky_jvp,
                                torch_name="LinalgCholeskyExBackward0", family="linalg", batch=stack_batch))


def cholesky(a):
    return bind(cholesky_p, a)


# -- eigh: a = V diag(w) V^T ------------------------------------------------------------------

def _eigh_rule(a, uplo="L"):
    _float_matrix("eigh", a)
    return [AVal(a.shape[:-1], a.dtype), AVal(a.shape, a.dtype)]


def _eigh_impl(a, uplo="L"):
    w, v = np.linalg.eigh(a, UPLO=uplo)
    return [w, v]


def _eig_gaps(w):
    """F[i, j] = 1 / (w_j - w_i) off the diagonal, 0 on it (inf for repeated eigenvalues)."""
    n = aval_of(w).shape[-1]
    eye = np.eye(n, dtype=aval_of(w).dtype)
    return 1.0 / (row(w) - col(w) + eye) - eye


# Giles 2008, sec. 3.1 (symmetric case, as Seeger et al. 2017); F is infinite where
# eigenvalues repeat, so eigenvector cotangents then give inf/nan (documented in docs/linalg.md)
def _eigh_vjp(cts, outs, a, uplo="L"):
    gw, gv = cts
    w, v = outs
    inner = 0
    if gw is not None:
        inner = diag_embed(gw)
    if gv is not None:
        inner = inner + _eig_gaps(w) * mm(mT(v), gv)
    s = mm(mm(v, inner), mT(v))
    # uplo 'U' reads the upper triangle: the lower one of a^T
    return (lower_adjoint(s) if uplo == "L" else mT(lower_adjoint(mT(s))),)


def _eigh_jvp(t, outs, a, uplo="L"):
    w, v = outs
    omega = mm(mm(mT(v), from_lower(t[0] if uplo == "L" else mT(t[0]))), v)
    return [diag_part(omega), mm(v, _eig_gaps(w) * omega)]


eigh_p = register(Primitive("eigh", _eigh_rule, _eigh_impl, vjp=_eigh_vjp, jvp=_eigh_jvp,
                            multiple_results=True, torch_name="LinalgEighBackward0",
                            family="linalg", batch=stack_batch))


def eigh(a, uplo="L"):
    """[w, v] of the symmetric matrix built from a's lower (uplo 'L') or upper ('U') triangle,
    computed by LAPACK from that triangle as numpy does (the eigenvector signs depend on it)."""
    if uplo == "L":  # the default stays out of the IR text
        return bind(eigh_p, a)
    return bind(eigh_p, a, uplo=uplo)


# -- svd: a = U diag(s) V^T --------------------------------------------------------------------

def _svd_rule(a, *, full_matrices, compute_uv):
    _float_matrix("svd", a, square=False)
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    s = AVal(batch + (k,), a.dtype)
    if not compute_uv:
        return [s]
    ku, kv = (m, n) if full_matrices else (k, k)
    return [AVal(batch + (m, ku), a.dtype), s, AVal(batch + (kv, n), a.dtype)]


def _svd_impl(a, *, full_matrices, compute_uv):
    if not compute_uv:
        return [np.linalg.svd(a, compute_uv=False)]
    u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
    return [u, s, vh]


def _reciprocal_or_zero(x):
    zero = (x == 0) * np.ones((), aval_of(x).dtype)
    return 1.0 / (x + zero) - zero


def _svd_parts(outs, a, full_matrices, compute_uv):
    if not compute_uv:
        u, s, vh = svd(a, full_matrices=False, compute_uv=True)
        return u, s, mT(vh)
    u, s, vh = outs
    m, n = aval_of(a).shape[-2:]
    if full_matrices and m != n:
        raise NotImplementedError(
            "the derivative of np.linalg.svd(a, full_matrices=True) of a non-square matrix is "
            "not unique (the extra singular vectors are arbitrary); use full_matrices=False")
    return u, s, mT(vh)


def _svd_gaps(s):
    """F[i, j] = 1 / (s_j^2 - s_i^2) off the diagonal, 0 where s_i == s_j."""
    sr, sc = row(s), col(s)
    d = (sr + sc) * (sr - sc)
    return _reciprocal_or_zero(d)


# Townsend 2016, "Differentiating the singular value decomposition" (real case; as JAX's
# svd_jvp_rule). Repeated nonzero singular values make the U/V terms ill-defined (dropped).
def _svd_vjp(cts, outs, a, *, full_matrices, compute_uv):
    u, s, v = _svd_parts(outs, a, full_matrices, compute_uv)
    if compute_uv:
        gu, gs, gvh = cts
    else:
        gu, gs, gvh = None, cts[0], None
    m, n = aval_of(a).shape[-2:]
    k = min(m, n)
    inner = diag_embed(gs) if gs is not None else 0
    f = _svd_gaps(s)
    s_row = row(s)
    s_inv = row(_reciprocal_or_zero(s))
    out = 0
    if gu is not None:
        j = f * mm(mT(u), gu)
        inner = inner + (j + mT(j)) * s_row
        if m > k:  # (I - U U^T) gU S^{-1} V^T
            proj = gu - mm(u, mm(mT(u), gu))
            out = out + mm(proj * s_inv, mT(v))
    if gvh is not None:
        gv = mT(gvh)
        kk = f * mm(mT(v), gv)
        inner = inner + col(s) * (kk + mT(kk))
        if n > k:  # U S^{-1} gV^T (I - V V^T)
            proj = gv - mm(v, mm(mT(v), gv))
            out = out + mm(u * s_inv, mT(proj))
    if isinstance(inner, int):
        return (None,) if isinstance(out, int) else (out,)
    return (out + mm(mm(u, inner), mT(v)),)


def _svd_jvp(t, outs, a, *, full_matrices, compute_uv):
    u, s, v = _svd_parts(outs, a, full_matrices, compute_uv)
    da = t[0]
    p = mm(mm(mT(u), da), v)
    ds = diag_part(p)
    if not compute_uv:
        return [ds]
    m, n = aval_of(a).shape[-2:]
    f = _svd_gaps(s)
    dss = p * row(s)
    sds = col(s) * p
    du = mm(u, f * (dss + mT(dss)))
    dv = mm(v, f * (sds + mT(sds)))
    s_inv = row(_reciprocal_or_zero(s))
    if m > n:
        dav = mm(da, v)
        du = du + (dav - mm(u, mm(mT(u), dav))) * s_inv
    if n > m:
        dau = mm(mT(da), u)
        dv = dv + (dau - mm(v, mm(mT(v), dau))) * s_inv
    return [du, ds, mT(dv)]


svd_p = register(Primitive("svd", _svd_rule, _svd_impl, vjp=_svd_vjp, jvp=_svd_jvp,
                           multiple_results=True, torch_name="LinalgSvdBackward0",
                           family="linalg", batch=stack_batch))


def svd(a, *, full_matrices=False, compute_uv=True):
    """[u, s, vh] (compute_uv) or [s]."""
    return bind(svd_p, a, full_matrices=bool(full_matrices), compute_uv=bool(compute_uv))


# -- qr: a = Q R --------------------------------------------------------------------------------

def _qr_rule(a, *, complete):
    _float_matrix("qr", a, square=False)
    m, n = a.shape[-2:]
    k = m if complete else min(m, n)
    batch = a.shape[:-2]
    return [AVal(batch + (m, k), a.dtype), AVal(batch + (k, n), a.dtype)]


def _qr_impl(a, *, complete):
    q, r = np.linalg.qr(a, mode="complete" if complete else "reduced")
    return [q, r]


def _qr_check(a, complete):
    m, n = aval_of(a).shape[-2:]
    if complete and m > n:
        raise NotImplementedError(
            "the derivative of np.linalg.qr(a, mode='complete') of a tall matrix is not unique "
            "(the extra columns of Q are arbitrary); use mode='reduced'")
    if m < n:
        raise NotImplementedError(
            f"the derivative of np.linalg.qr of a wide ({m}x{n}) matrix is not implemented; "
            f"differentiate the QR of a tall or square matrix (m >= n)")


def _right_solve_rt(x, r):
    """x R^{-T} for upper-triangular R."""
    return mT(triangular_solve(r, mT(x), lower=False))


# Seeger et al. 2017, "Auto-differentiating linear algebra" / Walter & Lehmann 2018 (m >= n):
# gA = (gQ + Q copyltu(M)) R^{-T}, M = R gR^T - gQ^T Q
def _qr_vjp(cts, outs, a, *, complete):
    _qr_check(a, complete)
    gq, gr = cts
    q, r = outs
    m = 0
    if gr is not None:
        m = mm(r, mT(gr))
    if gq is not None:
        m = m - mm(mT(gq), q)
    if isinstance(m, int):
        return (None,)
    copyltu = tril(m, -1) + mT(tril(m, -1)) + diag_embed(diag_part(m))
    b = mm(q, copyltu)
    if gq is not None:
        b = b + gq
    return (_right_solve_rt(b, r),)


def _qr_jvp(t, outs, a, *, complete):
    _qr_check(a, complete)
    q, r = outs
    # dA R^{-1} = (R^{-T} dA^T)^T
    dx_rinv = mT(triangular_solve(r, mT(t[0]), lower=False, transpose_a=True))
    qt = mm(mT(q), dx_rinv)
    low = tril(qt, -1)
    do = low - mT(low)
    dq = mm(q, do - qt) + dx_rinv
    dr = mm(qt - do, r)
    return [dq, dr]


qr_p = register(Primitive("qr", _qr_rule, _qr_impl, vjp=_qr_vjp, jvp=_qr_jvp,
                          multiple_results=True, torch_name="LinalgQrBackward0",
                          family="linalg", batch=stack_batch))


def qr(a, *, complete=False):
    return bind(qr_p, a, complete=bool(complete))


# -- pinv: the Moore-Penrose inverse, singular values below rcond * max(s) cut ----------------

def _pinv_rule(a, *, rcond):
    _float_matrix("pinv", a, square=False)
    return AVal(a.shape[:-2] + (a.shape[-1], a.shape[-2]), a.dtype)


def _pinv_impl(a, *, rcond):
    return np.linalg.pinv(a, rcond=rcond)


# Golub & Pereyra 1973, "The differentiation of pseudo-inverses ..." (eq. 4.12), valid where
# the rank is locally constant (a rank change is a discontinuity of pinv)
def _pinv_vjp(g, p, a, *, rcond):
    pt = mT(p)
    ap, pa = mm(a, p), mm(p, a)
    gt = mT(g)
    ga = -mm(mm(pt, g), pt)
    ga = ga + mm(gt - mm(ap, gt), mm(p, pt))
    ga = ga + mm(mm(pt, p), gt - mm(gt, pa))
    return (ga,)


def _pinv_jvp(t, p, a, *, rcond):
    da = t[0]
    dat = mT(da)
    pt = mT(p)
    ap, pa = mm(a, p), mm(p, a)
    dp = -mm(mm(p, da), p)
    dp = dp + mm(mm(p, pt), dat - mm(dat, ap))
    dp = dp + mm(dat - mm(pa, dat), mm(pt, p))
    return dp


pinv_p = register(Primitive("pinv", _pinv_rule, _pinv_impl, vjp=_pinv_vjp, jvp=_pinv_jvp,
                            torch_name="LinalgPinvBackward0", family="linalg", batch=stack_batch))


def pinv(a, *, rcond):
    return bind(pinv_p, a, rcond=float(rcond))
