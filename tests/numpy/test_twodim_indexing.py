"""numpy/twodim.py and the index functions of numpy/indexing.py: value vs numpy and gradient vs
finite differences, every mode; x[traced_index] = v."""
import numpy as np
import pytest

import autodiff_jit as ad
from table import ALL_MODES, check_case

_r = np.random.default_rng(5)
A = _r.standard_normal((4, 4))
R = _r.standard_normal((3, 5))
V = _r.standard_normal(5)
IDX = np.array([[2, 0, 1, 4], [0, 0, 3, 1], [4, 2, 2, 0]])


def _fill_diag(a):
    a = a * 1.0
    np.fill_diagonal(a, 3.0)
    return a


def _fill_diag_traced(a, v):
    a = a * 1.0
    np.fill_diagonal(a, v[:4])
    return a


def _put(a, v):
    a = a * 1.0
    np.put_along_axis(a, np.array([[1], [3], [0]]), v[:3, None], axis=1)
    return a


PAD_MODES = ["constant", "edge", "reflect", "symmetric", "wrap"]

CASES = {
    "diag_1d": (lambda v: np.diag(v, 1), [V]), "diag_2d": (lambda a: np.diag(a, -1), [A]),
    "diagflat": (lambda a: np.diagflat(a[:2, :2]), [A]),
    "diagonal": (lambda a: np.diagonal(a, 1), [R]), "trace": (lambda a: np.trace(a, -1), [R]),
    "tril": (lambda a: np.tril(a, -1), [R]), "triu": (lambda a: np.triu(a, 1), [R]),
    "tril_1d": (lambda v: np.tril(v), [V]), "triu_1d": (lambda v: np.triu(v, 1), [V]),
    "vander": (lambda v: np.vander(v, 4), [V]), "vander_inc": (lambda v: np.vander(v, increasing=True), [V]),
    "fill_diagonal": (_fill_diag, [A]), "fill_diagonal_traced": (_fill_diag_traced, [A, V]),
    "take_along_axis": (lambda r: np.take_along_axis(r, IDX[:, :2], axis=1), [R]),
    "take_along_axis_traced": (lambda r: np.take_along_axis(r, np.argsort(-IDX[:, :2], 1) + (r[:, :2] > 99), 1), [R]),
    "put_along_axis": (_put, [R, V]),
    "select": (lambda v: np.select([v < -0.5, v > 0.5], [v ** 2, np.sin(v)], 7.0), [V]),
    "choose": (lambda r: np.choose(IDX[:, :3] % 3, [r[:, :3], 2 * r[:, 1:4], r[:, 2:] ** 2]), [R]),
    "compress": (lambda r: np.compress([True, False, True], r, axis=0), [R]),
    "extract": (lambda r: np.extract(IDX[:, :5 - 1] > 1, r[:, :4]), [R]),
    "piecewise": (lambda v: np.piecewise(v, [v < 0, v > 1], [lambda x: x ** 2, 5.0, lambda x: np.cos(x)]), [V]),
}
for _m in PAD_MODES:
    CASES[f"pad_{_m}"] = (lambda r, m=_m: np.pad(r, ((1, 2), (2, 1)), mode=m), [R])
    # widths beyond the axis length (numpy reflects/wraps repeatedly: many runs), one axis
    # left alone, 3-D and 1-D inputs
    CASES[f"pad_{_m}_wide"] = (lambda r, m=_m: np.pad(r, ((7, 9), (0, 0)), mode=m), [R])
    CASES[f"pad_{_m}_3d"] = (lambda a, m=_m: np.pad(a.reshape(2, 2, 4), ((1, 0), (2, 2), (0, 3)), mode=m), [A])
    CASES[f"pad_{_m}_1d"] = (lambda v, m=_m: np.pad(v, (3, 1), mode=m), [V])
CASES["pad_constant_value"] = (lambda r: np.pad(r, 2, constant_values=1.5), [R])
CASES["pad_traced_value"] = (lambda r: np.pad(r, 1, constant_values=r[0, 0]), [R])


@pytest.mark.parametrize("name", sorted(CASES))
def test_twodim_indexing(name):
    f, args = CASES[name]
    # in-place writes into a Tensor that needs a gradient are refused in tape mode
    check_case(f, args, modes=ALL_MODES[:2] if name in IN_PLACE else ALL_MODES)


IN_PLACE = {"fill_diagonal", "fill_diagonal_traced", "put_along_axis"}


def test_unsupported_pad_mode_is_refused():
    with pytest.raises(NotImplementedError, match="linear_ramp"):
        ad.jit(lambda r: np.pad(r, 1, mode="linear_ramp"))(R)


@pytest.mark.parametrize("mode", ALL_MODES[:2])
def test_setitem_traced_index(mode):
    def f(x, i):
        y = np.zeros((3, 4))
        y = y + x                   # a traced array
        y[i] = x[0] * 2.0           # a row at a traced position
        y[1, i] = 9.0               # one element
        return y

    x = _r.standard_normal((3, 4))
    for i in (0, 2, -1):
        expected = x.copy()
        expected[i] = x[0] * 2.0
        expected[1, i] = 9.0
        got = ad.jit(f, mode=mode)(x, np.int64(i))
        np.testing.assert_array_equal(got, expected)
        g = ad.grad(lambda x: np.sum(f(x, np.int64(i)) ** 2), mode=mode)(x)
        from helpers import numerical_grad
        np.testing.assert_allclose(g, numerical_grad(lambda x: np.sum(f(x, np.int64(i)) ** 2),
                                                     [x], 0), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_pad_dtypes_and_special_values(mode, pad_mode):
    x = np.array([[np.nan, -0.0, np.inf], [1.5, -np.inf, 0.0]])
    for a in (x, x.astype(np.float32), np.arange(6, dtype=np.int64).reshape(2, 3),
              np.arange(6, dtype=np.int32).reshape(2, 3) % 2 == 0):
        f = lambda a: np.pad(a, ((2, 1), (4, 0)), mode=pad_mode)  # noqa: E731
        got = ad.jit(f, mode=mode)(a)
        want = f(a)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_pad_gradient_sums_and_zero_signs(pad_mode):
    """The gradient adds every copy of an element (the interior stored, the edges added):
    as interpret mode's sums, and +0.0 where every copy's cotangent is -0.0, in every mode."""
    x = _r.standard_normal((6, 5))
    for w_of in (lambda s: np.cos(np.arange(np.prod(s))).reshape(s), lambda s: np.full(s, -0.0)):
        w = w_of(np.pad(x, ((3, 2), (0, 4)), mode=pad_mode).shape)
        f = lambda a: np.sum(np.pad(a, ((3, 2), (0, 4)), mode=pad_mode) * w)  # noqa: E731
        want = ad.grad(f, mode="interpret")(x)
        for mode in ALL_MODES:
            got = ad.grad(f, mode=mode)(x)
            np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15, err_msg=mode)
            np.testing.assert_array_equal(np.signbit(got), np.signbit(want), err_msg=mode)


# a scalar bool in a key is numpy's 0-d mask (True: a new length-1 axis), never the index 0/1
@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("index", [lambda x: x[True], lambda x: x[:, True],
                                   lambda x: x[np.True_, ..., None], lambda x: x[..., True]])
def test_scalar_true_index_is_a_new_axis(index, mode):
    x = R.copy()
    want = index(x)
    if mode != "tape":
        got = np.asarray(ad.jit(index, mode=mode)(x))
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    g = ad.grad(lambda x: np.sum(np.sin(index(x))), mode=mode)(x)
    np.testing.assert_allclose(g, np.cos(x), rtol=1e-13)


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("index", [lambda x: x[False], lambda x: x[0, True],
                                   lambda x: x[True, np.array([0])]])
def test_scalar_bool_index_beyond_a_new_axis_is_refused(index, mode):
    with pytest.raises(NotImplementedError, match="scalar boolean index"):
        ad.grad(lambda x: np.sum(index(x)), mode=mode)(R.copy())


@pytest.mark.parametrize("x", [np.array([0.5, -1.25, 2.0], np.float32), np.arange(3),
                               np.array([True, False])])
def test_vander_dtype_is_numpys(x):
    # numpy builds the matrix in promote_types(x.dtype, int): float32 gives float64
    from table import check_value
    check_value(lambda v: np.vander(v, 4), [x])
    check_value(lambda v: np.vander(v, 0), [x])
