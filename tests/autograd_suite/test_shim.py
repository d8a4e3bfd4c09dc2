"""The autograd-suite shim itself (without autograd's test files): its checks pass on right
gradients and fail on a wrong one, in every mode, and it follows autograd's calling
conventions (argnum, keyword arguments, list arguments, order 2)."""
import importlib
import sys

import numpy as np
import pytest

import autodiff_jit as ad

MODES = ("compiled", "interpret", "tape")


@pytest.fixture(params=MODES)
def shim(request, monkeypatch):
    monkeypatch.setenv("AD_SUITE_MODE", request.param)
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    sys.modules.pop("shim", None)
    mod = importlib.import_module("shim")
    yield mod
    sys.modules.pop("shim", None)


@ad.custom_vjp
def wrong_square(x):
    return x * x


wrong_square.defvjp(lambda x: (x * x, x), lambda x, g: (3.0 * x * g,))  # should be 2 x g


def test_right_gradients_pass(shim):
    x = np.array([0.3, -1.2, 2.0])
    shim.check_grads(np.tanh)(x)
    shim.check_grads(lambda a, b: a * b, argnum=(0, 1))(x, x[::-1] + 1.0)
    shim.check_grads(np.sum, modes=["rev"])(x, axis=0)           # keyword passed through
    shim.check_grads(np.concatenate)((x, x[:2]))                  # a tuple argument
    shim.check_grads(np.split, 0)(x, 3)                          # int stays an int; list out
    shim.combo_check(np.mean, (0,))([x, x[None]], axis=[None, -1])


def test_wrong_gradient_fails(shim):
    with pytest.raises(AssertionError):
        shim.check_grads(wrong_square, modes=["rev"], order=1)(np.array([0.5, 1.5]))


def test_wrong_second_derivative_fails(shim):
    # first derivative right, second wrong: only the order-2 check sees it
    @ad.custom_vjp
    def cube(x):
        return x ** 3

    # the rule's x is cut from the graph: its derivative (the second one of cube) is 0
    cube.defvjp(lambda x: (x ** 3, x), lambda x, g: (3.0 * ad.stop_gradient(x) ** 2 * g,))
    x = np.array([0.5, -1.5])
    shim.check_grads(cube, modes=["rev"], order=1)(x)
    with pytest.raises(AssertionError):
        shim.check_grads(cube, modes=["rev"], order=2)(x)
