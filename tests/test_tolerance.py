"""The float32 tolerance rule (helpers.rounding_bound): a bound derived from the error
analysis of sums, K * eps * (|a| @ |b|), holds for every summation order -- so tests using it
pass on any CPU whatever its vector width or BLAS kernel -- and still catches wrong results."""
import numpy as np
import pytest

from helpers import assert_within_rounding, float64_twin, rounding_bound

from autodiff_jit import interpret
from autodiff_jit.ir import AVal, Eqn, Function, Var
from autodiff_jit.primitives import get_primitive

F32 = np.float32


def _sums_in_orders(x):
    """float32 sums of x in several orders: sequential, pairwise (numpy), blocked by 8 and 16
    lanes (what AVX2 / AVX-512 vector loops do), sorted by magnitude."""
    def seq(v):
        acc = F32(0)
        for t in v:
            acc = F32(acc + t)
        return acc

    def lanes(v, w):
        acc = np.zeros(w, F32)
        for i in range(0, len(v) - len(v) % w, w):
            acc = (acc + v[i:i + w]).astype(F32)
        return seq(np.concatenate([acc, v[len(v) - len(v) % w:]]))
    return [seq(x), np.sum(x, dtype=F32), lanes(x, 8), lanes(x, 16),
            seq(x[np.argsort(-np.abs(x))])]


@pytest.mark.parametrize("n", [10, 1000, 4097])
def test_sum_bound_holds_in_every_order(n):
    rng = np.random.default_rng(n)
    x = rng.uniform(-2, 2, n).astype(F32)
    x[-1] = -np.sum(x[:-1], dtype=np.float64).astype(F32)   # heavy cancellation
    ref = np.sum(x.astype(np.float64))
    mag = np.sum(np.abs(x).astype(np.float64))
    sums = _sums_in_orders(x)
    for s in sums:
        assert_within_rounding(np.asarray(s), ref, mag, n)
    # a fixed relative tolerance would call these orders wrong: they differ by far more
    # than 1e-5 relative to the (small) exact sum
    spread = max(sums) - min(sums)
    assert n < 100 or spread > 1e-5 * abs(ref)


@pytest.mark.parametrize("k", [3, 64, 1000])
def test_dot_bound_holds_and_catches_errors(k):
    rng = np.random.default_rng(k)
    a = rng.uniform(-2, 2, (4, k)).astype(F32)
    b = rng.uniform(-2, 2, (k, 3)).astype(F32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    mag = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    assert_within_rounding(a @ b, ref, mag, k)                       # BLAS sgemm
    naive = np.array([[_sums_in_orders((a[i] * b[:, j]).astype(F32))[0] for j in range(3)]
                      for i in range(4)])
    assert_within_rounding(naive, ref, mag, k)                       # sequential order
    wrong = (a @ b).astype(np.float64)
    wrong[1, 2] += 2 * rounding_bound(mag[1, 2], k)
    with pytest.raises(AssertionError, match="x the bound"):
        assert_within_rounding(wrong.astype(F32), ref, mag, k)


def test_bound_formula():
    eps = float(np.finfo(F32).eps)
    assert rounding_bound(2.0, 9) == pytest.approx(10 * eps * 2.0 + float(np.finfo(F32).tiny))
    assert rounding_bound(1.0, 0, np.float64) == pytest.approx(np.finfo(np.float64).eps)


def test_special_values_must_match():
    ref = np.array([np.inf, np.nan, 1.0])
    assert_within_rounding(ref.astype(F32), ref, 1.0, 1)
    with pytest.raises(AssertionError):
        assert_within_rounding(np.array([np.inf, 0.0, 1.0], F32), ref, 1.0, 1)
    with pytest.raises(AssertionError):
        assert_within_rounding(np.array([-np.inf, np.nan, 1.0], F32), ref, 1.0, 1)


def test_float64_twin_is_the_same_computation_in_float64():
    x = Var(AVal((5,), F32), "x")
    out = Var(AVal((), F32))
    fn = Function("s", [x], {}, [Eqn(get_primitive("reduce_sum"), [x], {"axes": (0,)}, [out])],
                  [out])
    twin = float64_twin(fn)
    assert [a.aval.dtype for a in twin.args + twin.results] == [np.float64] * 2
    v = np.array([1e8, 1.0, -1e8, 1.0, 0.5])
    (r,) = interpret.run(twin, [v])
    assert r == 2.5                                  # float64 arithmetic: no float32 rounding
    assert fn.args[0].aval.dtype == F32              # the original is unchanged
