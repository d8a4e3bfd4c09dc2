"""Run HIPS autograd's numpy gradient tests against autodiff_jit through shim.py.

    python tests/autograd_suite/run_suite.py [--dir DIR] [--modes compiled,interpret,tape]

DIR holds autograd's test files (default: the five vendored in autograd_tests/, autograd's
MIT licence beside them; for the others, autograd's own tests/ directory). Prints
passed/failed per file and mode.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def run_file(path, mode, select=()):
    """Run one of autograd's test files (or the tests `select` names in it) in a fresh process
    with the shim installed; the CompletedProcess (pytest's -rf summary on stdout)."""
    path = pathlib.Path(path)
    env = dict(os.environ, AD_SUITE_MODE=mode,
               PYTHONPATH=os.pathsep.join([str(HERE), str(path.parent),
                                           os.environ.get("PYTHONPATH", "")]))
    targets = [f"{path}::{t}" for t in select] or [str(path)]
    # -c: autograd's pyproject asks for plugins not needed here; --noconftest: the vendored
    # directory's conftest.py keeps the project's own session from collecting these files
    code = ("import shim, sys, pytest; shim.install(); "
            f"sys.exit(pytest.main({targets!r} + ['-q', '-p', 'no:cacheprovider', "
            f"'-c', {os.devnull!r}, '-o', 'addopts=', '--rootdir', {str(path.parent)!r}, "
            f"'--noconftest', '-W', 'ignore', '-rf']))")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, cwd=path.parent)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", default=str(HERE / "autograd_tests"))
    p.add_argument("--modes", default="compiled,interpret,tape")
    p.add_argument("--failures", action="store_true", help="list the failing tests")
    p.add_argument("files", nargs="*", default=["test_scalar_ops.py", "test_systematic.py",
                                                "test_binary_ops.py", "test_numpy.py",
                                                "test_core.py", "test_linalg.py",
                                                "test_truediv.py", "test_graphs.py",
                                                "test_jacobian.py"])
    a = p.parse_intermixed_args()
    for mode in a.modes.split(","):
        for f in a.files:
            path = pathlib.Path(a.dir) / f
            if not path.exists():
                continue
            out = run_file(path, mode)
            tail = [ln for ln in out.stdout.splitlines() if " passed" in ln or " failed" in ln]
            print(f"{mode:10s} {f:22s} {tail[-1] if tail else out.stdout[-300:]}")
            if a.failures:
                for ln in out.stdout.splitlines():
                    if ln.startswith("FAILED"):
                        print("    " + ln[:150])


if __name__ == "__main__":
    main()
