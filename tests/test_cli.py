"""The autodiff-jit command line: bench (quick) and ir, checked structurally (no timings)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from autodiff_jit import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="module")
def quick_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    argv = ["bench", "--quick", "--no-progress", "--color", "never",
            "--cases", "polynomial,rosenbrock,mlp",
            "--json", str(out / "out.json"), "--markdown", str(out / "out.md")]
    return out, argv


def test_bench_quick_json(quick_bench, capsys):
    out, argv = quick_bench
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    for col in ("case", "numpy fwd", "compiled", "tape", "interpret", "grads",
                "tape/compiled", "1st call compiled"):
        assert col in text
    data = json.loads((out / "out.json").read_text())
    assert {"machine", "timing", "modes", "peers", "compiled_backend", "cases"} <= set(data)
    assert [c["name"] for c in data["cases"]] == ["polynomial", "rosenbrock", "mlp"]
    for case in data["cases"]:
        assert case["agreed"] is True
        for impl in ("numpy", "compiled", "tape", "interpret"):
            m = case["measurements"][impl]
            assert m["status"] == "ok", m
            assert m["median"] > 0 and m["first_call"] > 0 and m["loops"] >= 1
        for impl in ("compiled", "tape", "interpret"):
            assert case["measurements"][impl]["max_rel_err"] <= 1e-6
        assert case["ratios"]["tape/compiled"] > 0
        assert case["ratios"]["compiled/numpy"] > 0
    # peers: present or listed as skipped, never an error
    for peer in ("jax", "torch", "autograd"):
        status = data["peers"][peer]
        try:
            __import__(peer)
        except ImportError:
            assert status.startswith("skipped")
            assert f"peer {peer}: skipped" in text
    md = (out / "out.md").read_text()
    assert "| case | size | numpy fwd |" in md and "|---|---|---:|" in md


def test_bench_list_and_bad_case(capsys):
    assert cli.main(["bench", "--list"]) == 0
    listing = capsys.readouterr().out
    for name in ("polynomial", "rosenbrock", "mse_linear", "logistic", "mlp", "gmm"):
        assert name in listing
    assert "n=1e6" in listing and "d=10,k=25,n=1e4" in listing
    assert cli.main(["bench", "--cases", "nope", "--no-progress"]) == 2
    assert "unknown case" in capsys.readouterr().err


def test_bench_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "b.png"
    assert cli.main(["bench", "--quick", "--cases", "polynomial", "--modes", "compiled,tape",
                     "--no-progress", "--plot", str(png)]) == 0
    assert png.stat().st_size > 1000


def test_bench_mismatch_is_loud(monkeypatch, capsys):
    """A gradient that disagrees is flagged in the table, on stderr and in the exit code."""
    from autodiff_jit.bench import runner

    real = runner.flat_grads
    calls = {"n": 0}

    def corrupt(g):
        calls["n"] += 1
        out = real(g)
        return [x + 1.0 for x in out] if calls["n"] == 2 else out  # the second mode (tape)
    monkeypatch.setattr(runner, "flat_grads", corrupt)
    assert cli.main(["bench", "--quick", "--cases", "rosenbrock", "--no-progress",
                     "--color", "never"]) == 1
    cap = capsys.readouterr()
    assert "GRADIENT MISMATCH" in cap.err and "tape disagrees" in cap.err
    assert "MISMATCH: tape" in cap.out


def test_python_m_entry_point(tmp_path):
    r = subprocess.run([sys.executable, "-m", "autodiff_jit", "bench", "--quick", "--cases",
                        "polynomial", "--modes", "interpret", "--peers", "none",
                        "--json", str(tmp_path / "o.json")],
                       capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "o.json").read_text())["cases"][0]["agreed"]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_bench_cpus_pins_the_process(tmp_path):
    # a child process (the affinity is the process's): --cpus 1 keeps one CPU, says so in the
    # table and the JSON, and runs autodiff_jit on one thread; an impossible count is refused
    code = ("import json, os, sys; from autodiff_jit import cli; from autodiff_jit.config import config; "
            "rc = cli.main(sys.argv[1:]); "
            "print(json.dumps([rc, sorted(os.sched_getaffinity(0)), config.num_threads]))")
    argv = ["bench", "--quick", "--cases", "polynomial", "--modes", "compiled", "--peers",
            "none", "--no-progress", "--color", "never", "--json", str(tmp_path / "o.json")]
    r = subprocess.run([sys.executable, "-c", code, *argv, "--cpus", "1"], capture_output=True,
                       text=True, env=_env(), cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    rc, cpus, threads = json.loads(r.stdout.strip().splitlines()[-1])
    assert rc == 0 and len(cpus) == 1 and threads == 1
    assert f"process pinned to CPU(s) {cpus}" in r.stdout
    machine = json.loads((tmp_path / "o.json").read_text())["machine"]
    assert machine["cpus_allowed"] == cpus
    r = subprocess.run([sys.executable, "-c", code, *argv, "--cpus", "100000"],
                       capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120)
    assert json.loads(r.stdout.strip().splitlines()[-1])[0] == 2
    assert "--cpus 100000: this process may run on" in r.stderr


def test_version(capsys):
    import autodiff_jit
    from autodiff_jit._version import __version__
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"autodiff-jit {__version__}"
    assert autodiff_jit.__version__ == __version__
    # the installed distribution's metadata carries the same version (pyproject reads _version.py)
    from importlib.metadata import version
    assert version("autodiff_jit") == __version__


# ---------------------------------------------------------------------------------------------
# ir

@pytest.mark.parametrize("spec,shape,dtype", [
    ("3", (3,), np.float64), ("4,3:f32", (4, 3), np.float32), ("()", (), np.float64),
    ("scalar", (), np.float64), ("scalar:f32", (), np.float32), ("(2, 5)", (2, 5), np.float64),
    ("2x5:i64", (2, 5), np.int64)])
def test_parse_arg_spec(spec, shape, dtype):
    assert cli.parse_arg_spec(spec) == (shape, np.dtype(dtype))


def test_parse_arg_spec_errors():
    with pytest.raises(ValueError, match="dtype"):
        cli.parse_arg_spec("3:complex")
    with pytest.raises(ValueError, match="shape"):
        cli.parse_arg_spec("a,b")


@pytest.fixture
def model_file(tmp_path):
    p = tmp_path / "model.py"
    p.write_text("import numpy as np\n"
                 "print('import-time output')\n"
                 "def f(w, x):\n"
                 "    return np.sum(np.tanh(x @ w) ** 2)\n"
                 "def vec(x):\n"
                 "    return x * 2.0\n"
                 "def branchy(x):\n"
                 "    if int(x) > 0:  # int() of a traced value: still a TracingError\n"
                 "        return x\n"
                 "    return -x\n")
    return p


def test_ir_stages(model_file, capsys):
    rc = cli.main(["ir", f"{model_file}:f", "--arg", "3", "--arg", "4,3:f32", "--color",
                   "never"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "import-time output" not in out  # the file's own prints go to stderr
    for title in ("traced IR", "adjoint IR", "optimized IR", "LLVM IR"):
        assert f"=== {title}" in out
    assert "assembly" not in out  # default: all but asm
    assert "func f(w: f64[3], x: f32[4,3]) -> f64[]" in out
    assert "func grad_f(w: f64[3], x: f32[4,3]) -> f64[3]" in out
    assert "Traceback" not in out


def test_ir_single_stage_argnums_and_dot(model_file, tmp_path, capsys):
    dot = tmp_path / "g.dot"
    rc = cli.main(["ir", f"{model_file}:f", "--arg", "3", "--arg", "4,3", "--stage",
                   "optimized", "--argnums", "1", "--dot", str(dot), "--color", "never"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "-> f64[4,3]" in out and "traced IR" not in out
    try:
        import autodiff_jit.viz  # noqa: F401
    except ImportError:
        return
    assert dot.read_text().lstrip().startswith("digraph")


def test_ir_unavailable_stage_is_a_note(model_file, capsys):
    rc = cli.main(["ir", f"{model_file}:vec", "--arg", "3", "--color", "never"])
    out = capsys.readouterr().out
    assert "=== traced IR" in out and "(unavailable: TypeError: grad requires" in out
    assert "--no-grad" in out and "Traceback" not in out
    assert rc == 1
    assert cli.main(["ir", f"{model_file}:vec", "--arg", "3", "--no-grad", "--stage",
                     "traced,optimized", "--color", "never"]) == 0
    rc = cli.main(["ir", f"{model_file}:branchy", "--arg", "()", "--color", "never"])
    out = capsys.readouterr().out
    assert "(unavailable: TracingError" in out and "Traceback" not in out


def test_ir_load_errors(model_file, capsys):
    assert cli.main(["ir", f"{model_file}:nope", "--arg", "3"]) == 2
    err = capsys.readouterr().err
    assert "has no 'nope'" in err and "f, vec" in err.replace("branchy, ", "")
    assert cli.main(["ir", "no/such/file.py:f"]) == 2


def test_ir_on_quickstart_grad_object(capsys):
    rc = cli.main(["ir", os.path.join(ROOT, "examples", "quickstart.py") + ":sum_of_cubes",
                   "--arg", "3", "--stage", "traced,optimized", "--color", "never"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "func sum_of_cubes(x: f64[3]) -> f64[]" in out
    assert "func grad_sum_of_cubes(x: f64[3]) -> f64[3]" in out
