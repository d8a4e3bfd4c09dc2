"""Call the BLAS that numpy itself links (OpenBLAS from scipy-openblas wheels) from JIT code.

numpy's wheels bundle OpenBLAS with prefixed, ILP64 symbols (`scipy_cblas_dgemm64_`: 64-bit ints),
so there is nothing to link against at build time. At run time we find the already-loaded shared
library, look the CBLAS routines up with dlsym (via ctypes), and register their addresses with
the JIT under stable names (`adj_dgemm`, `adj_sgemv`, ...). Generated IR declares those names with
`declare_gemm` / `declare_gemv` and MCJIT resolves them to numpy's BLAS.

CBLAS signatures (row-major is what we use; enums are C `int`, sizes are `blasint`):
    gemm(order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)   C = alpha*op(A)@op(B) + beta*C
    gemv(order, trans, M, N, alpha, A, lda, x, incx, beta, y, incy)             y = alpha*op(A)@x + beta*y
"""
from __future__ import annotations

import ctypes
import os
import threading

import numpy as np
from llvmlite import ir

from ..config import THREAD_VARIABLES, config
from . import engine

# CBLAS enum values (cblas.h).
ROW_MAJOR = 101
COL_MAJOR = 102
NO_TRANS = 111
TRANS = 112

_PREFIX = {np.dtype(np.float64): "d", np.dtype(np.float32): "s"}
_ROUTINES = ("gemm", "gemv")

# Symbol-name schemes seen in the wild, most specific first: (template, blasint is 64-bit).
_SCHEMES = (
    ("scipy_cblas_{r}64_", True),   # numpy >= 2.0 wheels (scipy-openblas64)
    ("cblas_{r}64_", True),         # OpenBLAS built with INTERFACE64 + SYMBOLSUFFIX=64_
    ("scipy_cblas_{r}", False),     # scipy-openblas32
    ("cblas_{r}", False),           # system OpenBLAS / reference CBLAS (LP64)
)

_lock = threading.Lock()
_found: dict = {}          # filled once by _discover(): lib, path, addrs {routine: addr}, ilp64
_registered: set[str] = set()


def _candidate_paths():
    """Shared libraries that may hold numpy's BLAS, best first. A generator: the slow last resort
    (ctypes.util.find_library runs compilers/ldconfig, ~50 ms) is reached only if needed."""
    seen: set[str] = set()

    def fresh(paths):
        for p in paths:
            if p and p not in seen:
                seen.add(p)
                yield p

    # Linux: whatever BLAS numpy already loaded is listed in our own memory map.
    mapped = []
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                p = line.rsplit(None, 1)[-1] if "/" in line else ""
                if "blas" in os.path.basename(p).lower():
                    mapped.append(p)
    except OSError:
        pass
    yield from fresh(mapped)
    # Bundled next to numpy (manylinux: numpy.libs/, macOS: numpy/.dylibs/), or the scipy_openblas package.
    import glob   # here: only looking BLAS up needs it
    np_dir = os.path.dirname(np.__file__)
    for pattern in (os.path.join(np_dir + ".libs", "*blas*"), os.path.join(np_dir, ".dylibs", "*blas*"),
                    os.path.join(os.path.dirname(np_dir), "scipy_openblas*", "lib", "*blas*")):
        yield from fresh(sorted(glob.glob(pattern)))
    import ctypes.util   # here: importing it costs ~5 ms (subprocess, tempfile), rarely needed
    for name in ("openblas", "cblas", "blas"):
        yield from fresh([ctypes.util.find_library(name)])


def _discover() -> dict:
    """Find one library and one naming scheme that provide gemm and gemv for both precisions."""
    if _found:
        return _found
    for path in _candidate_paths():
        try:
            lib = ctypes.CDLL(path)  # already loaded by numpy: dlopen only bumps its refcount
        except OSError:
            continue
        for template, ilp64 in _SCHEMES:
            addrs = {}
            for p in _PREFIX.values():
                for r in _ROUTINES:
                    try:
                        fn = getattr(lib, template.format(r=p + r))
                    except AttributeError:
                        break
                    addrs[p + r] = ctypes.cast(fn, ctypes.c_void_p).value
            if len(addrs) == len(_PREFIX) * len(_ROUTINES):
                _found.update(lib=lib, path=path, addrs=addrs, ilp64=ilp64, scheme=template)
                return _found
    _found.update(lib=None, path=None, addrs={}, ilp64=True, scheme=None)
    return _found


def available() -> bool:
    """True when numpy's BLAS (gemm and gemv, f32 and f64) could be located in this process."""
    with _lock:
        return bool(_discover()["addrs"])


def info() -> dict:
    """Where the BLAS came from (library path, symbol scheme, int width), for diagnostics."""
    with _lock:
        f = _discover()
        return {"path": f["path"], "scheme": f["scheme"], "ilp64": f["ilp64"]}


def int_type() -> ir.IntType:
    """LLVM type of a BLAS size/stride argument (`blasint`): i64 for ILP64 builds, else i32."""
    with _lock:
        return ir.IntType(64 if _discover()["ilp64"] else 32)


def _symbol(routine: str, dtype) -> str:
    dt = np.dtype(dtype)
    if dt not in _PREFIX:
        raise TypeError(f"BLAS {routine} supports float32 and float64, not {dt}")
    key = _PREFIX[dt] + routine
    name = "adj_" + key
    with _lock:
        f = _discover()
        if not f["addrs"]:
            raise RuntimeError("numpy's BLAS was not found in this process; check blas.available() first")
        if name not in _registered:
            engine.add_symbol(name, f["addrs"][key])
            _registered.add(name)
    _apply_configured_threads()    # (outside _lock: it takes it)
    return name


# OpenBLAS's thread-count controls (void set(int), int get(void)), by naming scheme.
_THREAD_SYMBOLS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)
_threads: dict = {}        # set/get (ctypes functions), own (the count before we changed it)


def _thread_control():
    """(set, get) of the BLAS numpy uses, or None (not OpenBLAS, or not found)."""
    if "set" not in _threads:
        _threads["set"] = _threads["get"] = None
        lib = _discover()["lib"]
        for set_name, get_name in _THREAD_SYMBOLS if lib is not None else ():
            try:
                setter, getter = getattr(lib, set_name), getattr(lib, get_name)
            except AttributeError:
                continue
            setter.argtypes, setter.restype = [ctypes.c_int], None
            getter.argtypes, getter.restype = [], ctypes.c_int
            _threads.update(set=setter, get=getter)
            break
    return (_threads["set"], _threads["get"]) if _threads["set"] else None


_CORENAME_SYMBOLS = ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                     "openblas_get_corename64_", "openblas_get_corename")
# OpenBLAS kernel families that use AVX-512 (the others on x86: AVX2 or older)
_AVX512_CORES = ("skylakex", "cooperlake", "sapphirerapids")


def core_name() -> str | None:
    """The CPU kernel family numpy's OpenBLAS chose when it was loaded ('Haswell',
    'SkylakeX', ...), or None (not OpenBLAS, or not found)."""
    with _lock:
        lib = _discover()["lib"]
    for name in _CORENAME_SYMBOLS if lib is not None else ():
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.argtypes, fn.restype = [], ctypes.c_char_p
            return (fn() or b"").decode(errors="replace").strip() or None
    return None


def avx512_kernels_unused(host_features: dict) -> bool:
    """Whether numpy's OpenBLAS runs AVX2-or-older kernels on a host with AVX-512F: some
    OpenBLAS builds do not recognise newer CPUs (seen: 0.3.31 on an AVX-512 AMD EPYC chose
    'Haswell'; OPENBLAS_CORETYPE=SkylakeX, set before numpy is imported, gave 1.5x faster
    float64 gemms there)."""
    core = core_name()
    return bool(core) and bool(host_features.get("avx512f")) and \
        core.lower() not in _AVX512_CORES


def thread_control_addresses() -> tuple[int, int] | None:
    """(set, get) function addresses of numpy's OpenBLAS thread count (`void set(int)`,
    `int get(void)`), for generated code to call; None when it has none."""
    with _lock:
        ctl = _thread_control()
    if ctl is None:
        return None
    return tuple(ctypes.cast(f, ctypes.c_void_p).value for f in ctl)


def num_threads() -> int | None:
    """Threads numpy's BLAS uses now (None: its thread count cannot be queried)."""
    with _lock:
        ctl = _thread_control()
        return None if ctl is None else int(ctl[1]())


def set_num_threads(n: int | None) -> bool:
    """Make numpy's BLAS (the same library numpy.dot and our gemm calls use) run `n` threads;
    None restores the count it had before the first change. False if it has no control."""
    with _lock:
        ctl = _thread_control()
        if ctl is None:
            return False
        if "own" not in _threads:
            _threads["own"] = int(ctl[1]())
        ctl[0](int(_threads["own"] if n is None else n))
        return True


def _on_threads_change(n: int, explicit: bool) -> None:
    # ad.config.num_threads = n sets BLAS's count too; = None gives BLAS its own back
    if explicit or "own" in _threads:
        set_num_threads(n if explicit else None)


config._thread_listeners.append(_on_threads_change)


def _apply_configured_threads() -> None:
    """First BLAS use: a thread count configured for autodiff_jit (ad.config.num_threads or
    AUTODIFF_JIT_NUM_THREADS) applies to BLAS too; OMP_/OPENBLAS_NUM_THREADS OpenBLAS reads
    itself."""
    if "applied" in _threads:
        return
    _threads["applied"] = True
    if config._num_threads is not None or os.environ.get(THREAD_VARIABLES[0], "").strip():
        set_num_threads(config.num_threads)


def gemm_symbol(dtype) -> str:
    """Name to declare in LLVM IR for (d|s)gemm; registered with the JIT on first use."""
    return _symbol("gemm", dtype)


def gemv_symbol(dtype) -> str:
    """Name to declare in LLVM IR for (d|s)gemv; registered with the JIT on first use."""
    return _symbol("gemv", dtype)


def _float_type(dtype) -> ir.Type:
    return ir.DoubleType() if np.dtype(dtype) == np.float64 else ir.FloatType()


def _declare(module: ir.Module, name: str, fnty: ir.FunctionType) -> ir.Function:
    # Reuse an existing declaration so several call sites in one module share it.
    if name in module.globals:
        return module.globals[name]
    fn = ir.Function(module, fnty, name=name)
    fn.attributes.add("nounwind")
    return fn


def declare_gemm(module: ir.Module, dtype) -> ir.Function:
    """Declare cblas_?gemm: void(i32 order, i32 transA, i32 transB, M, N, K, alpha, A*, lda, B*, ldb, beta, C*, ldc)."""
    name = gemm_symbol(dtype)
    i32, bi, ft = ir.IntType(32), int_type(), _float_type(dtype)
    ptr = ft.as_pointer()
    fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, bi, bi, bi, ft, ptr, bi, ptr, bi, ft, ptr, bi])
    return _declare(module, name, fnty)


def declare_gemv(module: ir.Module, dtype) -> ir.Function:
    """Declare cblas_?gemv: void(i32 order, i32 trans, M, N, alpha, A*, lda, x*, incx, beta, y*, incy)."""
    name = gemv_symbol(dtype)
    i32, bi, ft = ir.IntType(32), int_type(), _float_type(dtype)
    ptr = ft.as_pointer()
    fnty = ir.FunctionType(ir.VoidType(), [i32, i32, bi, bi, ft, ptr, bi, ptr, bi, ft, ptr, bi])
    return _declare(module, name, fnty)


def _int(builder: ir.IRBuilder, v, ty: ir.IntType) -> ir.Value:
    """Python int -> constant; narrower/wider LLVM int -> `ty` (sizes are never negative)."""
    if isinstance(v, int):
        return ir.Constant(ty, v)
    if v.type.width < ty.width:
        return builder.zext(v, ty)
    if v.type.width > ty.width:
        return builder.trunc(v, ty)
    return v


def emit_gemm(builder: ir.IRBuilder, dtype, a, b, c, m, n, k, *, trans_a=False, trans_b=False,
              lda=None, ldb=None, ldc=None, alpha=1.0, beta=0.0) -> None:
    """Emit row-major C[m,n] = alpha * op(A) @ op(B) + beta * C. Sizes may be Python ints or LLVM ints.

    Leading dimensions default to the dense row-major ones: lda = k (or m if trans_a), ldb = n (or k), ldc = n.
    """
    fn = declare_gemm(builder.module, dtype)
    bi, ft, i32 = int_type(), _float_type(dtype), ir.IntType(32)
    lda = lda if lda is not None else (m if trans_a else k)
    ldb = ldb if ldb is not None else (k if trans_b else n)
    ldc = ldc if ldc is not None else n
    builder.call(fn, [ir.Constant(i32, ROW_MAJOR), ir.Constant(i32, TRANS if trans_a else NO_TRANS),
                      ir.Constant(i32, TRANS if trans_b else NO_TRANS),
                      _int(builder, m, bi), _int(builder, n, bi), _int(builder, k, bi),
                      ir.Constant(ft, alpha) if isinstance(alpha, float) else alpha, a, _int(builder, lda, bi),
                      b, _int(builder, ldb, bi),
                      ir.Constant(ft, beta) if isinstance(beta, float) else beta, c, _int(builder, ldc, bi)])


def emit_gemv(builder: ir.IRBuilder, dtype, a, x, y, m, n, *, trans=False, lda=None, incx=1, incy=1,
              alpha=1.0, beta=0.0) -> None:
    """Emit row-major y = alpha * op(A) @ x + beta * y, with A stored as [m, n] (lda defaults to n)."""
    fn = declare_gemv(builder.module, dtype)
    bi, ft, i32 = int_type(), _float_type(dtype), ir.IntType(32)
    lda = lda if lda is not None else n
    builder.call(fn, [ir.Constant(i32, ROW_MAJOR), ir.Constant(i32, TRANS if trans else NO_TRANS),
                      _int(builder, m, bi), _int(builder, n, bi),
                      ir.Constant(ft, alpha) if isinstance(alpha, float) else alpha, a, _int(builder, lda, bi),
                      x, _int(builder, incx, bi),
                      ir.Constant(ft, beta) if isinstance(beta, float) else beta, y, _int(builder, incy, bi)])
