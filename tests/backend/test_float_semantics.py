"""Compiled elementwise arithmetic rounds as numpy's: each `+ - * /` once, so fused loops give
numpy's bits (no fused multiply-add, whose single rounding moves a value by an ulp -- enough to
flip a comparison, a floor or a histogram bin)."""
from __future__ import annotations

import numpy as np
import pytest

import autodiff_jit as ad

OPS = [lambda a, b: a * b + 0.1, lambda a, b: a - b * 3.3, lambda a, b: a * 0.7 - b,
       lambda a, b: (a + b) * (a - b), lambda a, b: a / (1.5 + b * b), lambda a, b: a * a * a - b,
       lambda a, b: 0.2 * a + 0.3 * b - 1.0]


def _program(rng):
    picks = [int(i) for i in rng.integers(len(OPS), size=int(rng.integers(2, 7)))]

    def f(x, y):
        v, w = x, y
        for k in picks:
            v, w = OPS[k](v, w), v
        return v
    return f


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(12))
def test_fused_arithmetic_gives_numpys_bits(seed, dtype):
    rng = np.random.default_rng(seed)
    f = _program(rng)
    x = rng.standard_normal(257).astype(dtype)
    y = rng.standard_normal(257).astype(dtype)
    np.testing.assert_array_equal(ad.jit(f)(x, y), f(x, y))


def test_linspace_and_histogram_of_integers_are_numpys():
    # 5 * 0.2 - 1 is 0.0 with two roundings and 5.6e-17 with one: the integer 0 then falls in
    # another bin
    x = np.array([-1, 0, 0, 1, 1, 0])
    np.testing.assert_array_equal(ad.jit(lambda a, b: np.linspace(a, b, 11))(-1.0, 1.0),
                                  np.linspace(-1.0, 1.0, 11))
    for got, want in zip(ad.jit(np.histogram)(x), np.histogram(x)):
        np.testing.assert_array_equal(got, want)
    w = np.linspace(0.5, 2.0, 6)
    counts = ad.jit(lambda x, w: np.histogram(x, bins=10, weights=w)[0])(x, w)
    np.testing.assert_array_equal(counts, np.histogram(x, bins=10, weights=w)[0])


def test_comparisons_of_computed_values_are_numpys():
    x = np.linspace(0.0, 3.0, 31)
    f = lambda x: np.floor(x * 10.0 - 0.1 * x) + (x * 0.1 * 3.0 > 0.3)  # noqa: E731
    np.testing.assert_array_equal(ad.jit(f)(x), f(x))
