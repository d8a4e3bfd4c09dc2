"""Random programs that write into arrays (numpy or traced, with other names and views of
them; `y[k] = v` and numpy's writers such as np.add.at) inside traced `if`s and loops: every
mode gives numpy's value and the finite-difference gradient, or refuses with a TracingError
-- never a wrong answer."""
import random

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.errors import TracingError

from helpers import import_programs, numerical_grad

MODES = ("compiled", "interpret", "tape")
N_CI, N_SLOW = 24, 400
# coordinates 1e-3 away from every threshold below (two decimals): no branch flips under
# the finite differences; no ties for argmax
POINTS = [np.array([0.713, -0.327, 1.129, 0.437]), np.array([-0.611, 0.923, -0.219, 1.317])]

STATEMENTS = ["y[{k}] = x[{j}] * {c}", "y[{k}] = {c}", "y[{a}:{b}] += x[{j}]", "y += {c}",
              "y = y * 2.0", "w = w + np.sum(y) * x[{j}]", "y[{k}] *= x[{j}]",
              "z[{k}] = x[{j}] + {c}", "r[0] = x[{j}] * {c}", "w = w + np.sum(r) * x[{j}]",
              "w = w + np.sum(z) * x[{j}]",
              # numpy's writers on a name (convert/writes.py: write_call, write_method, write_out)
              "np.add.at(y, [{k}, {k}, {a}], x[{j}])", "np.put(y, [{k}], x[{j}] * {c})",
              "np.multiply(y, {c}, out=y)", "np.copyto(y, {c}, where=np.arange(4) > {k})",
              "y.fill(x[{j}])", "np.add.at(z, [{a}, {k}], {c})"]


def _statement(rng, names):
    while True:
        s = rng.choice(STATEMENTS)
        if any(n in s and n not in names for n in ("z", "r[", "(r)")):
            continue
        a = rng.randrange(3)
        return s.format(k=rng.randrange(4), j=rng.randrange(4), a=a, b=a + rng.randrange(1, 3),
                        c=round(rng.uniform(-2, 2), 2))


def _program(rng, name):
    names = {"y"}
    lines = [f"def {name}(x):", "    w = 0.0",
             "    y = " + rng.choice(["np.zeros(4)", "x * 1.0", "np.ones(4)"])]
    if rng.random() < 0.3:
        names.add("z")
        lines.append("    z = y")
    if rng.random() < 0.3:
        names |= {"r[", "(r)"}
        lines.append("    r = y[1:3]")

    def block(n):
        return ["        " + _statement(rng, names) for _ in range(n)]
    kind = rng.choice(["if", "if", "loop", "if then loop"])
    if "if" in kind:
        lines.append(f"    if x[{rng.randrange(4)}] > {round(rng.uniform(-0.5, 0.5), 2)}:")
        lines += block(rng.randrange(1, 4))
        lines += ["    else:"] + (block(rng.randrange(0, 3)) or ["        pass"])
    if "loop" in kind:
        lines += ["    n = np.argmax(x) + 1", "    for i in range(n):"]
        lines += block(rng.randrange(1, 3))
    result = "np.sum(y * x) + w"
    if "z" in names:
        result += " + np.sum(z * x)"
    if "r[" in names:
        result += " + np.sum(r)"
    return "\n".join(lines + [f"    return {result}"])


def _programs(tmp_path, seed, count):
    rng = random.Random(seed)
    programs = {n: _program(rng, n) for n in (f"f{i}" for i in range(count))}
    return import_programs(tmp_path / f"programs_{seed}.py", programs)[0]


def _check(functions):
    answered = 0
    for f in functions:
        for x in POINTS:
            want = f(x.copy())
            fd = numerical_grad(f, (x,), 0)
            for mode in MODES:
                try:
                    value, grad = ad.value_and_grad(f, mode=mode)(x)
                except TracingError:
                    continue
                except RuntimeError as exc:   # tape mode: PyTorch's saved-tensor check
                    assert mode == "tape" and "modified by an inplace operation" in str(exc)
                    continue
                answered += 1
                np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-12,
                                           err_msg=f"{f.__name__} {mode}")
                np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6,
                                           err_msg=f"{f.__name__} {mode}")
    return answered


def test_random_writes_in_branches_and_loops(tmp_path):
    assert _check(_programs(tmp_path, 0, N_CI)) > N_CI     # most are answered, not refused


@pytest.mark.slow
@pytest.mark.parametrize("block", range(8))
def test_many_random_writes_in_branches_and_loops(tmp_path, block):
    _check(_programs(tmp_path, 1 + block, N_SLOW // 8))
