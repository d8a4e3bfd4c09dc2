"""numpy's poly1d-style polynomial functions (numpy/lib/_polynomial_impl) on coefficient
arrays, highest power first: polyval, polyder, polyint, polyadd, polysub, polymul, polydiv,
poly, polyfit. Coefficient counts are static; values (coefficients, points, roots) may be traced."""
from __future__ import annotations

import numbers

import numpy as np

from ..ir import is_float
from ..primitives import elementwise as E
from ._base import UFUNCS, _dtype, _is_traced, _shape, asvalue, implements
from .shape import concatenate, ravel, reshape, stack, transpose
from .linalg import inv, lstsq
from .products import matmul, outer
from .reductions import sum_
from .signal import convolve
from .twodim import vander
from .ufuncs import add, divide, multiply, subtract


def _coeffs(p):
    p = asvalue(p)
    if len(_shape(p)) == 0:
        p = ravel(p)
    if len(_shape(p)) != 1:
        raise ValueError("polynomial coefficients must be a 1-d array")
    return p


@implements(np.polyval)
def polyval(p, x):
    p = _coeffs(p)
    x = asvalue(x)
    # numpy starts from zeros_like(x): x's dtype (bools too)
    y = E.cast(multiply(x, 0), _dtype(x)) if _is_traced(x) else np.zeros_like(np.asarray(x))
    for i in range(_shape(p)[0]):  # Horner, as numpy: y = y * x + p[i]
        y = add(multiply(y, x), p[i])
    return y


@implements(np.polyder)
def polyder(p, m=1):
    if m < 0:
        raise ValueError("Order of derivative must be positive (see polyint)")
    p = _coeffs(p)
    for _ in range(m):   # numpy's: a constant's derivative is the empty polynomial
        n = _shape(p)[0] - 1
        p = multiply(p[:-1], np.arange(n, 0, -1))
    return p


@implements(np.polyint)
def polyint(p, m=1, k=None):
    if m < 0:
        raise ValueError("Order of integral must be positive (see polyder)")
    k = np.zeros(m) if k is None else k
    ks = [k] * m if isinstance(k, numbers.Number) or _is_traced(k) and _shape(k) == () else \
        [asvalue(k)[i] if _is_traced(k) else np.atleast_1d(k)[i] for i in range(m)]
    p = _coeffs(p)
    for i in range(m):
        n = _shape(p)[0]
        p = divide(p, np.arange(n, 0, -1, dtype=np.float64))
        p = concatenate([p, ravel(E.cast(asvalue(ks[i]), _dtype(p)))], 0)
    return p


def _pad_front(p, n):
    k = _shape(p)[0]
    if k == n:
        return p
    return concatenate([E.cast(np.zeros(n - k), _dtype(p)), p], 0)


@implements(np.polyadd)
def polyadd(a1, a2):
    a1, a2 = _coeffs(a1), _coeffs(a2)
    n = max(_shape(a1)[0], _shape(a2)[0])
    return add(_pad_front(a1, n), _pad_front(a2, n))


@implements(np.polysub)
def polysub(a1, a2):
    a1, a2 = _coeffs(a1), _coeffs(a2)
    n = max(_shape(a1)[0], _shape(a2)[0])
    return subtract(_pad_front(a1, n), _pad_front(a2, n))


@implements(np.polymul)
def polymul(a1, a2):
    """numpy's: np.convolve of the two after poly1d has stripped their leading zeros. That is
    done for a constant operand; a traced one keeps its length (numpy's would depend on the
    values), so a traced leading zero gives extra leading zero coefficients."""
    return convolve(_stripped(a1), _stripped(a2))


def _stripped(p):
    """Coefficients without leading zeros (all zeros: [0]) if constant, as numpy's poly1d."""
    if _is_traced(p):
        return _coeffs(p)
    c = np.atleast_1d(np.asarray(p))
    if c.ndim == 1:
        c = np.trim_zeros(c, "f")
        c = c if c.size else np.zeros(1, np.asarray(p).dtype)
    return _coeffs(c)


@implements(np.polydiv)
def polydiv(u, v):
    """numpy's long division. numpy then strips the remainder's leading near-zero terms (a
    value-dependent length); here the m-n+1 terms the division zeroes are dropped, which is
    the same unless the true remainder itself starts with a zero coefficient."""
    u, v = _coeffs(u), _coeffs(v)
    if not is_float(_dtype(u)):
        u = E.cast(u, np.float64)
    m, n = _shape(u)[0] - 1, _shape(v)[0] - 1
    scale = divide(1.0, v[0])
    q = []
    r = [u[i] for i in range(m + 1)]
    for k in range(max(m - n + 1, 0)):
        d = multiply(scale, r[k])
        q.append(d)
        for j in range(n + 1):
            r[k + j] = subtract(r[k + j], multiply(d, v[j]))
    qv = stack(q) if q else E.cast(np.zeros(1), _dtype(u))
    rest = r[max(m - n + 1, 0):] or [multiply(r[-1], 0.0)]
    return qv, stack(rest)


@implements(np.poly)
def poly(seq_of_zeros):
    z = asvalue(seq_of_zeros)
    if len(_shape(z)) != 1:
        raise NotImplementedError("np.poly of a matrix (its characteristic polynomial) is not "
                                  "supported; pass the roots")
    a = np.ones(1, _dtype(z) if is_float(_dtype(z)) else np.float64)  # numpy: z's float dtype
    for i in range(_shape(z)[0]):
            a = convolve(a, stack([E.cast(np.float64(1.0), _dtype(z)) if is_float(_dtype(z))
                               else np.float64(1.0), multiply(z[i], -1.0)]))
    return a


@implements(np.polyfit)
def polyfit(x, y, deg, rcond=None, full=False, w=None, cov=False):
    """numpy's algorithm: the column-scaled Vandermonde least-squares problem, solved by
    np.linalg.lstsq (so the gradient is that of the minimum-norm solution). numpy's
    RankWarning is not issued: the rank is a run-time value here (full=True returns it)."""
    order = int(deg) + 1
    x, y = add(asvalue(x), 0.0), add(asvalue(y), 0.0)
    if deg < 0:
        raise ValueError("expected deg >= 0")
    if len(_shape(x)) != 1:
        raise TypeError("expected 1D vector for x")
    if _shape(x)[0] == 0:
        raise TypeError("expected non-empty vector for x")
    if len(_shape(y)) not in (1, 2):
        raise TypeError("expected 1D or 2D array for y")
    if _shape(x)[0] != _shape(y)[0]:
        raise TypeError("expected x and y to have same length")
    n = _shape(x)[0]
    if rcond is None:
        rcond = n * np.finfo(_dtype(x)).eps
    lhs, rhs = vander(x, order), y
    if w is not None:
        w = add(asvalue(w), 0.0)
        if len(_shape(w)) != 1:
            raise TypeError("expected a 1-d array for weights")
        if _shape(w)[0] != _shape(y)[0]:
            raise TypeError("expected w and y to have the same length")
        col = reshape(w, (n, 1))
        lhs = multiply(lhs, col)
        rhs = multiply(rhs, col if len(_shape(rhs)) == 2 else w)
    scale = UFUNCS[np.sqrt](sum_(multiply(lhs, lhs), axis=0))
    lhs = divide(lhs, scale)
    c, resids, rank, s = lstsq(lhs, rhs, rcond)
    c = divide(c, scale) if len(_shape(c)) == 1 else divide(c, reshape(scale, (order, 1)))
    if full:
        return c, resids, rank, s, rcond
    if not cov:
        return c
    vbase = divide(inv(matmul(transpose(lhs), lhs)), outer(scale, scale))
    if cov == "unscaled":
        fac = 1.0
    else:
        if n <= order:
            raise ValueError("the number of data points must exceed order to scale the "
                             "covariance matrix")
        fac = divide(resids, float(n - order))
    if len(_shape(y)) == 1:
        return c, multiply(vbase, fac)
    return c, multiply(reshape(vbase, (order, order, 1)), fac)
