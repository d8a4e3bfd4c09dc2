"""numpy/sorting.py: the argsort primitive (compiled kernel: radix sort of (key, index) pairs) and
sort/argsort/partition/argpartition/lexsort/searchsorted/digitize; value vs numpy and
gradient (through the permutation) vs finite differences, every mode."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import autodiff_jit as ad
from table import ALL_MODES, check_case, check_value

_r = np.random.default_rng(19)
A = _r.permutation(24).reshape(4, 6) * 0.37 - 3.0 + _r.uniform(0, 0.01, (4, 6))  # no ties
V = A[0].copy()
BINS = np.array([-2.0, -0.5, 0.3, 1.1, 2.5])


def _method_sort(a):
    b = a * 1.0
    b.sort(axis=0)
    return b


CASES = {
    "sort": (np.sort, [A]), "sort_axis0": (lambda a: np.sort(a, axis=0), [A]),
    "sort_flat": (lambda a: np.sort(a, axis=None), [A]),
    "sort_desc": (lambda a: -np.sort(-a), [A]),
    "sort_f32": (lambda a: np.sort(a.astype(np.float32)).astype(np.float64), [A]),
    "argsort": (lambda a: np.argsort(a, axis=1), [A]),
    "argsort_gather": (lambda a: a[0][np.argsort(a[1])], [A]),
    "method_argsort": (lambda a: a.argsort(0), [A]),
    "method_sort": (_method_sort, [A]),
    "sort_then_take": (lambda a: np.sort(a)[:, -2:] * 3.0, [A]),
    # a tuple of keys: numpy dispatches lexsort on a tuple's items, not on a list's
    "lexsort": (lambda a: np.lexsort((np.round(a[0]), np.round(a[1]))), [A]),
    "searchsorted": (lambda v: np.searchsorted(BINS, v), [V]),
    "searchsorted_right": (lambda v: np.searchsorted(np.sort(v), BINS, side="right"), [V]),
    "digitize": (lambda v: np.digitize(v, BINS), [V]),
    "digitize_right_decreasing": (lambda v: np.digitize(v, BINS[::-1], right=True), [V]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_sorting(name):
    f, args = CASES[name]
    # float32 finite differences are too coarse: sort_f32 checks values only
    check_case(f, args, modes=ALL_MODES[:2] if name == "method_sort" else ALL_MODES,
               grad=name != "sort_f32")


@pytest.mark.parametrize("mode", ALL_MODES[:2])
def test_sort_special_values_and_ties(mode):
    x = np.array([3.0, np.nan, -0.0, 0.0, -np.inf, 1.0, np.nan, 1.0, np.inf, -2.0])
    got = ad.jit(np.sort, mode=mode)(x)
    np.testing.assert_array_equal(got, np.sort(x))
    # stable order of ties (numpy's kind="stable")
    np.testing.assert_array_equal(ad.jit(np.argsort, mode=mode)(x), np.argsort(x, kind="stable"))
    ints = np.array([5, -3, 2, 5, 0, -3, 9], np.int64)
    np.testing.assert_array_equal(ad.jit(np.argsort, mode=mode)(ints),
                                  np.argsort(ints, kind="stable"))


@pytest.mark.parametrize("mode", ALL_MODES)
def test_partition_contract(mode):
    got = ad.jit(lambda a: np.partition(a, 2, axis=1), mode=mode)(A)
    np.testing.assert_array_equal(got[:, 2], np.partition(A, 2, axis=1)[:, 2])
    assert np.all(got[:, :2] <= got[:, 2:3]) and np.all(got[:, 3:] >= got[:, 2:3])
    idx = ad.jit(lambda a: np.argpartition(a, 3), mode=mode)(V)
    assert V[idx][3] == np.sort(V)[3]


def test_sort_gradient_follows_the_permutation():
    x = np.array([0.3, -1.2, 2.5, 0.9])
    w = np.array([1.0, 2.0, 3.0, 4.0])
    for mode in ALL_MODES:
        g = ad.grad(lambda x: np.sum(np.sort(x) * w), mode=mode)(x)
        np.testing.assert_array_equal(g, w[np.argsort(np.argsort(x))])


def test_argsort_kernel_large_rows():
    x = _r.standard_normal((3, 5000))
    check_value(lambda a: np.sort(a, axis=1), [x], modes=("compiled",))


def _special_row(n, rng):
    """n values drawn from a pool rich in ties, NaNs, signed zeros and infinities."""
    pool = np.array([np.nan, -np.nan, 0.0, -0.0, np.inf, -np.inf, 1.0, -1.0, 5e-324, -5e-324,
                     np.finfo(np.float64).max, -np.finfo(np.float64).max, 2.5, 2.5])
    x = rng.standard_normal(n)
    pick = rng.random(n) < 0.5
    x[pick] = rng.choice(pool, int(pick.sum()))
    return x


# row lengths either side of the kernel's plan boundaries: the network up to NETWORK_ALWAYS,
# then the MSD plan, whose first digit widens (msd_bits) at each power of two (up to 2**16 here);
# INSERTION_MAX, the longest bucket sorted by insertion alone; 1 and 2 for the degenerate rows
def _kernel_lengths():
    from autodiff_jit.backend.sortlib import INSERTION_MAX, MSD_BITS, NETWORK_ALWAYS, msd_bits
    edges = [n for n in range(NETWORK_ALWAYS + 2, 2 ** MSD_BITS + 1)
             if msd_bits(n) != msd_bits(n - 1)]
    lengths = sorted({1, 2, 3, INSERTION_MAX, INSERTION_MAX + 1, NETWORK_ALWAYS,
                      NETWORK_ALWAYS + 1, NETWORK_ALWAYS + 2} | set(edges) | {n - 1 for n in edges})
    # the first and last width change by default, the ones between (same code) opt-in
    return [pytest.param(n, marks=pytest.mark.slow) if edges[0] < n < edges[-1] - 1 else n
            for n in lengths]


KERNEL_LENGTHS = _kernel_lengths()


@pytest.mark.parametrize("n", KERNEL_LENGTHS)
def test_argsort_kernel_matches_numpy_stable(n):
    r = np.random.default_rng(n)
    cases = {
        "float64": _special_row(n, r),
        "float32": _special_row(n, r).clip(-1e30, 1e30).astype(np.float32),
        "float64_negzero_ties": r.choice([0.0, -0.0, 1.0], n),
        "int64": r.integers(-2 ** 63, 2 ** 63 - 1, n, dtype=np.int64, endpoint=True),
        "int64_ties": r.integers(-3, 3, n),
        "int64_extremes": r.choice(np.array([-2 ** 63, 2 ** 63 - 1, 0, -1, 1]), n),
        # MSD plan: two big buckets (bit 40), each scattered again by bits 20-21 into four
        # clusters; a cluster longer than INSERTION_MAX gets one (odd: copied back from the
        # scratch half) or two LSD passes
        "int64_one_pass": r.integers(0, 256, n) + (r.integers(0, 4, n) << 20)
        + (r.integers(0, 2, n) << 40),
        "int64_two_passes": r.integers(0, 65536, n) + (r.integers(0, 4, n) << 20)
        + (r.integers(0, 2, n) << 40),
        "sorted": np.arange(n, dtype=np.float64),
        "reversed": -np.arange(n, dtype=np.float64),
    }
    f = ad.jit(np.argsort)
    g = ad.jit(np.sort)
    for name, x in cases.items():
        np.testing.assert_array_equal(f(x), np.argsort(x, kind="stable"), err_msg=name)
        if x.dtype.kind == "f":  # the values: a gather through the same kernel, any dtype
            np.testing.assert_array_equal(g(x), np.sort(x), err_msg=name)


def test_argsort_kernel_narrow_dtypes():
    """int32 and bool keys are widened to int64 before the kernel (one plan per length)."""
    r = np.random.default_rng(5)
    for x in (r.integers(-1000, 1000, 300).astype(np.int32), r.random(300) < 0.5,
              r.integers(-5, 5, 40000).astype(np.int32)):
        np.testing.assert_array_equal(ad.jit(np.argsort)(x), np.argsort(x, kind="stable"))
        np.testing.assert_array_equal(ad.jit(np.sort)(x), np.sort(x))


@pytest.mark.parametrize("axis", [0, 1, 2, None])
def test_argsort_kernel_axes(axis):
    x = _special_row(3 * 40 * 5, np.random.default_rng(7)).reshape(3, 40, 5)
    x[1, :, 2] = 7.0  # a row of ties
    np.testing.assert_array_equal(ad.jit(lambda a: np.argsort(a, axis=axis))(x),
                                  np.argsort(x, axis=axis, kind="stable"))
    np.testing.assert_array_equal(ad.jit(lambda a: np.sort(a, axis=axis))(x),
                                  np.sort(x, axis=axis))


@pytest.mark.parametrize("mode", ALL_MODES)
def test_sort_empty_and_single(mode):
    for shape, axis in [((0,), -1), ((3, 0), -1), ((0, 4), -1), ((0, 4), 0), ((1,), -1),
                        ((4, 1), 1), ((1, 4), 0)]:
        x = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)[::-1] * 1.5
        got = ad.jit(lambda a: np.sort(a, axis=axis), mode=mode)(x)
        np.testing.assert_array_equal(got, np.sort(x, axis=axis))
        got = ad.jit(lambda a: np.argsort(a, axis=axis), mode=mode)(x)
        np.testing.assert_array_equal(got, np.argsort(x, axis=axis, kind="stable"))


def test_sort_gradient_long_rows_matches_finite_differences():
    """The radix plan (rows > 32) and the insertion plan carry the gradient alike."""
    x = np.random.default_rng(3).standard_normal((2, 300))
    w = np.random.default_rng(4).standard_normal((2, 300))
    for mode in ALL_MODES:
        g = ad.grad(lambda x: np.sum(np.sort(x, axis=1) * w), mode=mode)(x)
        np.testing.assert_array_equal(
            g, np.take_along_axis(w, np.argsort(np.argsort(x, axis=1), axis=1), axis=1))
    check_case(lambda a: np.sort(a, axis=1)[:, ::7] ** 2, [x], modes=("compiled",))


def _special_rows(rows, n, rng, dtype):
    x = _special_row(rows * n, rng).reshape(rows, n)
    if dtype == np.float32:
        return x.clip(-1e30, 1e30).astype(np.float32)
    if dtype == np.int64:
        return rng.choice(np.array([-2 ** 63, 2 ** 63 - 1, 0, -1, 1, 7, 7, -7]), (rows, n))
    return x


def _check_rows(x, axis=-1):
    np.testing.assert_array_equal(ad.jit(lambda a: np.argsort(a, axis=axis))(x),
                                  np.argsort(x, axis=axis, kind="stable"), err_msg=str(x.shape))
    np.testing.assert_array_equal(ad.jit(lambda a: np.sort(a, axis=axis))(x),
                                  np.sort(x, axis=axis), err_msg=str(x.shape))


# the network plan sorts LANES rows per vector, each padded to a power of two: row counts
# below, at and past a multiple of LANES (the last chunk repeats its last row; fewer than LANES
# rows longer than NETWORK_ALWAYS take the radix plans), lengths at and past powers of two and
# across NETWORK_ALWAYS and NETWORK_MAX
def _batched_lengths(slow):
    from autodiff_jit.backend.sortlib import NETWORK_ALWAYS, NETWORK_MAX
    quick = {0, 1, 3, 5, 17, 100, NETWORK_ALWAYS, NETWORK_ALWAYS + 1, NETWORK_MAX,
             NETWORK_MAX + 1}
    more = {2, 4, 7, 8, 9, 16, 31, 33, 64, 65, 200, 256, 257}
    return sorted(more - quick) if slow else sorted(quick)


def _check_batched_rows(n):
    from autodiff_jit.backend.sortlib import LANES
    r = np.random.default_rng(100 + n)
    _check_rows(_special_rows(2 * LANES + 3, n, r, np.float64))
    for rows, dtype in [(LANES - 1, np.float32), (LANES, np.int64)]:
        x = _special_rows(rows, n, r, dtype)
        np.testing.assert_array_equal(ad.jit(lambda a: np.argsort(a, axis=-1))(x),
                                      np.argsort(x, axis=-1, kind="stable"), err_msg=str(x.shape))
    # all equal, sorted, reversed rows; the sorted axis first (strided rows)
    x = np.stack([np.full(n, 2.5), np.arange(n, dtype=float), -np.arange(n, dtype=float)] * 3)
    np.testing.assert_array_equal(ad.jit(lambda a: np.argsort(a, axis=0))(x.T),
                                  np.argsort(x.T, axis=0, kind="stable"))


@pytest.mark.parametrize("n", _batched_lengths(slow=False))
def test_argsort_kernel_batched_rows(n):
    _check_batched_rows(n)


@pytest.mark.slow
@pytest.mark.parametrize("n", _batched_lengths(slow=True))
def test_argsort_kernel_batched_rows_more_lengths(n):
    _check_batched_rows(n)


@pytest.mark.slow
def test_argsort_kernel_every_row_length():
    r = np.random.default_rng(1)
    for n in range(0, 201):
        _check_rows(_special_rows(11, n, r, np.float64))


@given(rows=st.integers(1, 20), n=st.integers(0, 150), seed=st.integers(0, 2 ** 32 - 1),
       dtype=st.sampled_from([np.float64, np.float32, np.int64]), lead=st.booleans())
@settings(max_examples=10, deadline=None)
def test_argsort_kernel_property(rows, n, seed, dtype, lead):
    """Random batches of rows rich in NaN, +-inf, -0.0 and ties vs numpy's stable order."""
    x = _special_rows(rows, n, np.random.default_rng(seed), dtype)
    _check_rows(x.reshape((2, rows, n // 2)) if lead and n % 2 == 0 else x)


def test_sort_gradient_batched_rows_matches_finite_differences():
    """The network plan (rows sorted several per vector) carries the gradient like the others."""
    x = np.random.default_rng(8).standard_normal((11, 20))
    check_case(lambda a: np.sort(a, axis=1)[:, ::3] ** 2, [x], modes=("compiled",))
    check_case(lambda a: np.sort(a, axis=0)[::2] * a[:6], [x], modes=("compiled",))


@pytest.mark.parametrize("axis", [0, 1])
def test_sort_primitive_rules(axis):
    """sort's VJP and JVP rules (two results: values, permutation) against central finite
    differences of the values (distinct entries: sort is smooth there)."""
    from autodiff_jit.primitives.sorting import sort_p
    r = np.random.default_rng(11 + axis)
    x = r.standard_normal((4, 6))
    g, t = r.standard_normal(x.shape), r.standard_normal(x.shape)
    outs = sort_p.impl(x, axis=axis)
    np.testing.assert_array_equal(outs[0], np.sort(x, axis=axis))
    np.testing.assert_array_equal(outs[1], np.argsort(x, axis=axis, kind="stable"))
    eps = 1e-6

    def f(v):
        return sort_p.impl(v, axis=axis)[0]
    fd_t = (f(x + eps * t) - f(x - eps * t)) / (2 * eps)
    jvp = sort_p.jvp([t], outs, x, axis=axis)
    assert jvp[1] is None
    np.testing.assert_allclose(jvp[0], fd_t, rtol=1e-7, atol=1e-9)
    ct, = sort_p.vjp([g, None], outs, x, axis=axis)
    fd = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        fd[i] = (np.sum(g * f(x + e)) - np.sum(g * f(x - e))) / (2 * eps)
    np.testing.assert_allclose(ct, fd, rtol=1e-7, atol=1e-9)
    assert sort_p.vjp([None, None], outs, x, axis=axis) == (None,)


def _bits(a):
    return np.asarray(a).view(np.int64 if a.dtype.itemsize == 8 else np.int32)


def _stable_sorted(x, axis):
    return np.take_along_axis(x, np.argsort(x, axis=axis, kind="stable"), axis)


def _sort_path_rows(n, r):
    """Rows for the sort kernel's plans: ties, signed zeros, NaNs of both signs, infinities,
    all-equal, sorted, reversed, few distinct values."""
    x = _special_row(n, r)
    x[r.random(n) < 0.1] = -np.nan
    return {"special": x, "all_equal": np.full(n, -0.0), "sorted": np.arange(n) * 0.5,
            "reversed": -np.arange(n) * 0.5, "duplicates": r.integers(-4, 4, n) * 0.25,
            "float32": x.clip(-1e30, 1e30).astype(np.float32),
            "float32_duplicates": r.integers(-4, 4, n).astype(np.float32),
            "int64": r.choice(np.array([-2 ** 63, 2 ** 63 - 1, 0, -1, 1, 7, 7, -7]), n)}


# lengths across the network / MSD boundary and the widest first digit; rows of length n along
# the last axis (3 rows: fewer than LANES) and along axis 0 (of a (n, 9) array: LANES rows or
# more, the network up to NETWORK_MAX)
@pytest.mark.parametrize("n", [1, 129, 1500, 2 ** 16 + 3] + [
    pytest.param(n, marks=pytest.mark.slow) for n in (2, 100, 128)])
def test_sort_kernel_values_and_permutation_bitwise(n):
    """np.sort compiled: forward alone (the permutation unread: keys-only sort, zeros and NaNs
    rewritten) and under jvp (the permutation read: (key, index) pairs, or float32 composites)
    give numpy's stable order bit for bit (signs of zeros, NaN payloads), and the tangent
    moves along the stable permutation."""
    r = np.random.default_rng(n)
    sorts = {1: lambda a: np.sort(a, axis=1), 0: lambda a: np.sort(a, axis=0)}
    jitted = {axis: ad.jit(f) for axis, f in sorts.items()}  # one compile per dtype and shape
    for name, row in _sort_path_rows(n, r).items():
        x3 = np.stack([row, row[::-1], np.roll(row, 1)])
        for x, axis in ((x3, 1), (np.repeat(row[:, None], 9, axis=1), 0)):
            want = _stable_sorted(x, axis)
            got = jitted[axis](x)
            assert got.dtype == x.dtype
            np.testing.assert_array_equal(_bits(got), _bits(want), err_msg=f"{name} {axis}")
            if x.dtype.kind != "f":
                continue
            t = r.standard_normal(x.shape).astype(x.dtype)
            vals, tan = ad.jvp(sorts[axis], (x,), (t,))
            np.testing.assert_array_equal(_bits(vals), _bits(want), err_msg=f"jvp {name}")
            np.testing.assert_array_equal(
                tan, np.take_along_axis(t, np.argsort(x, axis=axis, kind="stable"), axis),
                err_msg=f"jvp tangent {name} {axis}")


@pytest.mark.parametrize("g", [8, 16])
def test_network_passes_sort(g):
    """The network plan's passes, simulated: every group (r ^ s for s in the span, r with zeros
    at the pivot bits) is a distinct set closed under its pass's masks, the groups cover every
    position once, and running the compare-exchanges sorts (0/1 inputs and random ones)."""
    from autodiff_jit.backend.sortlib import network_passes
    r = np.random.default_rng(0)
    for size in [2, 4, 8, 16, 32, 128, 1024]:
        passes = network_passes(size, g)
        arrays = [r.integers(0, 2, size) for _ in range(20)] + \
            [r.permutation(size) for _ in range(20)]
        for masks, span, pivots in passes:
            assert len(span) <= g
            reps = [v for v in range(size) if not any(v >> p & 1 for p in pivots)]
            groups = [[rep ^ x for x in span] for rep in reps]
            assert sorted(sum(groups, [])) == list(range(size))
            for rep, grp in zip(reps, groups):
                for m in masks:
                    assert {p ^ m for p in grp} == set(grp)
                    # the kernel's static rule for the lower position of a pair
                    top = 1 << (m.bit_length() - 1)
                    assert all((p < p ^ m) == (not (p ^ rep) & top) for p in grp)
            for a in arrays:
                for m in masks:
                    for p in range(size):
                        if p < p ^ m:
                            a[p], a[p ^ m] = min(a[p], a[p ^ m]), max(a[p], a[p ^ m])
        for a in arrays:
            assert np.all(np.diff(a) >= 0), size


def _network_plan_rows(rows, n, r):
    """Rows for the network plan: specials (ties, signed zeros, NaNs of both signs); keys a
    few ulps apart in any order, alone (the composites keep every bit that varies) and with a
    far value (then not: the exact re-sort); int64s a few apart; float32s with ties."""
    x = _special_rows(rows, n, r, np.float64)
    x[r.random(x.shape) < 0.1] = -np.nan
    near = 1.0 + r.integers(0, 300, (rows, n)) * 2.0 ** -52
    near[::2] *= -1.0
    spread = near.copy()     # and one far value: the composites keep only the high bits
    spread[:, r.integers(0, n)] = 1e300
    return {"special": x, "near": near, "spread": spread,
            "int64_near": r.integers(0, 300, (rows, n)) + 10 ** 12,
            "int64_small": np.stack([r.permutation(n) for _ in range(rows)]) % 50 - 25,
            "int64": _special_rows(rows, n, r, np.int64),
            "float32": _special_rows(rows, n, r, np.float32)}


# the network plan (rows up to NETWORK_ALWAYS), LANES rows at a time (chunks of LANES and a
# partial last one): keys alone for the values (zeros and NaNs rewritten), composites of key
# and index for the permutation (re-sorted where neighbours share their high bits)
@pytest.mark.parametrize("n", [1, 2, 3, 7, 16, 33, 100, 127, 128, 129, 300])
def test_network_rows_bitwise(n, monkeypatch):
    from autodiff_jit.backend import vecsort
    from autodiff_jit.backend.sortlib import LANES, NETWORK_ALWAYS
    if n > NETWORK_ALWAYS:
        # longer rows take the network where there is no quicksort (then its exact re-sort
        # can run out of shifts: the MSD fallback, on the rows "spread")
        monkeypatch.setattr(vecsort, "FORCE", "off")
    r = np.random.default_rng(7 + n)
    sort, argsort = ad.jit(lambda a: np.sort(a, axis=1)), ad.jit(lambda a: np.argsort(a, axis=1))
    for name, x in _network_plan_rows(2 * LANES + 3, n, r).items():
        want = _stable_sorted(x, 1)
        np.testing.assert_array_equal(_bits(sort(x)), _bits(want), err_msg=name)
        np.testing.assert_array_equal(argsort(x), np.argsort(x, axis=1, kind="stable"),
                                      err_msg=name)
        if x.dtype.kind != "f":
            continue
        t = r.standard_normal(x.shape).astype(x.dtype)
        vals, tan = ad.jvp(lambda a: np.sort(a, axis=1), (x,), (t,))
        np.testing.assert_array_equal(_bits(vals), _bits(want), err_msg=name)
        np.testing.assert_array_equal(
            tan, np.take_along_axis(t, np.argsort(x, axis=1, kind="stable"), 1), err_msg=name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sort_gradient_msd_plans(dtype):
    """The gradient through the MSD plan's permutation ((key, index) pairs for float64,
    composites for float32): exactly w moved back along the stable permutation, ties and
    NaNs included; float64 also against finite differences."""
    r = np.random.default_rng(8)
    x = _special_row(2 * 3000, r).reshape(2, 3000).clip(-1e30, 1e30).astype(dtype)
    w = r.standard_normal(x.shape).astype(dtype)
    g = ad.grad(lambda a: np.sum(np.sort(a, axis=1) * w))(x)
    np.testing.assert_array_equal(g, np.take_along_axis(
        w, np.argsort(np.argsort(x, axis=1, kind="stable"), axis=1, kind="stable"), axis=1))
    if dtype == np.float64:
        y = r.standard_normal((2, 200))
        check_case(lambda a: np.sort(a, axis=1)[:, ::9] ** 2, [y], modes=("compiled",))
