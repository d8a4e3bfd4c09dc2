"""Tie conventions (JAX's, docs/ad.md): tied values share the gradient evenly, in forward and
reverse mode and in every mode; at distinct values the rules agree with central differences.
The tape's torch-style clamp and relu keep torch's rules."""
import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit import tape

from helpers import check_grads

MODES = ("compiled", "interpret", "tape")
X = np.array([1.0, 2.0, 3.0, 2.0, np.nan, 0.0, -0.0, np.nan, 4.0])
Y = np.array([1.0, 1.0, 3.0, 3.0, 1.0, -0.0, 0.0, np.nan, np.nan])
TIE = (X == Y) | ((X == 0) & (Y == 0))
# JAX's _balanced_eq: d max(a, b)/da = [a == out] / (1 + [b == out])
_WANT = {
    np.maximum: ([.5, 1, .5, 0, 0, .5, .5, 0, 0], [.5, 0, .5, 1, 0, .5, .5, 0, 0]),
    np.minimum: ([.5, 0, .5, 1, 0, .5, .5, 0, 0], [.5, 1, .5, 0, 0, .5, .5, 0, 0]),
    np.fmax: ([.5, 1, .5, 0, 0, .5, .5, 0, 1], [.5, 0, .5, 1, 1, .5, .5, 0, 0]),
    np.fmin: ([.5, 0, .5, 1, 0, .5, .5, 0, 1], [.5, 1, .5, 0, 1, .5, .5, 0, 0]),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fn", list(_WANT), ids=lambda f: f.__name__)
def test_binary_extrema_split_a_tie(fn, mode):
    with np.errstate(invalid="ignore"):
        gx, gy = ad.grad(lambda a, b: np.sum(fn(a, b)), argnums=(0, 1), mode=mode)(X, Y)
    np.testing.assert_array_equal(gx, _WANT[fn][0])
    np.testing.assert_array_equal(gy, _WANT[fn][1])
    if mode != "tape":  # forward mode: the same partials
        _, tx = ad.jvp(lambda a: fn(a, Y), (X,), (np.ones_like(X),))
        _, ty = ad.jvp(lambda b: fn(X, b), (Y,), (np.ones_like(Y),))
        np.testing.assert_array_equal(tx, _WANT[fn][0])
        np.testing.assert_array_equal(ty, _WANT[fn][1])


@pytest.mark.parametrize("fn", list(_WANT), ids=lambda f: f.__name__)
def test_binary_extrema_at_a_tie_are_the_mean_of_the_one_sided_derivatives(fn):
    # max(x, x) = x: the two partials at a tie sum to 1, the derivative along the diagonal
    x = np.array([0.3, -1.2])
    gx, gy = ad.grad(lambda a, b: np.sum(fn(a, b) * np.array([1.0, 2.0])), argnums=(0, 1))(x, x)
    np.testing.assert_array_equal(gx + gy, [1.0, 2.0])
    check_grads(lambda a: np.sum(fn(a, a) ** 2), [x])


R = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.5, -1.0, 4.0]])
W = np.array([1.0, 2.0, 3.0])


@pytest.mark.parametrize("mode", MODES)
def test_reductions_give_each_tied_element_one_over_count(mode):
    cases = {  # JAX's values
        np.max: [[0, .5, .5], [2 / 3, 2 / 3, 2 / 3], [0, 0, 3]],
        np.amin: [[1, 0, 0], [2 / 3, 2 / 3, 2 / 3], [0, 3, 0]],
        np.ptp: [[-1, .5, .5], [0, 0, 0], [0, -3, 3]],
        np.nanmax: [[0, .5, .5], [2 / 3, 2 / 3, 2 / 3], [0, 0, 3]],
    }
    for fn, want in cases.items():
        g = ad.grad(lambda a: np.sum(fn(a, axis=1) * W), mode=mode)(R)
        np.testing.assert_allclose(g, want, rtol=1e-15, err_msg=fn.__name__)
    g = ad.grad(lambda a: np.maximum.reduce(a, axis=None), mode=mode)(R)
    np.testing.assert_array_equal(g, np.where(R == 4.0, 1.0, 0.0))
    # initial= and where= as jnp.max: maximum(reduce_max(x), initial) splits the tie again
    g = ad.grad(lambda a: np.max(a, initial=3.0), mode=mode)(np.array([1.0, 3.0, 3.0]))
    np.testing.assert_array_equal(g, [0, .25, .25])
    g = ad.grad(lambda a: np.max(a, where=np.array([True, True, False]), initial=-np.inf),
                mode=mode)(np.array([3.0, 3.0, 3.0]))
    np.testing.assert_array_equal(g, [.5, .5, 0])


def test_reduction_ties_in_forward_mode_and_second_order():
    _, t = ad.jvp(lambda a: np.max(a, axis=1), (R,), (np.arange(9.0).reshape(3, 3),))
    np.testing.assert_array_equal(t, [1.5, 4.0, 8.0])
    h = ad.hessian(lambda a: np.max(a) ** 2)(np.array([2.0, 2.0]))
    np.testing.assert_array_equal(h, [[.5, .5], [.5, .5]])


@pytest.mark.parametrize("mode", MODES)
def test_clip_follows_jnp_clip(mode):
    c = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, np.nan])
    g = ad.grad(lambda a: np.sum(np.clip(a, -1.0, 1.0)), mode=mode)(c)
    np.testing.assert_array_equal(g, [0, .5, 1, .5, 0, 0])
    # lo == hi: maximum's tie, then minimum's (JAX: x 0.25, lo 0.75, hi 2)
    gx, glo, ghi = ad.grad(lambda a, lo, hi: np.sum(np.clip(a, lo, hi)), argnums=(0, 1, 2),
                           mode=mode)(np.array([0.0, 1.0, 2.0]), 1.0, 1.0)
    np.testing.assert_array_equal(gx, [0, .25, 0])
    assert (glo, ghi) == (0.75, 2.0)


def test_clip_away_from_the_bounds_matches_finite_differences():
    check_grads(lambda a, lo: np.sum(np.clip(a, lo, 0.9) ** 2),
                [np.array([-2.0, -0.3, 0.4, 1.7]), -0.5])


def test_tape_clamp_and_relu_keep_torchs_rules():
    x = tape.Tensor(np.array([-2.0, -1.0, 0.0, 1.0, 2.0, np.nan]), requires_grad=True)
    y = x.clamp(-1.0, 1.0)
    y.sum().backward()
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(y.detach().numpy(), np.clip(x.detach().numpy(), -1, 1))
    np.testing.assert_array_equal(x.grad.numpy(), [0, 1, 1, 1, 0, 0])  # torch: bounds included
    x = tape.Tensor(np.array([-1.0, 0.0, 1.0, np.nan, -0.0]), requires_grad=True)
    y = tape.relu(x)
    y.sum().backward()
    np.testing.assert_array_equal(y.detach().numpy(), np.maximum(x.detach().numpy(), 0.0))
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 1, 0, 0])  # threshold_backward
