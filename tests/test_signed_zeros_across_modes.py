"""Gradients with signed zeros: the three modes give the same gradient, and the same sign on
every zero of it. Inputs hold +0.0 and -0.0; the cotangent is negative (so products with a
zero are -0.0 unless something adds them to +0.0) or zero. A sweep like this found tape mode
giving -0.0 where dot_general (interpreter, compiled code) gives +0.0 in the gradients of
matrix-vector and vector dot products."""
import numpy as np
import pytest

import autodiff_jit as ad

rng = np.random.default_rng(1)


def _with_zeros(*shape):
    a = rng.standard_normal(shape)
    flat = a.reshape(-1)
    flat[::3] = 0.0
    flat[1::5] = -0.0
    return a


A, B, V5, V6 = _with_zeros(6, 5), _with_zeros(5, 4), _with_zeros(5), _with_zeros(6)
S = _with_zeros(5, 5) + 5 * np.eye(5)
I5 = 5 * np.eye(5)

CASES = {
    "mul": (lambda x: x * A, A), "mul_broadcast": (lambda x: x * V5, A),
    "div": (lambda x: x / (A + 3.0), A),
    "matmul_22_left": (lambda x: x @ B, A), "matmul_22_right": (lambda x: A @ x, B),
    "matmul_21_matrix": (lambda x: x @ V5, A), "matmul_21_vector": (lambda x: A @ x, V5),
    "matmul_12_vector": (lambda x: x @ A, V6), "matmul_12_matrix": (lambda x: V6 @ x, A),
    "dot_11": (lambda x: np.dot(x, V5) * V5, V5), "outer": (lambda x: np.outer(x, V6), V5),
    "einsum_outer": (lambda x: np.einsum("i,j->ij", x, V6), V5),
    "tensordot": (lambda x: np.tensordot(x, B, axes=1), A),
    "solve_b": (lambda x: np.linalg.solve(S, x), V5),
    "solve_a": (lambda x: np.linalg.solve(x + I5, V5), S - I5),
    "inv": (lambda x: np.linalg.inv(x), S), "det": (lambda x: np.linalg.det(x) * A, S),
    "trace": (lambda x: np.trace(x) * A, S), "kron": (lambda x: np.kron(x, V5), V6),
    "sum_axis": (lambda x: np.sum(x, axis=0), A), "mean_axis": (lambda x: np.mean(x, axis=1), A),
    "max_axis": (lambda x: np.max(x, axis=1), A), "prod_axis": (lambda x: np.prod(x + 2.0, axis=1), A),
    "cumsum": (lambda x: np.cumsum(x, axis=1), A), "diff": (lambda x: np.diff(x, axis=1), A),
    "sort": (lambda x: np.sort(x, axis=1), A), "norm": (lambda x: np.linalg.norm(x, axis=1), A + 1.0),
    "abs": (np.abs, A), "sqrt": (lambda x: np.sqrt(x * x + 1.0), A), "square": (lambda x: x ** 2, A),
    "cube": (lambda x: x ** 3, A), "tanh": (np.tanh, A), "exp": (np.exp, A), "sin": (np.sin, A),
    "where": (lambda x: np.where(A > 0, x, 2 * x), A), "maximum": (lambda x: np.maximum(x, 0.0), A),
    "clip": (lambda x: np.clip(x, -0.5, 0.5), A), "transpose": (lambda x: x.T * A.T, A),
    "gather": (lambda x: x[[0, 2, 2, 4]], A), "strided_slice": (lambda x: x[1:4, ::2], A),
    "concatenate": (lambda x: np.concatenate([x, A]), A),
}


@pytest.mark.parametrize("cotangent", ["negative", "zero"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_signed_zeros_agree_across_modes(name, cotangent):
    fn, x0 = CASES[name]

    def f(x):
        y = fn(x)
        n = np.size(y)
        c = np.zeros(np.shape(y)) if cotangent == "zero" else \
            -np.linspace(0.5, 2.0, n).reshape(np.shape(y))
        return np.sum(c * y)
    grads = {m: np.asarray(ad.grad(f, mode=m)(x0)) for m in ("interpret", "compiled", "tape")}
    want = grads["interpret"]
    for mode, got in grads.items():
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, err_msg=mode)
        # (where both are zero: a sum that cancels exactly in one mode's order may not in
        # another's, which the tolerance above covers)
        zeros = (want == 0) & (got == 0)
        assert zeros.sum() >= 0.9 * (want == 0).sum(), mode
        assert np.array_equal(np.signbit(got[zeros]), np.signbit(want[zeros])), \
            f"{mode}: the signs of the zeros differ from the interpreter's"
