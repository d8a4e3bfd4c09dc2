"""Every example runs (shortened with AUTODIFF_JIT_QUICK=1), with and without matplotlib,
writing its figures to a temporary directory."""
import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = sorted(p for p in glob.glob(os.path.join(ROOT, "examples", "*.py"))
                  if not os.path.basename(p).startswith("_"))
FIGURES = {"linear_regression.py", "logistic_regression.py", "mlp.py", "optimizers.py",
           "tape_vs_compiled.py"}

try:
    import matplotlib  # noqa: F401
    HAVE_MPL = True
except ImportError:
    HAVE_MPL = False


def run_example(path, out_dir, block_matplotlib=False):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["AUTODIFF_JIT_QUICK"] = "1"
    env["AUTODIFF_JIT_OUT"] = str(out_dir)
    env["MPLBACKEND"] = "Agg"
    cmd = [sys.executable, path]
    if block_matplotlib:  # run as if matplotlib were not installed
        cmd = [sys.executable, "-c",
               "import sys, runpy; sys.modules['matplotlib'] = None; "
               f"sys.argv = [{path!r}]; runpy.run_path({path!r}, run_name='__main__')"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out_dir,
                          timeout=120)


def test_examples_found():
    names = {os.path.basename(p) for p in EXAMPLES}
    assert FIGURES | {"quickstart.py"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_example_runs(path, tmp_path):
    r = run_example(path, tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert "Traceback" not in r.stderr
    name = os.path.basename(path)
    if name in FIGURES:
        png = tmp_path / name.replace(".py", ".png")
        if HAVE_MPL:
            assert png.exists() and png.stat().st_size > 5000, r.stdout
            assert f"wrote {png}" in r.stdout
        else:
            assert "matplotlib not installed" in r.stdout
    if name == "logistic_regression.py":
        assert float(r.stdout.split("training accuracy")[1].split("%")[0]) > 85.0
    if name == "parallel_gradients.py":
        assert "ProcessPoolExecutor: 4 shards on 2 processes, gradient matches" in r.stdout
        assert "joblib: 4 shards" in r.stdout or "joblib not installed" in r.stdout
    if name == "tape_vs_compiled.py":
        assert r.stdout.count("agree") >= 3 and "Summary: tape time / compiled time" in r.stdout


@pytest.mark.parametrize("name", ["linear_regression.py", "optimizers.py"])
def test_example_without_matplotlib(name, tmp_path):
    r = run_example(os.path.join(ROOT, "examples", name), tmp_path, block_matplotlib=True)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "matplotlib not installed" in r.stdout
    assert not list(tmp_path.glob("*.png"))
