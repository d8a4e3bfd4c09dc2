"""Split loops on the thread pool (backend/parallel.py): results bitwise independent of the
thread count, reductions against numpy within their rounding bound, the threshold, the
configuration (ad.config.num_threads, BLAS), and errors, threads and forks under the pool."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.backend import blas, parallel, pool
from autodiff_jit.config import default_num_threads
from helpers import assert_within_rounding

ROOT = Path(__file__).resolve().parents[2]
N = (1 << 18) + 37          # above the threshold, not a multiple of the chunk alignment
COUNTS = (1, 2, 3, 5)       # thread counts compared (more threads than cores is allowed)


@pytest.fixture(autouse=True)
def _restore_threads():
    yield
    ad.config.num_threads = None


def at_counts(call, counts=COUNTS, repeats=1):
    """call() at each thread count (each `repeats` times): list of results."""
    out = []
    for n in counts:
        ad.config.num_threads = n
        for _ in range(repeats):
            out.append(call())
    return out


def assert_bitwise(results):
    """Every result (an array, a scalar or a tuple of them) has the bytes of the first."""
    as_tuple = lambda r: r if isinstance(r, tuple) else (r,)    # noqa: E731
    first = as_tuple(results[0])
    for r in results[1:]:
        r = as_tuple(r)
        assert len(r) == len(first)
        for a, b in zip(first, r):
            a, b = np.asarray(a), np.asarray(b)
            assert a.dtype == b.dtype and a.shape == b.shape
            assert a.tobytes() == b.tobytes(), "results differ between thread counts"


def splits(f, *args) -> int:
    """How many loops of f's compiled code run on the pool."""
    return f.llvm_ir(*args).count("call void @\"adj_parallel_for\"")


def test_elementwise_bitwise_across_thread_counts(rng):
    def f(x, y):
        return np.tanh(x) * np.exp(-y * y) + np.sin(3.0 * x) / (1.0 + y * y)
    x, y = rng.standard_normal(N), rng.standard_normal(N)
    jf = ad.jit(f)
    assert splits(jf, x, y) >= 1
    res = at_counts(lambda: jf(x, y), repeats=2)
    assert_bitwise(res)
    np.testing.assert_allclose(res[0], ad.jit(f, mode="interpret")(x, y), rtol=1e-13, atol=1e-15)


def test_gradient_with_padding_views_bitwise(rng):
    def rosen(x):
        return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    x = rng.standard_normal(N)
    g = ad.grad(rosen)
    assert splits(g, x) >= 1          # the fused adjoint, cut at the pad boundaries
    res = at_counts(lambda: g(x), repeats=2)
    assert_bitwise(res)
    want = np.zeros_like(x)
    t = x[1:] - x[:-1] ** 2
    want[:-1] += -400.0 * t * x[:-1] - 2.0 * (1 - x[:-1])
    want[1:] += 200.0 * t
    np.testing.assert_allclose(res[0], want, rtol=1e-12, atol=1e-12)


def test_total_reduction_over_padding_views(rng):
    # the adjoint's padding views (scatter_slice) fused into a split total: segment bounds
    x = rng.standard_normal(N)
    jf = ad.jit(lambda x: np.sum(ad.grad(lambda v: np.sum(v[1:] * v[:-1]))(x) ** 2))
    assert splits(jf, x) == 1
    res = at_counts(lambda: jf(x))
    assert_bitwise(res)
    g = np.zeros_like(x)
    g[:-1] += x[1:]
    g[1:] += x[:-1]
    # each g element: one rounded add; squared: one more rounding; then the sum
    assert_within_rounding(res[0], np.sum(g * g), np.sum(g * g), N + 2, np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_total_reduction_deterministic_and_within_rounding(rng, dtype):
    x = rng.standard_normal(N).astype(dtype)
    jf = ad.jit(lambda v: np.sum(np.exp(v)))
    assert splits(jf, x) == 1
    res = at_counts(lambda: jf(x), repeats=3)
    assert_bitwise(res)
    e = np.exp(x.astype(np.float64))
    # float32: exp rounded once to float32, then summed in float64 (see emitters._accumulator)
    terms = 1 if dtype == np.float32 else N
    assert_within_rounding(res[0], e.sum(), e.sum(), terms, dtype, what="sum(exp)")


@pytest.mark.parametrize("which", ["row_sum", "broadcast_rows", "nest"])
def test_row_reduction_and_broadcasting_rows(rng, which):
    a = rng.standard_normal((2048, 300))
    b = rng.standard_normal(300)
    row_sum = lambda a, b: np.sum(np.maximum(a, 0.0) * b, axis=1)    # noqa: E731
    rows = lambda a, b: np.sqrt(a * a + b)                            # noqa: E731
    f = {"row_sum": row_sum, "broadcast_rows": rows,
         "nest": lambda a, b: (row_sum(a, b), rows(a, b))}[which]      # one loop nest
    jf = ad.jit(f)
    assert splits(jf, a, b) == 1
    res = at_counts(lambda: jf(a, b))
    assert_bitwise(res)
    got = res[0] if which == "nest" else (res[0], res[0])
    if which != "broadcast_rows":
        terms = np.maximum(a, 0.0) * b
        assert_within_rounding(got[0], terms.sum(axis=1), np.abs(terms).sum(axis=1), 300,
                               np.float64)
    if which != "row_sum":
        with np.errstate(invalid="ignore"):
            want = np.sqrt(a * a + b)
        np.testing.assert_array_equal(np.isnan(got[1]), np.isnan(want))
        # a*a + b may be one fma (contract): its rounding, halved by sqrt, plus sqrt's own
        eps = np.finfo(np.float64).eps
        ok = ~np.isnan(want)
        bound = 2 * eps * (a * a + np.abs(b))[ok] / (2 * want[ok] + 1e-300) + 2 * eps * want[ok]
        assert np.all(np.abs(got[1][ok] - want[ok]) <= bound)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nest_reducing_over_the_split_axis(rng, dtype):
    # one loop nest over the rows; the column sums and the total accumulate across rows:
    # each chunk into its own copy, combined in chunk order
    a = rng.standard_normal((4096, 200)).astype(dtype)
    b = rng.standard_normal(200).astype(dtype)

    def f(a, b):
        t = np.tanh(a) * b
        return np.sum(t, axis=0), np.max(t, axis=0), np.sum(t, axis=1), np.sum(a * a)
    jf = ad.jit(f)
    assert splits(jf, a, b) == 1
    res = at_counts(lambda: jf(a, b), repeats=2)
    assert_bitwise(res)
    t = np.tanh(a.astype(np.float64)) * b
    # float32: tanh and the product rounded in float32, the sums accumulate in float32 too
    terms = lambda n: n + 2 if dtype == np.float32 else n + 1     # noqa: E731
    col, mx, row, tot = res[0]
    assert_within_rounding(col, t.sum(axis=0), np.abs(t).sum(axis=0),
                           terms(4096), dtype, what="column sums")
    assert_within_rounding(mx, t.max(axis=0), np.abs(t).max(axis=0), 2, dtype, what="max")
    assert_within_rounding(row, t.sum(axis=1), np.abs(t).sum(axis=1), terms(200), dtype)
    a2 = a.astype(np.float64) ** 2
    assert_within_rounding(tot, a2.sum(), a2.sum(), terms(a.size), dtype, what="total")


def test_max_and_integer_reductions(rng):
    x = rng.standard_normal(N)
    x[N // 3] = np.nan
    x[7] = -0.0
    i = rng.integers(-1000, 1000, N)
    jf = ad.jit(lambda x, i: (np.max(x), np.min(x[N // 2:]), np.sum(i * 3), np.prod(x[:100])))
    res = at_counts(lambda: jf(x, i))
    assert_bitwise(res)
    mx, mn, si, _ = res[0]
    assert np.isnan(mx)
    assert mn == np.min(x[N // 2:]) and si == np.sum(i * 3)


def test_scalar_results_feed_split_loops_and_dtypes(rng):
    # a split total (a 0-d value on the stack) read by the next split loops; bool and int
    # outputs (bytes in memory), float32, a gather
    x = rng.standard_normal(N)
    idx = rng.integers(0, N, N)

    def f(x, idx):
        z = (x - np.mean(x)) / np.std(x)
        return z, z > 0.5, (z * 100).astype(np.int64), z.astype(np.float32) * 3, x[idx] * 2.0
    jf = ad.jit(f)
    assert splits(jf, x, idx) >= 3
    res = at_counts(lambda: jf(x, idx))
    assert_bitwise(res)
    z, big, ints, f32, gathered = res[0]
    zz = (x - x.mean()) / x.std()
    np.testing.assert_allclose(z, zz, rtol=1e-9, atol=1e-9)
    assert big.dtype == np.bool_ and ints.dtype == np.int64 and f32.dtype == np.float32
    np.testing.assert_array_equal(big, z > 0.5)
    np.testing.assert_array_equal(ints, (z * 100).astype(np.int64))
    np.testing.assert_array_equal(f32, z.astype(np.float32) * np.float32(3))
    np.testing.assert_array_equal(gathered, x[idx] * 2.0)


def test_special_values_elementwise(rng):
    x = rng.standard_normal(N)
    x[::97] = np.inf
    x[5::101] = -np.inf
    x[3::89] = np.nan
    x[11::83] = -0.0
    f = lambda v: np.log(np.abs(v)) * v    # noqa: E731
    jf = ad.jit(f)
    res = at_counts(lambda: jf(x))
    assert_bitwise(res)
    with np.errstate(all="ignore"):
        want = f(x)
    np.testing.assert_array_equal(np.isnan(res[0]), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_array_equal(np.signbit(res[0][ok]), np.signbit(want[ok]))


def test_small_problems_stay_serial(rng):
    for n in (3, 10, 1000, 20000):
        x = rng.standard_normal(n)
        assert splits(ad.grad(lambda v: np.sum(v * v * v)), x) == 0
    x = rng.standard_normal(3)
    assert splits(ad.grad(lambda v: v[0] * v[1] + v[2] ** 3), x) == 0


def test_chunks_cover_the_loop_once():
    for units, work, flat in [(N, 1, True), (10**6, 7, True), (2048, 300, False),
                              (3, 10**6, False), (1 << 17, 1, True)]:
        per = parallel._chunking(units, work, flat)
        assert per is not None
        s = parallel.Split("loop", (units,), flat, units, per)
        starts = [c * per for c in range(s.nchunks)]
        assert 2 <= s.nchunks <= parallel.MAX_CHUNKS
        assert starts[-1] < units <= starts[-1] + per
        if flat:
            assert per % parallel.FLAT_ALIGN == 0
    assert parallel._chunking(1000, 1, True) is None          # below MIN_WORK


def test_thread_count_changes_without_recompiling(rng):
    x = rng.standard_normal(1 << 20)
    jf = ad.jit(lambda v: np.sum(np.sin(v) ** 2))
    ad.config.num_threads = 1
    want = jf(x)
    spec = jf.specialize(x).executable
    before = pool.stats()["worker_chunks"]
    for _ in range(20):
        assert jf(x) == want
    assert pool.stats()["worker_chunks"] == before     # one thread: the caller only
    ad.config.num_threads = 2
    assert pool.stats()["workers"] >= 1
    for _ in range(500):                                     # until a worker took a chunk
        assert jf(x) == want
        if pool.stats()["worker_chunks"] > before:
            break
    assert pool.stats()["worker_chunks"] > before
    assert jf.specialize(x).executable is spec               # the same machine code


def test_config_num_threads(monkeypatch):
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="num_threads"):
            ad.config.num_threads = bad
    ad.config.num_threads = 3
    assert ad.config.num_threads == 3 and pool.num_threads() == 3
    ad.config.num_threads = None
    assert ad.config.num_threads == default_num_threads()
    for var in ("AUTODIFF_JIT_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert default_num_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")            # the outermost level counts
    assert default_num_threads() == 4
    monkeypatch.setenv("AUTODIFF_JIT_NUM_THREADS", "5")
    assert default_num_threads() == 5
    monkeypatch.setenv("AUTODIFF_JIT_NUM_THREADS", "zero")   # not a count: the next variable
    assert default_num_threads() == 4


@pytest.mark.skipif(not blas.available() or blas.num_threads() is None,
                    reason="numpy's BLAS has no thread control here")
def test_blas_follows_config(rng):
    own = blas.num_threads()
    ad.config.num_threads = 1
    assert blas.num_threads() == 1
    a, b = rng.standard_normal((300, 200)), rng.standard_normal((200, 100))
    f = ad.jit(lambda a, b: np.tanh(a @ b))
    r1 = f(a, b)
    ad.config.num_threads = 2
    assert blas.num_threads() == 2
    np.testing.assert_allclose(f(a, b), r1, rtol=1e-13, atol=1e-13)
    ad.config.num_threads = None
    assert blas.num_threads() == own


def test_errors_still_raised_under_threads(rng):
    ad.config.num_threads = 2
    x = rng.uniform(0.5, 2.0, N)
    indefinite = np.diag([1.0, -1.0, 2.0])

    def f(a, v):
        return np.sum(np.linalg.cholesky(a)) + np.sum(np.log(v) * v)
    jf = ad.grad(f, argnums=(0, 1))
    assert splits(jf, np.eye(3), x) >= 1
    with pytest.raises(np.linalg.LinAlgError, match="positive definite"):
        jf(indefinite, x)
    np.testing.assert_allclose(jf(np.eye(3), x)[1], np.log(x) + 1.0, rtol=1e-14)
    y = x.copy()
    y[N - 5] = -1.0
    ad.config.debug_nans = True
    try:
        with pytest.raises(FloatingPointError, match="log"):
            jf(np.eye(3), y)
    finally:
        ad.config.debug_nans = False


def test_traced_index_out_of_bounds_inside_a_split_loop(rng):
    """A gather by a traced index array in a chunk function reports through the caller's
    flag: the same IndexError as the interpreter, whichever chunk holds the bad index."""
    ad.config.num_threads = 2
    x = np.linspace(-1.0, 1.0, 10)
    i = rng.integers(0, 10, N)
    f = ad.jit(lambda x, i: np.exp(x[i]) * 2.0 + np.sin(x[i]))
    g = ad.grad(lambda x, i: np.sum(np.tanh(x[i]) * np.exp(x[i])))
    assert splits(f, x, i) >= 1 and splits(g, x, i) >= 1
    np.testing.assert_allclose(f(x, i), np.exp(x[i]) * 2.0 + np.sin(x[i]), rtol=1e-15)
    for where, bad in ((3, 12), (N - 5, -11), (N // 2, 10)):
        j = i.copy()
        j[where] = bad
        for fn in (f, g):
            with pytest.raises(IndexError, match=f"index {bad} is out of bounds for axis 0 "
                                                 "with size 10"):
                fn(x, j)
    np.testing.assert_allclose(f(x, i), np.exp(x[i]) * 2.0 + np.sin(x[i]), rtol=1e-15)


def test_concurrent_callers(rng):
    ad.config.num_threads = 2
    x = rng.standard_normal(N)
    jf = ad.jit(lambda v: (np.sum(np.cos(v)), np.cos(v) * 2.0))
    want = jf(x)
    errors = []

    def worker():
        for _ in range(20):
            got = jf(x)
            if got[0] != want[0] or not np.array_equal(got[1], want[1]):
                errors.append("mismatch")
    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_many_callers_while_the_thread_count_changes(rng):
    """Callers on six threads (elementwise, total and row reductions) while another thread
    keeps resizing the pool: every result has the bytes of the one-thread result."""
    x = rng.standard_normal(N)
    m = rng.standard_normal((512, 600))
    fns = [(ad.jit(lambda v: np.tanh(v) * 3.0 - v), (x,)),
           (ad.jit(lambda v: np.sum(np.exp(np.sin(v)))), (x,)),
           (ad.jit(lambda a: np.sum(np.cos(a) * a, axis=1)), (m,))]
    ad.config.num_threads = 1
    want = [f(*a) for f, a in fns]
    errors, stop = [], threading.Event()

    def caller(k):
        f, a = fns[k % len(fns)]
        for _ in range(15):
            if f(*a).tobytes() != want[k % len(fns)].tobytes():
                errors.append(k)

    def resizer():
        counts = (2, 3, 1, 4, 2)
        j = 0
        while not stop.is_set():
            ad.config.num_threads = counts[j % len(counts)]
            j += 1
            stop.wait(0.002)
    r = threading.Thread(target=resizer)
    r.start()
    threads = [threading.Thread(target=caller, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    r.join()
    assert not errors


def test_pool_resize_keeps_results_and_uses_only_the_configured_workers(rng):
    x = rng.standard_normal(N)
    jf = ad.jit(lambda v: np.sin(v) * np.exp(-v * v))
    ad.config.num_threads = 1
    want = jf(x).tobytes()
    for n in (4, 2, 1, 3, 2):
        ad.config.num_threads = n
        assert pool.stats()["workers"] >= n - 1
        for _ in range(3):
            assert jf(x).tobytes() == want
    ad.config.num_threads = 1
    before = pool.stats()["worker_chunks"]
    for _ in range(10):
        assert jf(x).tobytes() == want
    assert pool.stats()["worker_chunks"] == before     # the workers stay out of it


def _wait_until(cond, seconds=30.0):
    """Poll cond() until it holds (a liveness check with a generous bound, not a timing)."""
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_workers_sleep_after_spinning(rng):
    """After a region the workers spin a little on the task word, then sleep: an idle pool
    burns no CPU (all its workers counted asleep, the process's CPU time flat)."""
    x = rng.standard_normal(N)
    jf = ad.jit(lambda v: np.sum(np.exp(np.cos(v))))
    ad.config.num_threads = 3
    want = jf(x)
    sleeps = pool.stats()["sleeps"]
    for _ in range(5):
        assert jf(x) == want
    taking = min(pool.stats()["workers"], 2)   # (workers beyond the count wait apart)
    assert _wait_until(lambda: pool.stats()["sleeping"] == taking)
    assert pool.stats()["sleeps"] > sleeps
    cpu = time.process_time()
    time.sleep(0.5)
    assert time.process_time() - cpu < 0.2       # (two spinning workers would burn ~1 s)
    assert jf(x) == want                         # and they wake for the next region


def test_spin_length_changes_no_result(rng):
    """Sleeping at once (spin 0) or spinning long: the same bytes at every thread count."""
    x = rng.standard_normal(N)
    jf = ad.jit(lambda v: (np.sum(np.sin(v) ** 2), np.sqrt(np.abs(v)) * v))
    try:
        for spin in (0, 1, 1 << 20):
            pool.set_spin(spin)
            assert_bitwise(at_counts(lambda: jf(x), repeats=3))
    finally:
        pool.set_spin(pool.SPIN)
    ad.config.num_threads = 2
    assert _wait_until(lambda: pool.stats()["sleeping"] >= 1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_fork_while_workers_spin(rng):
    """fork() right after a region (the parent's workers still spinning): the child starts a
    pool of its own and gets the parent's bytes; the parent's pool keeps working."""
    ad.config.num_threads = 3
    x = rng.standard_normal(N)
    jf = ad.jit(lambda v: np.cos(v) * np.sum(np.exp(v)))
    want = jf(x).tobytes()
    for _ in range(3):
        jf(x)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                ok = all(jf(x).tobytes() == want for _ in range(5))
                code = 0 if ok and pool.stats()["workers"] >= 2 else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        assert jf(x).tobytes() == want


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_forked_child_uses_the_pool(rng):
    ad.config.num_threads = 2
    x = rng.standard_normal(N)
    jf = ad.jit(lambda v: np.sum(np.exp(v)))
    want = jf(x)
    pid = os.fork()
    if pid == 0:          # the child: its own pool (the parent's workers do not exist here)
        code = 1
        try:
            ok = all(jf(x) == want for _ in range(5))
            code = 0 if ok and pool.stats()["workers"] >= 1 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


CHILD = textwrap.dedent("""
    import hashlib
    import numpy as np
    import autodiff_jit as ad
    from autodiff_jit.backend import cache, pool
    ad.config.num_threads = 2
    x = np.linspace(-3.0, 3.0, {n})
    r = ad.grad(lambda v: np.sum(np.exp(np.sin(v)) * v), cache={d!r})(x)
    st = cache.stats()
    print(st["hits"], st["misses"], pool.stats()["workers"],
          hashlib.sha256(r.tobytes()).hexdigest())
""")


def test_split_code_from_the_disk_cache_in_a_fresh_process(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def child():
        out = subprocess.run([sys.executable, "-c", CHILD.format(n=N, d=str(tmp_path))],
                             capture_output=True, text=True, env=env, cwd=str(ROOT),
                             timeout=120)
        assert out.returncode == 0, out.stderr
        hits, misses, workers, digest = out.stdout.split()
        return int(hits), int(misses), int(workers), digest
    first, second = child(), child()
    assert first[:2] == (0, 1) and second[:2] == (1, 0)
    assert second[2] >= 1                # loading the code started the pool
    assert first[3] == second[3]         # bit-identical gradients
