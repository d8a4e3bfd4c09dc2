"""Emitters of the linear-algebra primitives (primitives/linalg_solve.py, decomp.py): LAPACK
calls (lapack.py) on each matrix of the stack.

Layout: our arrays are row-major; LAPACK is column-major, so a row-major (m, n) block read by
LAPACK is the transpose. Each kernel copies its input matrix into an arena temporary (LAPACK
overwrites it) in the layout the routine wants, calls the routine, and copies/transposes the
result into the output (see each kernel for which transposes cancel). A failing routine sets
the status record (status.py) that the call path turns into numpy.linalg.LinAlgError.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from . import lapack, mathlib
from .emitters import EMITTERS, Emitter
from .kernels import Buffer, Index, const, for_range, for_span, i64, loop_nest


def _batch(L, shape, body):
    """body(batch dims) for every matrix of a stack with leading axes `shape`."""
    if not shape:
        body([])
    else:
        loop_nest(L.builder, shape, body)


def _copy_in(L, v, bd, tmp, transpose, keep=None, reverse=False):
    """tmp[r, c] = v[bd..., r, c] (or v[bd..., c, r] with transpose; v[bd..., m-1-r, n-1-c]
    with reverse) over tmp's shape (v's matrix may be smaller: extra rows/columns of tmp are
    left alone). keep(r, c) -> i1 selects entries (others are stored as 0)."""
    b = L.builder
    m, n = v.shape[-2:]
    shape = (n, m) if transpose else (m, n)

    def body(d):
        r, c = d
        src = [c, r] if transpose else [r, c]
        if reverse:
            src = [b.sub(i64(m - 1), r), b.sub(i64(n - 1), c)]
        val = L.load(v, Index(v.shape, dims=bd + src))
        if keep is not None:
            val = b.select(keep(r, c), val, const(v.dtype, 0))
        tmp.store(b, Index(tmp.shape, dims=[r, c]), val)
    loop_nest(b, shape, body)


def _copy_out(L, tmp, out, bd, transpose, rows, cols, keep=None, reverse=False):
    """out[bd..., r, c] = tmp[r, c] (or tmp[c, r]; tmp[rows-1-r, cols-1-c] with reverse) for
    r < rows, c < cols."""
    b = L.builder

    def body(d):
        r, c = d
        src = [c, r] if transpose else [r, c]
        if reverse:
            src = [b.sub(i64(rows - 1), r), b.sub(i64(cols - 1), c)]
        val = tmp.load(b, Index(tmp.shape, dims=src))
        if keep is not None:
            val = b.select(keep(r, c), val, const(out.dtype, 0))
        out.store(b, Index(out.shape, dims=bd + [r, c]), val)
    loop_nest(b, (rows, cols), body)


def _block(L, out, bd):
    """Pointer to the first element of the matrix bd of out."""
    nd = len(out.shape)
    return out.addr(L.builder, Index(out.shape, dims=bd + [i64(0)] * (nd - len(bd))))


def _ints(L, n):
    return L.temp_buffer((max(n, 1),), lapack.int_dtype())


def _tmp(L, shape, dtype):
    return L.temp_buffer(tuple(max(s, 1) for s in shape), dtype)


# -- solve (gesv, keeping the factors) and lu_solve (getrs) ---------------------------------------

def _pivots(L, piv_out, bd, n):
    """Where getrf/gesv write the pivots of matrix bd: straight into solve's int64 pivot output
    for ILP64 LAPACK; else a temporary that `_widen` copies out."""
    if lapack.int_dtype() == piv_out.dtype:
        return _block(L, piv_out, bd), None
    tmp = _ints(L, n)
    return tmp.ptr, tmp


def _widen(L, tmp, piv_out, bd, n):
    b = L.builder

    def body(i):
        v = tmp.load(b, Index(tmp.shape, dims=[i]))
        piv_out.store(b, Index(piv_out.shape, dims=bd + [i]), b.sext(v, ir.IntType(64)))
    for_range(b, n, body, name="p")


def _solve_kernel(L, eqn, outs):
    a, rhs = eqn.inputs
    out, lu_out, piv_out = outs
    n, k = rhs.shape[-2:]
    if n == 0:
        return
    dt = np.dtype(out.dtype)
    call = lapack.Caller(L, dt)
    tb = None if k <= 1 else _tmp(L, (k, n), dt)

    def one(bd):
        # the column-major copy of a goes where solve keeps its LU factors (gesv leaves them)
        lu = Buffer(_block(L, lu_out, bd), (n, n), dt)
        _copy_in(L, a, bd, lu, transpose=True)
        pp, ptmp = _pivots(L, piv_out, bd, n)
        if k == 0:
            info = call.call("getrf", [n, n, lu.ptr, n, pp])
        elif k == 1:   # one column: row- and column-major agree; solve in the output
            _copy_in(L, rhs, bd, Buffer(_block(L, out, bd), (n, 1), dt), transpose=False)
            info = call.call("gesv", [n, 1, lu.ptr, n, pp, _block(L, out, bd), n])
        else:
            _copy_in(L, rhs, bd, tb, transpose=True)
            info = call.call("gesv", [n, k, lu.ptr, n, pp, tb.ptr, n])
        call.fail_if_nonzero(info, lapack.SINGULAR)
        if ptmp is not None:
            _widen(L, ptmp, piv_out, bd, n)
        if k > 1:
            _copy_out(L, tb, out, bd, True, n, k)
    _batch(L, out.shape[:-2], one)


def _stored(L, v, bd, shape, dt, scratch):
    """Pointer to matrix bd of `v` if it is a stored buffer, else a copy in `scratch`."""
    buf = L.buffer_of(v)
    if buf is not None:
        return _block(L, buf, bd)
    if len(shape) == 1:
        b = L.builder

        def body(i):
            scratch.store(b, Index(scratch.shape, dims=[i]),
                          L.load(v, Index(v.shape, dims=bd + [i])))
        for_range(b, shape[0], body, name="c")
    else:
        _copy_in(L, v, bd, scratch, transpose=False)
    return scratch.ptr


def _lu_solve_kernel(L, eqn, outs):
    a, lu, piv, rhs = eqn.inputs
    out = outs[0]
    trans = eqn.params["trans"]
    n, k = rhs.shape[-2:]
    if n == 0 or k == 0:
        return
    dt = np.dtype(out.dtype)
    b = L.builder
    call = lapack.Caller(L, dt)
    tb = None if k == 1 else _tmp(L, (k, n), dt)
    lu_s = None if L.buffer_of(lu) is not None else _tmp(L, (n, n), dt)
    narrow = lapack.int_dtype() != piv.dtype
    piv_s = _ints(L, n) if narrow else \
        (None if L.buffer_of(piv) is not None else L.temp_buffer((n,), piv.dtype))

    def one(bd):
        lp = _stored(L, lu, bd, (n, n), dt, lu_s)
        # slogdet keeps the factors of a singular matrix too: report its zero pivot as
        # numpy's solve does (getrs would divide by it)
        lmat = Buffer(lp, (n, n), dt)

        def check(i):
            d = lmat.load(b, Index((n, n), dims=[i, i]))
            call.report_if(b.fcmp_ordered("==", d, const(dt, 0)), lapack.SINGULAR,
                           b.add(i, i64(1)))
        for_range(b, n, check, name="diag")
        if narrow:   # LP64 LAPACK: int32 pivots from solve's int64 ones
            def body(i):
                v = L.load(piv, Index(piv.shape, dims=bd + [i]))
                piv_s.store(b, Index(piv_s.shape, dims=[i]), b.trunc(v, lapack.int_type()))
            for_range(b, n, body, name="p")
            pp = piv_s.ptr
        else:
            pp = _stored(L, piv, bd, (n,), piv.dtype, piv_s)
        if k == 1:
            _copy_in(L, rhs, bd, Buffer(_block(L, out, bd), (n, 1), dt), transpose=False)
            bp = _block(L, out, bd)
        else:
            _copy_in(L, rhs, bd, tb, transpose=True)
            bp = tb.ptr
        # the factors are those of column-major a, i.e. of a itself: op(a) = a^T is 'T'
        call.call("getrs", ["T" if trans else "N", n, k, lp, n, pp, bp, n])
        if k != 1:
            _copy_out(L, tb, out, bd, True, n, k)
    _batch(L, out.shape[:-2], one)


# -- triangular_solve (BLAS trsm, row-major: no transposes) --------------------------------------

def _trsolve_kernel(L, eqn, outs):
    a, rhs = eqn.inputs
    out = outs[0]
    lower, transpose_a = eqn.params["lower"], eqn.params["transpose_a"]
    n, k = rhs.shape[-2:]
    if n == 0 or k == 0:
        return
    dt = np.dtype(out.dtype)
    b = L.builder
    call = lapack.Caller(L, dt)
    abuf = L.buffer_of(a)
    ta = None if abuf is not None else _tmp(L, (n, n), dt)

    def one(bd):
        if ta is None:
            amat = Buffer(_block(L, abuf, bd), (n, n), dt)
        else:
            _copy_in(L, a, bd, ta, transpose=False)
            amat = ta
        # trsm does not check for a zero on the diagonal (trtrs would): report it here
        def check(i):
            d = amat.load(b, Index((n, n), dims=[i, i]))
            call.report_if(b.fcmp_ordered("==", d, const(dt, 0)), lapack.SINGULAR,
                           b.add(i, i64(1)))
        for_range(b, n, check, name="diag")
        blk = Buffer(_block(L, out, bd), (n, k), dt)
        _copy_in(L, rhs, bd, blk, transpose=False)
        if n * n * k <= TRSM_MIN_WORK:
            _substitute(L, amat, blk, n, k, lower=lower, trans=transpose_a)
        else:
            lapack.emit_cblas3(b, "trsm", dt, amat.ptr, blk.ptr, n, k, lower=lower,
                               trans=transpose_a)
    _batch(L, out.shape[:-2], one)


# up to this many multiply-adds (n^2 k) substitution loops are used instead of a trsm call:
# single-threaded they are about as fast up to n = k = 200 (3.3 vs 3.7 ms, 2x slower at 500),
# and OpenBLAS threads trsm from n*k >= 512 on, which on a busy 2-core machine cost 12-37 ms
# for n = k = 64..200 (measured side by side)
TRSM_MIN_WORK = 200 ** 3


def _tri_coef(b, amat, n, trans):
    """coef(i, j): element (i, j) of op(A) for a triangular solve or multiply."""
    return lambda i, j: amat.load(b, Index((n, n), dims=[j, i] if trans else [i, j]))


def _combine_rows(b, x, coef, i, n, k, forward, op):
    """x[i, :] = op(x[i, :], coef(i, j) * x[j, :]) for j < i (forward) or j > i."""
    def update(j):
        c = coef(i, j)

        def col(cc):
            pi = x.addr(b, Index((n, k), dims=[i, cc]))
            xj = x.load(b, Index((n, k), dims=[j, cc]))
            x.store_at(b, pi, op(x.load_at(b, pi), b.fmul(c, xj)))
        for_range(b, k, col, name="c")
    if forward:
        for_span(b, i64(0), i, update, "j")
    else:
        for_span(b, b.add(i, i64(1)), i64(n), update, "j")


def _scale_row(b, x, i, n, k, d, op):
    """x[i, :] = op(x[i, :], d)."""
    def scale(cc):
        pi = x.addr(b, Index((n, k), dims=[i, cc]))
        x.store_at(b, pi, op(x.load_at(b, pi), d))
    for_range(b, k, scale, name="c")


def _substitute(L, amat, x, n, k, *, lower, trans):
    """x (n, k, row-major) <- op(tri(A))^{-1} x by forward or back substitution."""
    b = L.builder
    forward = lower != trans          # op(A) is lower triangular
    coef = _tri_coef(b, amat, n, trans)

    def row(i):
        _combine_rows(b, x, coef, i, n, k, forward, b.fsub)
        _scale_row(b, x, i, n, k, coef(i, i), b.fdiv)
    for_range(b, n, row, reverse=not forward, name="i")


def _stored_matrix(L, a, n, dt):
    """(matrix(bd) -> Buffer of a's matrix bd): a's own storage when it is a stored buffer,
    else a copy into one temporary."""
    abuf = L.buffer_of(a)
    if abuf is not None:
        return lambda bd: Buffer(_block(L, abuf, bd), (n, n), dt)
    ta = _tmp(L, (n, n), dt)

    def copy(bd):
        _copy_in(L, a, bd, ta, transpose=False)
        return ta
    return copy


# -- triangular_matmul (BLAS trmm, row-major) ---------------------------------------------------

def _trmm_kernel(L, eqn, outs):
    a, rhs = eqn.inputs
    out = outs[0]
    lower, transpose_a = eqn.params["lower"], eqn.params["transpose_a"]
    n, k = rhs.shape[-2:]
    if n == 0 or k == 0:
        return
    dt = np.dtype(out.dtype)
    matrix = _stored_matrix(L, a, n, dt)

    def one(bd):
        amat = matrix(bd)
        blk = Buffer(_block(L, out, bd), (n, k), dt)
        _copy_in(L, rhs, bd, blk, transpose=False)
        if n * n * k <= TRSM_MIN_WORK:   # as for trsm: loops below OpenBLAS's threading sizes
            _multiply_tri(L, amat, blk, n, k, lower=lower, trans=transpose_a)
        else:
            lapack.emit_cblas3(L.builder, "trmm", dt, amat.ptr, blk.ptr, n, k, lower=lower,
                               trans=transpose_a)
    _batch(L, out.shape[:-2], one)


def _multiply_tri(L, amat, x, n, k, *, lower, trans):
    """x (n, k, row-major) <- op(tri(A)) x in place: rows in the order that reads each row of
    x before it is overwritten (bottom up when op(A) is lower triangular)."""
    b = L.builder
    forward = lower != trans          # op(A) is lower triangular: row i reads rows <= i
    coef = _tri_coef(b, amat, n, trans)

    def row(i):
        _scale_row(b, x, i, n, k, coef(i, i), b.fmul)
        _combine_rows(b, x, coef, i, n, k, forward, b.fadd)
    for_range(b, n, row, reverse=forward, name="i")


# -- congruence_solve (sygst) ---------------------------------------------------------------------

def _congruence_kernel(L, eqn, outs):
    l, c = eqn.inputs
    out = outs[0]
    transpose = eqn.params["transpose"]
    n = l.shape[-1]
    if n == 0:
        return
    dt = np.dtype(out.dtype)
    b = L.builder
    call = lapack.Caller(L, dt)
    tl, tc = _tmp(L, (n, n), dt), _tmp(L, (n, n), dt)

    def one(bd):
        # the layouts of host_lapack.Kernels.congruence_solve: row-major l is LAPACK's upper
        # factor (sygst 'U' computes L^{-1} S L^{-T}); reversed copies give L^{-T} S L^{-1}
        # through sygst 'L'
        _copy_in(L, l, bd, tl, transpose=False, reverse=transpose)

        def check(i):
            d = tl.load(b, Index((n, n), dims=[i, i]))
            call.report_if(b.fcmp_ordered("==", d, const(dt, 0)), lapack.SINGULAR,
                           b.add(i, i64(1)))
        for_range(b, n, check, name="diag")
        _copy_in(L, c, bd, tc, transpose=False, reverse=transpose)
        call.call("sygst", [1, "L" if transpose else "U", n, tc.ptr, n, tl.ptr, n])
        _copy_out(L, tc, out, bd, False, n, n, keep=lambda r, cc: b.icmp_unsigned(">=", r, cc),
                  reverse=transpose)
    _batch(L, out.shape[:-2], one)


# -- slogdet (getrf) -----------------------------------------------------------------------------

def _slogdet_kernel(L, eqn, outs):
    a = eqn.inputs[0]
    sign_out, log_out, lu_out, piv_out = outs
    n = a.shape[-1]
    dt = np.dtype(a.dtype)
    b = L.builder
    ty = ir.DoubleType() if dt == np.float64 else ir.FloatType()
    call = lapack.Caller(L, dt)
    sgn, acc = L.alloca(ty, name="sgn"), L.alloca(ty, name="logdet")
    log = mathlib.get_math_function(b.module, "log", ty)

    def one(bd):
        b.store(ir.Constant(ty, 1.0), sgn)
        b.store(ir.Constant(ty, 0.0), acc)
        if n:
            # the LU cache solve keeps (lu_solve reuses it): getrf of the column-major copy,
            # whose determinant is a's
            lu = Buffer(_block(L, lu_out, bd), (n, n), dt)
            _copy_in(L, a, bd, lu, transpose=True)
            pp, ptmp = _pivots(L, piv_out, bd, n)
            call.call("getrf", [n, n, lu.ptr, n, pp])   # info > 0: a zero pivot, (0, -inf)
            pivots = ptmp if ptmp is not None else \
                Buffer(_block(L, piv_out, bd), (n,), piv_out.dtype)

            def diag(i):
                d = lu.load(b, Index((n, n), dims=[i, i]))
                absd = b.call(b.module.declare_intrinsic("llvm.fabs", [ty]), [d])
                b.store(b.fadd(b.load(acc), b.call(log, [absd])), acc)
                s = b.load(sgn)
                s = b.select(b.fcmp_ordered("<", d, ir.Constant(ty, 0.0)), b.fneg(s), s)
                s = b.select(b.fcmp_ordered("==", d, ir.Constant(ty, 0.0)),
                             ir.Constant(ty, 0.0), s)
                piv = pivots.load(b, Index((n,), dims=[i]))
                one_based = b.add(i, i64(1))
                if piv.type.width < 64:
                    one_based = b.trunc(one_based, piv.type)
                swapped = b.icmp_signed("!=", piv, one_based)
                b.store(b.select(swapped, b.fneg(s), s), sgn)
            for_range(b, n, diag, name="d")
            if ptmp is not None:
                _widen(L, ptmp, piv_out, bd, n)
        sign_out.store(b, Index(sign_out.shape, dims=list(bd)), b.load(sgn))
        log_out.store(b, Index(log_out.shape, dims=list(bd)), b.load(acc))
    _batch(L, a.shape[:-2], one)


# -- cholesky (potrf) ----------------------------------------------------------------------------

def _cholesky_kernel(L, eqn, outs):
    a = eqn.inputs[0]
    out = outs[0]
    n = a.shape[-1]
    if n == 0:
        return
    dt = np.dtype(a.dtype)
    b = L.builder
    call = lapack.Caller(L, dt)

    def one(bd):
        # our lower triangle (the upper one of what LAPACK sees) into the output, zeros above;
        # potrf('U') then leaves U (U^T U = a) there, which read row-major is L
        blk = Buffer(_block(L, out, bd), (n, n), dt)
        _copy_in(L, a, bd, blk, transpose=False, keep=lambda r, c: b.icmp_unsigned(">=", r, c))
        info = call.call("potrf", ["U", n, blk.ptr, n])
        call.fail_if_nonzero(info, lapack.NOT_POSITIVE_DEFINITE)
    _batch(L, a.shape[:-2], one)


# -- eigh (syevd) -------------------------------------------------------------------------------

def _eigh_kernel(L, eqn, outs):
    a = eqn.inputs[0]
    w_out, v_out = outs
    n = a.shape[-1]
    if n == 0:
        return
    dt = np.dtype(a.dtype)
    call = lapack.Caller(L, dt)
    ta = _tmp(L, (n, n), dt)
    lwork, liwork = 1 + 6 * n + 2 * n * n, 3 + 5 * n
    work = _tmp(L, (lwork,), dt)
    iwork = _ints(L, liwork)
    uplo = eqn.params.get("uplo", "L")

    def one(bd):
        # column-major copy and numpy.linalg.eigh's uplo (the same reduction, so the same
        # eigenvector signs)
        _copy_in(L, a, bd, ta, transpose=True)
        info = call.call("syevd", ["V", uplo, n, ta.ptr, n, _block(L, w_out, bd), work.ptr,
                                   lwork, iwork.ptr, liwork])
        call.fail_if_nonzero(info, lapack.EIG_NO_CONVERGENCE)
        # eigenvectors are LAPACK's columns, i.e. our rows of ta: transpose into v
        _copy_out(L, ta, v_out, bd, True, n, n)
    _batch(L, a.shape[:-2], one)


# -- svd (gesdd) ---------------------------------------------------------------------------------

def _svd_kernel(L, eqn, outs):
    a = eqn.inputs[0]
    full, uv = eqn.params["full_matrices"], eqn.params["compute_uv"]
    m, n = a.shape[-2:]
    k = min(m, n)
    if k == 0:
        return
    dt = np.dtype(a.dtype)
    call = lapack.Caller(L, dt)
    ta = _tmp(L, (n, m), dt)   # column-major copy of a (as numpy: the same signs)
    mx = max(m, n)
    if uv:
        lwork = 3 * k * k + max(mx, 4 * k * k + 4 * k)
    else:
        lwork = 3 * k + max(mx, 7 * k)
    work = _tmp(L, (lwork,), dt)
    iwork = _ints(L, 8 * k)
    dummy = _tmp(L, (1,), dt)
    if uv:
        u_out, s_out, vh_out = outs
        ucols, vtrows = (m, n) if full else (k, k)
        tu = _tmp(L, (ucols, m), dt)    # column-major U (m x ucols)
        tvt = _tmp(L, (n, vtrows), dt)  # column-major V^T (vtrows x n)
    else:
        (s_out,) = outs

    def one(bd):
        _copy_in(L, a, bd, ta, transpose=True)
        sp = _block(L, s_out, bd)
        if uv:
            info = call.call("gesdd", ["A" if full else "S", m, n, ta.ptr, m, sp, tu.ptr, m,
                                       tvt.ptr, vtrows, work.ptr, lwork, iwork.ptr])
            _copy_out(L, tu, u_out, bd, True, m, ucols)
            _copy_out(L, tvt, vh_out, bd, True, vtrows, n)
        else:
            info = call.call("gesdd", ["N", m, n, ta.ptr, m, sp, dummy.ptr, 1, dummy.ptr, 1,
                                       work.ptr, lwork, iwork.ptr])
        call.fail_if_nonzero(info, lapack.SVD_NO_CONVERGENCE)
    _batch(L, a.shape[:-2], one)


# -- qr (geqrf + orgqr) --------------------------------------------------------------------------

def _qr_kernel(L, eqn, outs):
    a = eqn.inputs[0]
    q_out, r_out = outs
    m, n = a.shape[-2:]
    kq = q_out.shape[-1]
    k = min(m, n)
    if m == 0 or n == 0:
        return
    dt = np.dtype(a.dtype)
    b = L.builder
    call = lapack.Caller(L, dt)
    cols = max(n, kq)
    ta = _tmp(L, (cols, m), dt)   # column-major (m x cols): ta[c, r] = a[r, c]
    tau = _tmp(L, (k,), dt)
    lwork = 64 * max(m, n, 1)
    work = _tmp(L, (lwork,), dt)

    def one(bd):
        _copy_in(L, a, bd, Buffer(ta.ptr, (n, m), dt), transpose=True)
        call.call("geqrf", [m, n, ta.ptr, m, tau.ptr, work.ptr, lwork])
        # R: the upper triangle of LAPACK's (row r, column c) = ta[c, r]
        _copy_out(L, ta, r_out, bd, True, kq, n, keep=lambda r, c: b.icmp_unsigned("<=", r, c))
        call.call("orgqr", [m, kq, k, ta.ptr, m, tau.ptr, work.ptr, lwork])
        _copy_out(L, ta, q_out, bd, True, m, kq)
    _batch(L, a.shape[:-2], one)


EMITTERS["solve"] = Emitter(None, _solve_kernel, "opaque")
EMITTERS["lu_solve"] = Emitter(None, _lu_solve_kernel, "opaque")
EMITTERS["triangular_solve"] = Emitter(None, _trsolve_kernel, "opaque")
EMITTERS["triangular_matmul"] = Emitter(None, _trmm_kernel, "opaque")
EMITTERS["congruence_solve"] = Emitter(None, _congruence_kernel, "opaque")
EMITTERS["slogdet"] = Emitter(None, _slogdet_kernel, "opaque")
EMITTERS["cholesky"] = Emitter(None, _cholesky_kernel, "opaque")
EMITTERS["eigh"] = Emitter(None, _eigh_kernel, "opaque")
EMITTERS["svd"] = Emitter(None, _svd_kernel, "opaque")
EMITTERS["qr"] = Emitter(None, _qr_kernel, "opaque")


# -- pinv (gesdd, then V diag(1/s) U^T by gemm, as numpy.linalg.pinv) -----------------------------

def _pinv_kernel(L, eqn, outs):
    from . import blas
    a = eqn.inputs[0]
    out = outs[0]
    rcond = eqn.params["rcond"]
    m, n = a.shape[-2:]
    k = min(m, n)
    if k == 0:
        return
    dt = np.dtype(a.dtype)
    b = L.builder
    call = lapack.Caller(L, dt)
    ta = _tmp(L, (n, m), dt)
    lwork = 3 * k * k + max(m, n, 4 * k * k + 4 * k)
    work = _tmp(L, (lwork,), dt)
    iwork = _ints(L, 8 * k)
    s = _tmp(L, (k,), dt)
    tu = _tmp(L, (k, m), dt)    # column-major U (m x k): row j of tu is U's column j
    tvt = _tmp(L, (n, k), dt)   # column-major V^T (k x n): tvt[c, j] = V[c, j]
    ty = ir.DoubleType() if dt == np.float64 else ir.FloatType()

    def one(bd):
        _copy_in(L, a, bd, ta, transpose=True)
        info = call.call("gesdd", ["S", m, n, ta.ptr, m, s.ptr, tu.ptr, m, tvt.ptr, k,
                                   work.ptr, lwork, iwork.ptr])
        call.fail_if_nonzero(info, lapack.SVD_NO_CONVERGENCE)
        cutoff = b.fmul(ir.Constant(ty, rcond), s.load(b, Index((k,), dims=[i64(0)])))

        def scale(j):   # U's column j times 1/s_j, or 0 below the cutoff
            sj = s.load(b, Index((k,), dims=[j]))
            f = b.select(b.fcmp_ordered(">", sj, cutoff), b.fdiv(ir.Constant(ty, 1.0), sj),
                         ir.Constant(ty, 0.0))

            def col(r):
                idx = Index((k, m), dims=[j, r])
                tu.store(b, idx, b.fmul(tu.load(b, idx), f))
            for_range(b, m, col, name="r")
        for_range(b, k, scale, name="j")
        # out (n x m) = V (n x k, = tvt row-major) @ diag(f) U^T (k x m, = tu row-major)
        blas.emit_gemm(b, dt, tvt.ptr, tu.ptr, _block(L, out, bd), n, m, k)
    _batch(L, a.shape[:-2], one)


EMITTERS["pinv"] = Emitter(None, _pinv_kernel, "opaque")
