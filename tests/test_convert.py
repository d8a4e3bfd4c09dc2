"""Python control flow on traced values, converted into cond/while ops (issue 15).

Every function here is plain Python; the reference is the same function run eagerly on
floats (and central differences for gradients)."""
import inspect

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.convert import converted, unsupported_reason
from autodiff_jit.errors import TracingError

MODES = ["compiled", "interpret", "tape"]
EPS = 1e-6


def fd(f, args, argnum=0):
    plus, minus = list(args), list(args)
    plus[argnum] = args[argnum] + EPS
    minus[argnum] = args[argnum] - EPS
    return (f(*plus) - f(*minus)) / (2 * EPS)


def check(f, *arg_sets, modes=MODES, argnums=0, rtol=1e-6, atol=1e-7):
    """jit value and grad of f in every mode against f run eagerly and central differences."""
    for args in arg_sets:
        expected = f(*args)
        grad_fd = fd(f, args, argnums)
        for mode in modes:
            got = ad.jit(f, mode=mode)(*args)
            np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol,
                                       err_msg=f"value mode={mode} args={args}")
            v, g = ad.value_and_grad(f, argnums=argnums, mode=mode)(*args)
            np.testing.assert_allclose(v, expected, rtol=rtol, atol=atol)
            np.testing.assert_allclose(g, grad_fd, rtol=1e-5, atol=1e-6,
                                       err_msg=f"grad mode={mode} args={args}")


def n_eqns(fn):
    return sum(1 for _ in fn.all_eqns())


# ---------------------------------------------------------------------------------------------
# the constructs

def piecewise(x):
    if x < -1.0:
        y = -x ** 3
    elif x < 1.0:
        y = np.sin(x) + 1.0
    else:
        y = 2.0 * x
    return y * x


def test_if_elif_else():
    check(piecewise, (-2.0,), (0.3,), (1.7,))
    ir = ad.make_ir(piecewise)(0.3)
    assert ir.count("cond") == 2


def relu_ish(x):
    return x * x if x > 0 else -0.5 * x


def test_conditional_expression():
    check(relu_ish, (1.3,), (-0.7,))


def boolean_ops(x, y):
    if (x > 0 and y > 0) or not (x < -1.0):
        return x * y
    return x + y


def test_and_or_not():
    check(boolean_ops, (1.0, 2.0), (-2.0, 3.0), (-0.5, -1.0), (-3.0, -2.0))
    check(boolean_ops, (1.0, 2.0), (-2.0, 3.0), argnums=1)


def and_value(x, y):
    z = x and y  # Python's value semantics on floats: y if x is truthy else x
    return z * 2.0


def test_and_on_non_bool_values():
    check(and_value, (1.5, 2.0), modes=["interpret", "compiled"])
    check(and_value, (1.5, 2.0), (0.0, 2.0), argnums=1, modes=["interpret", "compiled"])


def newton_sqrt(a):
    x = a
    while np.abs(x * x - a) > 1e-12 * a:
        x = 0.5 * (x + a / x)
    return x


def test_while():
    check(newton_sqrt, (2.0,), (9.0,))
    assert ad.make_ir(newton_sqrt)(2.0).count("while") == 1


def counted(x):
    i = 0  # a Python int carried by a traced loop becomes an i64 carry
    s = 0  # ... and a Python int that becomes a float promotes once
    while s < 5.0:
        s = s + x
        i += 1
    return s * i


def test_while_promotes_python_numbers():
    check(counted, (0.7,), (2.0,))


def issue_example(x, n):
    s = 0.0
    for i in range(n):  # n traced: one loop whatever n is
        if s > 10.0:
            break
        s = s + np.sin(x * i) if x > 0 else s - x
    return s


def test_issue_example():
    check(issue_example, (0.5, 5), (0.3, 40), (-0.3, 50))
    ir = ad.make_ir(issue_example)(0.5, 5)
    assert ir.count("while") == 1 and ir.count("cond") == 3


def continue_sum(x, n):
    s = 0.0
    for i in range(n):
        if i == 2 or i == 5:
            continue
        s = s + x ** 2 / (i + 1)
    return s


def test_for_range_continue():
    check(continue_sum, (1.5, 10), (0.5, 0))


def nested(x, n):
    total = 0.0
    for i in range(n):
        j = 0
        while j < n:
            if j > i:
                break
            if i + j == 3 or i + j == 5:
                j += 1
                continue
            total = total + np.cos(x * (i - j))
            j += 1
        if total > 4.0:
            break
    return total


def test_nested_loops_break_continue():
    check(nested, (0.4, 6), (0.1, 9))


def stepped(x, lo, hi):
    s = x
    for k in range(hi, lo, -2):
        s = s * 0.9 + k * x
    return s


def test_range_with_step_and_traced_bounds():
    check(stepped, (1.1, 1, 9), (1.1, 5, 4))


def early_return(x):
    if x > 1.0:
        return x ** 2
    y = np.exp(x)
    if y > 2.0:
        return y - x
    return y


def test_early_return():
    check(early_return, (1.5,), (0.9,), (0.1,))


def find_first(x, n):
    v = x
    for i in range(n):
        v = v * 1.5
        if v > 10.0:
            return v + i
    return -v


def test_return_inside_loop():
    check(find_first, (1.0, 10), (1.0, 2), (0.01, 5))


def loop_else(x, n):
    s = x
    for i in range(n):
        if s > 3.0:
            break
        s = s * 1.5
    else:
        s = -s
    return s


def test_for_else():
    check(loop_else, (1.0, 10), (1.0, 2))


def _helper(x):
    return np.sin(x) if x > 0 else x ** 3


def _helper_loop(x, n):
    for _ in range(n):
        x = _helper(x) + 0.5
    return x


def test_helpers_are_converted():
    check(_helper_loop, (0.3, 4), (-1.2, 3))


def test_static_conditions_keep_python_semantics():
    def f(x, n):
        out = x
        if n > 2:               # a static argument: Python decides, no cond op
            out = out * 2.0
        for _ in range(n):      # a static range: unrolled, as Python runs it
            out = np.sin(out)
        if x.shape[0] > 1:      # a shape: static too
            out = out[1:]
        return np.sum(out)

    x = np.array([0.1, 0.2, 0.3])
    ir = ad.make_ir(f, static_argnums=1)(x, 3)
    assert ir.count("cond") == 0 and ir.count("while") == 0 and ir.count("sin") == 3
    g = ad.grad(f, static_argnums=1)(x, 3)
    for k in range(3):
        def f_k(t, k=k):
            y = x.copy()
            y[k] = t
            return f(y, 3)
        np.testing.assert_allclose(g[k], fd(f_k, (x[k],)), rtol=1e-6, atol=1e-9)
    assert g[0] == 0.0
    # a branch Python does not take is never traced: code that cannot trace is fine there
    def h(x, flag):
        if flag:
            return float(x)  # would be a TracingError if traced
        return x * 2.0
    assert ad.grad(h, static_argnums=1)(1.5, False) == 2.0


def test_one_specialization_serves_both_branches():
    g = ad.grad(piecewise)
    for x in (-2.0, 0.3, 1.7, -3.0):
        np.testing.assert_allclose(g(x), fd(piecewise, (x,)), rtol=1e-5)
    assert len(g._cache) == 1


def test_trace_size_does_not_depend_on_trip_count():
    def f(x, n):
        s = x
        for i in range(n):
            s = 0.5 * s + np.sin(x + i)
        return s

    small = ad.make_ir(ad.grad(f))(0.3, 10)
    large = ad.make_ir(ad.grad(f))(0.3, 100000)
    assert n_eqns(small) == n_eqns(large)
    assert ad.jit(f)(0.3, 100000) == pytest.approx(f(0.3, 100000), rel=1e-9)


def test_undefined_on_one_path_names_variable_and_line():
    def f(x):
        if x > 0:
            y = x * 2.0
        return y

    line = inspect.getsourcelines(f)[1] + 1
    with pytest.raises(TracingError, match=rf"'y' is assigned only in the true branch.* "
                                           rf"test_convert.py:{line}"):
        ad.grad(f)(1.0)
    assert f(1.0) == 2.0  # eagerly Python is happy on this path


def test_branch_local_temporaries_are_fine():
    def f(x):
        if x > 0:
            t = np.exp(x)
            y = t * x
        else:
            y = x
        return y

    check(f, (0.5,), (-0.5,))


def test_mismatched_shapes_error():
    def f(x):
        if np.sum(x) > 0:
            x = x[:1]
        return np.sum(x)

    with pytest.raises(TracingError, match="'x'.*same shape"):
        ad.grad(f)(np.ones(3))


def test_array_condition_is_refused():
    def f(x):
        if x > 0:
            return np.sum(x)
        return 0.0

    with pytest.raises(TracingError, match=r"shape \(3,\).*np.any"):
        ad.grad(f)(np.ones(3))


def test_unsupported_construct_falls_back_with_location():
    def f(x):
        try:
            y = x + 1.0
        finally:
            pass
        if y > 0:
            return y
        return -y

    assert unsupported_reason(f)[0] == "try"
    line = inspect.getsourcelines(f)[1] + 1
    with pytest.raises(TracingError, match=rf"try at test_convert.py:{line}"):
        ad.grad(f)(1.0)


def test_conversion_can_be_turned_off():
    with pytest.raises(TracingError):
        ad.grad(relu_ish, convert=False)(1.0)
    ad.config.convert = False
    try:
        with pytest.raises(TracingError):
            ad.grad(relu_ish)(1.0)
    finally:
        ad.config.convert = True
    assert ad.grad(relu_ish)(1.0) == 2.0


def test_conversion_is_cached():
    assert converted(piecewise) is converted(piecewise)
    assert converted(np.sin) is np.sin
    assert converted(ad.grad) is ad.grad


def test_lambda_is_converted():
    f = lambda x: x * x if x > 0 else -x  # noqa: E731
    assert ad.grad(f)(-2.0) == -1.0 and ad.grad(f)(3.0) == 6.0


def test_grad_of_grad_through_converted_if():
    g2 = ad.grad(ad.grad(piecewise))
    for x in (-2.0, 0.3, 1.7):
        np.testing.assert_allclose(g2(x), fd(ad.grad(piecewise, mode="interpret"), (x,)),
                                   rtol=1e-5)


def test_fallback_when_source_is_unavailable():
    namespace = {"np": np}
    exec("def f(x):\n    if x > 0:\n        return x\n    return -x\n", namespace)
    f = namespace["f"]
    assert "source" in unsupported_reason(f)[0]
    with pytest.raises(TracingError, match=r"without available source"):
        ad.grad(f)(1.0)


class _Model:
    def __init__(self, scale):
        self.scale = scale

    def act(self, x):
        return np.tanh(x) if x > 0 else self.scale * x


def test_methods_closures_defaults_and_recursion():
    m = _Model(0.1)
    offset = 0.25

    def power(x, n):  # recursion on a static n: Python decides
        return x if n == 1 else x * power(x, n - 1)

    def f(x, k=2):
        y = m.act(x) + offset
        return power(y, 3) + k * x

    check(f, (0.7,), (-0.4,))


class _Callable:
    def __init__(self, scale):
        self.scale = scale

    def __call__(self, x):
        return np.tanh(x) if x > 0 else self.scale * x


class _StaticCall:
    __call__ = staticmethod(lambda x: x * 2.0)


def test_a_callable_instance_is_converted_through_its_call_method():
    check(_Callable(0.1), (0.7,), (-0.4,))
    check(lambda x: _Callable(0.3)(x) * x, (0.7,), (-0.4,))
    g = _StaticCall()
    assert converted(g) is g      # a staticmethod __call__ is not bound to the instance
    np.testing.assert_allclose(ad.grad(g)(1.5), 2.0)


def test_tuple_state_and_in_place_update():
    def fib_like(x, n):
        a, b = x, 1.0
        i = 0
        while i < n:
            a, b = b, a + b * 0.5
            i += 1
        return a * b

    check(fib_like, (0.3, 6), (1.2, 0))

    def masked(x):
        y = x * 1.0
        if np.sum(x) > 0:
            y[0] = 0.0
        return np.sum(y ** 2)

    for mode in ("compiled", "interpret"):
        np.testing.assert_allclose(ad.grad(masked, mode=mode)(np.array([1.0, 2.0])), [0.0, 4.0])
        np.testing.assert_allclose(ad.grad(masked, mode=mode)(np.array([-1.0, -2.0])),
                                   [-2.0, -4.0])


def test_for_over_an_array_iterates_its_static_first_axis():
    def f(x):
        s = 0.0
        for row in x:
            if np.sum(row) > 0:
                s = s + np.sum(row ** 2)
        return s

    x = np.array([[1.0, 2.0], [-3.0, 1.0], [0.5, 0.5]])
    np.testing.assert_allclose(ad.grad(f)(x), [[2.0, 4.0], [0.0, 0.0], [1.0, 1.0]])


def test_max_loop_steps_from_config():
    def f(x, n):
        for i in range(n):
            x = 0.999 * x + 0.001
        return x

    ad.config.max_loop_steps = 5000
    try:
        g = ad.grad(f)
        assert g(1.0, 3000) == pytest.approx(0.999 ** 3000, rel=1e-9)
        assert "max_steps=5000" in str(g.ir(1.0, 3000))
    finally:
        ad.config.max_loop_steps = None


def test_hessian_through_converted_branches():
    h = ad.hessian(piecewise)
    for x in (-2.0, 0.3, 1.7):
        np.testing.assert_allclose(h(np.float64(x)), fd(ad.grad(piecewise, mode="interpret"),
                                                        (x,)), rtol=1e-5)


def test_while_whose_test_becomes_traced():
    def f(x):
        i = 0
        s = x
        while i < 2 or s < 5.0:  # the first two tests are Python's; then the loop is an op
            s = s * 2.0
            i += 1
        return s

    check(f, (0.3,), (7.0,))
    assert ad.make_ir(f)(0.3).count("while") == 1


def test_comparison_chain():
    def f(x, lo):
        calls = []

        def mid():
            calls.append(1)
            return x * 1.0

        if lo < mid() < 2.0:  # the middle operand is evaluated once, as in Python
            y = x ** 2
        else:
            y = -x
        assert len(calls) == 1
        return y

    check(f, (1.5, 0.0), (2.5, 0.0), (0.5, 1.0))
    assert f(1.5, 5.0) == -1.5  # a Python False first link short-circuits


def test_loop_state_errors_name_variable_and_line():
    def grows(x):
        s = x
        while np.sum(s) < 10.0:
            s = np.stack([s, s])
        return np.sum(s)

    line = inspect.getsourcelines(grows)[1] + 2
    with pytest.raises(TracingError, match=rf"'s' is f64\[\] before the loop at "
                                           rf"test_convert.py:{line} and f64\[2\]"):
        ad.jit(grows)(1.0)

    def local_only(x):
        while x < 10.0:
            x = x * 2
            t = x + 1
        return t

    with pytest.raises(TracingError, match=r"'t' is assigned only inside the loop"):
        ad.jit(local_only)(1.0)
    assert local_only(1.0) == 17.0


def test_int_value_into_a_float_carry():
    def f(x):
        s = x
        k = 0
        while s < 10.0:
            s = s * 2.0
            k = k + 1
            if s > 5.0:
                s = k
        return s * x

    check(f, (1.0,), (0.7,), modes=["interpret", "compiled"])


def test_custom_vjp_rules_are_converted():
    @ad.custom_vjp
    def clipped(x):
        return np.clip(x, -1.0, 1.0)

    def fwd(x):
        return clipped(x), x

    def bwd(x, g):
        if np.abs(x) > 1.0:  # Python if on a traced residual
            return (0.0 * g,)
        return (g,)

    clipped.defvjp(fwd, bwd)
    f = lambda x: clipped(x) * 3.0  # noqa: E731
    assert ad.grad(f)(0.5) == 3.0 and ad.grad(f)(2.0) == 0.0


def test_docs_control_flow_md_listing_is_current(tmp_path, monkeypatch):
    import importlib
    import pathlib
    import re
    doc = (pathlib.Path(__file__).parent.parent / "docs" / "control-flow.md").read_text()
    source = re.search(r"(def piecewise\(x\):\n(?:    .*\n)+)", doc).group(1)
    (tmp_path / "model.py").write_text("import numpy as np\n" + source)
    monkeypatch.syspath_prepend(str(tmp_path))
    model = importlib.import_module("model")
    listing = str(ad.make_ir(model.piecewise)(0.5)).replace("model.py:", "model.py:@")
    # the doc's listing numbers lines from the def (line 1); the file has an import above it
    listing = re.sub(r"model.py:@(\d+)", lambda m: f"model.py:{int(m.group(1)) - 1}", listing)
    assert listing in doc


def test_jvp_and_vjp_convert_too():
    y, t = ad.jvp(piecewise, (0.3,), (1.0,))
    np.testing.assert_allclose([y, t], [piecewise(0.3), fd(piecewise, (0.3,))], rtol=1e-6)
    y, vjp_fn = ad.vjp(piecewise, 1.7)
    np.testing.assert_allclose(vjp_fn(1.0)[0], fd(piecewise, (1.7,)), rtol=1e-6)


def test_vmap_converts_per_example_branches():
    import warnings
    xs = np.array([-2.0, 0.3, 1.7])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no per-example fallback
        got = ad.vmap(piecewise)(xs)
        grads = ad.vmap(ad.grad(piecewise))(xs)
    np.testing.assert_allclose(got, [piecewise(x) for x in xs], rtol=1e-12)
    np.testing.assert_allclose(grads, [fd(piecewise, (x,)) for x in xs], rtol=1e-5)


_scale = 3.0


def test_defaults_and_annotations_are_not_re_evaluated():
    # defaults refer to names of the defining scope (a loop variable that is gone by call time)
    fns = [lambda x, k=k: np.sin(x) * k if x > 0 else x * k for k in (1.0, 2.0)]
    del_me = 5.0

    def g(x: "NotDefinedAnywhere", c=del_me) -> "AlsoMissing":  # noqa: F821
        if x > 0:
            return x * c
        return -x

    del del_me
    for k, f in zip((1.0, 2.0), fns):
        assert ad.grad(f)(0.5) == pytest.approx(np.cos(0.5) * k)
        assert ad.grad(f)(-0.5) == pytest.approx(k)
    assert ad.grad(g)(2.0) == pytest.approx(5.0)
    assert ad.grad(g)(-2.0) == pytest.approx(-1.0)


# -- source lookup (convert/core.py _source_by_lines, inspect.getsource only as a fallback) -----

def _decorated(fn):
    return fn


@_decorated
def _multi_line(x,
                y=2.0):
    """A docstring
spanning a line at column 0."""
    def inner(v):
        return (v
                * y)
    if x > 0:
        z = inner(x)
    else:
        z = -x
    return (z +
            1.0)


def test_source_by_lines_without_inspect(monkeypatch):
    from autodiff_jit.convert import core

    def no_inspect(f):
        raise AssertionError("inspect.getsource should not be needed")
    monkeypatch.setattr(core.inspect, "getsource", no_inspect)
    monkeypatch.setattr(core, "_CODE_CACHE", {})
    monkeypatch.setattr(core, "_FUNC_CACHE", {False: core.weakref.WeakKeyDictionary(),
                                              True: core.weakref.WeakKeyDictionary()})
    assert unsupported_reason(_multi_line) is None
    for x in (-1.5, 0.5):
        np.testing.assert_allclose(ad.grad(_multi_line)(x), fd(_multi_line, (x,)), rtol=1e-6)
    f = lambda x: (  # noqa: E731
        x * x if x > 0
        else -x)
    assert ad.grad(f)(-2.0) == -1.0 and ad.grad(f)(3.0) == 6.0


def test_source_cut_that_does_not_parse_falls_back_to_inspect(monkeypatch):
    from autodiff_jit.convert import core
    calls = []
    real = core.inspect.getsource
    monkeypatch.setattr(core.inspect, "getsource", lambda f: calls.append(f) or real(f))
    monkeypatch.setattr(core, "_source_by_lines", lambda f: "def cut(x:\n")
    monkeypatch.setattr(core, "_CODE_CACHE", {})
    monkeypatch.setattr(core, "_FUNC_CACHE", {False: core.weakref.WeakKeyDictionary(),
                                              True: core.weakref.WeakKeyDictionary()})
    assert unsupported_reason(_multi_line) is None and calls == [_multi_line]
    for x in (-1.5, 0.5):
        np.testing.assert_allclose(ad.grad(_multi_line)(x), fd(_multi_line, (x,)), rtol=1e-6)


def _power(x, n):
    # calls itself by its module-level name (the converted def once made that name a closure
    # cell of the conversion's factory, so the call found the runtime namespace)
    if n == 0:
        return 1.0
    return x * _power(x, n - 1)


def _leaves(x):
    if isinstance(x, (tuple, list)):
        return [v for item in x for v in _leaves(item)]  # the name inside a comprehension
    return [x]


def test_recursive_functions_call_themselves():
    check(lambda x: _power(x, 3) + 0 * x, (1.3,))
    check(lambda x: np.sum(np.stack(_leaves((np.split(np.array([x, 2 * x]) ** 2, 2),
                                             [x * np.ones(1)])))), (1.5,))


def test_recursive_nested_functions_call_themselves():
    def f(x):
        def rec(v, n):
            return v if n == 0 else np.sin(rec(v, n - 1))
        return rec(x, 2)

    check(f, (0.5,))


@pytest.mark.parametrize("mode", ["compiled", "interpret", "tape"])
def test_the_conversion_cache_does_not_keep_functions_alive(mode):
    # the cache is keyed weakly by the function; a cached value that referred back to it (or
    # held it in a closure) kept every converted function, its closure's arrays and tape
    # graphs alive for the life of the process
    import gc
    import weakref

    def make():
        big = np.ones(1000)

        def f(x):
            y = np.zeros(2)
            y[0] = x[0]
            if x[1] > 0:
                y[1] = x[1]
            return np.sum(y * x) + 0.0 * big[0]
        return f, weakref.ref(big)
    f, big = make()
    ad.grad(f, mode=mode)(np.array([1.0, 2.0]))
    alive = weakref.ref(f)
    del f
    gc.collect()
    assert alive() is None and big() is None


def _not_convertible(out, v):
    try:                               # `try` is not rewritten: this helper runs as written
        out[0] = v[0] * 2.0
    finally:
        pass
    return out


@pytest.mark.parametrize("mode", ["compiled", "tape"])
def test_a_helper_that_is_not_converted_does_not_keep_the_call_alive(mode):
    # the cache keeps why a helper was not converted; with the exception's traceback it kept
    # the frames of the first call, and their arguments (traced values, a tape graph)
    import gc
    from autodiff_jit import tape
    earlier = set(tape._REWIRED)

    def f(x):
        return np.sum(_not_convertible(x * 1.0, x))
    np.testing.assert_allclose(ad.grad(f, mode=mode)(np.array([1.0, 2.0])), [2.0, 1.0])
    gc.collect()
    assert not tape._REWIRED - earlier
    from autodiff_jit.convert import core
    for why in core._CODE_CACHE.values():
        assert not isinstance(why, Exception) or why.__traceback__ is None
