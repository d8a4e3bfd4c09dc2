"""The seed tutorials, ported to examples/seeds/: tape-mode scripts and their compiled twins."""
import importlib.util
import pathlib

import numpy as np
import pytest

from autodiff_jit import tape


SEEDS = pathlib.Path(__file__).resolve().parent.parent / "examples" / "seeds"


def load(name):
    spec = importlib.util.spec_from_file_location(name, SEEDS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(name, *args, **kw):
    return load(name).main(*args, **kw)


def test_seed000_scalar_and_linear_step(capsys):
    t = run("000_autograd_tensors_to_optimization")
    assert t["scalar"] == (2.0, 1.0, 1.0)
    assert "tensor(2.)" in capsys.readouterr().out
    assert t["loss1"] < t["loss0"]
    assert t["grad_fn"] == "MseLossBackward0"
    c = run("000_autograd_tensors_to_optimization_compiled", t["x"], t["y"], t["w0"], t["b0"])
    assert c["scalar"] == (2.0, 1.0, 1.0)
    np.testing.assert_allclose(t["dw"], c["dw"], rtol=1e-5)
    np.testing.assert_allclose(t["db"], c["db"], rtol=1e-5)
    assert t["loss0"] == pytest.approx(c["loss0"], rel=1e-6)
    assert t["loss1"] == pytest.approx(c["loss1"], rel=1e-6)


def test_seed001():
    t = run("001_understanding_autograd")
    assert t["dydx"] == 8.0
    assert t["grad_fns"] == (None, "MulBackward0", "AddBackward0")
    assert t["vector"] == [3.0, 12.0, 27.0]
    assert t["detach"] == (False, False)
    assert t["w"] == pytest.approx(2.0, abs=0.1) and t["b"] == pytest.approx(1.0, abs=0.1)
    c = run("001_understanding_autograd_compiled", t["x_data"], t["y_data"])
    assert c["dydx"] == 8.0 and c["vector"] == [3.0, 12.0, 27.0]
    assert c["w"] == pytest.approx(t["w"], rel=1e-5) and c["b"] == pytest.approx(t["b"], rel=1e-5)


def test_seed002():
    t = run("002_autograd_basics")
    c = run("002_autograd_basics_compiled")
    assert t["dydx"] == 7.0 == c["dydx"]
    assert t["y_grad_fn"] == "AddBackward0"
    assert t["chain"] == 42.0 == c["chain"]
    assert t["partials"] == (7.0, 2.0) == c["partials"]
    assert t["graph_names"] == ("MulBackward0", "PowBackward0", "AddBackward0")
    assert t["grad_before"] == (None, None)
    assert t["wb_grads"] == pytest.approx((0.4, 0.2)) and c["wb_grads"] == pytest.approx((0.4, 0.2))
    assert t["accumulation"] == [6.0, 33.0, 27.0] == c["accumulation"]
    assert t["no_grad"] == (True, False, None, False, False)
    expected = [0.6, 1.08, 1.464, 1.7712, 2.01696, 2.213568, 2.3708544, 2.49668352,
                2.597346816, 2.6778774528]
    np.testing.assert_allclose(t["descent"], expected, rtol=1e-6)
    np.testing.assert_allclose(c["descent"], expected, rtol=1e-6)
    assert round(t["descent"][-1], 4) == 2.6779


def test_seed003_linear_fit_matches_tutorial_and_compiled():
    t = run("003_linear_regression")
    assert t["grad_fns"] == ("AddBackward0", "MeanBackward0")
    assert t["loss_first"] == 41.0
    assert t["first_grads"] == (-35.0, -12.0)
    assert t["first_step"] == pytest.approx((0.035, 0.012))
    assert t["W"] == pytest.approx(2.0195605754852295, rel=1e-6)
    assert t["b"] == pytest.approx(0.7054842114448547, rel=1e-6)
    c = run("003_linear_regression_compiled")
    assert c["first_grads"] == (-35.0, -12.0)
    np.testing.assert_allclose(t["losses"], c["losses"], rtol=1e-5)
    assert c["W"] == pytest.approx(t["W"], rel=1e-6) and c["b"] == pytest.approx(t["b"], rel=1e-6)
    printed = [round(t["losses"][e - 1], 2) for e in range(20, 201, 20)]
    assert printed == [21.63, 11.03, 5.63, 2.88, 1.47, 0.76, 0.39, 0.21, 0.11, 0.06]


def test_seed004():
    t = run("004_gradient_calculation")
    c = run("004_gradient_calculation_compiled")
    assert t["grad_x"] == [2.0, 2.0] == c["grad_x"]
    assert t["no_grad"] is False
    assert t["accumulation"] == ([2.0, 2.0], [3.0, 3.0])
    assert t["z_grad_fn"] == "SumBackward0"
    np.testing.assert_allclose(t["mean_grad"], [2 / 3, 4 / 3, 2.0], rtol=1e-6)
    np.testing.assert_allclose(c["mean_grad"], [2 / 3, 4 / 3, 2.0], rtol=1e-12)
    assert t["grad_fns"] == ("AddBackward0", "MulBackward0")
    assert t["chain"] == 8.0 == c["chain"]
    assert t["mse_grad"] == [-0.5, -0.5] == c["mse_grad"]
    assert t["mse_grad_fn"] == "MseLossBackward0"
    assert t["detach"] == [False, False]
    assert t["training_acc"] == [3.0, 3.0]
    assert t["custom"] == 2.0 == c["custom"]
    assert t["custom_name"] == "MultiplyByTwoBackward"


@pytest.mark.parametrize("script", sorted(p.stem for p in SEEDS.glob("[0-9]*.py")))
def test_scripts_run_standalone(script):
    import subprocess
    import sys
    import os
    env = dict(os.environ, PYTHONPATH=str(SEEDS.parent.parent))
    code = ("import runpy; "
            f"runpy.run_path({str(SEEDS / (script + '.py'))!r}, run_name='__main__')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip()
