"""numpy's indexing rules on traced values and tape Tensors, key by key: basic and advanced
indices mixed (advanced indices separated by a slice put their broadcast dimensions first),
np.newaxis among array indices, Ellipsis, negative and 0-d indices, boolean masks. Reading
(every mode), writing `y[key] = v` and the gradient of a read (np.add.at of the cotangent)
are compared with numpy."""
import numpy as np
import pytest

import autodiff_jit as ad

_r = np.random.default_rng(1)
X = _r.standard_normal((3, 4, 5))
I_ = np.array([0, 2])
J_ = np.array([1, 3])
MASK = np.array([True, False, True])
KEYS = {
    "slice_array_slice": (slice(None), I_, slice(None)),
    "arrays_separated": (I_, slice(None), J_[:1]),
    "arrays_separated_broadcast": (I_, slice(None), np.array([1, 4])),
    "ellipsis_array": (Ellipsis, I_),
    "newaxis_with_array": (None, I_, None, slice(1, 3)),
    "newaxis_between_arrays": (I_, None, J_),
    "newaxis_ellipsis_array": (None, Ellipsis, I_, None),
    "mask_slice_int": (MASK, slice(None), 0),
    "int_arrays": (1, I_, J_),
    "outer_arrays": (I_[:, None], J_[None, :]),
    "outer_arrays_around_slice": (I_[:, None], slice(None), J_[None, :]),
    "reversed_slice_array": (slice(None, None, -1), I_),
    "int_slice_array": (0, slice(None), I_),
    "zero_d_array": (np.array(1), I_),
    "three_lists": ([0, 1], [2, 3], [4, 0]),
    "nested_list": (slice(None), [[0, 1], [2, 3]]),
    "negative": (-1, -2, [-1, 0]),
}
MODES = ("compiled", "interpret", "tape")


@pytest.mark.parametrize("name", sorted(KEYS))
def test_read(name):
    key = KEYS[name]
    want = X[key]
    for mode in MODES:
        if mode == "tape":
            got = ad.tensor(X, requires_grad=True)[key].detach().numpy()
        else:
            got = ad.jit(lambda x: x[key], mode=mode)(X)
        assert got.shape == want.shape, mode
        np.testing.assert_array_equal(got, want, err_msg=mode)


@pytest.mark.parametrize("name", sorted(KEYS))
def test_write(name):
    key = KEYS[name]
    fill = -7.0 - np.arange(X[key].size, dtype=float).reshape(X[key].shape)

    def f(x):
        y = x * 1.0
        y[key] = fill
        return y
    want = f(X.copy())
    for mode in ("compiled", "interpret"):
        np.testing.assert_array_equal(ad.jit(f, mode=mode)(X), want, err_msg=mode)


@pytest.mark.parametrize("name", sorted(KEYS))
def test_gradient_of_a_read(name):
    key = KEYS[name]
    w = np.cos(np.arange(X[key].size)).reshape(X[key].shape)
    want = np.zeros_like(X)
    np.add.at(want, key, w)    # repeated indices accumulate
    for mode in MODES:
        got = ad.grad(lambda x: np.sum(x[key] * w), mode=mode)(X)
        np.testing.assert_allclose(got, want, rtol=1e-15, atol=0, err_msg=mode)
