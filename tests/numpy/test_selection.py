"""Selection (primitives/selection.py, backend/selectlib.py: radix select) and what uses it:
median, quantile, percentile, their nan forms, partition, argpartition.

The references: the primitives' indices equal the stable argsort's at the requested ranks
(what the sort-based implementation gave); values equal numpy's; gradients equal central
finite differences and the sort-based rule (the weight of each output on the elements the
stable sort puts at its ranks), in compiled, interpret and tape mode."""
import warnings

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.primitives import bind
from autodiff_jit.primitives.selection import argpartition_p, argselect_p
from autodiff_jit.backend.selectlib import MAX_BITS, MIN_BITS, SAMPLE_MIN, first_bits, \
    sample_size
from table import ALL_MODES, check_case

_r = np.random.default_rng(41)


def _stable_at(x, ranks, axis):
    return np.take_along_axis(np.argsort(x, axis=axis, kind="stable"), ranks, axis)


def _rows(kind, shape):
    """Rows of one kind: ties, signed zeros, NaNs, infinities, wide exponents, ints."""
    if kind == "normal":
        return _r.standard_normal(shape)
    if kind == "ties":  # few distinct values, zeros of both signs among them
        return _r.integers(-1, 2, shape) * np.where(_r.random(shape) < 0.5, -1.0, 1.0) * 0.5
    if kind == "nan":
        return np.where(_r.random(shape) < 0.2, np.nan, _r.standard_normal(shape))
    if kind == "inf":
        return _r.choice([-np.inf, np.inf, -0.0, 0.0, 1.0, np.nan], shape)
    if kind == "exponents":  # one value per binade: every digit window splits few keys
        return 2.0 ** _r.integers(-300, 300, shape) * _r.choice([-1.0, 1.0], shape)
    if kind == "equal":
        return np.full(shape, 2.5)
    if kind == "int":
        return _r.integers(-(1 << 62), 1 << 62, shape)
    if kind == "f32":
        return _r.standard_normal(shape).astype(np.float32)
    raise ValueError(kind)


KINDS = ("normal", "ties", "nan", "inf", "exponents", "equal", "int", "f32")
# boundary lengths: 1, 2, around first_bits' steps and the widest round-0 digit
LENGTHS = (1, 2, 3, 16, 17, 33, 200,
           pytest.param((1 << (MAX_BITS + 1)) + 3, marks=pytest.mark.slow))


def test_digit_widths():
    assert first_bits(1) == first_bits(16) == MIN_BITS
    assert first_bits(100) == 6 and first_bits(1 << 20) == MAX_BITS


@pytest.mark.parametrize("n", LENGTHS)
def test_argselect_kernel_matches_the_stable_sort(n):
    rows = 3 if n < 1000 else 1
    f = ad.jit(lambda a, r: bind(argselect_p, a, r, axis=1))
    for kind in KINDS:
        x = _rows(kind, (rows, n))
        ranks = np.concatenate([_r.integers(0, n, (rows, 4)), np.zeros((rows, 1), np.int64),
                                np.full((rows, 1), n - 1)], 1)
        want = _stable_at(x, ranks, 1)
        np.testing.assert_array_equal(f(x.astype(np.float64) if kind == "f32" else x, ranks),
                                      want, err_msg=kind)
        np.testing.assert_array_equal(bind(argselect_p, x, ranks, axis=1), want, err_msg=kind)
        if kind == "f32":  # float32 keys are read as float32 by the kernel
            np.testing.assert_array_equal(f(x, ranks), want)


def test_argselect_kernel_strided_axis():
    x = _rows("ties", (5, 40, 3))
    ranks = _r.integers(0, 40, (5, 7, 3))
    got = ad.jit(lambda a, r: bind(argselect_p, a, r, axis=1))(x, ranks)
    np.testing.assert_array_equal(got, _stable_at(x, ranks, 1))


def _partition_reference(x, kth):
    """The argpartition order: pivots at kth, other ranks' elements in index order between."""
    order = np.argsort(x, kind="stable")
    rank = np.empty(len(x), np.int64)
    rank[order] = np.arange(len(x))
    seg = np.searchsorted(kth, rank)
    key = np.where(np.isin(rank, kth), 2 * seg + 1, 2 * seg)
    return np.argsort(key, kind="stable")


def _partitioner(kth):
    return ad.jit(lambda a: bind(argpartition_p, a, axis=1, kth=kth))


@pytest.mark.parametrize("n", (1, 17, 200))
def test_argpartition_kernel(n):
    kths = {(0,), (n - 1,), tuple(sorted({int(k) for k in _r.integers(0, n, 4)}))}
    fs = {kth: _partitioner(kth) for kth in kths}
    for kind in KINDS:
        x = _rows(kind, (3, n))
        for kth, f in fs.items():
            want = np.stack([_partition_reference(row, np.array(kth)) for row in x])
            np.testing.assert_array_equal(f(x), want, err_msg=f"{kind} {kth}")
            np.testing.assert_array_equal(bind(argpartition_p, x, axis=1, kth=kth), want)


def test_long_rows_sampled_bracket_and_its_fallback():
    """Rows from SAMPLE_MIN: a bracket from a strided sample, then radix rounds; a sample
    that misleads (the elements it sees are the row's largest) falls back to the radix path."""
    n = SAMPLE_MIN * 2 + 5
    step = n // sample_size(n)
    rows = [_rows(kind, n) for kind in ("normal", "ties", "nan", "inf", "int", "f32")]
    trap = _r.standard_normal(n)
    trap[::step] = 1e9 + np.arange(len(trap[::step]))
    rows.append(trap)
    ranks = np.array([[0, 1, n // 3, n // 2, n // 2 + 1, n - 2, n - 1]])
    select = ad.jit(lambda a, r: bind(argselect_p, a, r, axis=1))
    parts = {kth: _partitioner(kth) for kth in ((n // 2,), (n // 4, n // 2 + 1))}
    for x in rows:
        np.testing.assert_array_equal(select(x[None], ranks), _stable_at(x[None], ranks, 1))
        if x.dtype == np.float64:
            for kth, part in parts.items():
                np.testing.assert_array_equal(part(x[None])[0],
                                              _partition_reference(x, np.array(kth)))


def test_argpartition_refuses_bad_kth():
    with pytest.raises(ValueError, match="kth"):
        ad.jit(lambda a: bind(argpartition_p, a, axis=0, kth=(2, 1)))(np.zeros(3))
    with pytest.raises(TypeError, match="ranks must be int64"):
        ad.jit(lambda a: bind(argselect_p, a, np.zeros((2,)), axis=0))(np.zeros(3))


# --- numpy functions ---------------------------------------------------------------------------

T = _rows("ties", (4, 9))
S = np.array([[3.0, np.nan, -0.0, 0.0, -np.inf, 1.0, np.inf, 1.0, -2.0],
              [np.inf, np.inf, 1.0, -np.inf, 0.0, 2.0, -0.0, 5.0, 5.0],
              [np.nan] * 9, [2.0, 1.0, 1.0, 1.0, -1.0, 1.0, 0.5, 1.0, 3.0]])
I = _r.integers(-20, 20, (4, 9))
F32 = _r.standard_normal((4, 9)).astype(np.float32)
VALUE_FUNCS = {
    "median": np.median, "median_rows": lambda a: np.median(a, axis=1),
    "median_cols_keep": lambda a: np.median(a, axis=0, keepdims=True),
    "median_axes": lambda a: np.median(a.reshape(2, 2, 9), axis=(0, 2)),
    "median_even": lambda a: np.median(a[:, 1:], axis=1),
    "quantile": lambda a: np.quantile(a, [0.0, 0.1, 0.5, 0.9, 1.0], axis=1),
    "quantile_keep": lambda a: np.quantile(a, [[0.25], [0.75]], axis=0, keepdims=True),
    "percentile_flat": lambda a: np.percentile(a, 37.0),
    "quantile_lower": lambda a: np.quantile(a, [0.3, 0.8], axis=1, method="lower"),
    "quantile_higher": lambda a: np.quantile(a, [0.3, 0.8], axis=1, method="higher"),
    "quantile_nearest": lambda a: np.quantile(a, [0.3, 0.8], axis=1, method="nearest"),
    "quantile_midpoint": lambda a: np.quantile(a, [0.3, 0.8], axis=1, method="midpoint"),
    "nanmedian": lambda a: np.nanmedian(a, axis=1),
    "nanmedian_flat": np.nanmedian,
    "nanquantile": lambda a: np.nanquantile(a, [0.2, 0.5, 1.0], axis=1),
    "nanpercentile_keep": lambda a: np.nanpercentile(a, 60, axis=0, keepdims=True),
}


def _close(got, want, exact, scale, err_msg, eps=None):
    # linear interpolation a + (b - a) t: compiled code may fuse the multiply-add (one
    # rounding less), an error of a few eps times the operands' magnitude `scale`
    if exact:
        np.testing.assert_array_equal(got, want, err_msg=err_msg)
    else:
        eps = np.finfo(want.dtype).eps if eps is None else eps
        np.testing.assert_allclose(got, want, rtol=4 * eps, atol=4 * eps * scale,
                                   equal_nan=True, err_msg=err_msg)


@pytest.mark.parametrize("name", sorted(VALUE_FUNCS))
def test_values_equal_numpy(name):
    f = VALUE_FUNCS[name]
    exact = "quantile" not in name and "percentile" not in name or "lower" in name or \
        "higher" in name or "nearest" in name
    for label, x in (("ties", T), ("special", S), ("int", I), ("float32", F32)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
            want = np.asarray(f(x))
            for mode in ALL_MODES:
                got = np.asarray(ad.jit(f, mode=mode)(x))
                assert got.shape == want.shape and got.dtype == want.dtype, (label, mode)
                finite = np.abs(x[np.isfinite(x)])
                # float32 interpolation: numpy rounds its weights (t, 1 - t) from float64,
                # this code in float32: an ulp apart in every mode
                # (b - a is rounded in float32 even where the result is float64)
                _close(got, want, exact or (mode != "compiled" and label != "float32"),
                       finite.max() if finite.size else 0.0, f"{label} {mode}",
                       np.finfo(np.float32).eps if label == "float32" else None)


def _sorted_rule(f, x, w):
    """The sort-based rule's gradient of sum(f(x) * w): f is linear in the order statistics
    at fixed ranks, and the rule sends each rank's weight to the element the stable sort puts
    there. The weights are finite differences on a proxy without ties: each element replaced
    by its stable rank (NaNs kept), so a step of 1/4 changes no order and is exact."""
    order = np.argsort(x, axis=-1, kind="stable")
    proxy = np.empty_like(x)
    np.put_along_axis(proxy, order, np.broadcast_to(np.arange(x.shape[-1], dtype=float),
                                                    x.shape), -1)
    proxy[np.isnan(x)] = np.nan
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = 0.25
        g[i] = (np.sum(f(proxy + e) * w) - np.sum(f(proxy - e) * w)) / 0.5
    return np.where(np.isnan(x), 0.0, g)


GRAD_FUNCS = {
    "median": lambda a: np.median(a, axis=-1),
    "median_odd": lambda a: np.median(a[:, :7], axis=-1),
    "quantile": lambda a: np.quantile(a, [0.1, 0.5, 0.85], axis=-1),
    "quantile_nearest": lambda a: np.quantile(a, [0.1, 0.5, 0.85], axis=-1, method="nearest"),
    "quantile_midpoint": lambda a: np.quantile(a, [0.1, 0.85], axis=-1, method="midpoint"),
    "nanmedian": lambda a: np.nanmedian(a, axis=-1),
    "nanquantile": lambda a: np.nanquantile(a, [0.3, 0.9], axis=-1),
    "partition": lambda a: np.partition(a, [2, 5], axis=-1)[:, [2, 5]],
}


@pytest.mark.parametrize("name", sorted(GRAD_FUNCS))
def test_gradient_on_ties_is_the_sort_based_rule(name):
    """Ties: finite differences do not exist; the gradient goes where the stable sort's rank
    is, as the sort-based implementation sent it."""
    f = GRAD_FUNCS[name]
    x = _rows("ties", (3, 8))
    if name.startswith("nan"):
        x[0, 3] = x[2, 0] = np.nan
    w = np.cos(np.arange(np.size(f(x)))).reshape(np.shape(f(x))) + 1.5
    want = _sorted_rule(f, x, w)
    for mode in ALL_MODES:
        g = ad.grad(lambda a: np.sum(f(a) * w), mode=mode)(x)
        np.testing.assert_allclose(g, want, rtol=1e-9, atol=1e-9, err_msg=mode)


@pytest.mark.parametrize("name", sorted(GRAD_FUNCS))
def test_gradient_vs_finite_differences(name):
    f = GRAD_FUNCS[name]
    x = _r.permutation(24).reshape(3, 8) * 0.37 - 3.0 + _r.uniform(0, 0.01, (3, 8))
    if name.startswith("nan"):
        x[0, 3] = x[2, 0] = np.nan
    check_case(f, [x], rtol=1e-13)


def test_median_of_a_nan_row_is_nan_with_no_gradient():
    x = np.array([[1.0, np.nan, 3.0], [2.0, 5.0, 4.0]])
    for mode in ALL_MODES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            np.testing.assert_array_equal(ad.jit(lambda a: np.median(a, 1), mode=mode)(x),
                                          [np.nan, 4.0])
        g = ad.grad(lambda a: np.sum(np.median(a, 1)), mode=mode)(x)
        np.testing.assert_array_equal(g, [[0, 0, 0], [0, 0, 1.0]])


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("n", (11, 300))
def test_partition_contract_and_determinism(mode, n):
    """Rows of 11 are sorted (the stable order); a row of 300 is partitioned (our order)."""
    x = _rows("ties", (5, 11)) if n == 11 else _rows("ties", (1, 300))
    for kth in (0, n - 1, -1, [1, 4, 4, 8], (-3, 2)):
        want = np.partition(x, kth, axis=1)
        got = ad.jit(lambda a: np.partition(a, kth, axis=1), mode=mode)(x)
        idx = ad.jit(lambda a: np.argpartition(a, kth, axis=1), mode=mode)(x)
        ks = sorted({k % n for k in np.atleast_1d(kth)})
        np.testing.assert_array_equal(got[:, ks], want[:, ks])  # the kth elements: numpy's
        bounds = [0] + ks + [n]
        for lo, k, hi in zip(bounds, ks, bounds[2:]):  # each kth separates its neighbours
            assert np.all(got[:, lo:k] <= got[:, k:k + 1])
            assert np.all(got[:, k + 1:hi] >= got[:, k:k + 1])
        assert sorted(idx[0]) == list(range(n))
        if mode != "tape":  # (a tape-mode jit runs plain numpy: nothing to differentiate)
            np.testing.assert_array_equal(np.take_along_axis(x, idx, 1), got)
            ref = np.argsort(x, axis=1, kind="stable") if n == 11 else \
                np.stack([_partition_reference(row, np.array(ks)) for row in x])
            np.testing.assert_array_equal(idx, ref)  # deterministic, our order


def test_partition_axes_and_flat():
    x = _rows("normal", (4, 6, 5))
    for axis, kth in ((0, 2), (1, [0, 5]), (None, 60)):
        for mode in ALL_MODES:
            got = ad.jit(lambda a: np.partition(a, kth, axis=axis), mode=mode)(x)
            want = np.partition(x, kth, axis=axis)
            np.testing.assert_array_equal(np.sort(got, axis=axis), np.sort(want, axis=axis))
            np.testing.assert_array_equal(np.take(got, kth, axis=axis if axis is not None else 0),
                                          np.take(want, kth, axis=axis if axis is not None else 0))


def test_partition_refusals():
    f = ad.jit(lambda a: np.partition(a, 5))
    with pytest.raises(ValueError, match="out of bounds"):
        f(np.zeros(4))
    with pytest.raises(ValueError, match="introselect"):
        ad.jit(lambda a: np.partition(a, 1, kind="quicksort"))(np.zeros(4))
    with pytest.raises(NotImplementedError, match="order"):
        ad.jit(lambda a: np.partition(a, 1, order="f"))(np.zeros(4))


def test_median_gradient_long_rows_compiled_equals_interpret():
    x = _rows("ties", (2, 5001))
    x[1] = _r.standard_normal(5001)
    f = lambda a: np.sum(np.quantile(a, [0.25, 0.5, 0.75], axis=1) * np.arange(1.0, 4.0)[:, None])
    np.testing.assert_array_equal(ad.grad(f)(x), ad.grad(f, mode="interpret")(x))


def test_empty_axes():
    for mode in ("compiled", "interpret"):
        with pytest.raises(IndexError, match="empty axis"):
            ad.jit(lambda a: np.quantile(a, 0.5), mode=mode)(np.zeros(0))
        with pytest.raises(ValueError, match="empty"):
            ad.jit(np.median, mode=mode)(np.zeros((2, 0)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            # numpy gives (3,) for the second, dropping q's axis only when the axis is
            # empty; the shape here is the one numpy gives for non-empty rows
            for f, shape in ((np.nanmedian, ()),
                             (lambda a: np.nanquantile(a, [0.2, 0.5], axis=1), (2, 3))):
                got = ad.jit(f, mode=mode)(np.zeros((3, 0)))
                assert np.shape(got) == shape and np.all(np.isnan(got))
