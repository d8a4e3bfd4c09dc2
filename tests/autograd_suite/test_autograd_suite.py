"""HIPS autograd's own numpy gradient tests (vendored in autograd_tests/, MIT) against
autodiff_jit through shim.py, each file in a fresh process with the shim installed.

By default a fast subset runs (the list and cast idioms of test_numpy.py, interpret mode); `-m slow` runs all five files in all three modes, each of which must pass entirely."""
from __future__ import annotations

import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_suite import run_file  # noqa: E402

TESTS = HERE / "autograd_tests"
FILES = ("test_numpy.py", "test_systematic.py", "test_scalar_ops.py", "test_binary_ops.py",
         "test_core.py")
FAST = ("test_2d_array_fanout", "test_array_from_arrays_2", "test_r_slicing", "test_c_",
        "test_simple_append_list", "test_cast_to_int", "test_make_diagonal",
        "test_max_equal_values_2d")


def _check(out):
    summary = [ln for ln in out.stdout.splitlines() if " passed" in ln or " failed" in ln]
    assert out.returncode == 0 and summary and " failed" not in summary[-1], \
        out.stdout[-3000:] + out.stderr[-2000:]


def test_fast_subset():
    # interpret mode: the reference; tests/numpy/test_lists.py covers these idioms in all modes
    _check(run_file(TESTS / "test_numpy.py", "interpret", FAST))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["compiled", "interpret", "tape"])
@pytest.mark.parametrize("name", FILES)
def test_whole_file(name, mode):
    _check(run_file(TESTS / name, mode))
