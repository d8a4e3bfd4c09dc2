"""Every numpy keyword argument is implemented or refused by name, never ignored (STYLE 11)."""
import inspect

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.numpy import FUNCTIONS, UFUNCS

MODES = ["compiled", "interpret", "tape"]


@pytest.mark.parametrize("table", [FUNCTIONS, UFUNCS], ids=["functions", "ufuncs"])
def test_no_implementation_swallows_keywords(table):
    for np_fn, impl in table.items():
        params = inspect.signature(impl).parameters.values()
        assert not any(p.kind is p.VAR_KEYWORD for p in params), np_fn
        if table is FUNCTIONS:
            assert hasattr(impl, "_np_accepts"), f"{np_fn} registered without implements()"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("call,arg", [
    (lambda x: np.nanmean(x, where=x > 1.5), "where"),
    (lambda x: np.sum(np.pad(x, 1, mode="reflect", reflect_type="odd")), "reflect_type"),
    (lambda x: np.nanvar(x, mean=np.nanmean(x, keepdims=True)), "mean"),
    (lambda x: np.sum(np.concatenate([x, x], dtype=np.float32)), "dtype"),
    (lambda x: np.sum(np.add(x, x, where=x > 1.5)), "where"),
    (lambda x: np.sum(np.exp(x, dtype=np.float32)), "dtype"),
])
def test_unhandled_keyword_is_refused_by_name(mode, call, arg):
    with pytest.raises(NotImplementedError, match=rf"\b{arg}="):
        ad.grad(call, mode=mode)(np.array([1.0, 2.0, 4.0]))


@pytest.mark.parametrize("mode", ["compiled", "interpret"])
def test_method_keywords_are_refused_like_the_function(mode):
    with pytest.raises(NotImplementedError, match=r"ndarray.std\(\.\.\., out="):
        ad.grad(lambda x: x.std(out=np.empty(())), mode=mode)(np.array([1.0, 2.0]))


@pytest.mark.parametrize("mode", MODES)
def test_var_correction_is_ddof(mode):
    x = np.array([1.0, 2.0, 4.0, 7.0])
    got = ad.jit(lambda x: np.var(x, correction=1), mode=mode)(x)
    np.testing.assert_allclose(got, np.var(x, ddof=1), rtol=1e-14)
    g = ad.grad(lambda x: np.std(x, correction=1), mode=mode)(x)
    # d std / dx_i = (x_i - mean) / ((n - 1) * std)
    want = (x - x.mean()) / ((len(x) - 1) * np.std(x, ddof=1))
    np.testing.assert_allclose(g, want, rtol=1e-12)


def test_default_valued_keywords_are_accepted():
    x = np.array([1.0, 2.0, 4.0])
    f = ad.jit(lambda x: np.sum(x, where=True) + np.add(x, x, out=None, casting="same_kind")[0]
               + np.take(x, [1], mode="raise")[0] + x.sum(axis=0, keepdims=False))
    np.testing.assert_allclose(f(x), 7.0 + 2.0 + 2.0 + 7.0)


# Parameters an implementation declares but need not read: each changes only memory layout,
# speed or subclass handling, never a value autodiff_jit returns.
_NEED_NOT_READ = {
    "order": "memory layout (zeros_like, copy, einsum, ...): traced values have none",
    "subok": "ndarray subclasses: traced values are not subclasses",
    "optimize": "np.einsum's contraction order: speed only",
    "kind": "the sorting algorithm: autodiff_jit's sort is stable, a valid result for any kind",
    "stable": "stable=False allows any tie order, and the stable one is one of them",
    "tol": "np.real_if_close's tolerance acts on complex inputs, which are refused",
    "astype(copy=)": "np.astype: a copy where numpy may return x itself (same values)",
    "meshgrid(copy=)": "copy=False gives views numpy says not to write into (same values)",
    "device": "the array API's device: CPU only",
    "isin(assume_unique=)": "lets numpy skip its uniqueness pass: the same result whenever "
                            "the inputs are unique, as numpy requires",
    "histogram_bin_edges(weights=)": "numpy reads it only for string bin estimators, which "
                                     "are refused",
}


def _unread_parameters(impl):
    import ast
    import textwrap
    try:
        node = ast.parse(textwrap.dedent(inspect.getsource(impl))).body[0]
    except (OSError, TypeError, SyntaxError, IndexError):
        return []
    if not isinstance(node, ast.FunctionDef):
        return []
    a = node.args
    params = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
    read = {n.id for stmt in node.body for n in ast.walk(stmt) if isinstance(n, ast.Name)}
    return [p for p in params if p not in read]


@pytest.mark.parametrize("table", [FUNCTIONS, UFUNCS], ids=["functions", "ufuncs"])
def test_every_declared_parameter_is_read_or_refused(table):
    # a parameter declared, not read and not defaults_only would be silently ignored
    ignored = []
    for np_fn, impl in table.items():
        defaults_only = {d[0] for d in getattr(impl, "_np_defaults_only", ())}
        for p in _unread_parameters(impl):
            name = f"{getattr(np_fn, '__name__', np_fn)}({p}=)"
            if p not in defaults_only and p not in _NEED_NOT_READ and name not in _NEED_NOT_READ:
                ignored.append(name)
    assert not ignored, f"declared but neither read nor defaults_only: {sorted(set(ignored))}"
