"""Every case of the tests/numpy/ tables again with its float64 inputs as float32: the result's
dtype and shape are numpy's (float32 stays float32 where numpy keeps it and becomes float64
where numpy widens: cov, vander, bincount weights, a list of quantiles), values to float32
accuracy. The dtype rules live in the numpy layer, which every mode shares, so the default
run checks interpret mode; compiled mode is under -m slow."""
import importlib
import pathlib
import warnings

import numpy as np
import pytest

import autodiff_jit as ad
from table import _leaves

_HERE = pathlib.Path(__file__).parent
_SKIP = {"test_float32_dtypes", "test_catalog"}


def _float32_cases():
    cases = []
    for path in sorted(_HERE.glob("test_*.py")):
        if path.stem in _SKIP:
            continue
        mod = importlib.import_module(path.stem)
        for table in (t for t in dir(mod) if t.isupper() and isinstance(getattr(mod, t), dict)):
            for name, case in getattr(mod, table).items():
                if not (isinstance(case, tuple) and len(case) >= 2 and callable(case[0])
                        and isinstance(case[1], (list, tuple))):
                    continue
                args = [a.astype(np.float32) if isinstance(a, np.ndarray) and
                        a.dtype == np.float64 else a for a in case[1]]
                if any(a is not b for a, b in zip(args, case[1])):
                    cases.append(pytest.param(case[0], args, id=f"{path.stem}:{name}"))
    return cases


CASES = _float32_cases()


def _check(f, args, mode):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # numpy's own warnings (all-NaN slices, ...)
        try:
            want = f(*args)
        except Exception:   # noqa: BLE001 - numpy refuses float32 here: nothing to compare
            pytest.skip("numpy itself refuses these float32 inputs")
        got = ad.jit(f, mode=mode)(*args)
    for g, w in zip(_leaves(got), _leaves(want)):
        g, w = np.asarray(g), np.asarray(w)
        assert (g.dtype, g.shape) == (w.dtype, w.shape)
        if w.dtype.kind == "f":
            # float32 accuracy: the cases are short sums and products of O(1) values
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5, equal_nan=True)


def test_the_tables_have_float32_cases():
    assert len(CASES) > 150


@pytest.mark.parametrize("f,args", CASES)
def test_float32_result_dtype_is_numpys(f, args):
    _check(f, args, "interpret")


@pytest.mark.slow
@pytest.mark.parametrize("f,args", CASES)
def test_float32_result_dtype_is_numpys_compiled(f, args):
    _check(f, args, "compiled")
