"""Source locations in IR and errors, and ad.config.debug_nans (issue 15)."""
import inspect

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.config import Config

MODES = ["compiled", "interpret"]


def line_of(fn, offset):
    return f"test_source.py:{inspect.getsourcelines(fn)[1] + offset}"


def model(x, w):
    h = np.tanh(x @ w)
    return np.sum(h ** 2)


def test_equations_record_the_user_line():
    fn = ad.make_ir(model)(np.ones((2, 3)), np.ones(3))
    locs = [e.loc for e in fn.eqns]
    assert locs == [line_of(model, 1)] * 2 + [line_of(model, 2)] * 2
    assert f"  # {line_of(model, 1)}" in str(fn)


def test_lines_inside_converted_branches_and_helpers():
    def helper(x):
        return np.exp(x)

    def f(x):
        if x > 0:
            y = helper(x)
        else:
            y = -x
        return y

    fn = ad.make_ir(f)(1.0)
    cond, = [e for e in fn.eqns if e.prim.name == "cond"]
    assert cond.loc == line_of(f, 1)
    inner = [e.loc for r in cond.regions for e in r.eqns]
    assert line_of(helper, 1) in inner and line_of(f, 4) in inner


def test_shape_error_names_the_line():
    def f(x, w):
        y = x * 2.0
        return np.sum(y @ w)

    with pytest.raises(ValueError, match=rf"\(at {line_of(f, 2)}\)"):
        ad.grad(f)(np.ones((2, 3)), np.ones(4))


def test_tracing_error_names_the_line():
    def f(x):
        n = int(x)
        return x * n

    with pytest.raises(ad.TracingError, match=rf"\(at {line_of(f, 1)}\)"):
        ad.grad(f)(1.0)


def test_unsupported_function_names_the_line():
    def f(x):
        return np.sum(np.fft.fft(x).real)

    with pytest.raises(NotImplementedError, match=rf"\(at {line_of(f, 1)}\)"):
        ad.grad(f)(np.ones(4))


def test_location_is_added_once_through_nested_transforms():
    def f(x):
        return x * int(x)

    with pytest.raises(ad.TracingError) as info:
        ad.jit(ad.grad(f))(1.0)
    assert str(info.value).count(line_of(f, 1)) == 1


# ---------------------------------------------------------------------------------------------
# debug_nans

def log_sqrt(x):
    y = np.log(x)
    return np.sum(np.sqrt(y))


@pytest.fixture
def debug_nans():
    ad.config.debug_nans = True
    yield
    ad.config.debug_nans = False


@pytest.mark.parametrize("mode", MODES)
def test_debug_nans_forward(mode, debug_nans):
    with pytest.raises(FloatingPointError,
                       match=rf"'sqrt' produced nan in the forward code at {line_of(log_sqrt, 2)}"):
        ad.grad(log_sqrt, mode=mode)(np.array([2.0, 0.5]))


@pytest.mark.parametrize("mode", MODES)
def test_debug_nans_adjoint(mode, debug_nans):
    # sqrt(log 1) = 0 is finite; its derivative 1/(2 sqrt 0) is not
    with pytest.raises(FloatingPointError,
                       match=rf"produced inf in the adjoint \(gradient\) code of "
                             rf"{line_of(log_sqrt, 2)}"):
        ad.grad(log_sqrt, mode=mode)(np.array([2.0, 1.0]))


@pytest.mark.parametrize("mode", MODES)
def test_debug_nans_inside_a_converted_loop(mode, debug_nans):
    def f(x, n):
        s = x
        for i in range(n):
            s = np.log(s)
        return s

    with pytest.raises(FloatingPointError, match=rf"'log' produced nan .* {line_of(f, 3)}"):
        ad.jit(f, mode=mode)(3.0, 4)  # log log log 3 < 0, so its log is nan
    assert np.isfinite(ad.jit(f, mode=mode)(3.0, 2))


@pytest.mark.parametrize("mode", MODES)
def test_debug_nans_off_returns_nan(mode):
    assert not ad.config.debug_nans
    with np.errstate(invalid="ignore", divide="ignore"):
        assert np.isnan(ad.grad(log_sqrt, mode=mode)(np.array([2.0, 0.5]))).any()


def test_debug_nans_applies_to_already_compiled_functions():
    g = ad.grad(log_sqrt)
    x = np.array([2.0, 0.5])
    with np.errstate(invalid="ignore", divide="ignore"):
        g(x)
        g(x)  # now on the fast call path
    ad.config.debug_nans = True
    try:
        with pytest.raises(FloatingPointError):
            g(x)
        np.testing.assert_allclose(g(np.array([3.0])), 1 / (2 * np.sqrt(np.log(3.0)) * 3.0))
    finally:
        ad.config.debug_nans = False


def test_nan_inputs_are_not_blamed_on_an_equation(debug_nans):
    assert np.isnan(ad.jit(lambda x: x * 2.0)(np.nan))


def test_config_from_environment(monkeypatch):
    monkeypatch.setenv("AUTODIFF_JIT_DEBUG_NANS", "1")
    monkeypatch.setenv("AUTODIFF_JIT_CONVERT", "0")
    monkeypatch.setenv("AUTODIFF_JIT_MAX_LOOP_STEPS", "5000")
    c = Config()
    assert c.debug_nans and not c.convert and c.max_loop_steps == 5000
    monkeypatch.delenv("AUTODIFF_JIT_DEBUG_NANS")
    assert not Config().debug_nans


def test_locations_do_not_change_what_the_code_is():
    from autodiff_jit.backend import cache

    def f1(x):
        return np.sum(np.sin(x) * 2.0)

    def f2(x):

        return np.sum(np.sin(x) * 2.0)

    a = ad.jit(f1).ir(np.ones(3))
    b = ad.jit(f2).ir(np.ones(3))
    assert [e.loc for e in a.eqns] != [e.loc for e in b.eqns]
    assert a.to_text(locations=False).replace("f1", "f2") == b.to_text(locations=False)
    assert cache.key(a.replace(name="f")) == cache.key(b.replace(name="f"))
