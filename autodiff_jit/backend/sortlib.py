"""The argsort kernel: per row, (key, index) pairs are sorted by libc's qsort with a comparator
emitted in LLVM IR (NaNs last, ties by index, so the order is numpy's stable one whatever
qsort's algorithm). qsort, malloc and free are looked up in the running process with ctypes and
registered with the JIT under adj_* names (as blas.py does for BLAS), at import, so code loaded
from the disk cache resolves them too."""
from __future__ import annotations

import ctypes

from llvmlite import ir

from . import engine
from .emitters import EMITTERS, Emitter
from .kernels import F64, I8P, I64, Index, for_range, i64, is_float_type, loop_nest

I32 = ir.IntType(32)
_LIBC = ctypes.CDLL(None)
for _name in ("qsort", "malloc", "free"):
    engine.add_symbol("adj_" + _name, ctypes.cast(getattr(_LIBC, _name), ctypes.c_void_p).value)


def _declare(module, name, ret, args):
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ret, args), name)
    return fn


def _comparator(module, float_keys: bool):
    name = "adj_sort_cmp_f64" if float_keys else "adj_sort_cmp_i64"
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    key = F64 if float_keys else I64
    pair = ir.LiteralStructType([key, I64]).as_pointer()
    fn = ir.Function(module, ir.FunctionType(I32, [I8P, I8P]), name)
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    pa, pb = (b.bitcast(a, pair) for a in fn.args)
    va = b.load(b.gep(pa, [I32(0), I32(0)]))
    vb = b.load(b.gep(pb, [I32(0), I32(0)]))
    ia = b.load(b.gep(pa, [I32(0), I32(1)]))
    ib = b.load(b.gep(pb, [I32(0), I32(1)]))
    minus, plus, zero = I32(-1), I32(1), I32(0)
    r = b.select(b.icmp_signed("<", ia, ib), minus, b.select(b.icmp_signed(">", ia, ib), plus,
                                                                zero))
    if float_keys:
        r = b.select(b.fcmp_ordered("<", va, vb), minus, b.select(b.fcmp_ordered(">", va, vb),
                                                                   plus, r))
        nan_a, nan_b = b.fcmp_unordered("uno", va, va), b.fcmp_unordered("uno", vb, vb)
        r = b.select(b.xor(nan_a, nan_b), b.select(nan_a, plus, minus), r)
    else:
        r = b.select(b.icmp_signed("<", va, vb), minus, b.select(b.icmp_signed(">", va, vb),
                                                                  plus, r))
    b.ret(r)
    return fn


def argsort_kernel(L, eqn, outs):
    out = outs[0]
    x = eqn.inputs[0]
    axis = eqn.params["axis"]
    b = L.builder
    shape = x.shape
    n = shape[axis]
    if n == 0 or out.size == 0:
        return
    float_keys = x.dtype.kind == "f"
    key = F64 if float_keys else I64
    pair = ir.LiteralStructType([key, I64])
    module = L.module
    malloc = _declare(module, "adj_malloc", I8P, [I64])
    free = _declare(module, "adj_free", ir.VoidType(), [I8P])
    qsort = _declare(module, "adj_qsort", ir.VoidType(),
                     [I8P, I64, I64, ir.FunctionType(I32, [I8P, I8P]).as_pointer()])
    cmp = _comparator(module, float_keys)
    raw = b.call(malloc, [i64(16 * n)])
    buf = b.bitcast(raw, pair.as_pointer())
    outer = tuple(1 if a == axis else d for a, d in enumerate(shape))

    def row(dims):
        def fill(i):
            d = list(dims)
            d[axis] = i
            v = L.load(x, Index(shape, dims=d))
            if float_keys and v.type != F64:
                v = b.fpext(v, F64)
            slot = b.gep(buf, [i])
            b.store(v, b.gep(slot, [ir.Constant(ir.IntType(32), 0), ir.Constant(ir.IntType(32), 0)]))
            b.store(i, b.gep(slot, [ir.Constant(ir.IntType(32), 0), ir.Constant(ir.IntType(32), 1)]))
        for_range(b, n, fill, name="sfill")
        b.call(qsort, [raw, i64(n), i64(16), cmp])

        def emit(i):
            d = list(dims)
            d[axis] = i
            slot = b.gep(buf, [i])
            j = b.load(b.gep(slot, [ir.Constant(ir.IntType(32), 0), ir.Constant(ir.IntType(32), 1)]))
            out.store(b, Index(out.shape, dims=d), j)
        for_range(b, n, emit, name="sout")
    loop_nest(b, outer, row)
    b.call(free, [raw])


EMITTERS["argsort"] = Emitter(None, argsort_kernel, "opaque")


_ = is_float_type
