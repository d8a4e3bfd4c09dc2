"""numpy's reductions (sum, mean, var, std, max, min, prod, argmax, cumsum, average) on traced
values and tape Tensors."""
from __future__ import annotations

import numbers

import numpy as np

from ..ir import is_float
from ..primitives import bind
from ..primitives import cumulative as C, elementwise as E, reductions as R, shape as S
from ._base import UFUNCS, _dtype, _is_traced, _shape, asvalue, implements, normalize_axes
from .shape import ravel
from .ufuncs import divide, multiply, stop_gradient, subtract

def _keep(x, reduced, axes, keepdims):
    if not keepdims:
        return x
    shape = tuple(1 if i in axes else d for i, d in enumerate(_shape(reduced)))
    return S.reshape(x, shape)


_NoValue = np._NoValue  # numpy's marker for "argument not given"


def _accumulator(dtype):
    """numpy's sum/prod/cumsum dtype for `dtype`: bool and small integers widen to the platform
    integer (int64), small unsigned ones to uint64."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_ or (dtype.kind == "i" and dtype.itemsize < 8):
        return np.dtype(np.int64)
    if dtype.kind == "u" and dtype.itemsize < 8:
        return np.dtype(np.uint64)
    return dtype


def _axes(axis, x):
    """normalize_axes, plus numpy's quirk: an integer axis 0 or -1 reduces a 0-d value."""
    nd = len(_shape(x))
    if nd == 0 and not isinstance(axis, tuple) and axis in (0, -1):
        axis = None
    return normalize_axes(axis, nd)


def _masked(x, where, fill):
    """x where `where` holds, else the reduction's identity `fill` (where=True: x itself)."""
    if where is True:
        return x
    w = asvalue(where)
    if _dtype(w) != np.bool_:
        raise TypeError("where= must be a boolean array")
    x = S.broadcast_to(x, np.broadcast_shapes(_shape(x), _shape(w))) if \
        np.broadcast_shapes(_shape(x), _shape(w)) != _shape(x) else x
    return E.select(w, x, np.asarray(fill, _dtype(x))[()])


def _identity_of(dtype, sign):
    dtype = np.dtype(dtype)
    if is_float(dtype):
        return sign * np.inf
    if dtype == np.bool_:
        return sign > 0
    info = np.iinfo(dtype)
    return info.max if sign > 0 else info.min


@implements(np.sum, defaults_only=("out",))
def sum_(x, axis=None, dtype=None, out=None, keepdims=False, initial=_NoValue, where=True):
    return _accumulate(R.reduce_sum, 0, UFUNCS[np.add], x, axis, dtype, keepdims, initial, where)


def _accumulate(reduce, identity, combine, x, axis, dtype, keepdims, initial, where):
    """sum and prod: numpy's accumulator dtype, where= masking with the identity, initial=."""
    x = asvalue(x)
    x = E.cast(x, dtype if dtype is not None else _accumulator(_dtype(x)))
    x = _masked(x, where, identity)
    axes = _axes(axis, x)
    res = _keep(reduce(x, axes) if axes else x, x, axes, keepdims)
    return res if initial is _NoValue else combine(res, _initial(initial, res))


def _initial(initial, res):
    """numpy casts initial= to the result's dtype (np.sum(ints, initial=2.5) adds 2)."""
    dt = _dtype(res)
    if _is_traced(initial):
        return E.cast(initial, dt) if _dtype(initial) != dt else initial
    return np.asarray(initial).astype(dt)[()]


def _count(x, axes, where, keepdims):
    """How many elements each reduction over `axes` sees (an array of x's float dtype when
    where= is given)."""
    if where is True:
        return float(np.prod([_shape(x)[a] for a in axes], dtype=np.int64))
    ones = np.ones(_shape(x), _dtype(x))
    if _is_traced(where):
        return sum_(_masked(ones, where, 0.0), axes, keepdims=keepdims)
    mask = np.broadcast_to(np.asarray(where, bool), _shape(x))
    return np.sum(mask, axis=axes, keepdims=keepdims).astype(_dtype(x))


@implements(np.mean, defaults_only=("out",))
def mean(x, axis=None, dtype=None, out=None, keepdims=False, *, where=True):
    x = asvalue(x)
    if not is_float(_dtype(x)):
        x = E.cast(x, dtype or np.float64)
    axes = normalize_axes(axis, len(_shape(x)))
    if where is not True:
        w = S.broadcast_to(asvalue(where), np.broadcast_shapes(_shape(x), _shape(asvalue(where))))
        count = sum_(E.cast(w, _dtype(x)), axes, keepdims=keepdims)
        return divide(sum_(x, axes, dtype, keepdims=keepdims, where=where), count)
    count = int(np.prod([_shape(x)[a] for a in axes], dtype=np.int64))
    return divide(sum_(x, axes, dtype, keepdims=keepdims), float(count))


@implements(np.var, defaults_only=("out",))
def var(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True,
        mean=_NoValue, correction=_NoValue):
    ddof = _ddof(ddof, correction)
    x = asvalue(x)
    if dtype is not None:
        # numpy sums (the mean and the squares) in dtype; here x is cast to it first, which
        # differs from numpy's float64 differences only by rounding in dtype
        if not is_float(np.dtype(dtype)):
            raise NotImplementedError(f"np.var/np.std(..., dtype={np.dtype(dtype).name}) is not "
                                      f"supported by autodiff_jit; use a float dtype")
        if _dtype(x) != np.dtype(dtype):
            x = E.cast(x, np.dtype(dtype))
    if not is_float(_dtype(x)):
        x = E.cast(x, np.float64)
    axes = normalize_axes(axis, len(_shape(x)))
    centered = subtract(x, _mean(x, axes, keepdims=True, where=where) if mean is _NoValue
                        else _given_mean(mean, x))
    count = _count(x, axes, where, keepdims)
    return divide(sum_(multiply(centered, centered), axes, keepdims=keepdims, where=where),
                  subtract(count, float(ddof)) if _is_traced(count) else count - ddof)


def _given_mean(mean, x):
    """var's `mean=` (numpy >= 2.0) in x's dtype; numpy subtracts it with broadcasting (the
    documented shape is the mean's with keepdims=True), and the gradient flows through it as
    through numpy's formula."""
    m = asvalue(mean)
    return E.cast(m, _dtype(x)) if _dtype(m) != _dtype(x) else m


@implements(np.std, defaults_only=("out",))
def std(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True,
        mean=_NoValue, correction=_NoValue):
    x = asvalue(x)
    n = int(np.prod([_shape(x)[a] for a in normalize_axes(axis, len(_shape(x)))]))
    if where is True and n == 1:
        # the std of one element is the constant 0 (its gradient is 0, as autograd's rule has
        # it; sqrt's at 0 would be 0 * inf = NaN)
        x = stop_gradient(x)
    return UFUNCS[np.sqrt](var(x, axis, dtype, ddof=ddof, keepdims=keepdims, where=where,
                               mean=mean, correction=correction))


def _ddof(ddof, correction):
    """numpy 2's `correction=` is the array-API name of `ddof=`; giving both is an error."""
    if correction is _NoValue:
        return ddof
    if ddof != 0:
        raise ValueError("ddof and correction can't be provided simultaneously.")
    return correction


_mean = mean  # var's own `mean=` parameter shadows the function inside it


def _extremum(prim, sign, pick):
    def fn(x, axis=None, out=None, keepdims=False, initial=_NoValue, where=True):
        x = asvalue(x)
        if where is not True and initial is _NoValue:
            raise ValueError(f"reduction operation '{prim.name.replace('reduce_', '')}imum' "
                             f"does not have an identity, so to use a where mask one has to "
                             f"specify 'initial'")   # numpy's check and words
        if where is not True:
            x = _masked(x, where, _identity_of(_dtype(x), -sign))
        axes = _axes(axis, x)
        if any(_shape(x)[a] == 0 for a in axes) and initial is _NoValue:
            raise ValueError("zero-size array to reduction operation which has no identity")
        res = _keep(bind(prim, x, axes=axes) if axes else x, x, axes, keepdims)
        return res if initial is _NoValue else pick(res, _initial(initial, res))
    return fn


_EXTREMUM_DEFAULTS = ("out",)
amax = implements(np.max, np.amax, defaults_only=_EXTREMUM_DEFAULTS)(
    _extremum(R.reduce_max_p, 1, lambda r, i: UFUNCS[np.maximum](r, i)))
amin = implements(np.min, np.amin, defaults_only=_EXTREMUM_DEFAULTS)(
    _extremum(R.reduce_min_p, -1, lambda r, i: UFUNCS[np.minimum](r, i)))


@implements(np.prod, defaults_only=("out",))
def prod(x, axis=None, dtype=None, out=None, keepdims=False, initial=_NoValue, where=True):
    return _accumulate(R.reduce_prod, 1, multiply, x, axis, dtype, keepdims, initial, where)


def _int_axis(axis, name):
    """argmax/argmin/cumsum/cumprod take one axis (numpy raises TypeError for a tuple)."""
    if axis is not None and not isinstance(axis, (numbers.Integral, np.integer)):
        raise TypeError(f"'{type(axis).__name__}' object cannot be interpreted as an integer "
                        f"(np.{name} takes a single axis)")


def _arg(prim):
    def fn(x, axis=None, out=None, *, keepdims=False):
        x = asvalue(x)
        _int_axis(axis, prim.name)
        ndim = len(_shape(x))
        if axis is None or (ndim == 0 and axis in (0, -1)):
            res = bind(prim, ravel(x), axis=0)
            return S.reshape(res, (1,) * ndim) if keepdims else res   # numpy: all axes kept
        axis = normalize_axes(axis, ndim)[0]
        res = bind(prim, x, axis=axis)
        return _keep(res, x, (axis,), keepdims)
    return fn


argmax = implements(np.argmax, defaults_only=("out",))(_arg(R.argmax_p))
argmin = implements(np.argmin, defaults_only=("out",))(_arg(R.argmin_p))


@implements(np.cumsum, defaults_only=("out",))
def cumsum(x, axis=None, dtype=None, out=None):
    x = asvalue(x)
    _int_axis(axis, "cumsum")
    x = E.cast(x, dtype if dtype is not None else _accumulator(_dtype(x)))
    if axis is None or len(_shape(x)) == 0:
        x, axis = ravel(x), 0 if axis is None else axis
    return R.cumsum(x, normalize_axes(axis, len(_shape(x)))[0])


@implements(np.cumprod, defaults_only=("out",))
def cumprod(x, axis=None, dtype=None, out=None):
    x = asvalue(x)
    _int_axis(axis, "cumprod")
    if dtype is not None:
        x = E.cast(x, dtype)
    if axis is None or len(_shape(x)) == 0:
        x, axis = ravel(x), 0 if axis is None else axis
    return C.cumprod(x, normalize_axes(axis, len(_shape(x)))[0])


if hasattr(np, "cumulative_sum"):
    @implements(np.cumulative_sum, defaults_only=("out",))
    def cumulative_sum(x, /, *, axis=None, dtype=None, out=None, include_initial=False):
        return _cumulative(cumsum, 0, x, axis, dtype, include_initial)

    @implements(np.cumulative_prod, defaults_only=("out",))
    def cumulative_prod(x, /, *, axis=None, dtype=None, out=None, include_initial=False):
        return _cumulative(cumprod, 1, x, axis, dtype, include_initial)


def _cumulative(fn, identity, x, axis, dtype, include_initial):
    x = asvalue(x)
    nd = len(_shape(x))
    if axis is None:
        if nd > 1:
            raise ValueError("axis must be specified for a multi-dimensional array")
        axis = 0
    res = fn(x, axis, dtype)
    if include_initial:
        axis = normalize_axes(axis, len(_shape(res)))[0]
        shape = list(_shape(res))
        shape[axis] = 1
        res = S.concatenate([E.cast(np.full(shape, identity), _dtype(res)), res], axis)
    return res


def _nonzero(x):
    x = asvalue(x)
    return x if _dtype(x) == np.bool_ else UFUNCS[np.not_equal](x, 0)


@implements(np.count_nonzero)
def count_nonzero(a, axis=None, *, keepdims=False):
    return sum_(_nonzero(a), axis, keepdims=keepdims)


@implements(np.any, defaults_only=("out",))
def any_(a, axis=None, out=None, keepdims=False, *, where=True):
    return UFUNCS[np.greater](sum_(_nonzero(a), axis, keepdims=keepdims, where=where), 0)


@implements(np.all, defaults_only=("out",))
def all_(a, axis=None, out=None, keepdims=False, *, where=True):
    bad = UFUNCS[np.logical_not](_nonzero(a))
    return UFUNCS[np.equal](sum_(bad, axis, keepdims=keepdims, where=where), 0)


@implements(np.ptp, defaults_only=("out",))
def ptp(a, axis=None, out=None, keepdims=False):
    return subtract(amax(a, axis, keepdims=keepdims), amin(a, axis, keepdims=keepdims))


@implements(np.average)
def average(x, axis=None, weights=None, returned=False, *, keepdims=False):
    x = asvalue(x)
    if weights is None:
        avg = mean(x, axis, keepdims=keepdims)
        axes = normalize_axes(axis, len(_shape(x)))
        count = float(np.prod([_shape(x)[a] for a in axes], dtype=np.int64))
        scale = E.cast(count, _dtype(avg)) if is_float(_dtype(avg)) else count
        return (avg, S.broadcast_to(asvalue(np.asarray(scale, _dtype(avg))), _shape(avg))) \
            if returned else avg
    w = asvalue(weights)
    if _shape(w) != _shape(x):
        # numpy: 1-D weights lie along `axis` (which must then be one axis)
        if axis is None:
            raise TypeError("Axis must be specified when shapes of a and weights differ.")
        if len(_shape(w)) != 1 or isinstance(axis, tuple) and len(axis) != 1:
            raise TypeError("1D weights expected when shapes of a and weights differ.")
        ax = normalize_axes(axis, len(_shape(x)))[0]
        if _shape(w)[0] != _shape(x)[ax]:
            raise ValueError("Length of weights not compatible with specified axis.")
        along = tuple(_shape(w)[0] if i == ax else 1 for i in range(len(_shape(x))))
        w = S.broadcast_to(S.reshape(w, along), _shape(x))
    x, w = E.promote(x, w, to_float=True)
    scale = sum_(w, axis, keepdims=keepdims)
    avg = divide(sum_(multiply(x, w), axis, keepdims=keepdims), scale)
    if returned:
        return avg, S.broadcast_to(scale, _shape(avg)) if _shape(scale) != _shape(avg) else scale
    return avg
