"""np.linalg on traced values and tape Tensors.

Solves and decompositions are primitives (primitives/linalg_solve.py, primitives/decomp.py);
everything else here is an exact composite of them. Inputs are stacks of matrices (..., m, n)
as in numpy; integer inputs are computed in float64 as numpy does. docs/linalg.md lists the
derivative rules and their caveats.
"""
from __future__ import annotations

import numbers
from collections import namedtuple

import numpy as np

from ..primitives import aval_of, decomp as D, linalg_solve as LS, shape as S
from ..primitives import elementwise as E
from ..primitives.matrix_ops import mT, mm
from ._base import UFUNCS, _shape, asvalue, check_axis, implements, normalize_axes
from ._gather import remap
from .products import cross, matmul, outer, tensordot
from .reductions import amax, amin, sum_
from .twodim import tril
from .ufuncs import add, multiply, stop_gradient

SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
QRResult = namedtuple("QRResult", ["Q", "R"])
_NoValue = np._NoValue


def _float(x, half=False):
    """x as a float32/float64 value (ints and bools become float64, as in numpy.linalg).
    float16 is refused as numpy's LAPACK-based functions refuse it; with half=True (norms) it
    is computed in float32, as the rest of autodiff_jit computes float16."""
    x = asvalue(x)
    dt = aval_of(x).dtype
    if dt.kind == "f" and dt.itemsize >= 4:
        return x
    if dt.kind in "cO":
        raise TypeError(f"np.linalg on {dt} values is not supported by autodiff_jit (real "
                        f"float32/float64 only)")
    if dt == np.float16 and not half:
        raise TypeError("array type float16 is unsupported in linalg")
    return E.cast(x, np.float32 if dt == np.float16 else np.float64)


def _common_float(a, b):
    a, b = _float(a), _float(b)
    return E.promote(a, b)


def _square(name, a):
    sh = _shape(a)
    if len(sh) < 2:
        raise np.linalg.LinAlgError(f"{len(sh)}-dimensional array given. Array must be at "
                                    f"least two-dimensional")
    if sh[-1] != sh[-2]:
        raise np.linalg.LinAlgError("Last 2 dimensions of the array must be square")


def _bcast(x, batch):
    sh = _shape(x)
    return x if sh[:-2] == batch else S.broadcast_to(x, batch + sh[-2:])


def _eye(a):
    sh = _shape(a)
    return np.broadcast_to(np.eye(sh[-1], dtype=aval_of(a).dtype), sh)


def _unsqueeze_last(x):
    return S.reshape(x, _shape(x) + (1,))


def _flat(x):
    return S.reshape(x, (int(np.prod(_shape(x), dtype=np.int64)),))


def _squeeze_last(x):
    return S.reshape(x, _shape(x)[:-1])


# ---------------------------------------------------------------------------------------------
# solves, inverses, determinants

@implements(np.linalg.solve)
def solve(a, b):
    a, b = _common_float(a, b)
    _square("solve", a)
    a, b, vector = _batched_system(a, b)
    if _shape(b)[-2] != _shape(a)[-1]:
        raise ValueError(f"solve: Input operand 1 has a mismatch in its core dimension 0 "
                         f"(size {_shape(b)[-2]} is different from {_shape(a)[-1]})")
    x = LS.solve(a, b)
    return _squeeze_last(x) if vector else x


def _batched_system(a, b):
    """a (..., n, n) and b (..., n) or (..., n, k) of a linear system, as a and a matrix b with
    their leading axes broadcast together; vector: b was (..., n)."""
    vector = len(_shape(b)) == 1
    if vector:
        b = _unsqueeze_last(b)
    batch = tuple(np.broadcast_shapes(_shape(a)[:-2], _shape(b)[:-2]))
    return _bcast(a, batch), _bcast(b, batch), vector


def solve_triangular(a, b, trans=0, lower=False):
    """scipy.linalg.solve_triangular(a, b, trans, lower) on traced values, Tensors or arrays:
    op(a)^{-1} b reading only a's lower (upper) triangle, op = transpose if trans in (1, 'T').
    One triangular-solve primitive (LAPACK trtrs when compiled): O(n^2 k), not an LU solve.
    b is (..., n) or (..., n, k); a is (..., n, n); leading axes broadcast."""
    if trans not in (0, 1, "N", "T"):
        raise NotImplementedError(f"solve_triangular(trans={trans!r}): use 0/'N' or 1/'T'")
    a, b = _common_float(a, b)
    _square("solve_triangular", a)
    a, b, vector = _batched_system(a, b)
    x = LS.triangular_solve(a, b, lower=lower, transpose_a=trans in (1, "T"))
    return _squeeze_last(x) if vector else x


def cho_solve(c_and_lower, b):
    """scipy.linalg.cho_solve((c, lower), b): a^{-1} b from a's Cholesky factor c, by two
    triangular solves."""
    c, lower = c_and_lower
    y = solve_triangular(c, b, trans=0 if lower else 1, lower=lower)
    return solve_triangular(c, y, trans=1 if lower else 0, lower=lower)


@implements(np.linalg.inv)
def inv(a):
    a = _float(a)
    _square("inv", a)
    return LS.solve(a, _eye(a))


@implements(np.linalg.slogdet)
def slogdet(a):
    a = _float(a)
    _square("slogdet", a)
    sign, logdet = LS.slogdet(a)
    return SlogdetResult(sign, logdet)


@implements(np.linalg.det)
def det(a):
    sign, logdet = slogdet(a)
    return sign * UFUNCS[np.exp](logdet)


@implements(np.linalg.cholesky)
def cholesky(a, /, *, upper=False):
    a = _float(a)
    _square("cholesky", a)
    if upper:  # numpy reads the upper triangle then: the lower one of a^T
        return mT(D.cholesky(mT(a)))
    return D.cholesky(a)


@implements(np.linalg.matrix_power)
def matrix_power(a, n):
    a = asvalue(a)
    _square("matrix_power", a)
    if not isinstance(n, numbers.Integral):
        raise TypeError("exponent must be an integer")
    if n == 0:
        return np.broadcast_to(np.eye(_shape(a)[-1], dtype=aval_of(a).dtype), _shape(a)).copy()
    if n < 0:
        a, n = inv(a), -n
    # binary powering: log2(n) products (as numpy)
    result, base = None, a
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


@implements(np.linalg.multi_dot, defaults_only=("out",))
def multi_dot(arrays, *, out=None):
    arrays = [asvalue(x) for x in arrays]
    if len(arrays) < 2:
        raise ValueError("Expecting at least two arrays.")
    first_vec, last_vec = len(_shape(arrays[0])) == 1, len(_shape(arrays[-1])) == 1
    if first_vec:
        arrays[0] = S.reshape(arrays[0], (1,) + _shape(arrays[0]))
    if last_vec:
        arrays[-1] = S.reshape(arrays[-1], _shape(arrays[-1]) + (1,))
    for x in arrays:
        if len(_shape(x)) != 2:
            raise ValueError(f"{len(_shape(x))}-dimensional array given. Array must be "
                             f"two-dimensional")
    order = _chain_order([_shape(x) for x in arrays])
    result = _chain(arrays, order, 0, len(arrays) - 1)
    if first_vec and last_vec:
        return S.reshape(result, ())
    if first_vec:
        return S.reshape(result, _shape(result)[1:])
    if last_vec:
        return S.reshape(result, _shape(result)[:-1])
    return result


def _chain_order(shapes):
    """The optimal parenthesization of a matrix chain (Cormen et al., as numpy's multi_dot)."""
    dims = [shapes[0][0]] + [s[1] for s in shapes]
    n = len(shapes)
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = None
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if cost[i][j] is None or c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k
    return split


def _chain(arrays, split, i, j):
    if i == j:
        return arrays[i]
    k = split[i][j]
    return matmul(_chain(arrays, split, i, k), _chain(arrays, split, k + 1, j))


@implements(np.linalg.tensorsolve)
def tensorsolve(a, b, axes=None):
    a, b = _common_float(a, b)
    nd = len(_shape(a))
    if axes is not None:
        allaxes = list(range(nd))
        for k in axes:
            allaxes.remove(k)
            allaxes.insert(nd, k)
        a = S.transpose(a, tuple(allaxes))
    bsh = _shape(b)
    oldshape = _shape(a)[len(bsh):]
    prod = int(np.prod(oldshape, dtype=np.int64))
    nb = int(np.prod(bsh, dtype=np.int64))
    if prod != nb:
        raise np.linalg.LinAlgError("Input arrays must satisfy the requirement "
                                    "prod(a.shape[b.ndim:]) == prod(a.shape[:b.ndim])")
    x = solve(S.reshape(a, (nb, prod)), S.reshape(b, (nb,)))
    return S.reshape(x, oldshape)


@implements(np.linalg.tensorinv)
def tensorinv(a, ind=2):
    a = _float(a)
    if ind <= 0:
        raise ValueError("Invalid ind argument.")
    sh = _shape(a)
    oldshape = sh[:ind]
    prod = int(np.prod(oldshape, dtype=np.int64))
    rest = int(np.prod(sh[ind:], dtype=np.int64))
    if prod != rest:
        raise np.linalg.LinAlgError("Last 2 dimensions of the array must be square")
    return S.reshape(inv(S.reshape(a, (prod, rest))), sh[ind:] + oldshape)


# ---------------------------------------------------------------------------------------------
# decompositions

@implements(np.linalg.eigh)
def eigh(a, UPLO="L"):
    a = _float(a)
    _square("eigh", a)
    if UPLO not in ("L", "U"):
        raise ValueError("UPLO argument must be 'L' or 'U'")
    w, v = D.eigh(a, UPLO)
    return EighResult(w, v)


@implements(np.linalg.eigvalsh)
def eigvalsh(a, UPLO="L"):
    return eigh(a, UPLO).eigenvalues


def _at_least_2d(name, a):
    if len(_shape(a)) < 2:
        raise np.linalg.LinAlgError(f"{len(_shape(a))}-dimensional array given. Array must be "
                                    f"at least two-dimensional")


def _hermitian(a, name):
    """The symmetric matrix numpy's hermitian=True reads from a (its lower triangle, as
    numpy's eigh does): the same values and the same gradient flow (none into the strict
    upper triangle)."""
    _square(name, a)
    return add(tril(a), mT(tril(a, -1)))


@implements(np.linalg.svd)
def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    a = _float(a)
    _at_least_2d("svd", a)
    if hermitian and compute_uv:
        # numpy then builds u and vh from eigh (its eigenvector signs, not LAPACK's SVD ones)
        raise NotImplementedError("np.linalg.svd(..., hermitian=True) with compute_uv=True is "
                                  "not supported by autodiff_jit: numpy's u and vh then come "
                                  "from eigh; use np.linalg.eigh, or hermitian=False")
    if hermitian:
        a = _hermitian(a, "svd")
    if not compute_uv:
        return D.svd(a, compute_uv=False)[0]
    m, n = _shape(a)[-2:]
    u, s, vh = D.svd(a, full_matrices=bool(full_matrices) and m != n)
    return SVDResult(u, s, vh)


@implements(np.linalg.svdvals)
def svdvals(x, /):
    return svd(x, compute_uv=False)


@implements(np.linalg.qr)
def qr(a, mode="reduced"):
    a = _float(a)
    _at_least_2d("qr", a)
    if mode not in ("reduced", "complete", "r"):
        raise NotImplementedError(f"np.linalg.qr(mode={mode!r}) is not supported by "
                                  f"autodiff_jit; use mode='reduced', 'complete' or 'r'")
    m, n = _shape(a)[-2:]
    q, r = D.qr(a, complete=mode == "complete" and m > n)
    return r if mode == "r" else QRResult(q, r)


@implements(np.linalg.pinv)
def pinv(a, rcond=None, hermitian=False, *, rtol=_NoValue):
    a = _float(a)
    _at_least_2d("pinv", a)
    if hermitian:
        # numpy's eigh-based pinv equals the SVD one of the same symmetric matrix up to
        # rounding; the SVD rule keeps the gradient finite at repeated eigenvalues
        a = _hermitian(a, "pinv")
    m, n = _shape(a)[-2:]
    if rcond is not None and rtol is not _NoValue:
        raise ValueError("`rtol` and `rcond` can't be both set.")
    if rcond is None:
        rcond = max(m, n) * np.finfo(aval_of(a).dtype).eps \
            if rtol is _NoValue or rtol is None else rtol
    if not isinstance(rcond, numbers.Real):
        raise NotImplementedError("np.linalg.pinv(..., rcond=) on traced values takes one "
                                  "Python/numpy float (not an array of them)")
    return D.pinv(a, rcond=float(rcond))


@implements(np.linalg.lstsq)
def lstsq(a, b, rcond=None):
    a, b = _common_float(a, b)
    if len(_shape(a)) != 2:
        raise np.linalg.LinAlgError(f"{len(_shape(a))}-dimensional array given. Array must be "
                                    f"two-dimensional")
    m, n = _shape(a)
    vector = len(_shape(b)) == 1
    if _shape(b)[0] != m:
        raise np.linalg.LinAlgError("Incompatible dimensions")
    dt = aval_of(a).dtype
    rc = np.finfo(dt).eps * max(m, n) if rcond is None else rcond
    if not isinstance(rc, numbers.Real):
        raise NotImplementedError("np.linalg.lstsq(..., rcond=) on traced values takes one float")
    s = D.svd(a, compute_uv=False)[0]
    bb = _unsqueeze_last(b) if vector else b
    # x = pinv(a) b: the minimum-norm least-squares solution numpy's gelsd computes
    x = mm(D.pinv(a, rcond=float(rc)), bb)
    # numpy's rank is LAPACK's int: int32
    rank = E.cast(sum_(stop_gradient(s) > stop_gradient(amax(s)) * rc), np.int32)
    if m > n:
        # numpy's residuals are those of a full-rank a (its shape cannot depend on values, so a
        # rank-deficient a also gets them here, where numpy returns an empty array)
        resid = bb - mm(a, x)
        residuals = sum_(multiply(resid, resid), axis=0)
    else:
        residuals = np.zeros((0,), dt)
    if vector:
        x = _squeeze_last(x)
    return x, residuals, rank, s


# ---------------------------------------------------------------------------------------------
# norms, condition numbers, rank

def _matrix_axes(x, axis):
    nd = len(_shape(x))
    r, c = (check_axis(a, nd) for a in axis)
    if r == c:
        raise ValueError("Duplicate axes given.")
    return r, c


def _to_last_two(x, r, c):
    nd = len(_shape(x))
    rest = [i for i in range(nd) if i not in (r, c)]
    return S.transpose(x, tuple(rest + [r, c]))


def _restore_keepdims(v, x, r, c, keepdims):
    if not keepdims:
        return v
    sh = list(_shape(x))
    sh[r] = sh[c] = 1
    return S.reshape(v, tuple(sh))


def _svd_matrix_norm(x, ord, r, c, keepdims):
    """Matrix norms ord=2, -2, 'nuc' over axes (r, c): from the singular values."""
    s = D.svd(_to_last_two(x, r, c), compute_uv=False)[0]
    v = amax(s, axis=-1) if ord == 2 else amin(s, axis=-1) if ord == -2 else sum_(s, axis=-1)
    return _restore_keepdims(v, x, r, c, keepdims)


def _vector_norm(x, ord, axes, keepdims):
    """The vector p-norm over `axes` (a tuple), numpy's definition for every ord."""
    absx = UFUNCS[np.absolute](x)
    if ord == np.inf:
        return amax(absx, axis=axes, keepdims=keepdims)
    if ord == -np.inf:
        return amin(absx, axis=axes, keepdims=keepdims)
    if ord == 0:
        nz = E.cast(stop_gradient(x) != 0, aval_of(x).dtype)
        return sum_(nz, axis=axes, keepdims=keepdims)
    if ord == 1:
        return sum_(absx, axis=axes, keepdims=keepdims)
    if ord is None or ord == 2:
        return UFUNCS[np.sqrt](sum_(multiply(x, x), axis=axes, keepdims=keepdims))
    if isinstance(ord, str):
        raise ValueError(f"Invalid norm order '{ord}' for vectors")
    p = float(ord)
    return UFUNCS[np.power](sum_(UFUNCS[np.power](absx, p), axis=axes, keepdims=keepdims),
                            1.0 / p)


@implements(np.linalg.norm)
def norm(x, ord=None, axis=None, keepdims=False):
    x = _float(x, half=True)
    nd = len(_shape(x))
    if isinstance(axis, numbers.Integral):
        axis = (axis,)
    if axis is None:
        if ord is None:
            return _vector_norm(_flat(x) if nd != 1 else x, None, (0,), False) \
                if not keepdims else _vector_norm(x, None, tuple(range(nd)), True)
        if nd == 1:
            axis = (0,)
        elif nd == 2:
            axis = (0, 1)
        else:
            raise ValueError("Improper number of dimensions to norm.")
    axis = tuple(axis)
    if len(axis) == 1:
        return _vector_norm(x, ord, normalize_axes(axis, nd), keepdims)
    if len(axis) == 2:
        r, c = _matrix_axes(x, axis)
        if ord in (2, -2, "nuc"):
            return _svd_matrix_norm(x, ord, r, c, keepdims)
        return _elementwise_matrix_norm(x, ord, r, c, keepdims)
    raise ValueError("Improper number of dimensions to norm.")


def _elementwise_matrix_norm(x, ord, r, c, keepdims):
    """Matrix norms ord=None/'fro', 1, -1, inf, -inf over axes (r, c)."""
    absx = UFUNCS[np.absolute](x)
    if ord in (None, "fro"):
        return UFUNCS[np.sqrt](sum_(multiply(x, x), axis=(r, c), keepdims=keepdims))
    if ord in (1, -1, np.inf, -np.inf):
        inner, outer_ax = (r, c) if ord in (1, -1) else (c, r)
        col = sum_(absx, axis=inner, keepdims=True)
        red = amax if ord > 0 else amin
        v = red(col, axis=outer_ax, keepdims=True)
        if keepdims:
            return v
        return S.reshape(v, tuple(d for i, d in enumerate(_shape(x)) if i not in (r, c)))
    raise ValueError("Invalid norm order for matrices.")


@implements(np.linalg.matrix_norm)
def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    x = _float(x, half=True)
    if len(_shape(x)) < 2:
        raise ValueError("The input does not have enough dimensions (matrices need 2).")
    return norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)


@implements(np.linalg.vector_norm)
def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    x = _float(x, half=True)
    nd = len(_shape(x))
    if axis is None:
        flat = _vector_norm(_flat(x), ord, (0,), False)
        return S.reshape(flat, (1,) * nd) if keepdims else flat
    axes = normalize_axes(axis, nd)
    return _vector_norm(x, ord, axes, keepdims)


@implements(np.linalg.cond)
def cond(x, p=None):
    x = _float(x)
    _at_least_2d("cond", x)
    if p in (None, 2, -2):
        s = D.svd(x, compute_uv=False)[0]
        hi, lo = amax(s, axis=-1), amin(s, axis=-1)
        return lo / hi if p == -2 else hi / lo
    _square("cond", x)
    nd = len(_shape(x))
    return multiply(norm(x, p, axis=(nd - 2, nd - 1)), norm(inv(x), p, axis=(nd - 2, nd - 1)))


@implements(np.linalg.matrix_rank)
def matrix_rank(A, tol=None, hermitian=False, *, rtol=None):
    # an integer: its derivative is zero, so no gradient flows (stop_gradient)
    A = stop_gradient(_float(A))
    nd = len(_shape(A))
    if hermitian and nd >= 2:
        A = _hermitian(A, "matrix_rank")
    if nd < 2:  # numpy: 1 unless every entry is zero
        nz = E.cast(A != 0, np.int64)
        return amax(nz) if nd else nz
    s = D.svd(A, compute_uv=False)[0]
    m, n = _shape(A)[-2:]
    if tol is None:
        rt = max(m, n) * np.finfo(aval_of(s).dtype).eps if rtol is None else rtol
        tol = _unsqueeze_last(amax(s, axis=-1)) * rt
    elif rtol is not None:
        raise ValueError("`tol` and `rtol` can't be both set.")
    elif not isinstance(tol, numbers.Number):
        tol = _unsqueeze_last(asvalue(tol))
    return sum_(s > tol, axis=-1)


# ---------------------------------------------------------------------------------------------
# np.linalg spellings of array-API functions (onto the numpy-level implementations)

@implements(np.linalg.matmul)
def linalg_matmul(x1, x2, /):
    return matmul(x1, x2)


@implements(np.linalg.tensordot)
def linalg_tensordot(x1, x2, /, *, axes=2):
    return tensordot(x1, x2, axes)


@implements(np.linalg.outer)
def linalg_outer(x1, x2, /):
    x1, x2 = asvalue(x1), asvalue(x2)
    if len(_shape(x1)) != 1 or len(_shape(x2)) != 1:
        raise ValueError("Input arrays must be one-dimensional")
    return outer(x1, x2)


@implements(np.linalg.cross)
def linalg_cross(x1, x2, /, *, axis=-1):
    x1, x2 = asvalue(x1), asvalue(x2)
    if _shape(x1)[axis] != 3 or _shape(x2)[axis] != 3:
        raise ValueError("Both input arrays must be (arrays of) 3-dimensional vectors")
    return cross(x1, x2, axis=axis)


@implements(np.linalg.vecdot)
def linalg_vecdot(x1, x2, /, *, axis=-1):
    return UFUNCS[np.vecdot](x1, x2, axis=axis)   # numpy's is np.vecdot


@implements(np.linalg.matrix_transpose)
def matrix_transpose(x, /):
    x = asvalue(x)
    if len(_shape(x)) < 2:
        raise ValueError("Input array must be at least 2-dimensional")
    return mT(x)


@implements(np.linalg.diagonal)
def diagonal(x, /, *, offset=0):
    """x[..., i, i + offset] as (..., k): a gather of those positions, as numpy picks them
    (exact: the dtype, inf and nan elsewhere, and -0.0 are kept)."""
    x = asvalue(x)
    if len(_shape(x)) < 2:
        raise ValueError("diag requires an array of at least two dimensions")
    return remap(x, lambda p: np.linalg.diagonal(p, offset=offset))


@implements(np.linalg.trace)
def trace(x, /, *, offset=0, dtype=None):
    d = diagonal(x, offset=offset)
    if dtype is not None:
        d = E.cast(d, dtype)
    return sum_(d, axis=-1)


__all__ = ["cho_solve", "cholesky", "cond", "det", "eigh", "eigvalsh", "inv", "lstsq",
           "matrix_norm", "matrix_power", "matrix_rank", "multi_dot", "norm", "pinv", "qr",
           "slogdet", "solve", "solve_triangular", "svd", "svdvals", "tensorinv", "tensorsolve",
           "vector_norm"]
