"""np.linalg: values against numpy, gradients against central differences and closed forms,
JVPs against directional differences, in interpret, tape and compiled mode; batches, float32,
and LinAlgError in every mode. Compiled mode must not fall back to the interpreter (LAPACK)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import autodiff_jit as ad
from tests.helpers import assert_close, numerical_grad

ALL = ("interpret", "tape", "compiled")
rng = np.random.default_rng(7)


def _spd(*batch, n=4):
    a = rng.standard_normal(batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def _wc(*shape):
    """Well-conditioned square matrices (diagonally weighted)."""
    n = shape[-1]
    return rng.standard_normal(shape) + 3 * np.eye(n)


def _distinct_sym(*batch, n=4):
    """Symmetric with well-separated eigenvalues 1, 2.5, 4, ... (eigh's rule needs gaps)."""
    q, _ = np.linalg.qr(rng.standard_normal(batch + (n, n)))
    w = 1.0 + 1.5 * np.arange(n)
    return (q * w[..., None, :]) @ np.swapaxes(q, -1, -2)


A4, B42, SPD, SPDB, M53 = _wc(4, 4), rng.standard_normal((4, 2)), _spd(), _spd(2, 3), \
    rng.standard_normal((5, 3))
AB = _wc(2, 3, 3)
SYM, SYMB = _distinct_sym(), _distinct_sym(2)
SYM_U = np.triu(SYM) + np.tril(rng.standard_normal((4, 4)), -1)
SYM_L = np.tril(SYM) + np.triu(rng.standard_normal((4, 4)), 1)
W = rng.standard_normal((4, 4))   # cotangent weights: f = sum(W * g(x)) tests every entry
W53, W35, W33 = rng.standard_normal((5, 3)), rng.standard_normal((3, 5)), \
    rng.standard_normal((3, 3))


def _tril_lower(a):
    return np.tril(a) + 3 * np.eye(a.shape[-1])


# name -> (f, args): scalar functions whose every input entry matters
CASES = {
    "solve": (lambda a, b: np.sum(np.sin(np.linalg.solve(a, b))), [A4, B42]),
    "solve_vector": (lambda a, b: np.sum(np.linalg.solve(a, b) ** 2), [A4, B42[:, 0]]),
    "solve_batched_bcast": (lambda a, b: np.sum(np.linalg.solve(a, b) ** 3),
                            [AB, rng.standard_normal((3, 2))]),
    "inv": (lambda a: np.sum(W * np.linalg.inv(a)), [A4]),
    "inv_batched": (lambda a: np.sum(np.linalg.inv(a) ** 2), [AB]),
    "det": (lambda a: np.linalg.det(a), [A4]),
    "det_batched": (lambda a: np.sum(np.linalg.det(a)), [AB]),
    "slogdet": (lambda a: np.linalg.slogdet(a)[1], [A4]),
    "slogdet_batched": (lambda a: np.sum(np.linalg.slogdet(a).logabsdet), [AB]),
    "cholesky": (lambda a: np.sum(W * np.linalg.cholesky(a)), [SPD]),
    "cholesky_batched": (lambda a: np.sum(np.sin(np.linalg.cholesky(a))), [SPDB]),
    "cholesky_upper": (lambda a: np.sum(W * np.linalg.cholesky(a, upper=True)), [SPD]),
    "solve_triangular": (lambda a, b: np.sum(np.sin(ad.solve_triangular(a, b, lower=True))),
                         [_tril_lower(A4), B42]),
    "solve_triangular_trans_upper": (
        lambda a, b: np.sum(ad.solve_triangular(a, b, trans=1, lower=False) ** 2),
        [_tril_lower(A4).T.copy(), B42[:, 0]]),
    "cho_solve": (lambda a, b: np.sum(ad.cho_solve((np.linalg.cholesky(a), True), b) ** 2),
                  [SPD, B42]),
    "eigvalsh": (lambda a: np.sum(np.linalg.eigvalsh(a) ** 3), [SYM]),
    "eigh_vectors": (lambda a: np.sum(W * np.linalg.eigh(a)[1] ** 2) +
                     np.sum(np.linalg.eigh(a)[1][0] * np.linalg.eigh(a)[1][1]), [SYM]),
    "eigh_upper_batched": (lambda a: np.sum(np.linalg.eigh(a, UPLO="U")[0] ** 2) +
                           np.sum(np.linalg.eigh(a, UPLO="U")[1] ** 4), [SYMB]),
    # eigenvector signs are LAPACK's for the triangle read (numpy's differ between L and U):
    # sign-dependent sums on matrices whose other triangle is noise that must not matter
    "eigh_upper_signs": (lambda a: np.sum(W * np.linalg.eigh(a, UPLO="U")[1]) +
                         np.sum(W[0] * np.linalg.eigh(a, "U")[0]), [SYM_U]),
    "eigh_lower_signs": (lambda a: np.sum(W * np.linalg.eigh(a)[1]), [SYM_L]),
    "svdvals": (lambda a: np.sum(np.linalg.svdvals(a) ** 3), [M53]),
    "svd_tall": (lambda a: np.sum(W53 * np.linalg.svd(a, full_matrices=False)[0] ** 2) +
                 np.sum(np.linalg.svd(a, full_matrices=False)[1]) +
                 np.sum(W33 * np.linalg.svd(a, full_matrices=False)[2] ** 2), [M53]),
    "svd_wide": (lambda a: np.sum(W33 * np.linalg.svd(a, full_matrices=False)[0] ** 2) +
                 np.sum(W35 * np.linalg.svd(a, full_matrices=False)[2] ** 2), [M53.T.copy()]),
    "qr": (lambda a: np.sum(W53 * np.linalg.qr(a)[0]) + np.sum(W33 * np.linalg.qr(a)[1]), [M53]),
    "qr_r": (lambda a: np.sum(np.linalg.qr(a, mode="r") ** 2), [M53]),
    "pinv": (lambda a: np.sum(W35 * np.linalg.pinv(a)), [M53]),
    # hermitian=True reads the lower triangle (numpy's eigh): SYM_L's upper one is noise
    "pinv_hermitian": (lambda a: np.sum(W * np.linalg.pinv(a, hermitian=True)), [SYM_L]),
    "pinv_hermitian_repeated": (lambda a: np.sum(W * np.linalg.pinv(a, hermitian=True)),
                                [np.eye(4) + np.triu(W, 1)]),
    "svdvals_hermitian": (lambda a: np.sum(np.linalg.svd(a, compute_uv=False,
                                                         hermitian=True) ** 3), [SYM_L]),
    "lstsq": (lambda a, b: np.sum(np.linalg.lstsq(a, b)[0] ** 2) + np.sum(np.linalg.lstsq(a, b)[1]),
              [M53, rng.standard_normal(5)]),
    "matrix_power": (lambda a: np.sum(np.linalg.matrix_power(a, 3)), [A4]),
    "matrix_power_neg": (lambda a: np.sum(np.linalg.matrix_power(a, -2)), [A4]),
    "multi_dot": (lambda a, b, c: np.sum(np.linalg.multi_dot([a, b, c]) ** 2),
                  [M53, rng.standard_normal((3, 6)), rng.standard_normal((6, 2))]),
    "cond": (lambda a: np.linalg.cond(a), [M53]),
    "cond_fro": (lambda a: np.linalg.cond(a, "fro"), [A4]),
    "tensorsolve": (lambda a, b: np.sum(np.linalg.tensorsolve(a, b) ** 2),
                    [_wc(6, 6).reshape(2, 3, 6), rng.standard_normal((2, 3))]),
    "tensorinv": (lambda a: np.sum(W[:, :2].ravel()[:6].reshape(3, 2, 1) *
                                   np.linalg.tensorinv(a, ind=1)[..., :1]),
                  [_wc(6, 6).reshape(6, 3, 2)]),
    "norm_2": (lambda a: np.linalg.norm(a, 2), [M53]),
    "norm_m2": (lambda a: np.linalg.norm(a, -2), [M53]),
    "norm_nuc": (lambda a: np.linalg.norm(a, "nuc"), [M53]),
    "norm_p3": (lambda x: np.linalg.norm(x, 3), [rng.standard_normal(6)]),
    "norm_p_half_axis": (lambda x: np.sum(np.linalg.norm(x, 0.5, axis=1)), [M53]),
    "norm_minf": (lambda x: np.linalg.norm(x, -np.inf), [np.array([3.0, -1.5, 2.0])]),
    "matrix_norm_nuc_batched": (lambda x: np.sum(np.linalg.matrix_norm(x, ord="nuc")), [AB]),
    "vector_norm": (lambda x: np.sum(np.linalg.vector_norm(x, ord=4, axis=0)), [M53]),
    "vector_norm_flat": (lambda x: np.linalg.vector_norm(x), [M53]),
    "cross": (lambda a, b: np.sum(np.linalg.cross(a, b) ** 2), [M53, M53[::-1].copy()]),
    "outer": (lambda a, b: np.sum(np.sin(np.linalg.outer(a, b))), [M53[:, 0].copy(), M53[0]]),
    "vecdot": (lambda a, b: np.sum(np.linalg.vecdot(a, b) ** 2), [M53, M53[::-1].copy()]),
    "diagonal_trace": (lambda a: np.sum(np.linalg.diagonal(a, offset=1) ** 2) +
                       np.linalg.trace(a @ a), [A4]),
    "matrix_transpose_matmul": (lambda a: np.sum(np.linalg.matmul(np.linalg.matrix_transpose(a), a) ** 2),
                                [M53]),
    "tensordot": (lambda a, b: np.sum(np.linalg.tensordot(a, b, axes=1) ** 2), [M53, W35]),
}


def _grad(f, args, mode):
    argnums = tuple(range(len(args)))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*falling back to the interpreter.*")
        return ad.grad(f, argnums=argnums, mode=mode)(*args)


@pytest.mark.parametrize("mode", ALL)
@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_finite_differences(name, mode):
    f, args = CASES[name]
    got = _grad(f, args, mode)
    for i, g in enumerate(got):
        expected = numerical_grad(f, args, i)
        scale = max(1.0, float(np.max(np.abs(expected))))
        assert_close(g, expected, rtol=1e-5, atol=1e-6 * scale, what=f"{name} arg {i} {mode}")


# functions returning arrays: values against numpy in every mode (factors, signs included)
VALUES = {
    "solve": (lambda a, b: np.linalg.solve(a, b), [AB, rng.standard_normal((2, 3, 2))]),
    "inv": (np.linalg.inv, [AB]),
    "slogdet": (lambda a: np.linalg.slogdet(a)[0] * np.linalg.slogdet(a)[1], [AB]),
    "cholesky": (np.linalg.cholesky, [SPDB]),
    "eigh": (lambda a: np.linalg.eigh(a)[1] * np.linalg.eigh(a)[0][..., None, :], [SPDB]),
    "svd_u": (lambda a: np.linalg.svd(a)[0], [M53]),
    "svd_vh_wide": (lambda a: np.linalg.svd(a, full_matrices=False)[2], [M53.T.copy()]),
    "svdvals": (np.linalg.svdvals, [rng.standard_normal((2, 4, 3))]),
    "qr_q": (lambda a: np.linalg.qr(a)[0], [rng.standard_normal((2, 5, 3))]),
    "qr_complete": (lambda a: np.linalg.qr(a, mode="complete")[0], [M53]),
    "qr_wide_r": (lambda a: np.linalg.qr(a)[1], [M53.T.copy()]),
    "pinv": (np.linalg.pinv, [M53]),
    "pinv_hermitian": (lambda a: np.linalg.pinv(a, hermitian=True), [SYM_L]),
    "svdvals_hermitian": (lambda a: np.linalg.svd(a, compute_uv=False, hermitian=True),
                          [SYM_L]),
    "matrix_rank_hermitian": (lambda a: np.linalg.matrix_rank(a, hermitian=True),
                              [np.tril(np.outer(M53[:3, 0], M53[:3, 0])) + np.triu(A4[:3, :3], 1)]),
    "det": (np.linalg.det, [AB]),
    "matrix_rank": (np.linalg.matrix_rank, [np.outer(M53[:, 0], M53[0])]),
}


@pytest.mark.parametrize("mode", ALL)
@pytest.mark.parametrize("name", sorted(VALUES))
def test_values_match_numpy(name, mode):
    f, args = VALUES[name]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*falling back to the interpreter.*")
        got = ad.jit(f, mode=mode)(*args)
    expected = f(*args)
    assert np.shape(got) == np.shape(expected)
    # same LAPACK routines on the same layouts: agreement to a few ulps of the result
    assert_close(got, expected, rtol=1e-12, atol=1e-12 * max(1, np.max(np.abs(expected))))


def test_float32_solve_within_condition_bound():
    a = _wc(2, 5, 5).astype(np.float32)
    b = rng.standard_normal((2, 5, 3)).astype(np.float32)
    exact = np.linalg.solve(a.astype(np.float64), b.astype(np.float64))
    for mode in ALL:
        x = ad.jit(np.linalg.solve, mode=mode)(a, b)
        assert x.dtype == np.float32
        # backward-stable LU: |dx|/|x| <~ n * eps * cond(a) (Higham, ch. 9)
        bound = 5 * np.finfo(np.float32).eps * np.linalg.cond(a.astype(np.float64)).max() * 10
        err = np.max(np.abs(x - exact)) / np.max(np.abs(exact))
        assert err <= bound, (mode, err, bound)


@pytest.mark.parametrize("mode", ALL)
def test_float32_gradients(mode):
    a = _spd(n=5).astype(np.float32)

    def f(a):
        return np.linalg.slogdet(a)[1] + np.sum(np.linalg.cholesky(a))
    g = _grad(f, [a], mode)[0]
    assert g.dtype == np.float32
    g64 = _grad(f, [a.astype(np.float64)], "interpret")[0]
    tol = 50 * np.finfo(np.float32).eps * np.linalg.cond(a.astype(np.float64)) * \
        np.max(np.abs(g64))
    assert np.max(np.abs(g - g64)) <= tol


def test_closed_forms():
    a = A4
    inv_t = np.linalg.inv(a).T
    for mode in ALL:
        assert_close(_grad(lambda x: np.linalg.slogdet(x)[1], [a], mode)[0], inv_t, 1e-10, 1e-12)
        assert_close(_grad(np.linalg.det, [a], mode)[0], np.linalg.det(a) * inv_t, 1e-10, 1e-12)
        # d tr(A) / dA through the eigenvalues of the matrix built from A's lower triangle
        assert_close(_grad(lambda x: np.sum(np.linalg.eigvalsh(x)), [SYM], mode)[0],
                     np.eye(4), 1e-10, 1e-10)
        # d ||A||_* = U V^T
        u, s, vh = np.linalg.svd(M53, full_matrices=False)
        assert_close(_grad(lambda x: np.linalg.norm(x, "nuc"), [M53], mode)[0], u @ vh,
                     1e-10, 1e-12)
        # d x^T A^{-1} x / dx = (A^{-1} + A^{-T}) x
        x = B42[:, 0]
        assert_close(_grad(lambda v: v @ np.linalg.solve(a, v), [x], mode)[0],
                     (np.linalg.inv(a) + inv_t) @ x, 1e-10, 1e-12)


JVP_CASES = ["solve", "inv_batched", "slogdet", "cholesky_batched", "solve_triangular",
             "eigh_vectors", "eigh_upper_batched", "eigh_upper_signs", "svd_tall", "svd_wide", "svdvals", "qr",
             "pinv", "norm_nuc", "cond"]


@pytest.mark.parametrize("name", JVP_CASES)
def test_jvp_matches_directional_difference(name):
    f, args = CASES[name]
    tangents = [rng.standard_normal(np.shape(a)) for a in args]
    eps = 1e-6
    plus = [a + eps * t for a, t in zip(args, tangents)]
    minus = [a - eps * t for a, t in zip(args, tangents)]
    expected = (f(*plus) - f(*minus)) / (2 * eps)
    for mode in ALL:
        value, tangent = ad.jvp(f, tuple(args), tuple(tangents), mode=mode)
        assert_close(value, f(*args), 1e-10, 1e-10)
        assert_close(tangent, expected, 1e-5, 1e-6 * max(1, abs(expected)), what=mode)


def test_solve_gradient_reuses_the_factorization():
    # the backward solve a^T g runs on the forward's LU factors (lu_solve), not a second gesv
    text = str(ad.make_ir(ad.grad(lambda a, b: np.sum(np.linalg.solve(a, b) ** 2)))(A4, B42))
    assert text.count("= solve(") == 1 and text.count("lu_solve(") == 1


def test_hessian_of_logdet():
    # d^2 log det A / dA_ij dA_kl = -(A^{-1})_li (A^{-1})_jk
    a = _wc(3, 3)
    ai = np.linalg.inv(a)
    expected = -np.einsum("li,jk->ijkl", ai, ai)
    h = ad.hessian(lambda x: np.linalg.slogdet(x)[1])(a)
    assert_close(h, expected, 1e-8, 1e-10)


def test_grad_of_grad_of_solve():
    b = B42[:, 0]

    def f(a):
        return np.sum(np.linalg.solve(a, b) ** 2)
    v = rng.standard_normal((4, 4))

    def directional(a):
        return np.sum(ad.grad(f, mode="interpret")(a) * v)
    for mode in ("interpret", "compiled"):
        got = ad.grad(directional, mode=mode)(A4)
        assert_close(got, numerical_grad(directional, [A4], 0), 1e-5, 1e-7, what=mode)


def test_ill_conditioned_solve_gradient():
    # cond ~ 1e6: the gradient is still exact to ~cond * eps relative to its size
    q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    a = q @ np.diag([1.0, 1e-2, 1e-4, 1e-6]) @ q.T
    b = rng.standard_normal(4)
    for mode in ALL:
        g = _grad(lambda m: np.sum(np.linalg.solve(m, b)), [a], mode)[0]
        x = np.linalg.solve(a, b)
        closed = -np.outer(np.linalg.solve(a.T, np.ones(4)), x)
        assert_close(g, closed, 1e6 * 4 * np.finfo(float).eps * 10, 0)


@pytest.mark.parametrize("mode", ALL)
def test_linalg_errors(mode):
    singular = np.ones((3, 3))
    indefinite = np.diag([1.0, -1.0, 2.0])
    batch = np.stack([np.eye(3), singular])
    with pytest.raises(np.linalg.LinAlgError, match="Singular"):
        ad.jit(np.linalg.inv, mode=mode)(singular)
    with pytest.raises(np.linalg.LinAlgError, match="Singular"):
        ad.jit(lambda a: np.linalg.solve(a, np.ones(3)), mode=mode)(batch)
    with pytest.raises(np.linalg.LinAlgError, match="positive definite"):
        ad.jit(np.linalg.cholesky, mode=mode)(indefinite)
    with pytest.raises(np.linalg.LinAlgError, match="Singular"):
        ad.jit(lambda a: ad.solve_triangular(a, np.ones(3), lower=True),
               mode=mode)(np.diag([1.0, 0.0, 2.0]))
    with pytest.raises(np.linalg.LinAlgError, match="positive definite"):
        ad.grad(lambda a: np.sum(np.linalg.cholesky(a)), mode=mode)(indefinite)
    # the error is cleared: the next call with a good matrix works
    assert_close(ad.jit(np.linalg.cholesky, mode=mode)(SPD), np.linalg.cholesky(SPD), 1e-12, 1e-12)
    # slogdet of a singular matrix is (0, -inf), as numpy, not an error
    sign, logdet = ad.jit(np.linalg.slogdet, mode=mode)(singular)
    assert sign == 0 and logdet == -np.inf


def test_bad_input_errors():
    with pytest.raises(np.linalg.LinAlgError, match="square"):
        ad.jit(np.linalg.inv)(M53)
    with pytest.raises(NotImplementedError, match="full_matrices"):
        ad.grad(lambda a: np.sum(np.linalg.svd(a)[0]), mode="interpret")(M53)
    with pytest.raises(NotImplementedError, match=r"hermitian=True\) with compute_uv=True"):
        ad.jit(lambda a: np.linalg.svd(a, hermitian=True))(SPD)
    with pytest.raises(NotImplementedError, match="wide"):
        ad.grad(lambda a: np.sum(np.linalg.qr(a)[1]), mode="interpret")(M53.T.copy())


def test_matrix_rank_has_zero_gradient():
    a = np.outer(M53[:, 0], M53[0])
    assert ad.jit(np.linalg.matrix_rank)(a) == 1
    g = ad.grad(lambda x: np.sum(x) * np.linalg.matrix_rank(x), mode="interpret")(a)
    assert_close(g, np.ones_like(a), 0, 0)


def test_lapack_symbols_found():
    from autodiff_jit.backend import lapack
    info = lapack.info()
    for r in lapack.ROUTINES:
        assert "d" + r in info["routines"] and "s" + r in info["routines"]


def test_missing_lapack_symbol_is_a_clear_error(monkeypatch):
    from autodiff_jit.backend import lapack
    monkeypatch.setitem(lapack._discover(), "addrs", {})
    with pytest.raises(lapack.LapackUnavailable, match="dpotrf"):
        lapack.symbol("potrf", np.float64)


def test_pinv_gradient_identity_and_constant_rank():
    # repeated singular values (the identity) are fine: Golub-Pereyra, not the SVD rule
    f = lambda x: np.sum(np.sin(np.linalg.pinv(x)))  # noqa: E731
    for mode in ALL:
        assert_close(_grad(f, [np.eye(3)], mode)[0], numerical_grad(f, [np.eye(3)], 0), 1e-5,
                     1e-7)
    # rank 2 of 3: exact along rank-preserving perturbations (a = b @ c, through b and c)
    b, c = rng.standard_normal((4, 2)), rng.standard_normal((2, 3))
    h = lambda b, c: np.sum(W[:3, :] * np.linalg.pinv(b @ c))  # noqa: E731
    for mode in ALL:
        got = _grad(h, [b, c], mode)
        for i in range(2):
            assert_close(got[i], numerical_grad(h, [b, c], i), 1e-5, 1e-7, what=mode)


# rule-level checks of each primitive (bind on arrays): every float output gets a random
# cotangent; VJP against central differences of <g, impl>, JVP against directional ones
PRIMITIVE_CASES = {
    "solve": ([AB, rng.standard_normal((2, 3, 2))], {}),
    "lu_solve": ([AB, np.zeros((2, 3, 3)), np.zeros((2, 3), np.int64),
                  rng.standard_normal((2, 3, 2))], {"trans": True}),
    "triangular_solve": ([_tril_lower(AB), rng.standard_normal((2, 3, 2))],
                         {"lower": True, "transpose_a": True}),
    "slogdet": ([AB], {}),
    "cholesky": ([SPDB], {}),
    "eigh": ([SYMB], {}),
    "eigh_upper": ([np.triu(SYMB) + np.tril(rng.standard_normal((2, 4, 4)), -1)],
                   {"uplo": "U"}),
    "svd": ([rng.standard_normal((2, 4, 3))], {"full_matrices": False, "compute_uv": True}),
    "qr": ([rng.standard_normal((2, 4, 3))], {"complete": False}),
    "pinv": ([rng.standard_normal((2, 3, 4))], {"rcond": 1e-12}),
    # the Cholesky rules' helpers; entries above the diagonal are never read (zero cotangent)
    "triangular_matmul": ([_wc(2, 3, 3), rng.standard_normal((2, 3, 2))],
                          {"lower": True, "transpose_a": True}),
    "triangular_matmul/upper": ([_wc(2, 3, 3), rng.standard_normal((2, 3, 2))],
                                {"lower": False, "transpose_a": False}),
    "congruence_solve": ([_wc(2, 3, 3), rng.standard_normal((2, 3, 3))], {"transpose": True}),
    "congruence_solve/plain": ([_wc(2, 3, 3), rng.standard_normal((2, 3, 3))],
                               {"transpose": False}),
}


@pytest.mark.parametrize("name", sorted(PRIMITIVE_CASES))
def test_primitive_rules(name):
    from autodiff_jit.primitives import get_primitive
    prim = get_primitive(name.split("/")[0].removesuffix("_upper"))
    args, params = PRIMITIVE_CASES[name]
    outs = prim.impl(*args, **params)
    outs_l = list(outs) if prim.multiple_results else [outs]
    gs = [rng.standard_normal(np.shape(o)) for o in outs_l]
    if name == "slogdet":
        gs[0] = None   # the sign: piecewise constant
    if name in ("solve", "slogdet"):
        gs[-2] = gs[-1] = None   # the LU cache: no derivative
    pairing = lambda os: sum(np.sum(g * o) for g, o in zip(gs, os) if g is not None)  # noqa: E731

    def f(*xs):
        o = prim.impl(*xs, **params)
        return pairing(list(o) if prim.multiple_results else [o])
    cts = prim.vjp(gs if prim.multiple_results else gs[0], outs, *args, **params)
    ts = [rng.standard_normal(np.shape(a)) if np.asarray(a).dtype.kind == "f" else None
          for a in args]
    tout = prim.jvp(ts, outs, *args, **params)
    tout = list(tout) if prim.multiple_results else [tout]
    eps = 1e-6
    fd_dir = (f(*[a if t is None else a + eps * t for a, t in zip(args, ts)]) -
              f(*[a if t is None else a - eps * t for a, t in zip(args, ts)])) / (2 * eps)
    got_dir = pairing([np.zeros(np.shape(o)) if t is None or g is None else t
                       for t, o, g in zip(tout, outs_l, gs)])
    assert_close(got_dir, fd_dir, 1e-6, 1e-7, what="jvp")
    for i, ct in enumerate(cts):
        if np.asarray(args[i]).dtype.kind != "f":
            assert ct is None
            continue
        expected = numerical_grad(f, args, i)
        assert_close(np.zeros_like(expected) if ct is None else ct, expected, 1e-6, 1e-7,
                     what=f"vjp arg {i}")


F32_CASES = {
    "inv": (np.linalg.inv, [_wc(2, 4, 4)]),
    "cholesky": (np.linalg.cholesky, [_spd(2)]),
    "eigvalsh": (np.linalg.eigvalsh, [_distinct_sym(2)]),
    "svdvals": (np.linalg.svdvals, [rng.standard_normal((2, 5, 3))]),
    "qr_r": (lambda a: np.linalg.qr(a, mode="r"), [rng.standard_normal((5, 3))]),
    "pinv": (np.linalg.pinv, [rng.standard_normal((5, 3))]),
    "slogdet": (lambda a: np.linalg.slogdet(a)[1], [_wc(2, 4, 4)]),
    "solve_triangular": (lambda a, b: ad.solve_triangular(a, b, lower=True),
                         [_tril_lower(A4), B42]),
}


@pytest.mark.parametrize("mode", ALL)
@pytest.mark.parametrize("name", sorted(F32_CASES))
def test_float32_values(name, mode):
    # float32 in, float32 out (LAPACK's s-routines when compiled); error against the float64
    # result within a backward-error bound: n * eps32 * cond(a) * |result|
    f, args = F32_CASES[name]
    args32 = [a.astype(np.float32) for a in args]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*falling back to the interpreter.*")
        got = ad.jit(f, mode=mode)(*args32)
    assert np.asarray(got).dtype == np.float32
    exact = f(*[a.astype(np.float64) for a in args32])
    a0 = args[0]
    kappa = float(np.max(np.linalg.cond(a0)))
    bound = 10 * max(a0.shape[-2:]) * np.finfo(np.float32).eps * kappa * \
        max(1.0, float(np.max(np.abs(exact))))
    assert float(np.max(np.abs(got - exact))) <= bound


def test_missing_routine_falls_back_to_the_interpreter(monkeypatch):
    from autodiff_jit.backend import lapack
    monkeypatch.setitem(lapack._discover(), "addrs", {})
    a = _spd(n=6)
    with pytest.warns(RuntimeWarning, match="dpotrf"):
        got = ad.jit(np.linalg.cholesky)(a)
    assert_close(got, np.linalg.cholesky(a), 1e-12, 1e-12)


def test_disk_cache_hit_still_calls_lapack_and_raises(tmp_path):
    f = lambda a: np.linalg.cholesky(a) * 2.0  # noqa: E731
    a = _spd(n=5)
    first = ad.jit(f, cache=str(tmp_path))
    assert_close(first(a), 2 * np.linalg.cholesky(a), 1e-12, 1e-12)
    from autodiff_jit.backend import cache
    hits = cache.stats().get("hits", 0)
    again = ad.jit(lambda a: np.linalg.cholesky(a) * 2.0, cache=str(tmp_path))
    assert_close(again(a), 2 * np.linalg.cholesky(a), 1e-12, 1e-12)
    assert cache.stats().get("hits", 0) == hits + 1
    with pytest.raises(np.linalg.LinAlgError, match="positive definite"):
        again(-a)


@pytest.mark.parametrize("lower,trans", [(True, 0), (True, 1), (False, 0), (False, 1)])
def test_triangular_solve_both_kernels(lower, trans):
    # small: substitution loops; large (n^2 k above lapack_kernels.TRSM_MIN_WORK): BLAS trsm
    from autodiff_jit.backend import lapack_kernels
    for n, k in ((6, 1), (6, 4), (210, 190)):
        assert (n * n * k > lapack_kernels.TRSM_MIN_WORK) == (n == 210)
        t = np.tril(rng.standard_normal((n, n))) + n * np.eye(n)
        a = t if lower else t.T.copy()
        b = rng.standard_normal((n, k))
        got = ad.jit(lambda a, b: ad.solve_triangular(a, b, trans=trans, lower=lower))(a, b)
        assert_close(got, np.linalg.solve(a.T if trans else a, b), 1e-12, 1e-13)


@pytest.mark.parametrize("name,size", [("gp_nll", "n=50"), ("lstsq_solve", "n=20")])
def test_bench_objectives_agree_across_modes(name, size):
    # the built-in benchmark objectives (autodiff-jit bench --cases gp_nll,lstsq_solve)
    r = ad.compare(name, size="quick", quick=True)
    assert r.agreed and r.case.name == name and r.case.size == size


@pytest.mark.parametrize("use_host", (True, False))
@pytest.mark.parametrize("mode", ("interpret", "tape"))
def test_blocked_triangular_solve_in_numpy_modes(mode, use_host, monkeypatch):
    # n above the 64-wide blocks of the numpy fallback, every triangle/transpose; with the
    # host routines (BLAS trsm, primitives/host.py) and without them
    from autodiff_jit.primitives import host
    if not use_host:
        monkeypatch.setattr(host, "_state", {"provider": None, "kernels": None, "loaded": True})
    n = 150
    for lower in (True, False):
        for trans in (0, 1):
            t = np.tril(rng.standard_normal((2, n, n))) + n * np.eye(n)
            a = t if lower else np.swapaxes(t, -1, -2).copy()
            b = rng.standard_normal((2, n, 3))
            got = ad.jit(lambda a, b: ad.solve_triangular(a, b, trans=trans, lower=lower),
                         mode=mode)(a, b)
            op = np.swapaxes(a, -1, -2) if trans else a
            assert_close(got, np.linalg.solve(op, b), 1e-12, 1e-13)


def test_tape_tensors_through_linalg():
    # torch-style: np.linalg on a Tensor records tape nodes; backward gives d logdet = A^{-T}
    x = ad.tensor(A4, requires_grad=True)
    sign, logdet = np.linalg.slogdet(x)
    (logdet + np.sum(np.linalg.cholesky(x @ x.T + np.eye(4)))).backward()
    expected = np.linalg.inv(A4).T + _grad(
        lambda a: np.sum(np.linalg.cholesky(a @ a.T + np.eye(4))), [A4], "interpret")[0]
    assert_close(x.grad, expected, 1e-10, 1e-12)


@pytest.mark.parametrize("mode", ALL)
def test_vmap_of_linalg_uses_the_batching_rule(mode):
    # the linalg primitives map over leading axes already: vmap moves the batch axis to the
    # front (broadcasting unbatched inputs), no per-example fallback
    from autodiff_jit import BatchingFallbackWarning
    b = B42[:, 0]
    stack = np.stack([A4, A4.T, A4 + np.eye(4)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", BatchingFallbackWarning)
        x = ad.vmap(lambda a: np.linalg.solve(a, b), mode=mode)(stack)
        g = ad.vmap(ad.grad(lambda a: np.linalg.slogdet(a)[1]), mode=mode)(stack)
        s = ad.vmap(np.linalg.svdvals, in_axes=2, mode=mode)(np.stack([M53, M53 ** 2], 2))
        c = ad.vmap(lambda a, r: ad.solve_triangular(a, r, lower=True), in_axes=(None, 1),
                    mode=mode)(_tril_lower(A4), B42)
    assert_close(x, np.linalg.solve(stack, b), 1e-12, 1e-12)
    assert_close(g, np.swapaxes(np.linalg.inv(stack), -1, -2), 1e-10, 1e-12)
    assert_close(s, np.linalg.svdvals(np.stack([M53, M53 ** 2])), 1e-12, 1e-12)
    assert_close(c, np.linalg.solve(_tril_lower(A4), B42).T, 1e-12, 1e-12)


# -- the Cholesky rules' helpers at BLAS sizes ---------------------------------------------------
# n = 210: n^3 is above backend/lapack_kernels.TRSM_MIN_WORK, so compiled code calls trmm and
# sygst (the cases above, n <= 4, run its loops); tape and interpret call the same routines
# through host_lapack. References: explicit inverses in float64.

def _phi_np(x):
    return np.tril(x, -1) + 0.5 * np.diag(np.diag(x))


def _big_chol(n=210):
    a = _spd(n=n)
    return a, np.linalg.cholesky(a)


def _f32_tol(n, expected, cond):
    # backward-stable triangular solves/products: ~ n eps cond |result| (Higham ch. 8)
    return 4 * n * np.finfo(np.float32).eps * cond * np.max(np.abs(expected))


_VARIANTS = [(lower, transpose) for lower in (True, False) for transpose in (False, True)]


def _helpers(l, c, x):
    """Both congruences and the four triangular products, in one function (one compile)."""
    from autodiff_jit.primitives import linalg_solve as LS
    return ([LS.congruence_solve(l, c, transpose=t) for t in (False, True)] +
            [LS.triangular_matmul(l, x, lower=lo, transpose_a=t) for lo, t in _VARIANTS])


# float32 at n = 210 (compiled strmm; ssygst runs at n = 5 too) is opt-in: ~3 s more
@pytest.mark.parametrize("n, dt", [(5, np.float64), (5, np.float32), (210, np.float64),
                                   pytest.param(210, np.float32, marks=pytest.mark.slow)])
def test_congruence_and_triangular_matmul_values(n, dt):
    _, low = _big_chol(n)
    l = (low + np.triu(rng.standard_normal((n, n)), 1)).astype(dt)   # junk above: unread
    c = rng.standard_normal((n, n)).astype(dt)
    x = rng.standard_normal((n, 3)).astype(dt)
    l64, c64, x64 = np.tril(l.astype(np.float64)), c.astype(np.float64), x.astype(np.float64)
    s = np.tril(c64) + np.tril(c64, -1).T
    li = np.linalg.inv(l64)
    cond = np.linalg.cond(l64)
    expected, tols = [], []
    for b in (li, li.T):
        e = np.tril(b @ s @ b.T)
        expected.append(e)
        tols.append(1e-12 * cond ** 2 * np.max(np.abs(e)) if dt == np.float64 else
                    _f32_tol(n, e, cond ** 2))
    for lower, transpose in _VARIANTS:
        t = np.tril(l.astype(np.float64)) if lower else np.triu(l.astype(np.float64))
        op = t.T if transpose else t
        expected.append(op @ x64)
        mag = (np.abs(op) @ np.abs(x64)).max()
        tols.append(1e-13 * n * mag if dt == np.float64 else 2 * n * np.finfo(dt).eps * mag)
    for mode in ALL:
        got = ad.jit(_helpers, mode=mode)(l, c, x)
        for i, (g, e, tol) in enumerate(zip(got, expected, tols)):
            assert g.dtype == dt
            assert_close(g, e, 0, tol, what=f"output {i} {mode}")


def test_congruence_solve_of_a_zero_diagonal_raises():
    from autodiff_jit.primitives import linalg_solve as LS
    l = np.tril(_wc(4, 4))
    l[2, 2] = 0.0
    for mode in ALL:
        with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
            ad.jit(lambda l, c: LS.congruence_solve(l, c), mode=mode)(l, W)


@pytest.mark.parametrize("dt", [np.float64, pytest.param(np.float32, marks=pytest.mark.slow)])
def test_cholesky_gradient_and_tangent_at_blas_sizes(dt):
    n = 210
    a, low = _big_chol(n)
    w = rng.standard_normal((n, n))
    # Murray 2016, eqs. 8 and 10 with explicit inverses: gA = Phi(S + S^T), S = L^-T P L^-1
    li = np.linalg.inv(low)
    s = li.T @ _phi_np(low.T @ np.tril(w)) @ li
    expected = _phi_np(s + s.T)
    t = rng.standard_normal((n, n))
    sym_t = np.tril(t) + np.tril(t, -1).T
    expected_dl = low @ _phi_np(li @ sym_t @ li.T)   # eq. 7
    cond = np.linalg.cond(a)
    for mode in ALL:
        got = _grad(lambda x: np.sum(w.astype(dt) * np.linalg.cholesky(x)), [a.astype(dt)],
                    mode)[0]
        _, tan = ad.jvp(np.linalg.cholesky, (a.astype(dt),), (t.astype(dt),), mode=mode)
        assert got.dtype == dt and tan.dtype == dt
        if dt == np.float64:
            tol, tol_t = (1e-12 * cond * np.max(np.abs(e)) * n for e in (expected, expected_dl))
        else:
            tol, tol_t = (_f32_tol(n, e, cond) for e in (expected, expected_dl))
        assert_close(got, expected, 0, tol, what=mode)
        np.testing.assert_array_equal(np.triu(got, 1), 0)   # only the lower triangle is read
        assert_close(tan, expected_dl, 0, tol_t, what=mode)


def test_slogdet_gradient_reuses_the_factorization():
    # the gradient's solve with a^T runs on slogdet's own LU factors (lu_solve), not a solve
    text = str(ad.make_ir(ad.grad(lambda a: np.linalg.slogdet(a)[1]))(A4))
    assert text.count("slogdet(") == 1 and text.count("lu_solve(") == 1
    assert "= solve(" not in text


@pytest.mark.parametrize("mode", ALL)
def test_slogdet_special_matrices(mode):
    singular = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
    swapped = np.eye(3)[[1, 0, 2]] * np.array([2.0, -3.0, 0.5])   # one row swap, det 3
    nan = A4.copy()
    nan[1, 2] = np.nan
    for a in (singular, swapped, nan, -A4, np.stack([A4, -A4, np.eye(4)]),
              _wc(40, 40).astype(np.float32)):
        sign, logdet = ad.jit(np.linalg.slogdet, mode=mode)(a)
        with np.errstate(invalid="ignore"):   # numpy's flag for the NaN entry
            es, el = np.linalg.slogdet(a)
        assert sign.dtype == es.dtype and logdet.dtype == el.dtype
        tol = 1e-12 if a.dtype == np.float64 else 1e-5
        np.testing.assert_allclose(sign, es, rtol=0, atol=0, err_msg=mode)
        np.testing.assert_allclose(logdet, el, rtol=tol, err_msg=mode)
    # log|det| is not differentiable at a singular matrix: numpy's error, as before the
    # gradient reused slogdet's factors (a zero pivot in them is reported, not divided by)
    for f in (lambda a: np.linalg.slogdet(a)[1], np.linalg.det):
        with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
            ad.grad(f, mode=mode)(singular)
    assert_close(_grad(np.linalg.det, [swapped], mode)[0],
                 np.linalg.det(swapped) * np.linalg.inv(swapped).T, 1e-12, 1e-12)
