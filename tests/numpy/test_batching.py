"""vmap of the primitives numpy/ adds (fmod, cumprod, argsort, take_runs) uses their batching rules
(no per-example fallback) and matches the unbatched results."""
import warnings

import numpy as np
import pytest

import autodiff_jit as ad

X = np.random.default_rng(41).standard_normal((3, 5))


@pytest.mark.parametrize("f", [np.cumprod, np.sort, np.argsort, lambda a: np.fmod(a, 0.3),
                               lambda a: np.median(a) + np.cumprod(a[::-1])[-1],
                               lambda a: np.pad(a, (2, 3), mode="reflect") ** 2],
                         ids=["cumprod", "sort", "argsort", "fmod", "median_cumprod", "pad"])
def test_vmap_uses_batching_rules(f):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a BatchingFallbackWarning fails the test
        got = ad.vmap(f)(X)
        np.testing.assert_array_equal(got, np.stack([f(r) for r in X]))
        if np.asarray(got).dtype.kind == "f":
            g = ad.vmap(ad.grad(lambda a: np.sum(f(a) * 1.5)))(X)
            want = np.stack([ad.grad(lambda a: np.sum(f(a) * 1.5))(r) for r in X])
            np.testing.assert_allclose(g, want, rtol=1e-14)
