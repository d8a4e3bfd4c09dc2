"""backend/vecsort.py: the vectorized quicksort sortlib uses for rows longer than 128 on x86
targets, by its AVX-512 partitions (compresses) or its AVX2 ones (permutation tables), and the
radix plans of other targets, each forced on this host where it can run there (AVX-512 code
skips on AVX2-only hosts): np.sort's values bit for bit numpy's stable sort's (signs of zeros,
NaN payloads, NaNs last; float64 and int64 64-bit keys, float32 values 32-bit keys), argsort's
and the gradients' permutations the stable one ((key, index) pairs, float32 composites)."""
import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.backend import engine, vecsort

from autodiff_jit.backend import cache, sortlib

FEATURES = engine.host_cpu_features().split(",")
HOST = {"avx512": "+avx512f" in FEATURES, "avx2": "+avx2" in FEATURES}
QUICK = [pytest.param(p, marks=pytest.mark.skipif(not HOST[p], reason=f"the host has no {p}"))
         for p in vecsort.PLANS]
PLANS = ["off", *QUICK]


@pytest.fixture(params=PLANS)
def plan(request, monkeypatch):
    monkeypatch.setattr(vecsort, "FORCE", request.param)
    return request.param


@pytest.fixture(params=QUICK)
def quick(request, monkeypatch):
    monkeypatch.setattr(vecsort, "FORCE", request.param)
    return request.param


@pytest.mark.parametrize("features, expected", [
    ("+avx2,+avx512f,+avx512bw", "avx512"), ("+avx,+avx2,-avx512f", "avx2"),
    ("+sse4.2,-avx2,-avx512f", None), ("+neon", None)])
def test_plan_follows_the_target(monkeypatch, features, expected):
    """Without FORCE the plan is the compile target's (the host's): the AVX-512 partitions
    where AVX-512F is there, else the AVX2 ones, else no quicksort (the radix plans)."""
    monkeypatch.setattr(vecsort, "FORCE", None)
    monkeypatch.setattr(engine, "host_cpu_features", lambda: features)
    assert vecsort.plan() == expected
    assert vecsort.enabled() == (expected is not None)
    # AVX-512: every long row; AVX2: keys alone (pairs: the MSD plan)
    assert sortlib.quicksorts(pairs=True) == (expected == "avx512")
    assert sortlib.quicksorts(pairs=False) == (expected is not None)
    assert vecsort.base_size(False) == {"avx512": vecsort.BASE_MAX,
                                        "avx2": vecsort.AVX2_BASE_MAX}.get(expected, 64)


def test_forced_plan_is_part_of_the_cache_key(monkeypatch):
    """A forced plan never loads the machine code of another plan from the disk cache."""
    fn = ad.jit(np.sort).ir(np.ones(300))
    keys = set()
    for force in (None, "off", "avx2", "avx512"):
        monkeypatch.setattr(vecsort, "FORCE", force)
        keys.add(cache.key(fn))
    assert len(keys) == 4


def _rows(n, dtype, r):
    """Rows that stress the partition: random, few distinct values, sorted, reversed, all
    equal, zeros of both signs with NaNs and infinities, and a pivot-killer-like sawtooth."""
    x = r.standard_normal(n)
    special = x.copy()
    special[::7] = np.nan
    special[1::7] = -np.nan
    special[::5] = -0.0
    special[2::5] = 0.0
    special[3::11] = -np.inf
    special[4::13] = np.inf
    rows = [x, np.round(x * 2), np.sort(x), np.sort(x)[::-1], np.full(n, 0.5), special,
            np.arange(n) % 17 - 8.0]
    if dtype == np.int64:
        extremes = r.choice(np.array([-2 ** 63, 2 ** 63 - 1, 0, -1, 1]), n)
        ints = np.stack([np.round(v * 1000) for v in rows[:5]] + [rows[6]]).astype(dtype)
        return np.vstack([ints, extremes])
    return np.stack(rows).astype(dtype)


def _bits(a):
    return a.view(np.uint8)


# 3001: a few levels of partitions, leaves of every network size; 130 (slow): one partition
LENGTHS = [3001, pytest.param(130, marks=pytest.mark.slow)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
@pytest.mark.parametrize("n", LENGTHS)
def test_sort_values_bitwise(plan, dtype, n):
    x = _rows(n, dtype, np.random.default_rng(n))
    got = ad.jit(lambda a: np.sort(a, axis=1))(x)
    np.testing.assert_array_equal(_bits(got), _bits(np.sort(x, axis=1, kind="stable")))


@pytest.mark.parametrize("n", LENGTHS)
def test_argsort_pairs_stable(plan, n):
    """(key, index) pairs (float64, int64): the permutation is numpy's stable one, ties in
    index order (the AVX-512 quicksort tracks which tasks hold their items in reverse order;
    AVX2 targets sort pairs by the MSD plan)."""
    r = np.random.default_rng(n + 1)
    for dtype in (np.float64, np.int64):
        x = _rows(n, dtype, r)
        got = ad.jit(lambda a: np.argsort(a, axis=1))(x)
        np.testing.assert_array_equal(got, np.argsort(x, axis=1, kind="stable"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sort_gradient_permutation(plan, dtype):
    """The gradient reads the permutation alone: float32 rows sort composite keys (key << 32 |
    index) by every plan, float64 rows (key, index) pairs; the cotangent goes back along the
    stable permutation."""
    r = np.random.default_rng(3)
    x = _rows(2000 if dtype == np.float32 else 1000, dtype, r)
    w = r.standard_normal(x.shape).astype(dtype)
    g = ad.grad(lambda a: np.sum(np.sort(a, axis=1) * w))(x)
    perm = np.argsort(x, axis=1, kind="stable")
    np.testing.assert_array_equal(g, np.take_along_axis(w, np.argsort(perm, axis=1), axis=1))


def test_quicksort_depth_fallback(quick, monkeypatch):
    """Past the depth limit a task is radix-sorted in place (limit 0: every task longer than
    the networks' base size), then copied to the output buffer when it is not already there.
    (AVX2 targets sort pairs by the MSD plan: the argsorts check that choice there.)"""
    monkeypatch.setattr(vecsort, "DEPTH_FACTOR", 0)
    x = _rows(1000, np.float64, np.random.default_rng(5))
    got = ad.jit(lambda a: np.sort(a, axis=1))(x)
    np.testing.assert_array_equal(_bits(got), _bits(np.sort(x, axis=1, kind="stable")))
    got = ad.jit(lambda a: np.argsort(a, axis=1))(x)
    np.testing.assert_array_equal(got, np.argsort(x, axis=1, kind="stable"))
    x32 = x.astype(np.float32)   # 32-bit keys alone: a heapsort
    got = ad.jit(lambda a: np.sort(a, axis=1))(x32)
    np.testing.assert_array_equal(_bits(got), _bits(np.sort(x32, axis=1, kind="stable")))
    # after a level or two: tasks in either buffer, pairs in either index order
    monkeypatch.setattr(vecsort, "DEPTH_FACTOR", 0.25)
    y = np.vstack([x[:, :900], np.round(x[:, 100:1000] * 3)])
    got = ad.jit(lambda a: np.sort(a, axis=1))(y)
    np.testing.assert_array_equal(_bits(got), _bits(np.sort(y, axis=1, kind="stable")))
    got = ad.jit(lambda a: np.argsort(a, axis=1))(y)
    np.testing.assert_array_equal(got, np.argsort(y, axis=1, kind="stable"))
    y32 = y.astype(np.float32)
    got = ad.jit(lambda a: np.sort(a, axis=1))(y32)
    np.testing.assert_array_equal(_bits(got), _bits(np.sort(y32, axis=1, kind="stable")))
