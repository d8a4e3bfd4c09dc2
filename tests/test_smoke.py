import numpy as np

import autodiff_jit as ad


def test_sum_of_cubes():
    f = ad.grad(lambda x: np.sum(x ** 3))
    np.testing.assert_allclose(f(np.array([1.0, 2.0, 3.0])), [3.0, 12.0, 27.0])
