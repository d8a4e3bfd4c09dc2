"""numpy's signal-like functions: convolve, correlate, interp, gradient, trapezoid, unwrap,
ediff1d. convolve is the convolve primitive (one dot product over each output's overlap) or,
for other dtypes, a sum of shifted products (short kernels) or one gather (the Toeplitz band of
a, as an index map) times the kernel, summed along the band: only real terms are multiplied,
so an inf in the kernel gives inf, not the NaN of a padding 0 * inf."""
from __future__ import annotations

import numpy as np

from ..ir import is_float
from ..primitives import bind
from ..primitives import convolution as C, elementwise as E, indexing as I
from ._base import UFUNCS, _dtype, _is_traced, _shape, asvalue, implements, normalize_axes
from ._gather import gather
from .indexing import _index_array
from .reductions import cumsum, sum_
from .shape import concatenate, diff, flip, moveaxis, ravel, reshape
from .sorting import searchsorted
from .ufuncs import BOOL_SUBTRACT, add, clip, divide, multiply, stop_gradient, subtract

_u = UFUNCS


def _vec(x, name):
    x = asvalue(x)
    if len(_shape(x)) == 0:
        x = ravel(x)
    if len(_shape(x)) != 1:
        raise ValueError(f"{name}: object too deep for desired array")
    return x


# float64, float32, int64: the convolve primitive, one dot product per output (compiled: short
# kernels unrolled, with the taps in registers; long ones 2x faster than shifted sums already
# at 30 taps, and compiled in a fraction of their time). Other dtypes up to _SHIFTS_MAX_ANY
# taps: a sum of shifted slices (fuses into one loop).
_SHIFTS_MAX_ANY = 256


def _conv(a, v, mode):
    """np.convolve(a, v, mode) with len(a) >= len(v)."""
    a, v = E.promote(a, v)
    n, m = _shape(a)[0], _shape(v)[0]
    lo, size = _mode_window(n, m, mode)
    if _dtype(a) in _KERNEL_DTYPES and n > 0:
        # one primitive: each output a dot product over its overlap only (compiled: one loop)
        return C.convolve(a, v, lo, size)
    full = _full_conv(a, v)
    return full if mode == "full" else full[lo:lo + size]


def _full_conv(a, v):
    """full[i] = sum_k a[i - k] v[k] (a the longer) without the convolve primitive. Short
    kernels: one shifted slice of the zero-padded a per tap, summed (elementwise, so the
    backend fuses it into one loop); long ones: the Toeplitz matrix of a (one gather) times
    v."""
    a, v = E.promote(a, v)
    n, m = _shape(a)[0], _shape(v)[0]
    if n == 0 or m == 0:
        raise ValueError("v cannot be empty" if m == 0 else "a cannot be empty")
    if m <= _SHIFTS_MAX_ANY:
        # tap k adds a * v[k] to outputs k .. k + n - 1 and nothing elsewhere: the product is
        # padded, not a (0 * inf would be NaN where numpy has no term)
        def tap(k):
            t = multiply(a, v[k])
            if m == 1:
                return t
            zero = np.zeros((), _dtype(t))
            return concatenate([np.full(k, zero), t, np.full(m - 1 - k, zero)], 0)
        terms = [tap(k) for k in range(m)]
        while len(terms) > 1:  # a balanced sum: rounding error grows with log2(m)
            terms = [add(terms[i], terms[i + 1]) if i + 1 < len(terms) else terms[i]
                     for i in range(0, len(terms), 2)]
        # numpy's sums start at +0.0: all -0.0 terms give +0.0
        return add(terms[0], 0.0) if is_float(_dtype(terms[0])) else terms[0]
    # T[i, k] = a[i - k] where 0 <= i - k < n; the products
    # T * v outside that band are not terms (selected away, not multiplied by a padding 0),
    # summed along k
    i = np.arange(n + m - 1)[:, None]
    k = np.arange(m)[None, :]
    src = i - k
    band = (src >= 0) & (src < n)
    terms = E.select(band, multiply(gather(a, np.where(band, src, -1)), v),
                     np.zeros((), _dtype(a))[()])
    return add(sum_(terms, 1), 0.0) if is_float(_dtype(a)) else sum_(terms, 1)


_KERNEL_DTYPES = (np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.int64))


def _mode_window(n, m, mode):
    """(start, length) of `mode`'s part of the full convolution of lengths n and m."""
    lo, hi = min(n, m), max(n, m)
    if mode == "full":
        return 0, n + m - 1
    if mode == "same":
        return (lo - 1) // 2, hi
    if mode == "valid":
        return lo - 1, hi - lo + 1
    raise ValueError(f"mode must be one of 'valid', 'same', or 'full' (got {mode!r})")


@implements(np.convolve)
def convolve(a, v, mode="full"):
    a, v = _vec(a, "convolve"), _vec(v, "convolve")
    n, m = _shape(a)[0], _shape(v)[0]
    if m > n:  # as numpy: the longer one slides
        a, v = v, a
    return _conv(a, v, mode)


@implements(np.correlate)
def correlate(a, v, mode="valid"):
    a, v = _vec(a, "correlate"), _vec(v, "correlate")
    n, m = _shape(a)[0], _shape(v)[0]
    if m > n:  # numpy: correlate(v, a) reversed
        return flip(correlate(v, a, mode), 0)
    return _conv(a, flip(v, 0), mode)


@implements(np.interp)
def interp(x, xp, fp, left=None, right=None, period=None):
    if period is not None:
        raise NotImplementedError("np.interp(..., period=) is not supported")
    x, xp, fp = asvalue(x), _vec(xp, "interp"), _vec(fp, "interp")
    if not is_float(_dtype(x)):
        x = E.cast(x, np.float64)
    xp = E.cast(xp, np.float64) if not is_float(_dtype(xp)) else xp
    fp = E.cast(fp, np.float64) if not is_float(_dtype(fp)) else fp
    n = _shape(xp)[0]
    if n == 0 or _shape(fp)[0] != n:
        raise ValueError("fp and xp are not of the same length." if n else
                         "array of sample points is empty")
    if n == 1:
        res = E.select(_u[np.less](x, xp[0]), fp[0] if left is None else left,
                       E.select(_u[np.greater](x, xp[0]), fp[0] if right is None else right,
                                fp[0]))
        return res
    j = clip(subtract(searchsorted(xp, x, "right"), 1), 0, n - 2)
    x0, x1 = _take(xp, j), _take(xp, add(j, 1))
    f0, f1 = _take(fp, j), _take(fp, add(j, 1))
    slope = divide(subtract(f1, f0), subtract(x1, x0))
    res = add(multiply(slope, subtract(x, x0)), f0)
    # at a sample point, numpy returns fp there exactly (also where the slope is inf/nan)
    res = E.select(_u[np.equal](x, x0), f0, res)
    res = E.select(_u[np.equal](x, xp[n - 1]), fp[n - 1], res)
    res = E.select(_u[np.less](x, xp[0]), fp[0] if left is None else left, res)
    res = E.select(_u[np.greater](x, xp[n - 1]), fp[n - 1] if right is None else right, res)
    return res


def _take(v, idx):
    return bind(I.take_p, v, _index_array(idx, _shape(v)[0]), axis=0)


@implements(np.gradient)
def gradient(f, *varargs, axis=None, edge_order=1):
    f = asvalue(f)
    if _dtype(f) == np.bool_:
        raise TypeError(BOOL_SUBTRACT)
    if not is_float(_dtype(f)):
        f = E.cast(f, np.float64)
    nd = len(_shape(f))
    axes = normalize_axes(axis, nd) if axis is not None else tuple(range(nd))
    if axis is not None and not isinstance(axis, (tuple, list)):
        axes = normalize_axes(axis, nd)
    if len(varargs) == 0:
        dx = [1.0] * len(axes)
    elif len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        dx = [varargs[0]] * len(axes)
    elif len(varargs) == len(axes) and all(np.ndim(d) == 0 for d in varargs):
        dx = list(varargs)
    else:
        raise NotImplementedError("np.gradient with coordinate arrays is not supported; give "
                                  "scalar spacings")
    if edge_order not in (1, 2):
        raise ValueError("'edge_order' greater than 2 not supported")
    out = []
    for ax, h in zip(axes, dx):
        g = moveaxis(f, ax, 0)
        n = _shape(g)[0]
        if n < edge_order + 1:
            raise ValueError("Shape of array too small to calculate a numerical gradient, "
                             "at least (edge_order + 1) elements are required.")
        inner = divide(subtract(g[2:], g[:-2]), multiply(2.0, h))
        if edge_order == 1:
            first = divide(subtract(g[1:2], g[0:1]), h)
            last = divide(subtract(g[n - 1:n], g[n - 2:n - 1]), h)
        else:
            a, b, c = -1.5 / h, 2.0 / h, -0.5 / h
            first = add(add(multiply(a, g[0:1]), multiply(b, g[1:2])), multiply(c, g[2:3]))
            a, b, c = 0.5 / h, -2.0 / h, 1.5 / h
            last = add(add(multiply(a, g[n - 3:n - 2]), multiply(b, g[n - 2:n - 1])),
                       multiply(c, g[n - 1:n]))
        g = concatenate([first, inner, last], 0)
        if _dtype(g) != _dtype(f):   # numpy writes into an array of f's float dtype
            g = E.cast(g, _dtype(f))
        out.append(moveaxis(g, 0, ax))
    return out[0] if len(out) == 1 else tuple(out)


@implements(np.trapezoid) if hasattr(np, "trapezoid") else (lambda f: f)
def trapezoid(y, x=None, dx=1.0, axis=-1):
    # ints and bools are paired in their own dtype, as numpy (bools: True + True is True)
    y = asvalue(y)
    ax = normalize_axes(axis, len(_shape(y)))[0]
    n = _shape(y)[ax]
    if x is None:
        d = dx
    else:
        x = asvalue(x)
        d = diff(x, axis=ax if len(_shape(x)) > 1 else 0)
        if len(_shape(x)) == 1:
            d = d if len(_shape(y)) == 1 else \
                ravel(d) if ax == len(_shape(y)) - 1 else _along(d, ax, len(_shape(y)))
    pair = add(I.slice_along(y, ax, 1, n - 1), I.slice_along(y, ax, 0, n - 1))
    return sum_(divide(multiply(d, pair), 2.0), ax)


def _along(d, axis, nd):
    shape = [1] * nd
    shape[axis] = -1
    return reshape(d, shape)


@implements(np.unwrap)
def unwrap(p, discont=None, axis=-1, *, period=2 * np.pi):
    p = asvalue(p)
    if not is_float(_dtype(p)):
        p = E.cast(p, np.float64)
    ax = normalize_axes(axis, len(_shape(p)))[0]
    dd = stop_gradient(diff(p, axis=ax))
    if discont is None:
        discont = period / 2
    high = period / 2
    low = -high
    ddmod = add(_u[np.remainder](subtract(dd, low), float(period)), low)
    ddmod = E.select(_u[np.logical_and](_u[np.equal](ddmod, low), _u[np.greater](dd, 0.0)),
                     high, ddmod)
    correct = subtract(ddmod, dd)
    correct = E.select(_u[np.less](_u[np.absolute](dd), discont), 0.0, correct)
    n = _shape(p)[ax]
    head = I.slice_along(p, ax, 0, 1)
    tail = add(I.slice_along(p, ax, 1, n - 1), cumsum(correct, ax))
    return concatenate([head, tail], ax)


@implements(np.ediff1d)
def ediff1d(ary, to_end=None, to_begin=None):
    a = ravel(asvalue(ary))
    d = diff(a)
    parts = []
    for name, edge in (("to_begin", to_begin), ("to_end", to_end)):
        if edge is not None and not np.can_cast(_dtype(asvalue(edge)), _dtype(a), "same_kind"):
            raise TypeError(f"dtype of `{name}` must be compatible with input `ary` under the "
                            f"`same_kind` rule.")   # numpy's check and words
    if to_begin is not None:
        parts.append(ravel(E.cast(asvalue(to_begin), _dtype(d))))
    parts.append(d)
    if to_end is not None:
        parts.append(ravel(E.cast(asvalue(to_end), _dtype(d))))
    return concatenate(parts, 0) if len(parts) > 1 else d


_ = _is_traced
