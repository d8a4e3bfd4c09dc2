"""docs/numpy.md is generated from the dispatch tables: regenerate it when this fails
(`python -m autodiff_jit.numpy.catalog > docs/numpy.md`)."""
import pathlib

from autodiff_jit.numpy.catalog import render

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "numpy.md"


def test_docs_numpy_md_matches_the_registry():
    assert DOC.read_text() == render(), \
        "docs/numpy.md is out of date: run python -m autodiff_jit.numpy.catalog > docs/numpy.md"


def test_catalog_lists_new_families():
    text = render()
    for name in ("np.sort", "np.pad", "np.cumprod", "np.arctan2", "np.median", "np.convolve",
                 "np.einsum", "np.linspace", "np.take_along_axis", "np.nanmean"):
        assert f"`{name}`" in text, name
