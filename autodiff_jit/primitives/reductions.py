"""Reductions over static axes (the output drops the reduced axes; keepdims is a reshape),
arg-reductions, and cumulative sums. reduce_sum itself lives in broadcast.py (it is
broadcast_to's transpose, which every family's rules use); it is re-exported here."""
from __future__ import annotations

import numpy as np

from ..ir import AVal
from .core import Primitive, aval_of, bind, register
from . import batching as B, elementwise as E
from .broadcast import _linear_jvp, _reduce_rule, _sum_impl, expand_back
from .broadcast import reduce_sum, reduce_sum_p  # noqa: F401  (re-exported)

# numpy names bound at import: numpy has a module __getattr__, so Python 3.11 never
# specializes an `np.name` lookup (~40 ns each, several per tape node)
_ND = np.ndarray
_NP_EQUAL, _NP_DIVIDE, _NP_MULTIPLY = np.equal, np.divide, np.multiply
_GENERIC = np.generic


def _extremum_vjp(g, out, x, *, axes):
    # Ties share the gradient equally, so the rule is symmetric in the tied elements.
    if type(x) is _ND and x.dtype.kind == "f" and axes and \
            (type(g) is _ND or isinstance(g, _GENERIC)) and \
            (type(out) is _ND or isinstance(out, _GENERIC)):
        return (_extremum_vjp_numpy(g, out, x, axes),)
    shape = aval_of(x).shape
    mask = E.cast(x == expand_back(out, shape, axes), aval_of(x).dtype)
    count = reduce_sum(mask, axes)
    return (mask * expand_back(g / count, shape, axes),)


def _extremum_vjp_numpy(g, out, x, axes):
    """The rule above on numpy values (tape backward), its steps written into one fresh
    buffer: mask = (x == max), count = sum(mask), mask * g / count. (ndarray methods rather
    than np.reshape/np.divide(dtype=): their Python layers cost more than the arithmetic on
    small arrays; a numpy scalar out or g broadcasts as its (1,)*ndim reshape would.)"""
    kept = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    dt = x.dtype
    mask = _NP_EQUAL(x, out.reshape(kept) if type(out) is _ND else out).astype(dt)
    # (small integers: any summation order is exact, so reduce_sum's fast short-axis paths)
    count = _sum_impl(mask, axes=axes)
    if type(count) is _ND:
        count = count.reshape(kept)
    if type(g) is _ND:
        g = g.reshape(kept)
    share = _NP_DIVIDE(g, count) if g.dtype == dt else _NP_DIVIDE(g, count, dtype=dt)
    return _NP_MULTIPLY(mask, share, out=mask)


def _prod_vjp(g, out, x, *, axes):
    # prod / x fails at zeros; count zeros instead: one zero gets the product of the others.
    shape = aval_of(x).shape
    dt = aval_of(x).dtype
    is_zero = x == 0
    nonzero = E.select(is_zero, np.ones((), dt)[()], x)
    prod_nz = expand_back(reduce_prod(nonzero, axes), shape, axes)
    zeros = expand_back(reduce_sum(E.cast(is_zero, dt), axes), shape, axes)
    grad = E.select(zeros == 0, prod_nz / nonzero,
                    E.select(bind(E.logical_and, zeros == 1, is_zero), prod_nz, np.zeros((), dt)[()]))
    return (grad * expand_back(g, shape, axes),)


def _prod_impl(x, *, axes):
    return np.prod(x, axis=axes, dtype=np.result_type(x))  # keeps x's dtype (int32 stays)


def _extremum_jvp(t, out, x, *, axes):
    # the tangent of a max is the mean tangent of the elements that attain it
    if t[0] is None:
        return None
    shape = aval_of(x).shape
    mask = E.cast(x == expand_back(out, shape, axes), aval_of(x).dtype)
    return reduce_sum(mask * t[0], axes) / reduce_sum(mask, axes)


def _prod_jvp(t, out, x, *, axes):
    # d prod = sum_i (prod_{j != i} x_j) dx_i, with the zero-safe factors of the VJP rule
    if t[0] is None:
        return None
    (others,) = _prod_vjp(np.ones(aval_of(out).shape, aval_of(out).dtype), out, x, axes=axes)
    return reduce_sum(others * t[0], axes)


def _extremum_by_slices(ufunc, x):
    """ufunc.reduce(x, axis=-1) as the columns combined one after another (np.maximum of
    column 0 and 1, then of that and column 2, ...): numpy's reduction runs an inner loop as
    long as the reduced axis, which for 3-5 elements costs ~8x the k - 1 whole-column calls."""
    out = ufunc(x[..., 0], x[..., 1])
    for j in range(2, x.shape[-1]):
        ufunc(out, x[..., j], out=out)
    return out


def _extremum_of_short_rows(ufunc, reduction, x):
    out = _extremum_by_slices(ufunc, x)
    # which zero a tie of 0.0 and -0.0 gives depends on numpy's SIMD schedule (on AVX2, np.min
    # of a row of 5 or more picks the other one than of 4 or fewer): rows that came out zero
    # are asked of numpy's own reduction
    zero = out == 0
    if zero.any():
        out[zero] = reduction(x[zero], axis=-1)
    return out


def _slice_extremum_is_exact():
    """Asked once at import: do column-wise np.maximum / np.minimum give the installed numpy's
    np.max / np.min over a short last axis, signed zeros and NaNs included? (If not,
    reduce_max/reduce_min keep numpy's reduction.)"""
    probe = np.sin(np.arange(64 * 32, dtype=np.float64) * 1.7)
    for dt in (np.float64, np.float32):
        for m in range(2, 33):
            x = probe[:64 * m].astype(dt).reshape(64, m)
            x[0] = 0.0
            x[1, ::2] = -0.0
            x[2, 1::2] = -0.0
            x[3, m // 2] = np.nan
            x[4, -1] = np.nan
            x[5] = np.inf
            x[6, 0] = -np.inf
            for uf, red in ((np.maximum, np.max), (np.minimum, np.min)):
                got, want = _extremum_of_short_rows(uf, red, x), red(x, axis=-1)
                if not (np.array_equal(got, want, equal_nan=True) and
                        np.array_equal(np.signbit(got), np.signbit(want))):
                    return False
    return True


_SLICE_EXTREMUM_EXACT = _slice_extremum_is_exact()


def _extremum_impl(ufunc, reduction):
    def impl(x, *, axes):
        # a short last axis of a float array: column-wise, numpy's result to the bit (probed);
        # with fewer than 16 k rows the k - 1 calls cost more than numpy's loop saves
        if type(x) is _ND and axes == (x.ndim - 1,) and 2 <= x.shape[-1] <= 32 and \
                x.size >= max(256, 16 * x.shape[-1] ** 2) and x.dtype.char in "fd" and \
                _SLICE_EXTREMUM_EXACT:
            return _extremum_of_short_rows(ufunc, reduction, x)
        return reduction(x, axis=axes)
    return impl


reduce_max_p = register(Primitive("reduce_max", _reduce_rule("reduce_max"),
                                  _extremum_impl(np.maximum, np.max),
                                  vjp=_extremum_vjp, torch_name="MaxBackward1", family="reduce"))
reduce_min_p = register(Primitive("reduce_min", _reduce_rule("reduce_min"),
                                  _extremum_impl(np.minimum, np.min),
                                  vjp=_extremum_vjp, torch_name="MinBackward1", family="reduce"))
reduce_prod_p = register(Primitive("reduce_prod", _reduce_rule("reduce_prod"),
                                   _prod_impl,
                                   vjp=_prod_vjp, torch_name="ProdBackward0", family="reduce"))
reduce_max_p.jvp = reduce_min_p.jvp = _extremum_jvp
reduce_prod_p.jvp = _prod_jvp
reduce_max_p.batch = reduce_min_p.batch = reduce_prod_p.batch = B.reduce_axes


def _arg_rule(x, *, axis):
    if not 0 <= axis < x.ndim:
        raise ValueError(f"argmax/argmin: axis {axis} out of range for rank {x.ndim}")
    return AVal(x.shape[:axis] + x.shape[axis + 1:], np.int64)


argmax_p = register(Primitive("argmax", _arg_rule, lambda x, *, axis: np.argmax(x, axis=axis),
                              differentiable=False, family="reduce", batch=B.reduce_axis))
argmin_p = register(Primitive("argmin", _arg_rule, lambda x, *, axis: np.argmin(x, axis=axis),
                              differentiable=False, family="reduce", batch=B.reduce_axis))


def _cumsum_rule(x, *, axis, reverse):
    if not 0 <= axis < x.ndim:
        raise ValueError(f"cumsum: axis {axis} out of range for rank {x.ndim}")
    return x


def _cumsum_impl(x, *, axis, reverse):
    # the primitive keeps its input's dtype (the numpy layer widens bool/int32 first)
    if reverse:
        return np.flip(np.cumsum(np.flip(x, axis), axis=axis, dtype=np.result_type(x)), axis)
    return np.cumsum(x, axis=axis, dtype=np.result_type(x))


cumsum_p = register(Primitive(
    "cumsum", _cumsum_rule, _cumsum_impl,
    vjp=lambda g, out, x, *, axis, reverse: (cumsum(g, axis, not reverse),),
    torch_name="CumsumBackward0", family="scan", batch=B.along_axis))
cumsum_p.jvp = _linear_jvp(cumsum_p)


def reduce_prod(x, axes):
    return bind(reduce_prod_p, x, axes=tuple(axes))


def cumsum(x, axis, reverse=False):
    return bind(cumsum_p, x, axis=int(axis), reverse=bool(reverse))
