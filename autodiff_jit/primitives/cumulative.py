"""cumprod: the running product along one axis, with derivative rules exact at zeros, and
cumprod_grad, its VJP as one primitive (one fused kernel when compiled) with rules of its own
(so gradients of gradients stay exact)."""
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
def _cumprod_grad_parts(g, out, x, axis):
    """The zero-safe rule as composite ops: (result, the pieces its derivatives reuse)."""
    before, first, after = _zero_masks(x, axis)
    one = np.ones((), aval_of(x).dtype)[()]
    zero = np.zeros((), aval_of(x).dtype)[()]
    safe_x = E.select(before, x, one)
    normal = R.cumsum(g * out, axis, reverse=True) / safe_x
    skip_x = E.select(first, one, x)
    skipped = cumprod(skip_x, axis)
    at_zero = _along(E.select(after, g * skipped, zero), x, axis)
    res = E.select(before, normal, E.select(first, at_zero, zero))
    return res, (before, first, after, one, zero, safe_x, skip_x, skipped)


def _cumprod_grad_impl(g, out, x, *, axis):
    """numpy: the composite rule (interpret and tape mode: every piece is one numpy call)."""
    return _cumprod_grad_parts(g, out, x, axis)[0]


def _cumprod_vjp(g, out, x, *, axis):
    # one fused primitive (compiled: one reverse pass per row, a second pass only over the
    # part of a row from its first zero); its own rules below keep higher orders exact
    return (bind(cumprod_grad_p, g, out, x, axis=axis),)


# cumprod_grad(g, out, x) = F = J(x)^T g with out = cumprod(x) given (the rules assume it),
# J cumprod's Jacobian.
# Its derivatives, from the composite rule (_cumprod_grad_parts), piece by piece (out and x as
# independent inputs; the masks are piecewise constant): linear in g (J c is cumprod's JVP);
# linear in out (the reverse cumsum before the first zero z, whose transpose is a forward
# cumsum); in x: -F / x before z, through `skipped` at z, and one term the composite's
# constant 0 after z hides: F_k (k > z) = x_z * G_k, G = F of x with x_z := 1, so
# dF_k / dx_z = G_k. (Derived here; checked against finite differences of gradients.)
def _cumprod_grad_vjp(c, res, g, out, x, *, axis):
    before, first, after, one, zero, safe_x, skip_x, skipped = \
        _cumprod_grad_parts(g, out, x, axis)[1]
    later = bind(E.logical_and, after, bind(E.logical_not, first))
    c_g = _cumprod_jvp((c,), out, x, axis=axis)
    c_out = g * R.cumsum(E.select(before, c / safe_x, zero), axis)
    c_skipped = E.select(after, g * _along(E.select(first, c, zero), x, axis), zero)
    c_skip_x = bind(cumprod_grad_p, c_skipped, skipped, skip_x, axis=axis)
    skip_grad = bind(cumprod_grad_p, g, skipped, skip_x, axis=axis)
    at_zero = _along(E.select(later, c * skip_grad, zero), x, axis)
    c_x = E.select(before, -(res * c) / safe_x, zero) + E.select(first, at_zero, c_skip_x)
    return c_g, c_out, c_x


def _cumprod_grad_jvp(t, res, g, out, x, *, axis):
    tg, tout, tx = t
    before, first, after, one, zero, safe_x, skip_x, skipped = \
        _cumprod_grad_parts(g, out, x, axis)[1]
    terms = []
    if tg is not None:
        terms.append(bind(cumprod_grad_p, tg, out, x, axis=axis))
    if tout is not None:
        terms.append(E.select(before, R.cumsum(g * tout, axis, reverse=True) / safe_x, zero))
    if tx is not None:
        d_skipped = _cumprod_jvp((E.select(first, zero, tx),), skipped, skip_x, axis=axis)
        at_zero = _along(E.select(after, g * d_skipped, zero), x, axis)
        terms.append(E.select(before, -(res * tx) / safe_x, E.select(first, at_zero, zero)))
        later = bind(E.logical_and, after, bind(E.logical_not, first))
        skip_grad = bind(cumprod_grad_p, g, skipped, skip_x, axis=axis)
        terms.append(E.select(later, skip_grad * _along(E.select(first, tx, zero), x, axis),
                              zero))
    if not terms:
        return None
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _cumprod_grad_rule(g, out, x, *, axis):
    if not (g.shape == out.shape == x.shape) or not 0 <= axis < x.ndim or \
            not (g.dtype == out.dtype == x.dtype) or not is_float(x.dtype):
        raise ValueError(f"cumprod_grad: float g, out, x of one shape and dtype and an axis "
                         f"in range, got {g.dtype}{g.shape}, {out.dtype}{out.shape}, "
                         f"{x.dtype}{x.shape}, axis {axis}")
    return x


cumprod_grad_p = register(Primitive(
    "cumprod_grad", _cumprod_grad_rule, _cumprod_grad_impl, vjp=_cumprod_grad_vjp,
    jvp=_cumprod_grad_jvp, family="scan", batch=S.along_axis_batch))


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

