"""viz: DOT text for tape graphs and IR functions; render's error without graphviz."""
import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit import tape, viz



def test_tape_dot():
    x = ad.tensor([1.0, 2.0], requires_grad=True)
    w = ad.tensor(3.0, requires_grad=True)
    loss = ad.mean((x * w + 1.0) ** 2)
    dot = viz.to_dot(loss)
    assert dot.startswith("digraph")
    for name in ("MeanBackward0", "PowBackward0", "AddBackward0", "MulBackward0", "(2,)", "()"):
        assert name in dot
    assert dot.count("->") >= 5


def test_ir_dot():
    fn = ad.make_ir(lambda x: np.sum(np.exp(x) * 2.0))(np.ones(3))
    dot = viz.to_dot(fn)
    assert "exp" in dot and "reduce_sum" in dot and "->" in dot
    assert dot.count("shape=box") >= len(fn.eqns)


def test_render_without_graphviz(tmp_path):
    x = ad.tensor(1.0, requires_grad=True)
    try:
        import graphviz  # noqa: F401
        import shutil
        have = shutil.which("dot") is not None
    except ImportError:
        have = False
    if have:
        out = viz.render(x * 2, str(tmp_path / "g.svg"))
        assert out.endswith(".svg")
    else:
        with pytest.raises(RuntimeError, match="graphviz"):
            viz.render(x * 2, str(tmp_path / "g.svg"))


def test_to_dot_rejects_other_types():
    with pytest.raises(TypeError):
        viz.to_dot(3)
