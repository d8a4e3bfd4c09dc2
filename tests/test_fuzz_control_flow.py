"""Random programs with Python control flow on traced values -- `if`/`else` on traced and
computed conditions, `for` over static and traced ranges, `while` on a traced test, `break`,
`continue` and early `return` under traced conditions, nested -- compiled by rewriting their
source. Every mode must give the value of the program run by Python on numpy values, and
compiled/interpret gradients must equal tape mode's (which runs the control flow in Python),
or the program is refused with a TracingError / NotImplementedError, never answered wrongly.
A few programs run by default; `pytest -m slow` runs many more.
"""
import random

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.errors import TracingError

from helpers import import_programs

N_CI, N_SLOW = 30, 300
POINTS = [np.array([0.713, -0.327, 1.129, 0.437]), np.array([-0.611, 0.923, -0.219, 1.317]),
          np.array([0.205, 0.558, -0.94, -0.13])]

SIMPLE = ["a = a * {c} + x[{j}]", "b = np.sin(b) + a * {c}", "a = np.maximum(a, b) - {c}",
          "b = b + np.sum(x * {c})", "a = a - b * {c}", "b = np.tanh(a) * {c} + b",
          "a += x[{j}] * {c}", "b *= {c}"]


class _Gen:
    def __init__(self, rng):
        self.rng = rng
        self.loops = 0   # how deep in loops (break/continue allowed inside)

    def c(self):
        return round(self.rng.uniform(-1.5, 1.5), 2)

    def cond(self):
        r = self.rng.random()
        if r < 0.4:
            return f"x[{self.rng.randrange(4)}] > {self.c()}"
        if r < 0.7:
            return f"a > {self.c()}"
        if r < 0.85:
            return "a > b"
        return f"(x[{self.rng.randrange(4)}] > {self.c()}) and (b < {self.c()})"

    def simple(self):
        return self.rng.choice(SIMPLE).format(c=self.c(), j=self.rng.randrange(4))

    def block(self, depth, indent):
        pad = "    " * indent
        lines = []
        for _ in range(self.rng.randrange(1, 4)):
            r = self.rng.random()
            if depth <= 0 or r < 0.5:
                lines.append(pad + self.simple())
            elif r < 0.65:
                lines.append(pad + f"if {self.cond()}:")
                lines += self.block(depth - 1, indent + 1)
                if self.rng.random() < 0.6:
                    lines.append(pad + "else:")
                    lines += self.block(depth - 1, indent + 1)
            elif r < 0.75 and self.loops < 2:
                k = self.rng.choice(["3", "n"])   # n: a traced trip count
                lines.append(pad + f"for i{indent} in range({k}):")
                self.loops += 1
                lines += self.block(depth - 1, indent + 1)
                self.loops -= 1
            elif r < 0.83 and self.loops < 2:
                lines.append(pad + f"k{indent} = 0")
                lines.append(pad + f"while {self.cond()} and k{indent} < 4:")
                self.loops += 1
                lines.append(pad + f"    k{indent} += 1")
                lines += self.block(depth - 1, indent + 1)
                self.loops -= 1
            elif r < 0.93 and self.loops:
                lines.append(pad + f"if {self.cond()}:")
                lines.append(pad + "    " + self.rng.choice(["break", "continue"]))
            else:
                lines.append(pad + f"if {self.cond()}:")
                lines.append(pad + f"    return a * {self.c()} + b")
        return lines


def _program(rng, name):
    gen = _Gen(rng)
    lines = [f"def {name}(x):", "    a = x[0] * 1.0", "    b = x[1] * 0.5",
             "    n = np.argmax(x) + 1"]
    lines += gen.block(3, 1)
    return "\n".join(lines + ["    return a + 2.0 * b"])


def _programs(tmp_path, seed, count):
    rng = random.Random(seed)
    programs = {n: _program(rng, n) for n in (f"g{i}" for i in range(count))}
    return import_programs(tmp_path / f"control_{seed}.py", programs)


def _check(functions, source):
    answered = 0
    for f in functions:
        for x in POINTS:
            want = f(x.copy())
            tape_grad = ad.grad(f, mode="tape")(x)
            for mode in ("compiled", "interpret"):
                try:
                    value, grad = ad.value_and_grad(f, mode=mode)(x)
                except (TracingError, NotImplementedError):
                    continue
                where = f"{f.__name__} at {x} in {mode} mode; the programs:\n{source}"
                np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-12, err_msg=where)
                np.testing.assert_allclose(grad, tape_grad, rtol=1e-10, atol=1e-12,
                                           err_msg=where)
                answered += 1
    return answered


def test_random_control_flow(tmp_path):
    functions, source = _programs(tmp_path, 0, N_CI)
    assert _check(functions, source) >= N_CI   # most programs are answered, not refused


@pytest.mark.slow
@pytest.mark.parametrize("block", range(6))
def test_many_random_control_flow(tmp_path, block):
    functions, source = _programs(tmp_path, 100 + block, N_SLOW // 6)
    _check(functions, source)
