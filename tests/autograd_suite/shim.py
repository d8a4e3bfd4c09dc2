"""A stand-in `autograd` package so that HIPS autograd's own numpy gradient tests run against
autodiff_jit unchanged: `autograd.numpy` is plain numpy (autodiff_jit differentiates plain
numpy), `autograd.grad` is autodiff_jit's grad in the mode chosen by AD_SUITE_MODE
(compiled, interpret or tape), and `check_grads`/`combo_check` compare that gradient with
central finite differences.

Written for this project (no autograd code): only the names and calling conventions the
tests use are reproduced. `check_grads(f, argnum=0, modes=["fwd", "rev"], order=2)(*args,
**kwargs)` checks, for the argument `argnum`, the reverse-mode gradient of <f, w> (random w)
and, with "fwd" in modes, the forward-mode directional derivative, both against central
differences; order 2 also checks the gradient of <grad, u> (grad of grad) the same way, as
autograd's own check_grads does to order 2. Complex arguments are skipped (autodiff_jit is
real-only; autograd's target count is the real-number one).
"""
from __future__ import annotations

import functools
import itertools
import os
import sys
import types

import numpy as onp

import autodiff_jit as ad

MODE = os.environ.get("AD_SUITE_MODE", "compiled")
EPS = 1e-6
RTOL, ATOL = 1e-5, 1e-6


def grad(fun, argnum=0):
    return ad.grad(fun, argnums=argnum, mode=MODE)


def elementwise_grad(fun, argnum=0):
    def g(*args):
        return ad.grad(lambda *a: onp.sum(fun(*a)), argnums=argnum, mode=MODE)(*args)
    return g


def value_and_grad(fun, argnum=0):
    return ad.value_and_grad(fun, argnums=argnum, mode=MODE)


def jacobian(fun, argnum=0):
    """autograd.jacobian: the output's shape followed by the argument's (jax's jacrev)."""
    return ad.jacrev(fun, argnums=argnum, mode=MODE)


def _float_arg(a):
    if isinstance(a, (bool, onp.bool_)):
        return a
    if isinstance(a, (float, int, onp.floating, onp.integer)) or \
            isinstance(a, onp.ndarray) and a.dtype.kind in "iuf":
        return onp.asarray(a, onp.float64)
    return a


def _numeric_grad(scalar, x):
    """Central differences of scalar(x) (a Python float) over the elements of x."""
    x = onp.array(x, onp.float64)
    num = onp.zeros(x.shape)
    flat = num.reshape(-1)
    for k in range(x.size):
        plus, minus = x.copy(), x.copy()
        plus.reshape(-1)[k] += EPS
        minus.reshape(-1)[k] -= EPS
        flat[k] = (float(scalar(plus)) - float(scalar(minus))) / (2 * EPS)
    return num


def _unary(fun, args, kwargs, i):
    """fun as a function of argument i alone (autograd's unary_to_nary), and that argument.
    A list or tuple argument (np.concatenate's) becomes one flat float vector that the
    function slices back into its items, so gradients and differences see one array."""
    x = args[i]

    def call(xi):
        a = list(args)
        a[i] = xi
        return fun(*a, **kwargs)

    if not isinstance(x, (list, tuple)):
        return call, _float_arg(x)
    items = [onp.asarray(_float_arg(v), onp.float64) for v in x]
    shapes = [v.shape for v in items]
    bounds = onp.cumsum([0] + [v.size for v in items])

    def from_flat(v):
        parts = [v[bounds[k]:bounds[k + 1]].reshape(sh) for k, sh in enumerate(shapes)]
        return call(type(x)(parts))

    return from_flat, onp.concatenate([v.ravel() for v in items])


def _has_complex(a):
    if isinstance(a, (list, tuple)):
        return any(_has_complex(v) for v in a)
    return onp.iscomplexobj(a)


def _flat_out(out):
    """A list or tuple result (np.split's) as one vector of its items."""
    if isinstance(out, (list, tuple)):
        return onp.concatenate([onp.ravel(o) for o in out])
    return out


def _check_unary(f, x, modes, order, seed=0):
    rng = onp.random.default_rng(seed)
    g0 = f
    f = lambda x: _flat_out(g0(x))  # noqa: E731
    out = f(x)
    if onp.asarray(out).dtype.kind not in "fc":  # bool/int results: values only
        onp.testing.assert_array_equal(ad.jit(f, mode=MODE)(x), out)
        return
    w = rng.standard_normal(onp.shape(out))

    def scalar(x):
        return onp.sum(f(x) * w)

    # one transformed gradient, reused: a new ad.grad object per call (e.g. once per finite-
    # difference point of the order-2 check below) would trace and compile it every time
    grad_scalar = ad.grad(scalar, mode=MODE)
    if "rev" in modes:
        g = grad_scalar(x)
        onp.testing.assert_allclose(onp.asarray(g, onp.float64), _numeric_grad(scalar, x),
                                    rtol=RTOL, atol=ATOL, err_msg=f"mode={MODE} rev")
    if "fwd" in modes:
        t = rng.standard_normal(onp.shape(x))
        _, tan = ad.jvp(f, (x,), (t,), mode=MODE)
        num = (onp.asarray(f(x + EPS * t)) - onp.asarray(f(x - EPS * t))) / (2 * EPS)
        onp.testing.assert_allclose(onp.asarray(tan, onp.float64), num, rtol=RTOL, atol=ATOL,
                                    err_msg=f"mode={MODE} fwd")
    if order > 1:
        u = rng.standard_normal(onp.shape(x))

        def directional(x):  # <grad <f, w>, u>: its gradient is the Hessian-vector product
            return onp.sum(grad_scalar(x) * u)

        _check_unary(directional, x, ["rev"], order - 1, seed + 1)


def check_grads(fun, argnum=0, modes=("fwd", "rev"), order=2):
    """autograd's check_grads(f, argnum, modes, order)(*args, **kwargs)."""
    def check(*args, **kwargs):
        if _has_complex(list(args)):
            return
        for i in (argnum if isinstance(argnum, (tuple, list)) else (argnum,)):
            _check_unary(*_unary(fun, list(args), kwargs, i), modes, order)
    return check


def combo_check(fun, *args, **kwargs):
    """combo_check(fun, argnum, modes=..., order=...)(arg_lists..., **kwarg_lists): every
    combination of the listed arguments and keyword values."""
    def check(*arg_lists, **kwarg_lists):
        names = list(kwarg_lists)
        for combo in itertools.product(*arg_lists):
            for kv in itertools.product(*[kwarg_lists[n] for n in names]):
                check_grads(fun, *args, **kwargs)(*combo, **dict(zip(names, kv)))
    return check


def to_scalar(x):
    return onp.sum(onp.sin(x))


def make_vjp(fun, x):
    """autograd.core.make_vjp: (vjp, fun(x))."""
    value, vjp_fn = ad.vjp(fun, x, mode=MODE)
    return (lambda g: vjp_fn(g)[0]), value


def unary_to_nary(unary_operator):
    """autograd.wrap_util.unary_to_nary: op(fun, x, ...) becomes op(fun, argnum=0, ...)(*args)."""
    def nary_operator(fun, argnum=0, *nary_op_args, **nary_op_kwargs):
        def nary_f(*args, **kwargs):
            def unary_f(x):
                a = list(args)
                a[argnum] = x
                return fun(*a, **kwargs)
            return unary_operator(unary_f, args[argnum], *nary_op_args, **nary_op_kwargs)
        return nary_f
    return nary_operator


def make_diagonal(D, offset=0, axis1=0, axis2=1):
    """autograd.numpy.make_diagonal (an autograd-only name): D's last axis laid on the
    diagonal of the two new axes axis1, axis2 (the last two), from plain numpy ops."""
    if offset != 0 or sorted(a % (onp.ndim(D) + 1) for a in (axis1, axis2)) != \
            [onp.ndim(D) - 1, onp.ndim(D)]:
        raise NotImplementedError("make_diagonal: only offset=0 onto the last two axes")
    n = onp.shape(D)[-1]
    return onp.expand_dims(D, -1) * onp.eye(n)


def _numpy_module():
    """autograd.numpy: numpy itself (looked up at each use, so a trace's routing of np.array
    applies) plus autograd's own names."""
    mod = types.ModuleType("autograd.numpy")

    def attr(name):
        value = getattr(onp, name)
        if callable(value) and not isinstance(value, (type, onp.ufunc)):
            # autograd.numpy.f is autograd's own wrapper; here numpy's f is looked up at each
            # call, so a test that hands np.append itself to check_grads gets the trace's
            # routed np.append (numpy/lists.py), as code writing np.append(...) does
            @functools.wraps(value)
            def late(*args, **kwargs):
                return getattr(onp, name)(*args, **kwargs)
            return late
        return value

    mod.__getattr__ = attr
    mod.make_diagonal = make_diagonal
    mod.random, mod.linalg, mod.fft = onp.random, onp.linalg, onp.fft
    return mod


def install():
    """Register the stand-in modules in sys.modules."""
    pkg = types.ModuleType("autograd")
    pkg.__path__ = []  # a package, so that `from autograd.core import ...` resolves
    pkg.grad, pkg.elementwise_grad, pkg.value_and_grad = grad, elementwise_grad, value_and_grad
    pkg.deriv, pkg.jacobian, pkg.tuple = grad, jacobian, tuple  # autograd.tuple: a plain tuple
    pkg.numpy = anp = _numpy_module()
    util = types.ModuleType("autograd.test_util")
    util.check_grads, util.combo_check, util.to_scalar = check_grads, combo_check, to_scalar
    util.__all__ = ["check_grads", "combo_check", "to_scalar"]
    core = types.ModuleType("autograd.core")
    core.make_vjp = make_vjp
    wrap = types.ModuleType("autograd.wrap_util")
    wrap.unary_to_nary = unary_to_nary
    sys.modules.update({"autograd": pkg, "autograd.numpy": anp,
                        "autograd.numpy.random": onp.random, "autograd.numpy.linalg": onp.linalg,
                        "autograd.test_util": util,
                        "autograd.util": util, "autograd.core": core,
                        "autograd.wrap_util": wrap})
    pkg.test_util = pkg.util = util
    pkg.core, pkg.wrap_util = core, wrap
