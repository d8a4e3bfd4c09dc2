"""cumprod: the running product along one axis, with derivative rules exact at zeros."""
from __future__ import annotations

import numpy as np

from ..ir import is_float
from .core import Primitive, aval_of, bind, register
from . import batching as B, elementwise as E, reductions as R, shape as S


def _cumprod_rule(x, *, axis):
    if not 0 <= axis < x.ndim:
        raise ValueError(f"cumprod: axis {axis} out of range for rank {x.ndim}")
    return x


def _zero_masks(x, axis):
    """`before`: no zero at or before this position; `first`: the first zero along the axis;
    `after`: at or after the first zero."""
    count = R.cumsum(E.cast(x == 0, np.int64), axis)
    before = count == 0
    first = bind(E.logical_and, x == 0, count == 1)
    return before, first, bind(E.logical_not, before)


def _along(v, x, axis):
    """A reduced-over-`axis` value broadcast back along it."""
    return R.expand_back(R.reduce_sum(v, (axis,)), aval_of(x).shape, (axis,))


# Without zeros, d y_i / d x_k = y_i / x_k (k <= i). Before the first zero z the division is
# safe; at z the product skips x_z: y'_i = cumprod(x with x_z := 1)_i; after z every
# derivative is 0 (each product keeps the zero x_z). (As in Zhuang & Leng's zero-safe
# cumulative-product gradients; PyTorch's cumprod_backward handles zeros the same way.)
def _cumprod_vjp(g, out, x, *, axis):
    before, first, after = _zero_masks(x, axis)
    one = np.ones((), aval_of(x).dtype)[()]
    zero = np.zeros((), aval_of(x).dtype)[()]
    safe_x = E.select(before, x, one)
    normal = R.cumsum(g * out, axis, reverse=True) / safe_x
    skipped = cumprod(E.select(first, one, x), axis)
    at_zero = _along(E.select(after, g * skipped, zero), x, axis)
    return (E.select(before, normal, E.select(first, at_zero, zero)),)


def _cumprod_jvp(t, out, x, *, axis):
    (tx,) = t
    if tx is None:
        return None
    before, first, after = _zero_masks(x, axis)
    one = np.ones((), aval_of(x).dtype)[()]
    zero = np.zeros((), aval_of(x).dtype)[()]
    normal = out * R.cumsum(E.select(before, tx / E.select(before, x, one), zero), axis)
    skipped = cumprod(E.select(first, one, x), axis)
    t_zero = _along(E.select(first, tx, zero), x, axis)
    return E.select(before, normal, t_zero * skipped)


def _cumprod_impl(x, *, axis):
    return np.cumprod(x, axis=axis)


cumprod_p = register(Primitive("cumprod", _cumprod_rule, _cumprod_impl, vjp=_cumprod_vjp,
                               jvp=_cumprod_jvp, torch_name="CumprodBackward0", family="scan",
                               batch=B.along_axis))


def cumprod(x, axis):
    if not is_float(aval_of(x).dtype) and aval_of(x).dtype != np.int64:
        x = E.cast(x, np.int64)
    return bind(cumprod_p, x, axis=int(axis))


_ = S
