"""LAPACK and BLAS routines numpy does not expose, called on numpy arrays through ctypes.

numpy.linalg has no LU-factor, LU-solve, triangular-solve, triangular-product or sygst API:
without these, the numpy impls of the linear-algebra primitives factor a matrix again for
every solve with it, run triangular solves as blocked numpy code and multiply triangles as
full matrices. This module calls the routines of the library numpy
itself links (found by blas.py / lapack.py, the same symbols compiled code calls), for the
impls in primitives/linalg_solve.py and decomp.py, which run in interpret and tape mode. Those
sit below the backend, so they do not import this module: the package facade plugs
`kernels()` into primitives/host.py.

Layouts are those of lapack_kernels.py (a row-major matrix read by LAPACK is its transpose),
so a factorization means the same in every mode: `lu_factor(a)` leaves getrf's factors of
column-major `a` (row-major: of `a` transposed into a copy) and getrf's 1-based pivots as
int64, as compiled solve does. Failures raise numpy.linalg.LinAlgError with numpy's message.
Every function takes stacks (..., n, n) / (..., n, k) of float32 or float64 and loops over
the leading axes in Python (each call costs a few microseconds: the impls keep numpy's
batched code for stacks of many small matrices).
"""
from __future__ import annotations

import ctypes
import threading

import numpy as np

from . import blas, lapack

_lock = threading.Lock()
_LIB: dict = {}

_P = ctypes.c_void_p
_CHAR = {c: ctypes.c_char(c.encode()) for c in "NTUL"}
_PIVOT = np.dtype(np.int64)
_LEFT, _NON_UNIT, _UPPER_LOWER = 141, 131, {False: 121, True: 122}   # cblas.h enums


class _Routines:
    """ctypes functions of one precision: getrf, getrs, potrf, sygst (Fortran) and cblas
    trsm, trmm."""

    def __init__(self, dtype, lapack_addrs, trsm_addr, trmm_addr, lapack_int, blas_int):
        p = "d" if dtype == np.float64 else "s"
        # Fortran: every argument by reference, then one hidden length per CHARACTER argument
        fort = lambda n_ptr, n_chars: ctypes.CFUNCTYPE(  # noqa: E731
            None, *([_P] * n_ptr + [ctypes.c_size_t] * n_chars))
        self.getrf = fort(6, 0)(lapack_addrs[p + "getrf"])
        self.getrs = fort(9, 1)(lapack_addrs[p + "getrs"])
        self.potrf = fort(5, 1)(lapack_addrs[p + "potrf"])
        self.sygst = fort(8, 1)(lapack_addrs[p + "sygst"])
        scalar = ctypes.c_double if dtype == np.float64 else ctypes.c_float
        self.scalar = scalar
        cblas3 = ctypes.CFUNCTYPE(None, *([ctypes.c_int] * 5), blas_int, blas_int, scalar,
                                  _P, blas_int, _P, blas_int)   # trsm and trmm
        self.trsm = cblas3(trsm_addr)
        self.trmm = cblas3(trmm_addr)
        self.int = lapack_int
        self.int_dtype = np.dtype(np.int64 if lapack_int is ctypes.c_int64 else np.int32)


def _load():
    """{dtype: _Routines} for the precisions whose routines are all present (may be empty)."""
    with _lock:
        if _LIB:
            return _LIB["routines"]
        out = {}
        linfo, binfo = lapack.info(), blas.info()
        if linfo["path"] and binfo["path"]:
            addrs = lapack._discover()["addrs"]
            lib = ctypes.CDLL(binfo["path"])
            lint = ctypes.c_int64 if linfo["ilp64"] else ctypes.c_int32
            bint = ctypes.c_int64 if binfo["ilp64"] else ctypes.c_int32
            for dt, p in ((np.dtype(np.float64), "d"), (np.dtype(np.float32), "s")):
                trsm = getattr(lib, binfo["scheme"].format(r=p + "trsm"), None)
                trmm = getattr(lib, binfo["scheme"].format(r=p + "trmm"), None)
                if trsm is None or trmm is None or not all(
                        p + r in addrs for r in ("getrf", "getrs", "potrf", "sygst")):
                    continue
                out[dt] = _Routines(dt, addrs, ctypes.cast(trsm, _P).value,
                                    ctypes.cast(trmm, _P).value, lint, bint)
        _LIB["routines"] = out
    if out:
        blas._apply_configured_threads()   # ad.config.num_threads applies to these calls too
    return out


def _ptr(x):
    # the address as an int (a c_void_p argument takes one): half the cost of data_as
    return x.ctypes.data


def _matrices(x):
    """The 2-D matrices of a stack (views), in C order of the leading axes."""
    if x.ndim == 2:
        return [x]
    return [x[i] for i in np.ndindex(x.shape[:-2])]


class Kernels:
    """The host routines, for float32 and float64 (`supports(dtype)` says which)."""

    def __init__(self, routines):
        self._r = routines

    def supports(self, dtype) -> bool:
        return np.dtype(dtype) in self._r

    # -- LU ------------------------------------------------------------------------------------

    def lu_factor(self, a, check=True):
        """(lu, piv): getrf of every matrix of column-major a (lu holds them row-major, i.e.
        transposed: the layout compiled solve leaves), pivots 1-based int64. A singular matrix
        raises LinAlgError, unless check is False (slogdet: the factors have a zero pivot)."""
        r = self._r[a.dtype]
        n = a.shape[-1]
        # a copy (getrf overwrites it): row-major a^T is column-major a
        lu = np.array(np.swapaxes(a, -1, -2), order="C")
        piv = np.empty(a.shape[:-1], r.int_dtype)
        nn, info = r.int(n), r.int(0)
        for m, p in zip(_matrices(lu), _matrices(piv[..., None])):
            r.getrf(ctypes.byref(nn), ctypes.byref(nn), _ptr(m), ctypes.byref(nn), _ptr(p),
                    ctypes.byref(info))
            if info.value > 0 and check:
                raise np.linalg.LinAlgError("Singular matrix")
        return lu, piv.astype(_PIVOT, copy=False)

    def lu_solve(self, lu, piv, b, trans):
        """op(a)^{-1} b from `lu_factor`'s (lu, piv) of a; op = transpose if trans."""
        r = self._r[lu.dtype]
        n, k = b.shape[-2:]
        # column-major b is row-major b^T (a column needs no transpose)
        x = np.array(np.swapaxes(b, -1, -2), order="C")
        ipiv = np.ascontiguousarray(piv, dtype=r.int_dtype)
        nn, kk, info = r.int(n), r.int(k), r.int(0)
        tr = _CHAR["T" if trans else "N"]   # the factors are a's: op(a) = a^T is 'T'
        lu = np.ascontiguousarray(lu)
        for m, p, xm in zip(_matrices(lu), _matrices(ipiv[..., None]), _matrices(x)):
            r.getrs(ctypes.byref(tr), ctypes.byref(nn), ctypes.byref(kk), _ptr(m),
                    ctypes.byref(nn), _ptr(p), _ptr(xm), ctypes.byref(nn), ctypes.byref(info), 1)
        return np.swapaxes(x, -1, -2)

    def solve(self, a, b):
        """(x, lu, piv): a^{-1} b and the factors `lu_solve` reuses (getrf + getrs, what
        numpy's gesv does, so x is numpy's to the bit)."""
        lu, piv = self.lu_factor(a)
        return self.lu_solve(lu, piv, b, False), lu, piv

    # -- triangular solve and Cholesky ---------------------------------------------------------

    def triangular_solve(self, a, b, lower, transpose_a):
        """op(tri(a))^{-1} b (cblas trsm, row-major: reads only the chosen triangle). The
        caller checks for an exactly zero diagonal (trsm does not)."""
        return self._cblas3("trsm", a, b, lower, transpose_a)

    def triangular_matmul(self, a, b, lower, transpose_a):
        """op(tri(a)) b (cblas trmm, row-major: reads only the chosen triangle)."""
        return self._cblas3("trmm", a, b, lower, transpose_a)

    def _cblas3(self, name, a, b, lower, transpose_a):
        r = self._r[a.dtype]
        routine = getattr(r, name)
        n, k = b.shape[-2:]
        x = np.array(b, order="C", copy=True)
        alpha = r.scalar(1.0)
        for m, xm in zip(_matrices(a), _matrices(x)):
            low, tr = lower, transpose_a
            if not m.flags.c_contiguous and m.flags.f_contiguous:
                # a transposed view (mT(l)): its transpose is row-major, triangle and op flip
                m, low, tr = m.T, not low, not tr
            m = np.ascontiguousarray(m)
            routine(blas.ROW_MAJOR, _LEFT, _UPPER_LOWER[low], blas.TRANS if tr else blas.NO_TRANS,
                    _NON_UNIT, n, k, alpha, _ptr(m), n, _ptr(xm), k)
        return x

    def congruence_solve(self, l, c, transpose):
        """tril(B^{-1} S B^{-T}) with S the symmetric matrix of c's lower triangle and B =
        tril(l), or tril(l)^T with transpose (sygst, itype 1). The caller checks for an exactly
        zero diagonal.

        Row-major l is LAPACK's l^T, an upper factor U with U^T U = l l^T: sygst('U') then
        computes U^{-T} S U^{-1} = L^{-1} S L^{-T} in place, reading and writing our lower
        triangle. For B = L^T the axes are reversed first (J, the reversal, is its own inverse):
        L^{-T} S L^{-1} = J (J L^T J)^{-1} (J S J) (J L J)^{-1} J, and J L^T J is lower
        triangular, so sygst('L') on the reversed copies computes the middle."""
        r = self._r[l.dtype]
        n = l.shape[-1]
        if transpose:
            rev = (Ellipsis, slice(None, None, -1), slice(None, None, -1))
            b, x, uplo = np.ascontiguousarray(l[rev]), np.array(c[rev], order="C"), "L"
        else:
            b, x, uplo = np.ascontiguousarray(l), np.array(c, order="C", copy=True), "U"
        nn, info, itype = r.int(n), r.int(0), r.int(1)
        for bm, xm in zip(_matrices(b), _matrices(x)):
            r.sygst(ctypes.byref(itype), ctypes.byref(_CHAR[uplo]), ctypes.byref(nn), _ptr(xm),
                    ctypes.byref(nn), _ptr(bm), ctypes.byref(nn), ctypes.byref(info), 1)
        if transpose:
            x = x[rev]
        return np.tril(x)

    def cholesky(self, a):
        """Lower L with L L^T = a, from a's lower triangle (potrf 'U' on the row-major copy,
        as compiled code does); LinAlgError as numpy's when a matrix is not positive definite."""
        r = self._r[a.dtype]
        n = a.shape[-1]
        c = np.tril(a)            # the copy potrf overwrites, zeros above the diagonal already
        if not c.flags.c_contiguous:
            c = np.ascontiguousarray(c)
        nn, info = r.int(n), r.int(0)
        for m in _matrices(c):
            r.potrf(ctypes.byref(_CHAR["U"]), ctypes.byref(nn), _ptr(m), ctypes.byref(nn),
                    ctypes.byref(info), 1)
            if info.value > 0:
                raise np.linalg.LinAlgError("Matrix is not positive definite")
        return c


def kernels():
    """The host routines, or None when numpy's LAPACK/BLAS could not be found."""
    routines = _load()
    return Kernels(routines) if routines else None
