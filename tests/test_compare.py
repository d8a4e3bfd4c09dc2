"""autodiff_jit.bench.compare on a user's function and on a built-in objective."""
import json

import numpy as np
import pytest

from autodiff_jit.bench import compare


def loss(w, X, y):
    return np.mean((X @ w - y) ** 2)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4))
    return np.zeros(4), X, X @ np.arange(4.0)


def test_compare_user_function(data):
    r = compare(loss, *data, quick=True)
    assert r.agreed
    for impl in ("numpy", "compiled", "tape", "interpret"):
        assert r.time(impl) > 0
    assert r.ratio("tape") > 0
    text = str(r)
    for col in ("numpy fwd", "compiled", "tape", "interpret", "tape/compiled", "agree"):
        assert col in text
    # peers cannot run a user function: skipped, with a note saying how to add them
    assert "peer jax: skipped" in text and "peers={" in text
    html = r._repr_html_()
    assert html.count("<table>") == 2 and "<th>compiled</th>" in html
    d = r.to_dict()
    json.dumps(d)
    assert d["case"]["agreed"] and d["case"]["measurements"]["tape"]["status"] == "ok"
    assert "loss" in repr(r)


def test_compare_modes_argnums_and_user_peer(data):
    w, X, y = data

    def handwritten(w, X, y):
        return 2.0 * X.T @ (X @ w - y) / len(y)
    r = compare(loss, w, X, y, modes=("compiled",), peers={"by hand": handwritten},
                quick=True)
    assert set(r.case.measurements) == {"numpy", "compiled", "by hand"}
    assert r.agreed and r.case.measurements["by hand"].max_rel_err < 1e-10
    assert "compiled/by hand" in str(r)   # the peer table

    r2 = compare(loss, w, X, y, argnums=(0, 1), modes=("interpret", "tape"), peers=(),
                 quick=True)
    assert r2.agreed and "compiled" not in r2.case.measurements


def test_compare_flags_a_wrong_peer(data, capsys):
    r = compare(loss, *data, modes=("interpret",), peers={"wrong": lambda w, X, y: w + 1.0},
                quick=True)
    assert not r.agreed and r.case.mismatches == ["wrong"]
    assert "MISMATCH: wrong" in str(r)
    assert "GRADIENT MISMATCH" in capsys.readouterr().err


def test_compare_builtin_objective():
    r = compare("rosenbrock", size="quick", quick=True)
    assert r.agreed and r.case.name == "rosenbrock" and r.case.size == "n=10"


def test_compare_errors():
    with pytest.raises(ValueError, match="mode"):
        compare(loss, 1.0, modes=("fast",))
    with pytest.raises(ValueError, match="unknown built-in"):
        compare("nope")
