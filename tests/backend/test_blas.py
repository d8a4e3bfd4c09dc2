"""JIT code calling numpy's own BLAS (gemm/gemv) gives numpy's answers."""
import ctypes

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llvmlite import ir

import autodiff_jit as ad
from autodiff_jit.backend import blas, dot, engine
from helpers import assert_within_rounding

pytestmark = pytest.mark.skipif(not blas.available(), reason="numpy's BLAS not found in this process")

_cache: dict = {}


def _ty(dtype):
    return ir.DoubleType() if np.dtype(dtype) == np.float64 else ir.FloatType()


def _new_module():
    mod = ir.Module(name="test_blas")
    mod.triple, mod.data_layout = engine.triple_and_layout()
    return mod


def _compiled(kind, dtype, trans_a=False, trans_b=False):
    """void f(T* a, T* b, T* c, i64 m, i64 n, i64 k): runtime sizes so one function serves all shapes."""
    key = (kind, np.dtype(dtype).str, trans_a, trans_b)
    if key not in _cache:
        mod = _new_module()
        p, i64 = _ty(dtype).as_pointer(), ir.IntType(64)
        fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [p, p, p, i64, i64, i64]), name="f")
        b = ir.IRBuilder(fn.append_basic_block())
        a, x, c, m, n, k = fn.args
        if kind == "gemm":
            blas.emit_gemm(b, dtype, a, x, c, m, n, k, trans_a=trans_a, trans_b=trans_b)
        else:  # gemv: A is [m, n] (k unused)
            blas.emit_gemv(b, dtype, a, x, c, m, n, trans=trans_a)
        b.ret_void()
        _, addrs = engine.compile_module(str(mod), ["f"])
        proto = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 3, *[ctypes.c_int64] * 3)
        _cache[key] = proto(addrs["f"])
    return _cache[key]


def test_symbols_and_int_width():
    assert blas.gemm_symbol(np.float64) == "adj_dgemm"
    assert blas.gemm_symbol("f4") == "adj_sgemm"
    assert blas.gemv_symbol(np.float64) == "adj_dgemv"
    # numpy >= 2 wheels ship ILP64 OpenBLAS; whatever we found, the declared width must match it.
    assert blas.int_type().width == (64 if blas.info()["ilp64"] else 32)


def test_unsupported_dtype():
    with pytest.raises(TypeError):
        blas.gemm_symbol(np.int64)
    with pytest.raises(TypeError):
        blas.declare_gemv(_new_module(), np.complex128)


def test_declarations_have_cblas_signatures_and_are_shared():
    mod = _new_module()
    g = blas.declare_gemm(mod, np.float64)
    assert blas.declare_gemm(mod, np.float64) is g  # second call site reuses the declaration
    bi = blas.int_type()
    assert [str(t) for t in g.function_type.args] == (
        ["i32"] * 3 + [str(bi)] * 3 + ["double", "double*", str(bi), "double*", str(bi), "double", "double*", str(bi)])
    v = blas.declare_gemv(mod, np.float32)
    assert [str(t) for t in v.function_type.args] == (
        ["i32", "i32", str(bi), str(bi), "float", "float*", str(bi), "float*", str(bi), "float", "float*", str(bi)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_matches_numpy(dtype, trans_a, trans_b):
    rng = np.random.default_rng(1)
    m, n, k = 7, 5, 11
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c = np.full((m, n), np.nan, dtype=dtype)  # beta = 0 must overwrite, not accumulate
    _compiled("gemm", dtype, trans_a, trans_b)(a.ctypes.data, b.ctypes.data, c.ctypes.data, m, n, k)
    op_a, op_b = (a.T if trans_a else a), (b.T if trans_b else b)
    if dtype == np.float32:   # vs float64 under K eps |a|@|b|: the kernel's order is the CPU's
        up = lambda v: v.astype(np.float64)  # noqa: E731
        assert_within_rounding(c, up(op_a) @ up(op_b), np.abs(up(op_a)) @ np.abs(up(op_b)), k)
    else:
        np.testing.assert_allclose(c, op_a @ op_b, rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 40), n=st.integers(1, 40), k=st.integers(1, 40))
def test_gemm_shapes(m, n, k):
    rng = np.random.default_rng(m * 10000 + n * 100 + k)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    c = np.empty((m, n))
    _compiled("gemm", np.float64)(a.ctypes.data, b.ctypes.data, c.ctypes.data, m, n, k)
    np.testing.assert_allclose(c, a @ b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("trans", [False, True])
def test_gemv_matches_numpy(dtype, trans):
    rng = np.random.default_rng(2)
    m, n = 13, 6
    a = rng.standard_normal((m, n)).astype(dtype)
    x = rng.standard_normal(m if trans else n).astype(dtype)
    y = np.full(n if trans else m, np.nan, dtype=dtype)
    _compiled("gemv", dtype, trans)(a.ctypes.data, x.ctypes.data, y.ctypes.data, m, n, 0)
    op_a = a.T if trans else a
    if dtype == np.float32:
        up = lambda v: v.astype(np.float64)  # noqa: E731
        assert_within_rounding(y, up(op_a) @ up(x), np.abs(up(op_a)) @ np.abs(up(x)), len(x))
    else:
        np.testing.assert_allclose(y, op_a @ x, rtol=1e-12, atol=1e-12)


def test_emit_accepts_python_int_sizes_and_alpha_beta():
    mod = _new_module()
    p = ir.DoubleType().as_pointer()
    fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [p, p, p]), name="g")
    b = ir.IRBuilder(fn.append_basic_block())
    blas.emit_gemm(b, np.float64, *fn.args, 3, 4, 2, alpha=2.0, beta=1.0)  # C = 2AB + C
    b.ret_void()
    _, addrs = engine.compile_module(str(mod), ["g"])
    g = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)(addrs["g"])
    rng = np.random.default_rng(3)
    a, bb, c = rng.standard_normal((3, 2)), rng.standard_normal((2, 4)), rng.standard_normal((3, 4))
    ref = 2 * a @ bb + c
    g(a.ctypes.data, bb.ctypes.data, c.ctypes.data)
    np.testing.assert_allclose(c, ref, rtol=1e-12, atol=1e-12)


THIN = {"a @ b": lambda a, b: a @ b, "a @ b.T": lambda a, b: a @ b.T,
        "a.T @ b": lambda a, b: a.T @ b}


@pytest.mark.parametrize("shapes, how", [
    (((256, 128), (128, 10)), "a @ b"),          # the MLP's logits
    (((256, 10), (128, 10)), "a @ b.T"),         # its adjoint with a transposed operand
    (((256, 128), (256, 10)), "a.T @ b"),        # the weight gradient (contract the batch)
    (((1000, 3), (3, 2)), "a @ b"),              # a tall product with 3 features
    (((10, 10), (10, 1000)), "a @ b"),
])
def test_thin_products_call_blas(rng, shapes, how):
    """Products with a short dimension (below 16) that are stored go to dgemm (measured
    5-13x faster than the loop nests) and give numpy's product within its rounding bound."""
    a, b = (rng.standard_normal(s) for s in shapes)
    f = THIN[how]
    jf = ad.jit(f)
    k = a.shape[0] if how.startswith("a.T") else a.shape[1]
    # one call, or two (the pool's chunk and the one-thread path) when the product is split
    split = f(a, b).size * k >= dot.SPLIT_MIN_WORK and blas.thread_control_addresses()
    assert jf.llvm_ir(a, b).count('call void @"adj_dgemm"') == (2 if split else 1)
    assert_within_rounding(jf(a, b), f(a, b), terms=k, dtype=np.float64,
                           magnitude=np.abs(a).max() * np.abs(b).max())


def test_core_name_and_unused_avx512_kernels(monkeypatch):
    core = blas.core_name()
    assert core is None or (isinstance(core, str) and core)
    monkeypatch.setattr(blas, "core_name", lambda: "Haswell")
    assert blas.avx512_kernels_unused({"avx512f": True})
    assert not blas.avx512_kernels_unused({"avx512f": False, "avx2": True})
    monkeypatch.setattr(blas, "core_name", lambda: "SkylakeX")
    assert not blas.avx512_kernels_unused({"avx512f": True})
    monkeypatch.setattr(blas, "core_name", lambda: None)
    assert not blas.avx512_kernels_unused({"avx512f": True})


def test_bench_notes_name_the_openblas_kernels():
    from types import SimpleNamespace

    from autodiff_jit.bench import report
    result = SimpleNamespace(cases=[], machine={"blas_core": "Haswell",
                                                "blas_avx512_unused": True})
    assert any("OPENBLAS_CORETYPE=SkylakeX" in n and "Haswell" in n
               for n in report.notes(result))
    result.machine["blas_avx512_unused"] = False
    assert not any("OPENBLAS_CORETYPE" in n for n in report.notes(result))
