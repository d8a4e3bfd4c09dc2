"""JIT code calling numpy's BLAS vs numpy.matmul vs a plain LLVM loop nest.

    PYTHONPATH=. python benchmarks/bench_blas.py

Shapes: gemm (256x784)@(784x128) (a dense layer on MNIST-sized input), gemv (10000x100)@(100,).
All JIT functions take raw data pointers and are called through ctypes (~0.3 us, negligible here).
"""
from __future__ import annotations

import ctypes
import statistics
import timeit

import numpy as np
from llvmlite import ir

from autodiff_jit.backend import blas, engine

F64 = ir.DoubleType()
I64 = ir.IntType(64)
PTR = F64.as_pointer()


def _new_function(module, name, nptr):
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR] * nptr), name=name)
    for a in fn.args:
        a.add_attribute("noalias")  # lets LLVM vectorize the inner loops without runtime alias checks
    return fn, ir.IRBuilder(fn.append_basic_block("entry"))


def _loop(builder, n, body):
    """for (i = 0; i < n; ++i) body(builder, i) -- n is a Python int."""
    pre = builder.block
    head = builder.append_basic_block("loop")
    done = builder.append_basic_block("done")
    builder.branch(head)
    builder.position_at_end(head)
    i = builder.phi(I64)
    i.add_incoming(ir.Constant(I64, 0), pre)
    body(builder, i)
    nxt = builder.add(i, ir.Constant(I64, 1))
    i.add_incoming(nxt, builder.block)
    builder.cbranch(builder.icmp_unsigned("<", nxt, ir.Constant(I64, n)), head, done)
    builder.position_at_end(done)


def build_module(M, K, N, VM, VN):
    mod = ir.Module(name="bench_blas")
    mod.triple, mod.data_layout = engine.triple_and_layout()

    # blas_mm(A[M,K], B[K,N], C[M,N]): C = A @ B through numpy's dgemm.
    fn, b = _new_function(mod, "blas_mm", 3)
    blas.emit_gemm(b, np.float64, *fn.args, M, N, K)
    b.ret_void()

    # naive_mm: i-k-j order so the innermost loop streams rows of B and C (vectorizable).
    fn, b = _new_function(mod, "naive_mm", 3)
    A, B, C = fn.args
    zero_c = lambda bb, j: bb.store(ir.Constant(F64, 0.0), bb.gep(C, [j]))
    _loop(b, M * N, zero_c)

    def row(bb, i):
        def kk(bb, k):
            a = bb.load(bb.gep(A, [bb.add(bb.mul(i, ir.Constant(I64, K)), k)]))

            def jj(bb, j):
                pc = bb.gep(C, [bb.add(bb.mul(i, ir.Constant(I64, N)), j)])
                pb = bb.gep(B, [bb.add(bb.mul(k, ir.Constant(I64, N)), j)])
                bb.store(bb.fadd(bb.load(pc), bb.fmul(a, bb.load(pb), flags=("contract",)), flags=("contract",)), pc)
            _loop(bb, N, jj)
        _loop(bb, K, kk)
    _loop(b, M, row)
    b.ret_void()

    # blas_mv(A[VM,VN], x[VN], y[VM]): y = A @ x through dgemv.
    fn, b = _new_function(mod, "blas_mv", 3)
    blas.emit_gemv(b, np.float64, *fn.args, VM, VN)
    b.ret_void()

    # naive_mv: row-wise dot products; 'fast' lets LLVM reassociate the reduction into SIMD lanes.
    fn, b = _new_function(mod, "naive_mv", 3)
    A, x, y = fn.args

    def mv_row(bb, i):
        acc = bb.alloca(F64)  # mem2reg turns this into a phi
        bb.store(ir.Constant(F64, 0.0), acc)

        def kk(bb, k):
            av = bb.load(bb.gep(A, [bb.add(bb.mul(i, ir.Constant(I64, VN)), k)]))
            xv = bb.load(bb.gep(x, [k]))
            bb.store(bb.fadd(bb.load(acc), bb.fmul(av, xv, flags=("fast",)), flags=("fast",)), acc)
        _loop(bb, VN, kk)
        bb.store(bb.load(acc), bb.gep(y, [i]))
    _loop(b, VM, mv_row)
    b.ret_void()
    return mod


def bench(fn, number, repeat=15):
    fn()  # warm up (first BLAS call spins up its thread pool)
    times = timeit.repeat(fn, number=number, repeat=repeat)
    return statistics.median(times) / number * 1e6, min(times) / number * 1e6


def main():
    assert blas.available(), "numpy's BLAS not found"
    print("BLAS:", blas.info())
    M, K, N = 256, 784, 128
    VM, VN = 10_000, 100
    mod = build_module(M, K, N, VM, VN)
    names = ["blas_mm", "naive_mm", "blas_mv", "naive_mv"]
    _, addrs = engine.compile_module(str(mod), names)
    proto = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
    f = {n: proto(addrs[n]) for n in names}

    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((M, K)), rng.standard_normal((K, N))
    C = np.empty((M, N))
    Av, xv, yv = rng.standard_normal((VM, VN)), rng.standard_normal(VN), np.empty(VM)
    pa, pb, pc = A.ctypes.data, B.ctypes.data, C.ctypes.data
    pav, pxv, pyv = Av.ctypes.data, xv.ctypes.data, yv.ctypes.data

    ref = A @ B
    for n in ("blas_mm", "naive_mm"):
        C[:] = np.nan
        f[n](pa, pb, pc)
        np.testing.assert_allclose(C, ref, rtol=1e-10, atol=1e-10)
    refv = Av @ xv
    for n in ("blas_mv", "naive_mv"):
        yv[:] = np.nan
        f[n](pav, pxv, pyv)
        np.testing.assert_allclose(yv, refv, rtol=1e-10, atol=1e-10)

    rows = [
        (f"gemm ({M}x{K})@({K}x{N})", [
            ("numpy.matmul(out=)", lambda: np.matmul(A, B, out=C), 50),
            ("JIT -> numpy's dgemm", lambda: f["blas_mm"](pa, pb, pc), 50),
            ("JIT naive i-k-j loop", lambda: f["naive_mm"](pa, pb, pc), 10),
        ]),
        (f"gemv ({VM}x{VN})@({VN},)", [
            ("numpy.matmul(out=)", lambda: np.matmul(Av, xv, out=yv), 200),
            ("JIT -> numpy's dgemv", lambda: f["blas_mv"](pav, pxv, pyv), 200),
            ("JIT naive row-dot loop", lambda: f["naive_mv"](pav, pxv, pyv), 200),
        ]),
    ]
    flops = {0: 2 * M * K * N, 1: 2 * VM * VN}
    for idx, (title, cases) in enumerate(rows):
        print(f"\n{title}")
        for label, fn, number in cases:
            med, best = bench(fn, number)
            print(f"  {label:26s} median {med:9.1f} us   min {best:9.1f} us   {flops[idx] / best / 1e3:6.1f} GFLOP/s")


if __name__ == "__main__":
    main()
