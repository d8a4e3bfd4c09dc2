"""numpy/mathematical.py: value vs numpy and gradient vs finite differences, every mode;
special values (inf, nan, -0.0) vs numpy."""
import numpy as np
import pytest

import autodiff_jit as ad

from table import check_case, check_value

_r = np.random.default_rng(7)
X = np.array([-2.5, -1.1, -0.3, 0.4, 1.7, 3.2])       # no kinks at the integers
Y = np.array([1.5, -2.3, 0.7, -1.3, 0.9, -0.6])
U = np.array([-0.7, -0.2, 0.1, 0.45, 0.8])             # inside (-1, 1)

UNARY = {
    "arcsinh": (np.arcsinh, X), "arccosh": (np.arccosh, np.abs(X) + 1.2),
    "arctanh": (np.arctanh, U), "cbrt": (np.cbrt, X), "deg2rad": (np.deg2rad, X),
    "radians": (np.radians, X), "rad2deg": (np.rad2deg, X), "degrees": (np.degrees, X),
    "sinc": (np.sinc, X), "sinc_at_0": (np.sinc, np.array([0.0, 0.3])),
    "real": (np.real, X), "imag": (np.imag, X), "conj": (np.conj, X),
    "conjugate": (np.conjugate, X), "real_if_close": (np.real_if_close, X),
    "angle": (np.angle, X), "angle_deg": (lambda x: np.angle(x, deg=True), X), "trunc": (np.trunc, X), "fix": (np.fix, X),
    "round": (np.round, X + 0.13), "around_2": (lambda x: np.around(x, 2), X * 1.2345),
    "round_neg": (lambda x: np.round(x * 100 + 1.3, -1), X), "signbit": (np.signbit, X),
    "isposinf": (np.isposinf, X), "isneginf": (np.isneginf, X),
    "nan_to_num": (np.nan_to_num, X), "modf": (np.modf, X),
    "ldexp": (lambda x: np.ldexp(x, np.array([1, -2, 3, 0, 5, -1])), X),
    "i0": (np.i0, X), "i0_both_branches": (np.i0, np.array([-9.5, -7.9, 0.2, 7.9, 8.1, 11.0])),
}
BINARY = {
    "arctan2": np.arctan2, "float_power": lambda a, b: np.float_power(np.abs(a), b),
    "fmax": np.fmax, "fmin": np.fmin, "logaddexp2": np.logaddexp2, "copysign": np.copysign,
    "fmod": np.fmod, "remainder": np.remainder, "mod": np.mod, "floor_divide": np.floor_divide,
    "divmod": np.divmod, "heaviside": np.heaviside, "isclose": np.isclose,
    "op_mod": lambda a, b: a % b, "op_rmod": lambda a, b: 3.7 % b, "op_floordiv": lambda a, b: a // b,
    "op_divmod": lambda a, b: divmod(a, b), "op_rdivmod": lambda a, b: divmod(2.5, b),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name):
    f, x = UNARY[name]
    check_case(f, [x], rtol=4e-16 * 8)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary(name):
    check_case(BINARY[name], [X, Y], rtol=4e-16 * 8)


SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, 2.5, -2.5, np.inf, -np.inf, np.nan, 1e300, -1e-300,
                    5e-324])


@pytest.mark.parametrize("name", ["arctan2", "fmod", "remainder", "floor_divide", "copysign",
                                  "fmax", "fmin", "heaviside", "isclose", "divmod"])
def test_binary_special_values(name):
    a, b = np.meshgrid(SPECIAL, SPECIAL)
    with np.errstate(all="ignore"):
        # numpy's own fmax/fmin give either zero for (0.0, -0.0), depending on its SIMD path
        check_value(BINARY[name], [a.ravel(), b.ravel()], rtol=4e-16 * 8,
                    zero_signs=name not in ("fmax", "fmin"))


@pytest.mark.parametrize("f", [np.angle, np.arcsinh, np.arccosh, np.arctanh, np.cbrt, np.sinc, np.trunc,
                               np.signbit, np.nan_to_num, np.modf, np.round, np.isposinf,
                               np.isneginf], ids=lambda f: f.__name__)
def test_unary_special_values(f):
    xs = np.concatenate([SPECIAL, [0.5, -0.5, 1e8, 3e8, -1e200, 27.0, -8.0, 0.9999999]])
    with np.errstate(all="ignore"):
        check_value(f, [xs], rtol=4e-16 * 8)


def test_integer_remainders_match_numpy():
    a = np.array([7, -7, 7, -7, 0, 5, np.iinfo(np.int64).min])
    b = np.array([2, 2, -2, -2, 3, 0, -1])
    with np.errstate(all="ignore"):
        for f in (np.fmod, np.remainder, np.floor_divide, lambda a, b: a % b, lambda a, b: a // b):
            check_value(f, [a, b])


def test_bool_operators_reflected():
    m = np.array([True, False, True])
    check_value(lambda x: (True & (x > 0)) | (False | (x > 1)) ^ (x < 2), [np.array([-1., 0.5, 3.])])


def test_bitwise_on_integers_is_refused():
    import autodiff_jit as ad
    with pytest.raises(NotImplementedError, match="bitwise_xor"):
        ad.jit(lambda x: np.bitwise_xor(x, 3))(np.arange(3))


def _i1_series(x):
    """I1(x) = sum (x/2)^(2k+1) / (k! (k+1)!) (Abramowitz and Stegun 9.6.10), summed exactly
    enough for |x| <= 30 with 90 terms."""
    from math import factorial
    return sum((x / 2) ** (2 * k + 1) / (factorial(k) * factorial(k + 1)) for k in range(90))


def test_i0_gradient_is_i1():
    import autodiff_jit as ad
    xs = np.array([-20.0, -8.01, -8.0, -3.0, 0.0, 0.5, 7.99, 8.0, 8.01, 25.0])
    want = np.array([_i1_series(v) for v in xs])
    for mode in ("compiled", "interpret", "tape"):
        got = ad.grad(lambda x: np.sum(np.i0(x)), mode=mode)(xs)
        # the derivative of a Chebyshev approximation of relative error ~6e-16: a few ulps
        np.testing.assert_allclose(got, want, rtol=2e-14, atol=0, err_msg=mode)


def test_i0_special_values_and_dtypes():
    with np.errstate(all="ignore"):
        check_value(np.i0, [SPECIAL], rtol=4e-16 * 8)
    check_value(np.i0, [np.array([0.5, 9.0, -30.0], np.float32)], rtol=4 * 6e-8)
    check_value(np.i0, [np.array([0, 3, -9])], rtol=4e-16 * 8)


_P = np.array([0.5, -1.25, 2.0, np.nan])
_Q = np.array([0.5 + 1e-9, -1.25, 2.5, np.nan])
WHOLE_ARRAY_TESTS = {  # boolean answers about whole arrays (no derivative; values as numpy's)
    "allclose": lambda a, b: np.allclose(a[:3], b[:3]),
    "allclose_far": lambda a, b: np.allclose(a, b, atol=0.6, equal_nan=True),
    "allclose_nan": lambda a, b: np.allclose(a, b, atol=0.6),
    "array_equal": lambda a, b: np.array_equal(a, b),
    "array_equal_nan": lambda a, b: np.array_equal(a[1:2], b[1:2]) & np.array_equal(a, a, equal_nan=True),
    "array_equal_shapes": lambda a, b: np.array_equal(a, b[:2]),
    "array_equiv": lambda a, b: np.array_equiv(a[1:2], np.stack([b[1:2], b[1:2]])),
    "array_equiv_not": lambda a, b: np.array_equiv(a, b[:2]),
    "iscomplex": lambda a, b: np.iscomplex(a) | np.isreal(b),
    "iscomplexobj": lambda a, b: np.iscomplexobj(a) | np.isrealobj(b),
    "isin": lambda a, b: np.isin(a, b),
    "isin_invert_2d": lambda a, b: np.isin(np.stack([a, b]), [b[1], 2.0], invert=True),
    "isin_empty": lambda a, b: np.isin(a, b[:0]),
}


@pytest.mark.parametrize("name", sorted(WHOLE_ARRAY_TESTS))
def test_whole_array_tests(name):
    check_value(WHOLE_ARRAY_TESTS[name], [_P, _Q])


def test_cbrt_of_float32_values():
    # the subnormal scaling factor was float64's (2**162), which overflows float32: every
    # float32 value's gradient was NaN
    x = np.array([0.31, -0.47, 8.0, 1e-40, -2e-44, 3e37], np.float32)
    check_value(np.cbrt, [x], rtol=8 * np.finfo(np.float32).eps)
    for mode in ("compiled", "interpret", "tape"):
        g = ad.grad(lambda v: np.sum(np.cbrt(v[:3])), mode=mode)(x)
        assert g.dtype == np.float32
        np.testing.assert_allclose(g[:3], np.abs(x[:3].astype(float)) ** (-2 / 3) / 3, rtol=1e-5)
