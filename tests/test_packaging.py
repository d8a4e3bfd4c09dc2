"""Packaging metadata: one version, an MIT LICENSE file matching pyproject's SPDX expression."""
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_license_file_matches_pyproject():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text
    assert "version" in project["dynamic"]   # read from autodiff_jit/_version.py



def test_classifiers_and_no_license_classifier():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    classifiers = project["classifiers"]
    assert "Programming Language :: Python :: 3" in classifiers
    # PEP 639: a license expression replaces the License :: classifiers (setuptools rejects both)
    assert not any(c.startswith("License ::") for c in classifiers)
