"""Call the LAPACK that numpy itself links (inside its bundled OpenBLAS) from JIT code.

As blas.py does for BLAS: find the library numpy loaded, look the Fortran LAPACK routines up by
their symbol-name scheme (`scipy_dgesv_64_` in numpy >= 2 wheels: ILP64, i.e. 64-bit integers),
and register each address with the JIT under a stable name (`adj_lapack_dgesv`). A routine that
is absent raises `LapackUnavailable` (a NotImplementedError: compile_function then runs the
interpreter, which uses numpy.linalg, with a warning) instead of crashing.

Fortran ABI: every argument by reference (ints, characters, arrays); each CHARACTER argument
also has a hidden length (size_t) appended after the regular arguments.

Errors: generated code cannot raise, so a routine that reports failure (info > 0: a singular
matrix, a matrix that is not positive definite, no convergence) stores an error record through
status.py's per-call channel (`Caller.report_if`); the call path raises
numpy.linalg.LinAlgError with numpy's message, as numpy does.
"""
from __future__ import annotations

import ctypes
import threading

import numpy as np
from llvmlite import ir

from . import blas, engine, status
from .status import (EIG_NO_CONVERGENCE, NOT_POSITIVE_DEFINITE, SINGULAR,  # noqa: F401
                     SVD_NO_CONVERGENCE)

ROUTINES = ("gesv", "getrf", "getrs", "potrf", "trtrs", "syevd", "gesdd", "geqrf", "orgqr",
            "sygst")
_PREFIX = {np.dtype(np.float64): "d", np.dtype(np.float32): "s"}

# Fortran symbol schemes, most specific first: (template, integers are 64-bit)
_SCHEMES = (
    ("scipy_{r}_64_", True),   # numpy >= 2.0 wheels (scipy-openblas64)
    ("{r}_64_", True),         # OpenBLAS built with INTERFACE64 + SYMBOLSUFFIX=64_
    ("scipy_{r}_", False),     # scipy-openblas32
    ("{r}_", False),           # system LAPACK (LP64)
)

_lock = threading.Lock()
_found: dict = {}
_registered: set[str] = set()


class LapackUnavailable(NotImplementedError):
    """A LAPACK routine generated code needs is not in this process's numpy."""


def _discover() -> dict:
    if _found:
        return _found
    _found.update(addrs={}, scheme=None, ilp64=True, path=None)
    path = blas.info()["path"]
    if not path:
        return _found
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return _found
    for template, ilp64 in _SCHEMES:
        addrs = {}
        for p in _PREFIX.values():
            for r in ROUTINES:
                fn = getattr(lib, template.format(r=p + r), None)
                if fn is not None:
                    addrs[p + r] = ctypes.cast(fn, ctypes.c_void_p).value
        if addrs:
            _found.update(addrs=addrs, scheme=template, ilp64=ilp64, path=path, lib=lib)
            return _found
    return _found


def info() -> dict:
    """Where LAPACK came from: library path, symbol scheme, integer width, routines found."""
    with _lock:
        f = _discover()
        return {"path": f["path"], "scheme": f["scheme"], "ilp64": f["ilp64"],
                "routines": sorted(f["addrs"])}


def available(routine: str, dtype) -> bool:
    with _lock:
        return _PREFIX.get(np.dtype(dtype), "?") + routine in _discover()["addrs"]


def int_type() -> ir.IntType:
    with _lock:
        return ir.IntType(64 if _discover()["ilp64"] else 32)


def int_dtype():
    with _lock:
        return np.dtype(np.int64 if _discover()["ilp64"] else np.int32)


def symbol(routine: str, dtype) -> str:
    """The JIT name of ?`routine` for `dtype`, registered on first use."""
    dt = np.dtype(dtype)
    if dt not in _PREFIX:
        raise LapackUnavailable(f"LAPACK {routine} supports float32 and float64, not {dt}")
    key = _PREFIX[dt] + routine
    name = "adj_lapack_" + key
    with _lock:
        f = _discover()
        if key not in f["addrs"]:
            raise LapackUnavailable(
                f"LAPACK routine {key} was not found in numpy's BLAS/LAPACK library "
                f"({f['path'] or 'none found'}); the compiled path cannot call it")
        if name not in _registered:
            engine.add_symbol(name, f["addrs"][key])
            _registered.add(name)
    return name


CBLAS3 = ("trsm", "trmm")   # the triangular level-3 BLAS routines generated code calls


def cblas3_symbol(routine, dtype) -> str:
    """The JIT name of cblas_?trsm / cblas_?trmm (row-major triangular solve / product with
    many right-hand sides, in numpy's BLAS under blas.py's symbol scheme), registered on first
    use."""
    dt = np.dtype(dtype)
    key = _PREFIX[dt] + routine
    name = "adj_lapack_" + key
    with _lock:
        if name in _registered:
            return name
        binfo = blas.info()
        addr = None
        if binfo["path"]:
            fn = getattr(ctypes.CDLL(binfo["path"]), binfo["scheme"].format(r=key), None)
            addr = ctypes.cast(fn, ctypes.c_void_p).value if fn is not None else None
        if addr is None:
            raise LapackUnavailable(f"BLAS routine cblas_{key} was not found in numpy's BLAS "
                                    f"({binfo['path'] or 'none found'})")
        engine.add_symbol(name, addr)
        _registered.add(name)
    return name


def emit_cblas3(builder, routine, dtype, a, b, n, k, *, lower, trans):
    """Row-major B[n, k] <- op(A)^{-1} B (trsm) or op(A) B (trmm), A [n, n] triangular
    (cblas_?trsm / ?trmm, side=Left, non-unit diagonal)."""
    name = cblas3_symbol(routine, dtype)
    i32, bi, ft = ir.IntType(32), blas.int_type(), _float_type(dtype)
    ptr = ft.as_pointer()
    m = builder.module
    fn = m.globals.get(name)
    if fn is None:
        fn = ir.Function(m, ir.FunctionType(ir.VoidType(), [i32] * 5 + [bi, bi, ft, ptr, bi,
                                                                        ptr, bi]), name=name)
        fn.attributes.add("nounwind")
    c = lambda v: ir.Constant(i32, v)  # noqa: E731
    serially(builder, n * n * k, lambda: builder.call(
        fn, [c(blas.ROW_MAJOR), c(141), c(122 if lower else 121),
             c(blas.TRANS if trans else blas.NO_TRANS), c(131),
             ir.Constant(bi, n), ir.Constant(bi, k), ir.Constant(ft, 1.0), a,
             ir.Constant(bi, n), b, ir.Constant(bi, k)]))


# -- small calls on one BLAS thread -----------------------------------------------------------
# OpenBLAS splits a factorization over its threads panel by panel, with a barrier per panel: at
# the sizes of most gradients (n = 200: ~5 Mflop) the second thread costs more than it saves on
# an idle machine, and on a busy one each barrier waits for a descheduled thread (np.linalg.solve
# of n = 200 ten times slower at 2 threads than at 1 under load: docs/design/backend.md). So a
# call with less estimated work than this (multiply-adds, ~ n^3) runs with numpy's OpenBLAS set
# to one thread, and back to its count right after. The count is process-wide (OpenBLAS has no
# per-thread setting in its pthreads builds): numpy calls that another Python thread makes in
# that window run on one thread too, and a thread count set by another thread meanwhile is
# overwritten by the restore. The bound covers the n = 500 factorizations of a Gaussian
# process's gradient (gp_nll): on a 2-CPU AVX-512 Xeon shared with other work (load average
# 2-4) that gradient took 9-10x its one-thread time at two OpenBLAS threads, and 1.4-1.7x with
# its LAPACK calls on one thread (the rest of it still on two). On the idle machine the
# second LAPACK thread gains 20% there (6.8 against 8.5 ms, one thread 8.6 ms): given up for a
# 4-5x loss on a busy one.
SERIAL_MAX_WORK = 600 ** 3
THREADS_GET = "adj_lapack_threads_get"
THREADS_SET = "adj_lapack_threads_set"


def _thread_symbols() -> bool:
    """Register numpy's OpenBLAS thread-count functions as THREADS_GET / THREADS_SET; False if
    its BLAS has none (not OpenBLAS)."""
    if THREADS_SET in _registered:
        return True
    addrs = blas.thread_control_addresses()
    if addrs is None:
        return False
    with _lock:
        engine.add_symbol(THREADS_SET, addrs[0])
        engine.add_symbol(THREADS_GET, addrs[1])
        _registered.update((THREADS_SET, THREADS_GET))
    return True


def thread_functions(m):
    """(get, set) declared in module `m`: i32 get() and void set(i32) of numpy's OpenBLAS
    thread count; None when its BLAS has no thread control."""
    if not _thread_symbols():
        return None
    i32 = ir.IntType(32)
    get = m.globals.get(THREADS_GET) or ir.Function(m, ir.FunctionType(i32, []), THREADS_GET)
    put = m.globals.get(THREADS_SET) or ir.Function(m, ir.FunctionType(ir.VoidType(), [i32]),
                                                    THREADS_SET)
    for f in (get, put):
        f.attributes.add("nounwind")
    return get, put


def serially(b, work, emit):
    """emit() -- code calling BLAS/LAPACK -- run with numpy's OpenBLAS on one thread when `work`
    (estimated multiply-adds; None: unknown) is below SERIAL_MAX_WORK; else emit() alone."""
    if work is None or work >= SERIAL_MAX_WORK or not _thread_symbols():
        return emit()
    i32 = ir.IntType(32)
    get, put = thread_functions(b.module)
    threads = b.call(get, [])
    many = b.icmp_signed(">", threads, ir.Constant(i32, 1))
    with b.if_then(many):
        b.call(put, [ir.Constant(i32, 1)])
    r = emit()
    with b.if_then(many):
        b.call(put, [threads])
    return r


def _work(routine, args):
    """Estimated multiply-adds of a LAPACK call from its leading dimension arguments (Python
    ints), or None when a dimension is known only at run time."""
    dims = []
    for a in args:
        if isinstance(a, str):
            continue
        if not isinstance(a, int):
            break
        dims.append(a)
    if routine == "sygst":
        dims = dims[1:]                     # (itype first)
    try:
        if routine in ("getrf", "geqrf", "gesdd"):
            m, n = dims[:2]
            return m * n * min(m, n)
        if routine == "orgqr":
            m, n, k = dims[:3]
            return m * n * k
        if routine == "gesv":
            n, k = dims[:2]
            return n * n * (n + k)
        if routine == "getrs":
            n, k = dims[:2]
            return n * n * k
        if routine in ("potrf", "syevd", "sygst"):
            return dims[0] ** 3
    except (ValueError, IndexError):
        return None
    return None


def register_used(text: str) -> bool:
    """Register every LAPACK routine an LLVM module's text refers to (a disk-cache hit skips
    lowering, where they are normally registered); False if one is missing."""
    if "adj_lapack_" not in text:
        return True
    if THREADS_SET in text and not _thread_symbols():
        return False
    try:
        for dt, p in _PREFIX.items():
            for r in ROUTINES:
                if f"adj_lapack_{p}{r}" in text:
                    symbol(r, dt)
            for r in CBLAS3:
                if f"adj_lapack_{p}{r}" in text:
                    cblas3_symbol(r, dt)
    except LapackUnavailable:
        return False
    return True


# -- emitting calls ---------------------------------------------------------------------------

def _float_type(dtype) -> ir.Type:
    return ir.DoubleType() if np.dtype(dtype) == np.float64 else ir.FloatType()


class Caller:
    """Emits Fortran LAPACK calls: scalar arguments live in entry-block allocas."""

    def __init__(self, L, dtype):
        self.L = L
        self.dtype = np.dtype(dtype)
        self.it = int_type()
        self.info = L.alloca(self.it, name="lapack_info")

    def call(self, routine, args):
        """args: Python ints (-> INTEGER), 1-char strs (-> CHARACTER), LLVM pointers (arrays),
        or LLVM integers. Returns the loaded `info`."""
        L, b = self.L, self.L.builder
        name = symbol(routine, self.dtype)
        vals, types, nchars = [], [], 0
        for a in args:
            if isinstance(a, str):
                p = L.alloca(ir.IntType(8), name="ch")
                b.store(ir.Constant(ir.IntType(8), ord(a)), p)
                nchars += 1
            elif isinstance(a, int):
                p = L.alloca(self.it, name="n")
                b.store(ir.Constant(self.it, a), p)
            elif isinstance(a.type, ir.IntType):
                p = L.alloca(self.it, name="n")
                b.store(a if a.type == self.it else b.trunc(a, self.it) if a.type.width >
                        self.it.width else b.sext(a, self.it), p)
            else:
                p = a
            vals.append(b.bitcast(p, ir.IntType(8).as_pointer()))
            types.append(ir.IntType(8).as_pointer())
        vals.append(b.bitcast(self.info, ir.IntType(8).as_pointer()))
        types.append(ir.IntType(8).as_pointer())
        hidden = [ir.Constant(ir.IntType(64), 1)] * nchars
        fnty = ir.FunctionType(ir.VoidType(), types + [ir.IntType(64)] * nchars)
        m = b.module
        fn = m.globals.get(name)
        if fn is None:
            fn = ir.Function(m, fnty, name=name)
            fn.attributes.add("nounwind")
        serially(b, _work(routine, args), lambda: b.call(fn, vals + hidden))
        return b.load(self.info)

    def report_if(self, cond, kind, info):
        """status = (kind, info) where `cond` (an i1) holds."""
        status.report_if(self.L, cond, kind, info)

    def fail_if_nonzero(self, info, kind):
        """numpy's rule: any nonzero info is a LinAlgError. Negative is not only our own
        argument error: gesdd returns -4 for a matrix holding a NaN (LAPACK's DISNAN check),
        where numpy raises "SVD did not converge"."""
        b = self.L.builder
        self.report_if(b.icmp_signed("!=", info, ir.Constant(info.type, 0)), kind, info)
