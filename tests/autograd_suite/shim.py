"""A stand-in `autograd` package so that HIPS autograd's own numpy gradient tests run against
autodiff_jit unchanged: `autograd.numpy` is plain numpy (autodiff_jit differentiates plain
numpy), `autograd.grad` is autodiff_jit's grad in the mode chosen by AD_SUITE_MODE
(compiled, interpret or tape), and `check_grads`/`combo_check` compare that gradient with
central finite differences.

Written for this project (no autograd code): only the names and calling conventions the
tests use are reproduced. Complex arguments are skipped (autodiff_jit is real-only).
"""
from __future__ import annotations

import itertools
import os
import sys
import types

import numpy as onp

import autodiff_jit as ad

MODE = os.environ.get("AD_SUITE_MODE", "compiled")
EPS = 1e-6
RTOL, ATOL = 1e-5, 1e-6


class SkipComplex(Exception):
    """An argument autodiff_jit does not take (complex values)."""


def grad(fun, argnum=0):
    return ad.grad(fun, argnums=argnum, mode=MODE)


def elementwise_grad(fun, argnum=0):
    def g(*args):
        return ad.grad(lambda *a: onp.sum(fun(*a)), argnums=argnum, mode=MODE)(*args)
    return g


def value_and_grad(fun, argnum=0):
    return ad.value_and_grad(fun, argnums=argnum, mode=MODE)


def _is_complex(x):
    return onp.iscomplexobj(x)


def _weights(out, seed):
    rng = onp.random.default_rng(seed)
    return rng.standard_normal(onp.shape(out))


def _check(fun, args, argnums):
    """grad of <fun(args), w> w.r.t. each of argnums against central differences."""
    if any(_is_complex(a) for a in args):
        raise SkipComplex
    args = [onp.asarray(a, onp.float64) if isinstance(a, (float, int, onp.ndarray)) and
            not isinstance(a, bool) else a for a in args]
    out = fun(*args)
    if onp.asarray(out).dtype.kind not in "fc":  # bool/int results: values only
        got = ad.jit(fun, mode=MODE)(*args)
        onp.testing.assert_array_equal(got, out)
        return
    w = _weights(out, 0)

    def scalar(*a):
        return onp.sum(fun(*a) * w)

    for i in argnums:
        g = ad.grad(scalar, argnums=i, mode=MODE)(*args)
        x = onp.array(args[i], onp.float64)
        num = onp.zeros(onp.shape(x))
        flat = num.reshape(-1)
        for k in range(flat.size):
            plus, minus = x.copy(), x.copy()
            plus.reshape(-1)[k] += EPS
            minus.reshape(-1)[k] -= EPS
            ap = list(args)
            am = list(args)
            ap[i], am[i] = plus.reshape(onp.shape(x)), minus.reshape(onp.shape(x))
            if onp.ndim(args[i]) == 0:
                ap[i], am[i] = float(plus), float(minus)
            flat[k] = (scalar(*ap) - scalar(*am)) / (2 * EPS)
        onp.testing.assert_allclose(onp.asarray(g, onp.float64), num, rtol=RTOL, atol=ATOL,
                                    err_msg=f"mode={MODE} argnum={i}")


def check_grads(fun, *args, modes=None, order=None, **kw):
    """Both of autograd's conventions: check_grads(f, *args) checks at once; check_grads(f,
    modes=..., order=...) returns a checker to call on the arguments."""
    if args:
        _check(fun, list(args), range(len(args)))
        return None
    return lambda *a: _check(fun, list(a), range(len(a)))


def combo_check(fun, *args, **kwargs):
    """combo_check(fun, argnums, **kw)(arg_lists..., **kwarg_lists): every combination."""
    argnums = args[0] if args else (0,)

    def check(*arg_lists, **kwarg_lists):
        names = list(kwarg_lists)
        for combo in itertools.product(*arg_lists):
            for kv in itertools.product(*[kwarg_lists[n] for n in names]):
                kw = dict(zip(names, kv))
                try:
                    _check(lambda *a: fun(*a, **kw), list(combo),
                           [i for i in argnums if i < len(combo)])
                except SkipComplex:
                    continue
    if len(args) > 1:  # combo_check(fun, argnums, arg_lists..., **kwarg_lists) in one call
        return check(*args[1:], **kwargs)
    return check


def to_scalar(x):
    return onp.sum(onp.sin(x))


def install():
    """Register the stand-in modules in sys.modules."""
    pkg = types.ModuleType("autograd")
    pkg.grad, pkg.elementwise_grad, pkg.value_and_grad = grad, elementwise_grad, value_and_grad
    pkg.numpy = onp
    util = types.ModuleType("autograd.test_util")
    util.check_grads, util.combo_check, util.to_scalar = check_grads, combo_check, to_scalar
    util.__all__ = ["check_grads", "combo_check", "to_scalar"]
    sys.modules.update({"autograd": pkg, "autograd.numpy": onp,
                        "autograd.numpy.random": onp.random, "autograd.test_util": util,
                        "autograd.util": util})
    pkg.test_util = pkg.util = util
