"""numpy/products.py additions: einsum with '...' and repeated indices, kron, cross, vecdot,
matvec, vecmat; value vs numpy and gradient vs finite differences, every mode."""
import numpy as np
import pytest

import autodiff_jit as ad

from table import check_case

_r = np.random.default_rng(17)
A = _r.standard_normal((3, 3))
B = _r.standard_normal((2, 3, 3))
M = _r.standard_normal((2, 4, 3))
v3 = _r.standard_normal((4, 3))
w3 = _r.standard_normal((4, 3))
v2 = _r.standard_normal((4, 2))

CASES = {
    "einsum_trace": (lambda a: np.einsum("ii", a), [A]),
    "einsum_diag": (lambda a: np.einsum("ii->i", a), [A]),
    "einsum_batch_trace": (lambda b: np.einsum("bii->b", b), [B]),
    "einsum_diag_product": (lambda a, b: np.einsum("ii,bij->bj", a, b), [A, B]),
    "einsum_ellipsis": (lambda m, v: np.einsum("...ij,...j->...i", m, v[:2, None, :]), [M, v3]),
    "einsum_ellipsis_implicit": (lambda b: np.einsum("...ii", b), [B]),
    "einsum_ellipsis_broadcast": (lambda m, a: np.einsum("...j,jk->...k", m, a), [M, A]),
    "einsum_sublists": (lambda a, b: np.einsum(a, [0, 1], b.T, [1, 2], [2, 0]), [A, v3]),
    "einsum_sublists_implicit_ellipsis": (lambda m, a: np.einsum(m, [..., 1], a, [1, 2]), [M, A]),
    "kron": (np.kron, [A, v2]), "kron_1d": (lambda a, b: np.kron(a[0], b[1]), [A, v3]),
    "cross": (np.cross, [v3, w3]), "cross_2d": (lambda a, b: np.cross(a, b[:, :2]), [v3, v2]),
    "cross_axis": (lambda a, b: np.cross(a.T, b.T, axis=0), [v3, w3]),
    "vecdot": (np.vecdot, [v3, w3]), "vecdot_axis": (lambda a, b: np.vecdot(a, b, axis=0), [v3, w3]),
    # the core axis of each operand first, then the loop axes broadcast (x2 has fewer axes)
    "vecdot_axis_fewer_dims": (lambda a, b: np.vecdot(a, b[:, 0], axis=0), [w3, v3]),
    "vecdot_axis_middle": (lambda a, b: np.vecdot(a.reshape(2, 2, 3), b[:2].T, axis=1),
                           [v3, w3]),
    "linalg_vecdot_axis": (lambda a, b: np.linalg.vecdot(a, b[:, 0], axis=0), [w3, v3]),
    "matvec": (lambda m, v: np.matvec(m, v[0]), [M, v3]),
    "vecmat": (lambda v, m: np.vecmat(v[:2, None, :4 - 1], m.transpose(0, 2, 1)), [v3, M]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_products(name):
    f, args = CASES[name]
    if name == "cross_2d":
        try:
            f(*args)
        except ValueError as exc:  # numpy >= 2.5 refuses 2-vectors: so must we
            with pytest.raises(ValueError):
                ad.jit(f)(*args)
            pytest.skip(f"this numpy refuses 2-vector cross products ({exc})")
    check_case(f, args, rtol=1e-13)


def test_einsum_sublist_bad_subscript():
    import autodiff_jit as ad
    with pytest.raises(ValueError, match="sublist"):
        ad.jit(lambda a: np.einsum(a, [0, "x"]))(A)
