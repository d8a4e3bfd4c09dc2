"""The table-driven check every numpy function of tests/numpy/ goes through: the value against
numpy's in every mode, and the gradient against central finite differences in every mode."""
from __future__ import annotations

import importlib
import pathlib

import numpy as np

import autodiff_jit as ad

from helpers import check_grads

ALL_MODES = ("compiled", "interpret", "tape")


def check_value(f, args, modes=ALL_MODES, rtol=1e-13, atol=0.0, zero_signs=True):
    """f's result in each mode equals numpy's (dtype and shape too; NaN where numpy has NaN)."""
    expected = f(*args)
    for mode in modes:
        got = ad.jit(f, mode=mode)(*args)
        for g, e in zip(_leaves(got), _leaves(expected)):
            e = np.asarray(e)
            g = np.asarray(g)
            assert g.shape == e.shape, (mode, g.shape, e.shape)
            assert g.dtype == e.dtype, (mode, g.dtype, e.dtype)
            if e.dtype.kind == "f":
                np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, equal_nan=True,
                                           err_msg=f"mode={mode}")
                # signed zeros as numpy
                assert not zero_signs or np.array_equal(np.signbit(g[g == 0]), np.signbit(e[g == 0])), mode
            else:
                np.testing.assert_array_equal(g, e, err_msg=f"mode={mode}")


def _leaves(x):
    return list(x) if isinstance(x, tuple) else [x]


def check_case(f, args, grad=True, rtol=1e-13, grad_rtol=1e-5, grad_atol=1e-6, modes=ALL_MODES):
    check_value(f, args, modes=modes, rtol=rtol)
    if grad:
        def scalar(*a):
            out = f(*a)
            out = out if isinstance(out, tuple) else (out,)
            w = 0.0
            for k, o in enumerate(out):  # a fixed weighting, so every output element counts
                if np.dtype(o.dtype).kind == "f" if hasattr(o, "dtype") else isinstance(o, float):
                    o = o * 1.0
                    wts = np.cos(np.arange(np.size(o)) + k).reshape(np.shape(o)) + 1.5
                    w = w + np.sum(o * wts)
            return w
        check_grads(scalar, args, modes=modes, rtol=grad_rtol, atol=grad_atol)


def table_cases(skip=()):
    """(module stem, case name, f, args) for every case of the tests/numpy tables: the
    upper-case dicts of `(f, [args], ...)` tuples in each test module not in `skip` (the
    sweeps that rerun the tables with other inputs)."""
    for path in sorted(pathlib.Path(__file__).parent.glob("test_*.py")):
        if path.stem in skip:
            continue
        mod = importlib.import_module(path.stem)
        for table in (t for t in dir(mod) if t.isupper() and isinstance(getattr(mod, t), dict)):
            for name, case in getattr(mod, table).items():
                if isinstance(case, tuple) and len(case) >= 2 and callable(case[0]) \
                        and isinstance(case[1], (list, tuple)):
                    yield path.stem, name, case[0], case[1]
