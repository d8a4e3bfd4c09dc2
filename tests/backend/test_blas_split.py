"""Large products split over the thread pool (dot._split_blas, dot._split_batches): with
numpy's OpenBLAS at several threads, gemv/gemm of at least dot.SPLIT_MIN_WORK multiply-adds run
as chunks of the output, and batched products as chunks of whole batches (each a one-thread
call, OpenBLAS set to 1 around the region and restored); at one thread, for small products,
and without thread control the single call (the batch loop) is unchanged."""
from __future__ import annotations

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.backend import blas, dot, lapack, pool

pytestmark = pytest.mark.skipif(
    not blas.available() or blas.thread_control_addresses() is None,
    reason="numpy's BLAS or OpenBLAS's thread control not found")

EPS = np.finfo(np.float64).eps


def _logistic(w, X, y):
    z = X @ w
    return np.sum(np.logaddexp(0.0, z) - y * z)


def _logistic_args(n=4000, d=100, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(d) * 0.1, rng.standard_normal((n, d)),
            (rng.random(n) > 0.5) * 1.0)


def _products(a, b):
    return np.sum(np.sin(a @ b))


def _bound(k, *arrays):
    """Rounding bound of a length-k dot product of entries up to the arrays' maxima (k eps
    times the sum of |products|), times a margin for the elementwise work around it."""
    return 8 * k * EPS * k * np.prod([np.abs(x).max() for x in arrays])


def test_split_sets_one_thread_around_the_region(thread_symbols):
    calls = []
    thread_symbols(lambda: 2, calls.append)
    args = _logistic_args()
    f = ad.grad(_logistic)
    got = f(*args)
    text = f.llvm_ir(*args)
    assert pool.RUNTIME_SYMBOL in text and "_chunk" in text
    assert calls == [1, 2, 1, 2]      # X w and X^T u, each split; the count restored
    ref = ad.grad(_logistic, mode="interpret")(*args)
    np.testing.assert_allclose(got, ref, rtol=0, atol=_bound(args[1].shape[0], *args))


@pytest.mark.parametrize("shapes", [((300, 200), (200, 40)),    # gemm split along rows (M)
                                    ((20, 200), (200, 3000))])  # ... along columns (N)
def test_split_gemm_both_operands_transposed_or_not(thread_symbols, shapes):
    calls = []
    thread_symbols(lambda: 2, calls.append)
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    g = ad.grad(_products, argnums=(0, 1))
    got = g(a, b)
    # forward a @ b, then G @ b.T and a.T @ G in the adjoint: three split products
    assert calls == [1, 2] * 3
    ref = ad.grad(_products, argnums=(0, 1), mode="interpret")(a, b)
    for x, r in zip(got, ref):
        np.testing.assert_allclose(x, r, rtol=0, atol=_bound(max(a.shape + b.shape), a, b))


def _chunk_counts(text):
    import re
    return [int(c) for c in re.findall(
        r'call void @"adj_parallel_for"\(.*, i64 (\d+)\)$', text, re.M)]


@pytest.mark.parametrize("m, chunks", [(256, 2), (1024, 8), (200, 2)])
def test_gemm_chunks_keep_enough_rows(thread_symbols, m, chunks):
    # each gemm chunk packs the whole shared operand again, so chunks keep at least
    # SPLIT_MIN_GEMM_UNITS rows (a product narrower than two such chunks is cut in halves):
    # the MLP's X @ W1 (256 x 784 x 128) is two chunks, not sixteen of 16 rows
    thread_symbols(lambda: 2, lambda n: None)
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((m, 300)), rng.standard_normal((300, 20))
    f = ad.jit(lambda a, b: a @ b)
    got = f(a, b)
    assert _chunk_counts(f.llvm_ir(a, b)) == [chunks]
    assert m // chunks >= min(dot.SPLIT_MIN_GEMM_UNITS, m // 2)
    np.testing.assert_allclose(got, a @ b, rtol=0, atol=_bound(300, a, b))


def test_one_thread_runs_the_single_call(thread_symbols):
    calls, asked = [], []
    thread_symbols(lambda: asked.append(1) or 1, calls.append)
    args = _logistic_args(seed=2)
    got = ad.grad(_logistic)(*args)
    # the product asked for the thread count and, at one thread, never set it (a split sets
    # one thread around its chunks); the pool may still run the elementwise loops
    assert asked and calls == []
    ref = ad.grad(_logistic, mode="interpret")(*args)
    np.testing.assert_allclose(got, ref, rtol=0, atol=_bound(args[1].shape[0], *args))


def test_small_products_are_not_split(thread_symbols):
    calls = []
    thread_symbols(lambda: 2, calls.append)
    args = _logistic_args(n=200, d=50)       # 1e4 multiply-adds < SPLIT_MIN_WORK
    assert 200 * 50 < dot.SPLIT_MIN_WORK
    f = ad.grad(_logistic)
    f(*args)
    assert calls == [] and lapack.THREADS_SET not in f.llvm_ir(*args)


def test_deterministic_and_equal_at_1_and_2_threads():
    # real OpenBLAS: at 1 thread the single call, at 2 the split (each output element by one
    # one-thread call): repeatable at 2 threads, equal to 1 thread up to rounding (bitwise
    # where OpenBLAS's kernel does not depend on the row block, as on the machines measured)
    args = _logistic_args(seed=3)
    f = ad.grad(_logistic)
    ad.config.num_threads = 1
    g1 = f(*args)
    ad.config.num_threads = 2
    g2, g2b = f(*args), f(*args)
    assert blas.num_threads() == 2
    ad.config.num_threads = None
    np.testing.assert_array_equal(g2, g2b)
    np.testing.assert_allclose(g1, g2, rtol=0, atol=_bound(args[1].shape[0], *args))


def _batched(a, b):
    return np.sum(np.tanh(np.einsum("kni,knj->kij", a, b)))


def _batched_args(seed=5, k=25, n=2000, d=10):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((k, n, d)), rng.standard_normal((k, n, d))


def test_batched_products_split_by_batches(thread_symbols):
    calls = []
    thread_symbols(lambda: 2, calls.append)
    a, b = _batched_args()
    assert a.shape[0] * a.shape[1] * a.shape[2] ** 2 >= dot.SPLIT_MIN_WORK
    g = ad.grad(_batched, argnums=(0, 1))
    got = g(a, b)
    # the forward product and the two of the adjoint, each a region of whole batches
    assert calls == [1, 2] * 3
    ref = ad.grad(_batched, argnums=(0, 1), mode="interpret")(a, b)
    for x, r in zip(got, ref):
        np.testing.assert_allclose(x, r, rtol=0, atol=_bound(a.shape[1], a, b))


def test_small_batched_products_are_not_split(thread_symbols):
    calls = []
    thread_symbols(lambda: 2, calls.append)
    a, b = _batched_args(k=4, n=50, d=5)       # 5000 multiply-adds < SPLIT_MIN_WORK
    f = ad.grad(_batched)
    f(a, b)
    assert calls == [] and lapack.THREADS_SET not in f.llvm_ir(a, b)


def test_batched_bitwise_equal_at_1_and_2_threads():
    # each batch is the same one-thread call whichever thread runs it and at either count
    a, b = _batched_args(seed=6)
    f = ad.grad(_batched, argnums=(0, 1))
    ad.config.num_threads = 1
    g1 = f(a, b)
    ad.config.num_threads = 2
    g2 = f(a, b)
    ad.config.num_threads = None
    for x, y in zip(g1, g2):
        np.testing.assert_array_equal(x, y)


def test_without_thread_control(monkeypatch):
    monkeypatch.setattr(blas, "thread_control_addresses", lambda: None)
    monkeypatch.setattr(lapack, "_registered", set(lapack._registered) -
                        {lapack.THREADS_GET, lapack.THREADS_SET})
    args = _logistic_args(n=3000, seed=4)
    f = ad.grad(_logistic)
    got = f(*args)
    text = f.llvm_ir(*args)
    assert lapack.THREADS_SET not in text and pool.RUNTIME_SYMBOL not in text
    ref = ad.grad(_logistic, mode="interpret")(*args)
    np.testing.assert_allclose(got, ref, rtol=0, atol=_bound(args[1].shape[0], *args))


def _xt_g(X, G):
    return X.T @ G[:, 1]        # a transposed gemv with a strided vector (incx = 3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(10000, 100), (3001, 257)])
def test_transposed_gemv_split_along_the_contraction(dtype, shape):
    # a short output (X^T g, logistic regression's adjoint) is cut along the rows of X into
    # partial sums added in chunk order: the same chunks at every thread count, so bitwise
    # equal at 1 and 2 threads, and equal to numpy's product up to the sum's rounding
    rng = np.random.default_rng(7)
    X = rng.standard_normal(shape).astype(dtype)
    G = rng.standard_normal((shape[0], 3)).astype(dtype)
    assert shape[0] * shape[1] >= dot.SPLIT_MIN_WORK
    assert shape[1] * np.dtype(dtype).itemsize <= dot.CONTRACTION_SPLIT_MAX_BYTES
    f = ad.jit(_xt_g)
    ad.config.num_threads = 1
    one = f(X, G)
    ad.config.num_threads = 2
    two, again = f(X, G), f(X, G)
    ad.config.num_threads = None
    assert "blassum" in f.llvm_ir(X, G)
    assert one.dtype == dtype and one.shape == (shape[1],)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(two, again)
    eps = np.finfo(dtype).eps
    ref = X.astype(np.float64).T @ G[:, 1].astype(np.float64)
    bound = shape[0] * eps * (np.abs(X).astype(np.float64).T @ np.abs(G[:, 1]))
    assert np.all(np.abs(one - ref) <= bound)


def test_transposed_gemv_split_in_a_gradient_sets_one_thread(thread_symbols):
    calls = []
    thread_symbols(lambda: 2, calls.append)
    args = _logistic_args(n=6000, seed=8)
    f = ad.grad(_logistic)
    got = f(*args)
    assert "blassum" in f.llvm_ir(*args)      # X^T u: cut along the contraction
    assert calls == [1, 2, 1, 2]
    ref = ad.grad(_logistic, mode="interpret")(*args)
    np.testing.assert_allclose(got, ref, rtol=0, atol=_bound(args[1].shape[0], *args))


def _short_gemm(a, b):
    return np.sum(np.sin(a.T @ b))      # (K, M)^T @ (K, N): a 3 x 2 output over K rows


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_short_output_gemm_split_along_the_contraction(dtype):
    # mse_linear's X^T R: the gradient's products with a short output (the forward a^T b and
    # the adjoint's b G^T, a G, each contracting over the K rows or the 2- or 3-wide axes) are
    # bitwise equal at 1 and 2 threads and equal to the interpreter up to rounding
    rng = np.random.default_rng(9)
    a = rng.standard_normal((100_003, 3)).astype(dtype)
    b = rng.standard_normal((100_003, 2)).astype(dtype)
    g = ad.grad(_short_gemm, argnums=(0, 1))
    ad.config.num_threads = 1
    one = g(a, b)
    ad.config.num_threads = 2
    two = g(a, b)
    ad.config.num_threads = None
    assert "blassum" in g.llvm_ir(a, b)
    for x, y in zip(one, two):
        np.testing.assert_array_equal(x, y)
    f = ad.jit(lambda a, b: a.T @ b)
    ad.config.num_threads = 2
    got = f(a, b)
    ad.config.num_threads = None
    ref = a.astype(np.float64).T @ b.astype(np.float64)
    bound = a.shape[0] * np.finfo(dtype).eps * (np.abs(a).T.astype(np.float64) @ np.abs(b))
    assert got.dtype == dtype and np.all(np.abs(got - ref) <= bound)
    if dtype == np.float64:
        # da = b cos(P)^T, db = a cos(P) with P = a^T b: each entry a 2- or 3-term sum of
        # |a| or |b| times cos(P) off by at most P's rounding bound
        ref_g = ad.grad(_short_gemm, argnums=(0, 1), mode="interpret")(a, b)
        for x, r, o in zip(one, ref_g, (b, a)):
            atol = o.shape[1] * np.abs(o).max() * (bound.max() + 3 * EPS)
            np.testing.assert_allclose(x, r, rtol=0, atol=atol)
