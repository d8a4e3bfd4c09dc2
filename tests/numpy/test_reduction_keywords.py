"""Reductions under every keyword combination numpy users write (axis as int, negative and
tuple, keepdims, where=, initial=, ddof=, dtype=): value, dtype and shape as numpy's, or
numpy's refusal (max/min with where= but no initial=, a tuple axis for argmax/cumsum).
Interpret and tape mode by default (the shape and dtype rules are shared with compiled mode,
which runs under -m slow)."""
import itertools
import warnings

import numpy as np
import pytest

import autodiff_jit as ad

_r = np.random.default_rng(3)
X = _r.standard_normal((3, 4))
MASK = _r.random((3, 4)) > 0.4
ROW_MASK = np.array([True, False, True, True])
FUNCTIONS = {n: getattr(np, n) for n in (
    "sum mean max min prod std var any all nansum nanmean nanmax nanmin count_nonzero argmax "
    "argmin ptp cumsum cumprod average median").split()}
OPTIONS = {
    "plain": {}, "axis0": {"axis": 0}, "axis-1": {"axis": -1}, "axis01": {"axis": (0, 1)},
    "keepdims": {"keepdims": True}, "axis1_keepdims": {"axis": 1, "keepdims": True},
    "where": {"where": MASK}, "where_row_axis0": {"where": ROW_MASK, "axis": 0},
    "initial": {"initial": 0.5}, "initial_where": {"initial": -9.0, "where": MASK},
    "ddof": {"ddof": 1}, "axis0_ddof2": {"axis": 0, "ddof": 2}, "dtype32": {"dtype": np.float32},
    "where_keepdims_axis1": {"where": MASK, "keepdims": True, "axis": 1},
}
CASES = [pytest.param(f, o, id=f"{f}-{o}") for f, o in itertools.product(FUNCTIONS, OPTIONS)]


def _numpy(f, kw):
    try:
        return f(X, **kw)
    except Exception as exc:   # noqa: BLE001 - numpy's refusal is the expected answer
        return exc


def _check(name, opt, mode):
    f, kw = FUNCTIONS[name], OPTIONS[opt]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = _numpy(f, kw)
        try:
            if mode == "tape":
                r = f(ad.tensor(X, requires_grad=True), **kw)
                got = r.detach().numpy() if isinstance(r, ad.Tensor) else np.asarray(r)
            else:
                got = ad.jit(lambda x: f(x, **kw), mode=mode)(X)
        except NotImplementedError:
            return   # a refusal that names the keyword
        except (TypeError, ValueError) as exc:
            assert isinstance(want, Exception), f"numpy answers {want!r}; we raise {exc!r}"
            return
    assert not isinstance(want, Exception), f"numpy raises {want!r}; autodiff_jit answers"
    got, want = np.asarray(got), np.asarray(want)
    assert (got.dtype, got.shape) == (want.dtype, want.shape)
    # short sums of O(1) values: a few roundings (float32: its own eps)
    rtol = 1e-5 if want.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol, equal_nan=True)


@pytest.mark.parametrize("name,opt", [c.values for c in CASES], ids=[c.id for c in CASES])
@pytest.mark.parametrize("mode", ["interpret", "tape"])
def test_reduction_keywords_follow_numpy(name, opt, mode):
    _check(name, opt, mode)


@pytest.mark.slow
@pytest.mark.parametrize("name,opt", [c.values for c in CASES], ids=[c.id for c in CASES])
def test_reduction_keywords_follow_numpy_compiled(name, opt):
    _check(name, opt, "compiled")


@pytest.mark.parametrize("mode", ["interpret", "tape", "compiled"])
@pytest.mark.parametrize("f, kw", [
    (np.var, {"axis": 1, "keepdims": True}), (np.std, {"axis": 0, "ddof": 1}),
    (np.var, {}), (np.std, {"axis": (0, 1), "keepdims": True})])
def test_var_std_given_mean(f, kw, mode):
    # numpy >= 2.0's mean=: subtracted as given (broadcast), the gradient flows through it
    def g(x):
        m = np.mean(x, axis=kw.get("axis"), keepdims=True)
        return f(x, mean=m * 1.5, **kw)
    want = g(X)
    got = ad.jit(g, mode=mode)(X) if mode != "tape" else \
        g(ad.tensor(X, requires_grad=True)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-13)
    assert np.shape(got) == np.shape(want)
    loss = lambda x: np.sum(g(x))  # noqa: E731
    grad = ad.grad(loss, mode=mode)(X)
    from tests.helpers import numerical_grad
    np.testing.assert_allclose(grad, numerical_grad(loss, [X], 0), rtol=1e-6, atol=1e-8)
