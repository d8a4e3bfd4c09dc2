"""Every case of the tests/numpy/ tables again with its float64 inputs as float32, as
int64 (3x rounded) and as bool (x > 0; int32 under -m slow): the result's dtype and shape are numpy's (float32 stays float32 where numpy
keeps it and becomes float64 where numpy widens: cov, vander, bincount weights, a list of
quantiles; ints stay ints where numpy keeps them: initial=, insert, polyval), values to float32
accuracy. Where numpy refuses the converted inputs, autodiff_jit refuses them too; where numpy
computes a step in float16 or int8 (np.sin of bools), it refuses by name. The dtype rules live in the numpy layer, which every mode shares, so the default
run checks interpret mode; compiled mode is under -m slow."""
import warnings

import numpy as np
import pytest

import autodiff_jit as ad
from table import _leaves, table_cases

_SKIP = {"test_input_dtypes", "test_catalog"}


_AS = {"float32": lambda a: a.astype(np.float32),
       "int64": lambda a: np.round(a * 3).astype(np.int64),
       "int32": lambda a: np.round(a * 3).astype(np.int32),
       "bool": lambda a: a > 0}
# numpy's int64 arithmetic wraps where a NaN became INT_MIN; ours sums ints in float64
_NOT_COMPARABLE = {"int64-test_reductions_more:nanstd", "int64-test_reductions_more:nanvar",
                   # rank-deficient (bool) design matrix: numpy's residuals are empty, a
                   # value-dependent shape (docs/linalg.md)
                   "bool-test_polynomial_signal:polyfit_full"}


def _converted_cases(kind):
    cases = []
    for stem, name, f, orig in table_cases(_SKIP):
        args = [_AS[kind](a) if isinstance(a, np.ndarray) and a.dtype == np.float64 else a
                for a in orig]
        cid = f"{kind}-{stem}:{name}"
        if any(a is not b for a, b in zip(args, orig)) and cid not in _NOT_COMPARABLE:
            cases.append(pytest.param(f, args, id=cid))
    return cases


CASES = _converted_cases("float32") + _converted_cases("int64") + _converted_cases("bool")
# int32 behaves as int64 nearly everywhere (numpy widens both alike): a slow-only sweep
SLOW_CASES = _converted_cases("int32")


def _check(f, args, mode):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # numpy's own warnings (all-NaN slices, ...)
        try:
            want = f(*args)
        except Exception:   # noqa: BLE001 - numpy refuses these inputs: so must we
            with pytest.raises(Exception):   # noqa: B017,PT011 - any refusal
                ad.jit(f, mode=mode)(*args)
            return
        try:
            got = ad.jit(f, mode=mode)(*args)
        except TypeError as exc:
            # numpy computes a step in float16 or int8 (np.sin of bools): refused, by name
            if "autodiff_jit does not support" in str(exc) or \
                    "not supported by autodiff_jit" in str(exc):
                return
            raise
    for g, w in zip(_leaves(got), _leaves(want)):
        g, w = np.asarray(g), np.asarray(w)
        assert (g.dtype, g.shape) == (w.dtype, w.shape)
        if w.dtype.kind in "iub":
            np.testing.assert_array_equal(g, w)
        elif w.dtype.kind == "f":
            # float32 accuracy: the cases are short sums and products of O(1) values
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5, equal_nan=True)


def test_the_tables_have_float32_cases():
    assert len(CASES) > 300


@pytest.mark.parametrize("f,args", CASES)
def test_float32_result_dtype_is_numpys(f, args):
    _check(f, args, "interpret")


@pytest.mark.slow
@pytest.mark.parametrize("f,args", SLOW_CASES)
def test_int32_result_dtype_is_numpys(f, args):
    _check(f, args, "interpret")


@pytest.mark.slow
@pytest.mark.parametrize("f,args", CASES)
def test_float32_result_dtype_is_numpys_compiled(f, args):
    _check(f, args, "compiled")
