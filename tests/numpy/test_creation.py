"""numpy/creation.py: arrays built from traced values (value vs numpy, gradient vs finite
differences, every mode), and the idioms numpy cannot dispatch, refused with a clear message."""
import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.errors import TracingError
from table import ALL_MODES, check_case

_r = np.random.default_rng(13)
V = _r.standard_normal(4)
P = np.array([0.7, 1.9, 2.6])


def _zeros_then_write(x):
    y = np.zeros_like(x)
    y[0] = x[1] * 2.0
    y[2:] = np.sin(x[:2])
    return y


CASES = {
    "ad_array": (lambda x: ad.numpy.array([x[1], -x[0]]), [V]),
    "ad_array_nested": (lambda x: ad.numpy.asarray([[x[0], 1.0], [x[2], x[3] * x[0]]]), [V]),
    "ad_array_of_arrays": (lambda x: ad.numpy.array([x, 2 * x]), [V]),
    "full_like_traced": (lambda x: np.full_like(x, x[2]), [V]),
    "full_like_const": (lambda x: np.full_like(x, 3.0) * x, [V]),
    "ones_like": (lambda x: np.ones_like(x) * x, [V]),
    "zeros_like_write": (_zeros_then_write, [V]),
    "linspace": (lambda x: np.linspace(x[0], x[1], 7), [V]),
    "linspace_no_end": (lambda x: np.linspace(x[0], 3.0, 5, endpoint=False), [V]),
    "linspace_arrays": (lambda x: np.linspace(x[:2], x[2:], 4, axis=1), [V]),
    "linspace_retstep": (lambda x: np.linspace(-1.0, x[3], 6, retstep=True), [V]),
    "logspace": (lambda x: np.logspace(x[0], x[1], 5, base=2.0), [V]),
    "geomspace": (lambda p: np.geomspace(p[0], p[2], 6), [P]),
    "geomspace_negative": (lambda p: np.geomspace(-p[0], -p[1], 4), [P]),
    "meshgrid": (lambda x, p: np.meshgrid(x, p), [V, P]),
    "meshgrid_ij_sparse": (lambda x, p: np.meshgrid(x, p, indexing="ij", sparse=True), [V, P]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_creation(name):
    f, args = CASES[name]
    # x[i] = v into a Tensor that needs a gradient is refused in tape mode
    modes = ALL_MODES[:2] if name == "zeros_like_write" else ALL_MODES
    check_case(f, args, modes=modes, rtol=1e-14)


@pytest.mark.parametrize("mode", ALL_MODES[:2])
def test_np_array_bypassing_the_module_names_the_alternative(mode):
    # np.array([...]) of traced values works (tests/numpy/test_lists.py); numpy's builtin
    # reached another way cannot see them, and the error says what to write
    raw = np.array
    with pytest.raises(TracingError, match=r"autodiff_jit\.numpy\.array"):
        ad.grad(lambda x: np.sum(raw([x[1], -x[0]])), mode=mode)(V)
