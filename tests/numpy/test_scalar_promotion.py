"""Every registered ufunc, traced with each supported array dtype against each kind of
constant operand (Python int/float/bool, numpy scalars, 0-d arrays; both orders): the result
dtype is numpy's (NEP 50: Python scalars are weak, numpy scalars and 0-d arrays are not), or
the call is refused with an error -- never answered in another dtype. Where numpy itself
raises (no loop, core dimensions missing), tracing raises too.

Dtypes are decided while tracing, the same for every mode, so the sweep only traces
(ad.make_ir); test_input_dtypes.py checks values for float32 and int64 inputs. The default
run takes the pairs most likely to differ (float32/int64/bool against weak and strong
scalars); every pair runs under -m slow."""
import warnings

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.numpy._base import UFUNCS

_BASE = np.array([0.5, 1.5, 2.0, 3.0])
TRACED = {"f32": _BASE.astype(np.float32), "f64": _BASE, "i64": np.array([1, 2, 3, 4]),
          "i32": np.array([1, 2, 3, 4], np.int32),
          "bool": np.array([True, False, True, True])}
CONSTANTS = {"int": 2, "float": 2.5, "bool": True, "np.float64": np.float64(2.5),
             "np.float32": np.float32(2.5), "np.int64": np.int64(2), "np.int32": np.int32(2),
             "np.bool": np.bool_(True), "0d-float64": np.array(2.5), "0d-int64": np.array(2),
             "0d-float32": np.array(2.5, np.float32)}
_SUPPORTED = {np.dtype(t) for t in ("float64", "float32", "int64", "int32", "bool")}


_DEFAULT_PAIRS = ({"f32", "i64", "bool"}, {"float", "bool", "np.float64", "np.int32",
                                            "0d-float32"})


def _cases():
    for uf in sorted((u for u in UFUNCS if isinstance(u, np.ufunc)), key=lambda u: u.__name__):
        for tname, traced in TRACED.items():
            if uf.nin == 1:
                yield pytest.param(uf, (traced,), 0, id=f"{uf.__name__}({tname})")
            elif uf.nin == 2:
                for cname, const in CONSTANTS.items():
                    marks = () if tname in _DEFAULT_PAIRS[0] and cname in _DEFAULT_PAIRS[1] \
                        else (pytest.mark.slow,)
                    yield pytest.param(uf, (traced, const), 0, marks=marks,
                                       id=f"{uf.__name__}({tname},{cname})")
                    yield pytest.param(uf, (const, traced), 1, marks=marks,
                                       id=f"{uf.__name__}({cname},{tname})")


def _numpy(uf, args):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            out = uf(*args)
        except Exception as exc:   # noqa: BLE001 - any refusal by numpy
            return exc
    return [np.asarray(o).dtype for o in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.parametrize("uf,args,pos", list(_cases()))
def test_result_dtype_is_numpys(uf, args, pos):
    def f(t):
        a = list(args)
        a[pos] = t
        return uf(*a)

    want = _numpy(uf, args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            got = [a.dtype for a in ad.make_ir(f)(args[pos]).out_avals]
        except (TypeError, ValueError, NotImplementedError, ad.TracingError) as exc:
            if isinstance(want, Exception) or not all(w in _SUPPORTED for w in want):
                return   # numpy refuses, or answers in a dtype we do not have: refused too
            if isinstance(exc, NotImplementedError):
                return   # a documented refusal (it names what is not supported)
            raise
    assert not isinstance(want, Exception), f"numpy raises {want!r}; autodiff_jit accepts it"
    assert got == want


B = np.array([[True, False, True], [True, True, False]])
BOOL_FUNCTIONS = {
    "diff": lambda b: np.diff(b, axis=1),            # numpy: not_equal for booleans
    "trapezoid": lambda b: np.trapezoid(b, axis=0),  # pairs added as bools: True + True
    "nanmedian": lambda b: np.nanmedian(b, axis=0),
    "median": lambda b: np.median(b, axis=1),
    "quantile_lower": lambda b: np.quantile(b, 0.5, method="lower"),
}


@pytest.mark.parametrize("name", sorted(BOOL_FUNCTIONS))
def test_numpy_functions_of_bool_arrays_follow_numpy(name):
    f = BOOL_FUNCTIONS[name]
    want = f(B)
    for mode in ("compiled", "interpret"):
        got = ad.jit(f, mode=mode)(B)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("f", [lambda b: np.gradient(b, axis=0), lambda b: np.quantile(b, 0.5),
                               lambda b: np.nanpercentile(b, 50)])
def test_bool_refusals_are_numpys(f):
    with pytest.raises(TypeError, match="boolean subtract"):
        f(B)
    with pytest.raises(TypeError, match="boolean subtract"):
        ad.jit(f, mode="interpret")(B)


@pytest.mark.parametrize("f", [lambda x: np.vecdot(x, x[:2]), lambda x: np.vecdot(x, 2.0),
                               lambda x: np.matvec(x, x[0, :2]), lambda x: np.matvec(x[0], x[0]),
                               lambda x: np.vecmat(x[0], x[:2])])
def test_gufunc_core_dimensions_are_checked(f):
    x = np.ones((3, 3))
    with pytest.raises(ValueError):
        f(x)
    with pytest.raises(ValueError):
        ad.jit(f, mode="interpret")(x)


@pytest.mark.parametrize("f", [lambda x: np.maximum.reduce(x, dtype=np.float32),
                               lambda x: np.minimum.reduce(x, axis=0, dtype=np.int64),
                               lambda x: np.logaddexp.reduce(x, dtype=np.float32),
                               lambda x: np.logical_and.reduce(x, dtype=bool)])
def test_ufunc_reduce_computes_in_dtype(f):
    x = np.array([1.5, 0.0, 2.75])
    want = f(x)
    for mode in ("compiled", "interpret"):
        got = ad.jit(f, mode=mode)(x)
        assert np.asarray(got).dtype == np.asarray(want).dtype
        np.testing.assert_allclose(got, want, rtol=1e-6)


# numpy functions that are not ufuncs turn a Python scalar into an array first (a strong
# int64/float64), where ufuncs let it take the array's dtype
STRONG_SCALARS = {
    "kron": lambda a: np.kron(a, 2), "kron_left": lambda a: np.kron(2.5, a),
    "einsum": lambda a: np.einsum("i,->i", a, 2), "dot": lambda a: np.dot(a, 0.5),
    "outer": lambda a: np.outer(2, a), "tensordot": lambda a: np.tensordot(a, 2, 0),
    "multiply (ufunc, weak)": lambda a: np.multiply(a, 2),
}


@pytest.mark.parametrize("name", sorted(STRONG_SCALARS))
@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_python_scalars_in_numpy_functions_are_strong(name, dtype):
    f, a = STRONG_SCALARS[name], np.array([1, 2, 3], dtype)
    want = f(a)
    for mode in ("compiled", "interpret", "tape"):
        got = ad.jit(f, mode=mode)(a) if mode != "tape" else f(ad.as_tensor(a)).numpy()
        assert np.asarray(got).dtype == want.dtype, (mode, np.asarray(got).dtype, want.dtype)
        np.testing.assert_array_equal(got, want)
