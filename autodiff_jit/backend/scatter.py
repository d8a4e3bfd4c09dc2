"""Row scatter-add: out[idx[i]] += g[i] for every i, the gradient of a row gather (X[idx],
cams[cam], an embedding lookup), as LLVM support code for the numpy impl of `take_add`.

numpy has no fast primitive for it: np.add.at runs its generic per-element machinery, and the
np.bincount form take_add used (one flat index per element, then a weighted histogram) costs
~2.5 ns an element (8000 rows of 11 into 50: 215 us). The loop here adds each row of g into
its output row, rows in index order, so every output entry accumulates its updates in index
order from 0.0: the sums of np.add.at and np.bincount, to the bit, ~8x faster.

Indices are checked before anything is written (negative ones count from the end, as numpy's
do): `take_add_rows` raises numpy's IndexError for one out of range. The functions write only
the output they are given, so threads may call them at once. The code is compiled once per
process (or mapped from the disk cache) on the first call; where that fails the caller keeps
numpy.
"""
from __future__ import annotations

import ctypes
import math
import threading

import numpy as np

from . import engine

RECIPE = "scatter rows v1"
_NAMES = ["adj_scatter_rows_f64", "adj_scatter_rows_f32"]
_DTYPES = {np.dtype(np.float64): "adj_scatter_rows_f64",
           np.dtype(np.float32): "adj_scatter_rows_f32"}
_INT64 = np.dtype(np.int64)

# () -> the disk cache's `compile_support(recipe, build, names)` (or None), set by the package
# facade, which may import the disk cache (None: compiled in every process)
SUPPORT_COMPILER: list = [None]

_lock = threading.Lock()
_state: dict = {}


def build_module() -> str:
    """LLVM IR text of the two kernels, float64 and float32:

    i64 adj_scatter_rows_<t>(t* out, t* g, i64* idx, i64 n, i64 m, i64 size)

    adds row i of g (n x m, C order) into row idx[i] of out (size x m) for i = 0 .. n-1, after
    checking every index (idx + size where negative) lies in [0, size). Returns 0, or 1 if an
    index is out of range (nothing written)."""
    from llvmlite import ir

    from .kernels import F32, F64, I64, for_span, i64
    m = ir.Module(name="adj_scatter")
    m.triple, m.data_layout = engine.triple_and_layout()
    for name, ty in (("adj_scatter_rows_f64", F64), ("adj_scatter_rows_f32", F32)):
        p = ty.as_pointer()
        fn = ir.Function(m, ir.FunctionType(I64, [p, p, I64.as_pointer(), I64, I64, I64]),
                         name=name)
        out, g, idx, n, cols, size = fn.args
        for a in (out, g, idx):
            a.add_attribute("noalias")
        b = ir.IRBuilder(fn.append_basic_block("entry"))

        def row_of(i):
            r = b.load(b.gep(idx, [i]))
            return b.select(b.icmp_signed("<", r, i64(0)), b.add(r, size), r)

        # every index checked before any write: a count of those out of range (a loop with no
        # early exit, which LLVM vectorizes)
        n_bad = b.alloca(I64)
        b.store(i64(0), n_bad)

        def check(i):
            r = row_of(i)
            ok = b.and_(b.icmp_signed(">=", r, i64(0)), b.icmp_signed("<", r, size))
            b.store(b.add(b.load(n_bad), b.zext(b.not_(ok), I64)), n_bad)
        for_span(b, i64(0), n, check, "check")
        bad = fn.append_basic_block("bad")
        rows = fn.append_basic_block("rows")
        b.cbranch(b.icmp_signed("!=", b.load(n_bad), i64(0)), bad, rows)
        ir.IRBuilder(bad).ret(i64(1))
        b.position_at_end(rows)

        def add_row(i):
            r = row_of(i)
            dst = b.gep(out, [b.mul(r, cols)])
            src = b.gep(g, [b.mul(i, cols)])

            def add_one(j):
                d = b.gep(dst, [j])
                b.store(b.fadd(b.load(d), b.load(b.gep(src, [j]))), d)
            for_span(b, i64(0), cols, add_one, "cols")
        for_span(b, i64(0), n, add_row, "rows")
        b.ret(i64(0))
    return str(m)


def _kernels():
    """{dtype: ctypes function} (compiled once per process), or {} where compiling failed."""
    with _lock:
        if "fns" in _state:
            return _state["fns"]
        fns = {}
        try:
            compile_support = SUPPORT_COMPILER[0]() if SUPPORT_COMPILER[0] is not None else None
            if compile_support is None:
                _, addrs = engine.compile_module(build_module(), _NAMES)
            else:
                addrs = compile_support(RECIPE, build_module, _NAMES)
            proto = ctypes.CFUNCTYPE(ctypes.c_int64, *[ctypes.c_void_p] * 3,
                                     *[ctypes.c_int64] * 3)
            fns = {dt: proto(addrs[name]) for dt, name in _DTYPES.items()}
        except Exception:  # noqa: BLE001 - no kernel: the caller keeps numpy
            fns = {}
        _state["fns"] = fns
        return fns


def take_add_rows(g, idx, size, axis=0):
    """np.add.at(zeros((size,) + g.shape[1:]), idx, g) for a float64/float32 array g whose
    leading axis idx (1-D integers) indexes, or None where the kernel does not apply (other
    dtypes, no compiled code): the caller then uses numpy. `axis`: the axis an index out of
    range is reported on (the caller's, which it moved to the front)."""
    fn = _kernels().get(g.dtype)
    if fn is None or idx.ndim != 1 or idx.dtype.kind not in "iu" or \
            idx.dtype.kind == "u" and idx.dtype.itemsize >= 8:
        return None
    rest = g.shape[1:]
    n, m = idx.shape[0], math.prod(rest)
    if m == 0:
        return None
    out = np.zeros((size,) + rest, g.dtype)
    if n == 0:
        return out
    g = np.ascontiguousarray(g)
    ix = idx if idx.dtype == _INT64 and idx.flags.c_contiguous else \
        np.ascontiguousarray(idx, dtype=_INT64)
    if fn(out.ctypes.data, g.ctypes.data, ix.ctypes.data, n, m, size):
        first = int(ix[(ix < -size) | (ix >= size)][0])
        raise IndexError(f"index {first} is out of bounds for axis {axis} with size {size}")
    return out
