"""x[key] = v inside traced functions: numpy's values and last-write-wins semantics, and
gradients to both the overwritten array and the written values."""
import numpy as np
import pytest

import autodiff_jit as ad
from helpers import check_grads

MODES = ("interpret", "compiled")


def _writes(x, v):
    y = x * 1.0
    y[1:3] = v[:2] ** 2
    y[-1] = 5.0 * v[2]
    y[[0, 0]] = np.array([7.0, 8.0]) * v[0]      # repeated position: the last write wins
    y[y.shape[0] - 2] += v[1]
    return np.sum(y * np.arange(1.0, 6.0))


def _writes_2d(x, v):
    y = np.tanh(x)
    y[:, ::-2] = v                                # negative step
    y[np.array([True, False, True])] *= 2.0       # constant boolean mask (read-modify-write)
    y[..., 1] = y[..., 0] ** 2
    return np.sum(y ** 2)


CASES = [(_writes, (np.arange(5.0), np.array([0.5, -1.5, 2.0]))),
         (_writes_2d, (np.linspace(-1, 1, 12).reshape(3, 4), np.array([[0.3, -0.2]])))]


@pytest.mark.parametrize("f,args", CASES)
def test_values_match_numpy(f, args):
    expected = f(*[a.copy() for a in args])
    for mode in MODES:
        assert ad.jit(f, mode=mode)(*args) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("f,args", CASES)
def test_gradients_match_finite_differences(f, args):
    check_grads(f, args)


def test_arguments_are_not_modified():
    x = np.arange(3.0)
    ad.jit(lambda x: (x.__setitem__(0, 9.0), x)[1])(x)
    assert x[0] == 0.0


def test_write_shape_mismatch_is_a_value_error():
    def f(x):
        x[0:2] = np.ones(3)
        return np.sum(x)
    with pytest.raises(ValueError, match="broadcast"):
        ad.jit(f)(np.zeros(4))


def test_traced_scalar_index_and_traced_index_array_writes():
    def f(x, i):
        x[i] = 1.0
        return x
    np.testing.assert_array_equal(ad.jit(f)(np.zeros(3), 1), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(ad.jit(f)(np.zeros(3), np.array([1, 2])), [0.0, 1.0, 1.0])


def _traced_masks(x, v):
    y = x * 1.0
    y[x > 0.2] = 0.5                              # a scalar: no count needed
    y[np.abs(x) < 0.3] = v[0, 1] * 3              # a traced scalar
    y[x[:, 0] < 0] = v[0] ** 2                    # one value per selected row
    y[(x[:, 1] > 0,)] = v                         # a (1, 4) value, mask in a tuple
    return np.sum(y * np.cos(np.arange(12.0)).reshape(3, 4))


MASK_ARGS = (np.linspace(-1, 1, 12).reshape(3, 4), np.array([[0.3, -0.2, 0.7, 1.1]]))


@pytest.mark.parametrize("mode", MODES + ("tape",))
def test_traced_boolean_mask_writes_need_no_count(mode):
    # x[mask] = v is np.where(mask, v, x) when v does not depend on how many are selected
    got = ad.jit(_traced_masks, mode=mode)(*MASK_ARGS)
    assert got == pytest.approx(_traced_masks(*MASK_ARGS), rel=1e-13)
    check_grads(_traced_masks, MASK_ARGS, modes=(mode,))


@pytest.mark.parametrize("mode", MODES)
def test_traced_boolean_mask_writes_that_need_the_count_are_refused(mode):
    def per_element(x):
        y = x * 1.0
        y[x > 0] = x[0, :2]                       # numpy needs exactly count(x > 0) values
        return y

    def wrong_mask(x):
        y = x * 1.0
        y[x[:2, 0] > 0] = 1.0
        return y
    with pytest.raises(NotImplementedError, match=r"does not depend on how many.*np\.where"):
        ad.jit(per_element, mode=mode)(MASK_ARGS[0])
    with pytest.raises(IndexError, match="boolean index did not match indexed array along "
                                         "axis 0; size of axis is 3"):
        ad.jit(wrong_mask, mode=mode)(MASK_ARGS[0])
