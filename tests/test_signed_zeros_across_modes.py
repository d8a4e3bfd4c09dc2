"""Gradients with signed zeros: the three modes give the same gradient, and the same sign on
every zero of it. Inputs hold +0.0 and -0.0; the cotangent is negative (so products with a
zero are -0.0 unless something adds them to +0.0) or zero. A sweep like this found tape mode
giving -0.0 where the other modes give +0.0: in the gradients of matrix-vector and vector dot
products (dot_general adds each product to +0.0) and where a slice's cotangent was added into
an accumulated one (np.cross, which slices its operands)."""
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
# A (its zeros make it rank 4) with 3 added on the diagonal: full column rank, distinct
# singular values, its off-diagonal zeros and signs kept (QR's, SVD's, pinv's and lstsq's
# gradients are defined there; at A they are not, and two LAPACK paths may differ)
TALL = A.copy()
TALL[np.arange(5), np.arange(5)] += 3.0
POS, A3 = np.abs(A) + 0.5, _with_zeros(3, 4, 5)

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
    "cross": (lambda x: np.cross(x[:, :3], A[:, 1:4]), A),
    "cholesky": (lambda x: np.linalg.cholesky(x @ x.T + np.eye(5)), S),
    "qr_r": (lambda x: np.linalg.qr(x)[1], TALL), "qr_q": (lambda x: np.linalg.qr(x)[0], TALL),
    "eigh_values": (lambda x: np.linalg.eigh(x + x.T)[0], S),
    "svd_values": (lambda x: np.linalg.svd(x, compute_uv=False), TALL),
    "pinv": (np.linalg.pinv, TALL), "slogdet": (lambda x: np.linalg.slogdet(x)[1] * A, S),
    "lstsq": (lambda x: np.linalg.lstsq(x, V6, rcond=None)[0], TALL),
    "matrix_power": (lambda x: np.linalg.matrix_power(x, 3), S),
    "norm_fro": (lambda x: np.linalg.norm(x) * A, A + 1), "norm_1": (lambda x: np.linalg.norm(x, 1) * A, A),
    "cumprod": (lambda x: np.cumprod(x, axis=1), A),
    "take_along_argsort": (lambda x: np.take_along_axis(x, np.argsort(A, axis=1), axis=1), A),
    "pad_reflect": (lambda x: np.pad(x, 2, mode="reflect"), A), "roll": (lambda x: np.roll(x, 2, axis=1), A),
    "interp": (lambda x: np.interp(np.linspace(-1, 1, 7), np.arange(5) * 0.5 - 1, x), V5),
    "logaddexp": (lambda x: np.logaddexp(x, A), A), "hypot": (lambda x: np.hypot(x, A + 1), A),
    "arctan2": (lambda x: np.arctan2(x, A + 2), A), "power_base": (lambda x: np.power(POS, x), A),
    "power_exponent": (lambda x: np.power(x, 2.5), POS), "mod": (lambda x: np.mod(x, 0.7), A),
    "std": (lambda x: np.std(x, axis=1), A), "var": (lambda x: np.var(x, axis=0), A),
    "median": (lambda x: np.median(x, axis=1), A), "percentile": (lambda x: np.percentile(x, 30, axis=0), A),
    "einsum_matmul": (lambda x: np.einsum("ij,jk->ik", x, B), A),
    "einsum_batched": (lambda x: np.einsum("bij,bjk->bik", x, np.ones((3, 5, 2))), A3),
    "convolve": (lambda x: np.convolve(x, V6), V5), "triu": (np.triu, S), "diag": (np.diag, S),
    "stack": (lambda x: np.stack([x, A]), A), "split": (lambda x: np.split(x, [2], axis=1)[1], A),
    "repeat": (lambda x: np.repeat(x, 2, axis=0), A), "tile": (lambda x: np.tile(x, (2, 1)), A),
    "rot90": (np.rot90, A), "select": (lambda x: np.select([A > 0, A < 0], [x, 2 * x]), A),
    "minimum": (lambda x: np.minimum(x, A), A), "expm1": (np.expm1, A), "sinh": (np.sinh, A),
    "pairwise_difference": (lambda x: x[:, None, :] - A[None, :, :], A),
    "max_all": (lambda x: np.max(x) * A, A), "x_abs_x": (lambda x: x * np.abs(x), A),
    "vdot": (lambda x: np.vdot(x, A) * A, A), "inner": (lambda x: np.inner(x, V5), A),
    "kron_eye": (lambda x: np.kron(x, np.eye(2)), S), "trapezoid": (lambda x: np.trapezoid(x, axis=1), A),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cotangent", ["negative", "zero"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_signed_zeros_agree_across_modes(name, cotangent, dtype):
    # float32 inputs meet the float64 constants above: mixed promotion, casts in the rules
    fn, x0 = CASES[name]
    x0 = np.asarray(x0, dtype)

    def f(x):
        y = fn(x)
        n = np.size(y)
        c = np.zeros(np.shape(y), y.dtype) if cotangent == "zero" else \
            -np.linspace(0.5, 2.0, n).reshape(np.shape(y)).astype(y.dtype)
        return np.sum(c * y)
    grads = {m: np.asarray(ad.grad(f, mode=m)(x0)) for m in ("interpret", "compiled", "tape")}
    want = grads["interpret"]
    # small well-conditioned problems: a few hundred eps of the float32 results' rounding
    rtol, atol = (1e-12, 1e-14) if dtype == np.float64 else (1e-4, 1e-6)
    for mode, got in grads.items():
        assert got.dtype == want.dtype, mode
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=mode)
        # (where both are zero: a sum that cancels exactly in one mode's order may not in
        # another's, which the tolerance above covers)
        zeros = (want == 0) & (got == 0)
        assert zeros.sum() >= 0.9 * (want == 0).sum(), mode
        assert np.array_equal(np.signbit(got[zeros]), np.signbit(want[zeros])), \
            f"{mode}: the signs of the zeros differ from the interpreter's"
