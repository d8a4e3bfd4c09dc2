"""docs/numpy.md is generated from the dispatch tables: regenerate it when this fails
(`python -m autodiff_jit.numpy.catalog > docs/numpy.md`)."""
import pathlib
import re

import pytest

from autodiff_jit.numpy.catalog import numpy_series, render

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "numpy.md"


def test_docs_numpy_md_matches_the_registry():
    text = DOC.read_text()
    recorded = re.search(r"<!-- numpy (\d+\.\d+) ", text)
    if recorded and recorded.group(1) != numpy_series():
        pytest.skip(f"docs/numpy.md lists numpy {recorded.group(1)}'s names; this is numpy "
                    f"{numpy_series()} (e.g. np.row_stack is gone from 2.5)")
    assert text == render(), \
        "docs/numpy.md is out of date: run python -m autodiff_jit.numpy.catalog > docs/numpy.md"


def test_catalog_lists_new_families():
    text = render()
    for name in ("np.sort", "np.pad", "np.cumprod", "np.arctan2", "np.median", "np.convolve",
                 "np.einsum", "np.linspace", "np.take_along_axis", "np.nanmean"):
        assert f"`{name}`" in text, name
