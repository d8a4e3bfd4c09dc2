"""numpy's order statistics and correlations (numpy/lib/_function_base_impl, _histograms_impl):
median, percentile, quantile (their nan* forms), cov, corrcoef, histogram (and its 2-d, d-d
and bin-edge forms), bincount.

Order statistics select (the argselect primitive: a radix select, no full sort) the elements
at the stable sort's ranks and interpolate with numpy's own formulas, so values match numpy's;
gradients flow to the selected elements (on ties: to the one the stable sort puts at that
rank). A slice holding NaN gives NaN, as numpy. Bin membership has no derivative; histogram/bincount weights are differentiable.
"""
from __future__ import annotations

import builtins
import functools
import numbers

import numpy as np

from ..ir import is_float
from ..primitives import bind
from ..primitives import elementwise as E, indexing as I
from ..primitives.selection import argselect_p
from ._base import UFUNCS, _dtype, _is_traced, _shape, asvalue, implements, normalize_axes
from .creation import linspace
from .reductions import amax, amin, any_, mean, sum_
from .indexing import gather_along_axis
from .shape import broadcast_to, concatenate, moveaxis, ravel, reshape, squeeze, stack, \
    transpose
from .shape_base import atleast_2d
from .products import dot
from .sorting import _keys, searchsorted
from .twodim import diag
from .ufuncs import BOOL_SUBTRACT, add, clip, divide, multiply, subtract

_u = UFUNCS
builtins_range = builtins.range  # `range` is a numpy parameter name below


def _float(a):
    a = asvalue(a)
    return a if is_float(_dtype(a)) else E.cast(a, np.float64)


def _q_dtype(a, q):
    """numpy's dtype for q in quantile: a Python number takes a float a's dtype, anything else
    its own (so a list of quantiles makes a float32 a's result float64, as numpy's)."""
    if isinstance(q, (int, float)) and is_float(_dtype(asvalue(a))):
        return _dtype(asvalue(a))
    return np.asarray(q).dtype


def _integer_q(q) -> bool:
    """An integer q (0 or 1): numpy's virtual indices are then integers, and numpy takes the
    elements there instead of interpolating (no 0 * inf from a neighbour)."""
    return not _is_traced(q) and np.asarray(q).dtype.kind in "iub"


@functools.cache
def _percent_in_a_dtype() -> bool:
    """Whether this numpy divides percentile's q by 100 in a float a's own dtype (numpy 2.0:
    float32(30) / float32(100)) rather than in float64 with a weak result (later numpys).
    The two put the virtual index a rounding apart, which moves float32 results by a unit in
    the last place; these four float32 values at q = 30 tell them apart."""
    a = np.array([-1.3031572103500366, -0.5369532108306885, 0.4463745653629303,
                  0.9053558707237244], np.float32)
    return bool(np.percentile(a, 30.0) != np.quantile(a, 0.3))


def _percent(a, q):
    """(q / 100, the dtype numpy interpolates in) for percentile, as this numpy computes them."""
    dt = _dtype(asvalue(a))
    if _percent_in_a_dtype():
        q = np.true_divide(q, dt.type(100) if is_float(dt) else 100)
        return q, np.asarray(q).dtype
    weak = type(q) in (int, float)     # numpy: a Python number keeps a float a's dtype
    fraction = np.true_divide(q, 100)
    return fraction, dt if weak and is_float(dt) else np.asarray(fraction).dtype


def _interpolation_dtype(x, q_dtype):
    """numpy's dtype of an interpolated quantile: result_type(x, q), a float."""
    return np.result_type(_dtype(x), q_dtype, np.float16)


def _rows_last(a, axis, cast=True):
    """a (as float: `cast`) with the reduced `axis` (None: all; several: flattened together)
    last."""
    a = _float(a) if cast else asvalue(a)
    if axis is None:
        return ravel(a), None
    axes = normalize_axes(axis, len(_shape(a)))
    if len(axes) > 1:  # several axes: bring them together at the end and flatten them
        rest = [i for i in range(len(_shape(a))) if i not in axes]
        a = transpose(a, rest + list(axes))
        a = reshape(a, tuple(_shape(a)[:len(rest)]) + (-1,))
    else:
        a = moveaxis(a, axes[0], -1)
    return a, axes


def _order_stats(x, ranks):
    """The elements of x's stable sort along the last axis at `ranks`, without sorting: a
    constant 1-d list (the same for every row) or a traced int64 array (..., K) per row."""
    last = len(_shape(x)) - 1
    if not _is_traced(ranks):
        ranks = np.asarray(ranks, np.int64)
        uniq, inverse = np.unique(ranks, return_inverse=True)
        per_row = broadcast_to(uniq, _shape(x)[:-1] + uniq.shape)
        got = gather_along_axis(x, bind(argselect_p, _keys(x), per_row, axis=last), last)
        return got if np.array_equal(uniq, ranks) else _take_last(got, inverse.ravel())
    return gather_along_axis(x, bind(argselect_p, _keys(x), ranks, axis=last), last)


def _keepdims(res, a, axes, keepdims, lead=0):
    if not keepdims:
        return res
    shape = list(_shape(res)[:lead])
    for i, d in enumerate(_shape(asvalue(a))):
        shape.append(1 if axes is None or i in axes else d)
    return reshape(res, tuple(shape))


def _nan_rows(res, x):
    """res, NaN where x's row (last axis) holds a NaN."""
    if not is_float(_dtype(x)):
        return res
    return E.select(any_(_u[np.isnan](x), -1), np.nan, res)


def _lerp(a, b, t, dtype=None):
    """numpy's _lerp: a + (b-a) t, from b's side for t >= 0.5 (monotone, exact at t = 1).
    As numpy: b - a in the elements' dtype, then everything in `dtype` (result_type of the
    elements and q), and the weight t (float64: a numpy array, or traced) rounded to `dtype`
    only after 1 - t is formed."""
    diff = subtract(b, a)
    dt = np.dtype(dtype) if dtype is not None else _dtype(diff)
    if dt != _dtype(diff):
        a, b, diff = E.cast(a, dt), E.cast(b, dt), E.cast(diff, dt)
    if isinstance(t, np.ndarray):
        upper, rest, t = t >= 0.5, (1 - t).astype(dt), t.astype(dt)
    else:
        upper, rest, t = _u[np.greater_equal](t, 0.5), E.cast(subtract(1.0, t), dt), E.cast(t, dt)
    return E.select(upper, subtract(b, multiply(diff, rest)), add(a, multiply(diff, t)))


@implements(np.median, defaults_only=("out", "overwrite_input"))
def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    x, axes = _rows_last(a, axis)
    n = _shape(x)[-1]
    if n == 0:
        raise ValueError("median of an empty array")
    res = mean(_order_stats(x, list(range((n - 1) // 2, n // 2 + 1))), -1)
    return _keepdims(_nan_rows(res, x), a, axes, keepdims)


# numpy's quantile methods (Hyndman & Fan), on the constant q and the row length n. The
# discrete ones pick an element: index(n, q) -> int64 ranks. The continuous ones interpolate
# between the elements at floor(v) and floor(v) + 1 of a virtual index v(n, q), with a weight
# gamma(v - floor(v), v) (numpy's fix_gamma), clipped at both ends as numpy's _get_indexes.

def _hf_index(alpha, beta):
    return lambda n, q: n * q + (alpha + q * (1 - alpha - beta)) - 1


def _to_boundary(v, take_floor):
    """numpy's _discrete_interpolation_to_boundaries: floor(v) where take_floor(gamma, v),
    else floor(v) + 1, at least 0."""
    lo = np.floor(v)
    return np.maximum(np.where(take_floor(v - lo, v), lo, lo + 1), 0).astype(np.int64)


_DISCRETE = {
    "lower": lambda n, q: np.floor((n - 1) * q).astype(np.int64),
    "higher": lambda n, q: np.ceil((n - 1) * q).astype(np.int64),
    "nearest": lambda n, q: np.around((n - 1) * q).astype(np.int64),
    "inverted_cdf": lambda n, q: _to_boundary(n * q - 1, lambda g, v: g == 0),
    "closest_observation": lambda n, q: _to_boundary(
        n * q - 1 - 0.5, lambda g, v: (g == 0) & (np.floor(v) % 2 == 1)),
}
_CONTINUOUS = {   # name: (virtual index, gamma from (fraction, virtual index))
    "linear": (lambda n, q: (n - 1) * q, None),
    "interpolated_inverted_cdf": (_hf_index(0, 1), None),
    "hazen": (_hf_index(0.5, 0.5), None),
    "weibull": (_hf_index(0, 0), None),
    "median_unbiased": (_hf_index(1 / 3.0, 1 / 3.0), None),
    "normal_unbiased": (_hf_index(3 / 8.0, 3 / 8.0), None),
    "averaged_inverted_cdf": (lambda n, q: n * q - 1, lambda g, v: np.where(g == 0, 0.5, 1.0)),
    "midpoint": (lambda n, q: 0.5 * (np.floor((n - 1) * q) + np.ceil((n - 1) * q)),
                 lambda g, v: np.where(v % 1 == 0, 0.0, 0.5)),
}
QUANTILE_METHODS = tuple(_DISCRETE) + tuple(_CONTINUOUS)


def _interpolation_points(method, n, q):
    """(lo, hi, gamma) of a continuous method: the ranks either side of each virtual index
    and the weight of hi, as numpy computes them."""
    index, fix = _CONTINUOUS[method]
    v = np.asarray(index(n, q), np.float64)
    floor = np.floor(v)
    gamma = v - floor if fix is None else fix(v - floor, v)
    above, below = v >= n - 1, v < 0
    lo = np.where(above, n - 1, np.where(below, 0, floor)).astype(np.int64)
    hi = np.where(above | below, lo, lo + 1)
    return lo, hi, gamma


def _quantile(a, q, axis, method, keepdims, weights, name, q_dtype=np.dtype(np.float64)):
    if weights is not None:
        raise NotImplementedError(f"np.{name}(..., weights=) is not supported")
    if method not in QUANTILE_METHODS:
        raise ValueError(f"{method!r} is not a valid method. Use one of: "
                         f"{', '.join(QUANTILE_METHODS)}")
    if _is_traced(q):
        raise NotImplementedError(f"np.{name}'s q must be a constant")
    if method == "linear" and _integer_q(q):
        method = "lower"   # numpy: integer virtual indices take the element itself
    q = np.asarray(q, np.float64)
    if np.any((q < 0) | (q > 1)):
        raise ValueError("Quantiles must be in the range [0, 1]")
    # numpy: the methods that pick an element keep a's dtype (ints too); the interpolating
    # ones compute in result_type(a, q), a float
    picks = method in _DISCRETE
    if not picks and _dtype(asvalue(a)) == np.bool_:
        raise TypeError(BOOL_SUBTRACT)   # numpy interpolates by subtracting
    x, axes = _rows_last(a, axis, cast=False)
    n = _shape(x)[-1]
    if n == 0:
        raise IndexError(f"np.{name} of an empty axis: there is no element to take")
    if picks:
        lo = hi = _DISCRETE[method](n, q)
    else:
        lo, hi, gamma = _interpolation_points(method, n, q)
    flat_lo, flat_hi = lo.ravel(), hi.ravel()
    both = moveaxis(_order_stats(x, np.concatenate([flat_lo, flat_hi])), -1, 0)
    a_lo, a_hi = both[:len(flat_lo)], both[len(flat_lo):]
    lead = (slice(None),) + (None,) * (len(_shape(a_lo)) - 1)
    if picks:
        res = a_lo
    else:
        res = _lerp(a_lo, a_hi, np.asarray(gamma, np.float64).ravel()[lead],
                    _interpolation_dtype(x, q_dtype))
    res = _nan_rows(res, x)
    res = reshape(res, q.shape + _shape(res)[1:])
    return _keepdims(res, a, axes, keepdims, lead=q.ndim)


def _take_last(x, idx):
    return bind(I.take_p, x, np.asarray(idx, np.int64), axis=len(_shape(x)) - 1)


@implements(np.quantile, defaults_only=("out", "overwrite_input"))
def quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
             keepdims=False, *, weights=None):
    return _quantile(a, q, axis, method, keepdims, weights, "quantile", _q_dtype(a, q))


@implements(np.percentile, defaults_only=("out", "overwrite_input"))
def percentile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
               keepdims=False, *, weights=None):
    if _is_traced(q):
        raise NotImplementedError("np.percentile's q must be a constant")
    q, q_dtype = _percent(a, q)
    return _quantile(a, q, axis, method, keepdims, weights, "percentile", q_dtype)


@implements(np.cov, defaults_only=("fweights", "aweights"))
def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None, *,
        dtype=None):
    if ddof is not None and not isinstance(ddof, numbers.Integral):
        raise ValueError("ddof must be integer")
    X = atleast_2d(_float(m))
    if not rowvar and _shape(X)[0] != 1:
        X = transpose(X)
    if y is not None:
        Y = atleast_2d(_float(y))
        if not rowvar and _shape(Y)[0] != 1:
            Y = transpose(Y)
        X = concatenate([X, Y], 0)
    dtype = np.result_type(_dtype(X), np.float64) if dtype is None else np.dtype(dtype)
    if _dtype(X) != dtype:   # numpy: at least float64 unless dtype= says otherwise
        X = E.cast(X, dtype)
    if ddof is None:
        ddof = 0 if bias else 1
    n = _shape(X)[1]
    fact = n - ddof
    avg = mean(X, 1)
    X = subtract(X, reshape(avg, (-1, 1)))
    c = dot(X, transpose(X))
    c = multiply(c, 1.0 / fact if fact > 0 else np.inf)
    return squeeze(c)


@implements(np.corrcoef)
def corrcoef(x, y=None, rowvar=True, *, dtype=None):
    c = cov(x, y, rowvar, dtype=dtype)
    if len(_shape(c)) == 0:
        return divide(c, c)
    d = diag(c)
    std = _u[np.sqrt](d)
    c = divide(c, reshape(std, (-1, 1)))
    c = divide(c, reshape(std, (1, -1)))
    return clip(c, -1, 1)


@implements(np.bincount)
def bincount(x, weights=None, minlength=0):
    if _is_traced(x):
        raise NotImplementedError("np.bincount of traced values has a data-dependent length; "
                                  "pass the bins as a constant (weights may be traced)")
    x = np.asarray(x)
    if x.ndim != 1 or (x.size and x.min() < 0):
        raise ValueError("bincount needs a 1-d array of non-negative integers")
    length = max(int(x.max()) + 1 if x.size else 0, int(minlength))
    if weights is None:
        return np.bincount(x, minlength=minlength)
    w = asvalue(weights)
    if _dtype(w) != np.float64:   # numpy's weighted counts are always float64
        w = E.cast(w, np.float64)
    return I.take_add(w, x.astype(np.int64), 0, length)


def _edges(a, bins, range, np_name):
    """numpy's bin edges of the flat values `a`: `bins` + 1 equal bins over `range` (or over
    the values' min..max, widened by 0.5 when they are equal), or the given edges."""
    if isinstance(bins, str):
        raise NotImplementedError(f"{np_name}(bins='<estimator>') is not supported; give the "
                                  f"number of bins or the edges")
    if not isinstance(bins, numbers.Integral):
        return asvalue(bins)
    if range is not None:
        lo, hi = float(range[0]), float(range[1])
    else:
        lo, hi = amin(a), amax(a)
    if _is_traced(lo) or _is_traced(hi):
        same = _u[np.equal](lo, hi)
        lo = E.select(same, subtract(lo, 0.5), lo)
        hi = E.select(same, add(hi, 0.5), hi)
    elif lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    # numpy's edge dtype: result_type(first, last, a) (range's Python floats are weak)
    bin_type = _dtype(a) if range is None else \
        np.result_type(range[0], range[1], np.empty(0, _dtype(a)))
    return linspace(lo, hi, int(bins) + 1, dtype=bin_type)


def _bin_of(a, edges):
    """(the bin of each value, whether it is inside): bin i holds edges[i] <= a < edges[i+1]
    and the last bin also its right edge, as numpy's."""
    nb = _shape(edges)[0] - 1
    idx = subtract(searchsorted(edges, a, "right"), 1)
    idx = E.select(_u[np.equal](a, edges[nb]), np.int64(nb - 1), idx)
    return idx, _u[np.logical_and](_u[np.greater_equal](idx, 0), _u[np.less](idx, nb))


def _counts(flat_bin, inside, nbins, weights, bool_sum=False):
    """The (weighted) count of each of `nbins` bins: a one-hot sum (bin membership has no
    derivative; the weights do)."""
    onehot = _u[np.logical_and](
        _u[np.equal](reshape(flat_bin, (-1, 1)), np.arange(nbins, dtype=np.int64)),
        reshape(inside, (-1, 1)))
    if weights is None:
        return sum_(onehot, 0)
    if bool_sum and _dtype(asvalue(weights)) == np.bool_:
        # np.histogram adds bool weights as bools (True + True is True); histogramdd counts
        # with bincount, in float64
        return any_(_u[np.logical_and](onehot, reshape(ravel(weights), (-1, 1))), 0)
    w = ravel(_float(weights))
    return sum_(E.select(onehot, reshape(w, (-1, 1)), np.zeros((), _dtype(w))[()]), 0)


@implements(np.histogram_bin_edges)
def histogram_bin_edges(a, bins=10, range=None, weights=None):
    return _edges(ravel(_float(a)), bins, range, "np.histogram_bin_edges")


@implements(np.histogram)
def histogram(a, bins=10, range=None, density=None, weights=None):
    a = ravel(_float(a))
    edges = _edges(a, bins, range, "np.histogram")
    idx, inside = _bin_of(a, edges)
    hist = _counts(idx, inside, _shape(edges)[0] - 1, weights, bool_sum=True)
    if density:
        widths = subtract(edges[1:], edges[:-1])
        hist = divide(divide(E.cast(hist, np.float64), widths), sum_(hist))
    return hist, edges


@implements(np.histogramdd)
def histogramdd(sample, bins=10, range=None, density=None, weights=None):
    """numpy's D-dimensional histogram: sample is (N, D) (or a sequence of D arrays); each
    dimension binned as np.histogram bins it, the bins of a point combined row-major."""
    if isinstance(sample, (list, tuple)):
        sample = stack([ravel(_float(v)) for v in sample], 1)
    sample = _float(sample)
    if len(_shape(sample)) == 1:
        sample = reshape(sample, (-1, 1))
    n, d = _shape(sample)
    per_dim = list(bins) if isinstance(bins, (list, tuple)) else [bins] * d
    ranges = list(range) if range is not None else [None] * d
    if len(per_dim) != d or len(ranges) != d:
        raise ValueError("The dimension of bins must be equal to the dimension of the sample x.")
    edges, flat, inside, nbins = [], np.zeros((), np.int64)[()], True, 1
    for k in builtins_range(d):
        col = sample[:, k]
        e = _edges(col, per_dim[k], ranges[k], "np.histogramdd")
        idx, ok = _bin_of(col, e)
        nb = _shape(e)[0] - 1
        flat = add(multiply(flat, np.int64(nb)), idx)
        inside = _u[np.logical_and](inside, ok)
        edges.append(e)
        nbins *= nb
    hist = _counts(flat, inside, nbins, weights)
    shape = tuple(_shape(e)[0] - 1 for e in edges)
    hist = E.cast(reshape(hist, shape), np.float64)  # numpy's counts here are float64
    if density:
        vol = 1.0
        for k, e in enumerate(edges):
            w = subtract(e[1:], e[:-1])
            vol = multiply(vol, reshape(w, tuple(-1 if j == k else 1 for j in builtins_range(d))))
        hist = divide(divide(hist, vol), sum_(hist))
    return hist, edges


@implements(np.histogram2d)
def histogram2d(x, y, bins=10, range=None, density=None, weights=None):
    n = 1 if isinstance(bins, (numbers.Integral, str)) else len(bins)
    if n not in (1, 2):
        bins = [bins, bins]  # numpy's rule: one array of edges for both dimensions
    hist, (ex, ey) = histogramdd([x, y], bins, range, density, weights)
    return hist, ex, ey


# nan-ignoring order statistics: NaNs rank last, so they are dropped by counting them
@implements(np.nanmedian, defaults_only=("out", "overwrite_input"))
def nanmedian(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    a = asvalue(a)
    if not is_float(_dtype(a)):   # no NaN to drop: numpy's median (bool and ints: float64)
        return median(E.cast(a, np.float64) if _dtype(a) == np.bool_ else a, axis,
                      keepdims=keepdims)
    x, axes = _rows_last(a, axis)
    n = _shape(x)[-1]
    if n == 0:  # no values: NaN (numpy warns "All-NaN slice")
        return _keepdims(np.full(_shape(x)[:-1], np.nan, _dtype(x)), a, axes, keepdims)
    # numpy: the median of each slice's valid values, the mean of the middle one or two (not
    # an interpolation, which would turn a neighbouring inf into NaN); NaNs rank last
    count = sum_(_u[np.logical_not](_u[np.isnan](x)), -1)
    lo = clip(_u[np.floor_divide](subtract(count, 1), 2), 0, n - 1)
    hi = clip(_u[np.floor_divide](count, 2), 0, n - 1)
    ranks = moveaxis(concatenate([reshape(lo, (1,) + _shape(count)),
                                  reshape(hi, (1,) + _shape(count))], 0), 0, -1)
    both = _order_stats(x, E.cast(ranks, np.int64))
    a_lo, a_hi = both[..., 0], both[..., 1]
    # numpy's mean: a sum from 0.0 (so -0.0 gives 0.0), divided by the count
    first = add(0.0, a_lo)
    res = E.select(_u[np.equal](lo, hi), first, divide(add(first, a_hi), 2.0))
    res = E.select(_u[np.equal](count, 0), np.nan, res)
    return _keepdims(res, a, axes, keepdims)


@implements(np.nanquantile, defaults_only=("out", "overwrite_input"))
def nanquantile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
                keepdims=False, *, weights=None):
    if _is_traced(q):
        raise NotImplementedError("np.nanquantile's q must be a constant")
    return _nanquantile(a, q, axis, method, keepdims, weights, "nanquantile", _q_dtype(a, q))


def _nanquantile(a, q, axis, method, keepdims, weights, name, q_dtype):
    if method != "linear" or weights is not None:
        raise NotImplementedError(f"np.{name} supports method='linear' without weights")
    takes = _integer_q(q)   # numpy takes the elements (keeping a's dtype): no interpolation
    if _dtype(asvalue(a)) == np.bool_ and not takes:
        raise TypeError(BOOL_SUBTRACT)   # numpy interpolates by subtracting
    q = np.asarray(q, np.float64)
    x, axes = _rows_last(a, axis, cast=False)
    out_dtype = _dtype(x) if takes else _interpolation_dtype(x, q_dtype)
    n = _shape(x)[-1]
    if n == 0:  # no values: NaN (numpy warns "All-NaN slice")
        res = np.full(q.shape + _shape(x)[:-1], np.nan, out_dtype)
        return _keepdims(res, a, axes, keepdims, lead=q.ndim)
    count = sum_(_u[np.logical_not](_u[np.isnan](x)), -1)  # valid values per slice
    virtual = multiply(np.reshape(q, q.shape + (1,) * len(_shape(count))),
                       subtract(E.cast(count, np.float64), 1.0))
    lo = _u[np.floor](virtual)
    gamma = subtract(virtual, lo)
    lo_i = clip(E.cast(lo, np.int64), 0, n - 1)
    hi_i = clip(add(lo_i, 1), 0, subtract(count, 1))
    hi_i = clip(hi_i, 0, n - 1)
    # ranks per row (q's axes flattened, last): every lo, then every hi
    nq = int(q.size)
    per_row = moveaxis(reshape(concatenate([lo_i, hi_i], 0) if q.ndim else
                               concatenate([reshape(lo_i, (1,) + _shape(lo_i)),
                                            reshape(hi_i, (1,) + _shape(hi_i))], 0),
                               (2 * nq,) + _shape(count)), 0, -1)
    both = moveaxis(_order_stats(x, E.cast(per_row, np.int64)), -1, 0)
    a_lo = reshape(both[:nq], q.shape + _shape(count))
    a_hi = reshape(both[nq:], q.shape + _shape(count))
    res = a_lo if takes else _lerp(a_lo, a_hi, gamma, out_dtype)
    if is_float(out_dtype):
        res = E.select(_u[np.equal](count, 0), np.nan, res)
    return _keepdims(res, a, axes, keepdims, lead=q.ndim)


@implements(np.nanpercentile, defaults_only=("out", "overwrite_input"))
def nanpercentile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
                  keepdims=False, *, weights=None):
    if _is_traced(q):
        raise NotImplementedError("np.nanpercentile's q must be a constant")
    q, q_dtype = _percent(a, q)
    return _nanquantile(a, q, axis, method, keepdims, weights, "nanpercentile", q_dtype)
