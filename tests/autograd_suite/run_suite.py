"""Run HIPS autograd's numpy gradient tests against autodiff_jit through shim.py.

    python tests/autograd_suite/run_suite.py DIR [--modes compiled,interpret,tape]

DIR holds autograd's test files (tests/test_scalar_ops.py, test_systematic.py with its
numpy_utils.py, ...; github.com/HIPS/autograd, MIT licence). They are not part of this
repository. Prints passed/failed per file and mode.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
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
            env = dict(os.environ, AD_SUITE_MODE=mode,
                       PYTHONPATH=os.pathsep.join([str(HERE), a.dir,
                                                   os.environ.get("PYTHONPATH", "")]))
            code = ("import shim, sys, pytest; shim.install(); "
                    f"sys.exit(pytest.main([{str(path)!r}, '-q', '-p', 'no:cacheprovider', "
                    f"'-c', {os.devnull!r}, '-o', 'addopts=', '--rootdir', {a.dir!r}, '-W', 'ignore', "
                    f"'-rf']))")  # -c: autograd's pyproject asks for plugins not needed here
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                 text=True, cwd=a.dir)
            tail = [ln for ln in out.stdout.splitlines() if " passed" in ln or " failed" in ln]
            print(f"{mode:10s} {f:22s} {tail[-1] if tail else out.stdout[-300:]}")
            if a.failures:
                for ln in out.stdout.splitlines():
                    if ln.startswith("FAILED"):
                        print("    " + ln[:150])


if __name__ == "__main__":
    main()
