"""Structured control flow with JAX's signatures: fori_loop, while_loop, cond.

    y = fori_loop(0, 1000, lambda i, y: y - h * k * y, y0)
    r = while_loop(lambda c: np.abs(c[0] ** 2 - a) > 1e-12, newton_step, (a, 0))
    z = cond(x > 0, lambda x: np.sin(x), lambda x: x ** 2, x)

Inside a traced function (grad, jit), the body is traced ONCE into a region Function and the
loop or branch becomes one equation (`scan`, `while`, `cond`; see control/loops.py): the IR
stays O(1) in the trip count, and reverse mode runs the body's adjoint in a reverse loop.
Values the body closes over become explicit operands of the op. Called on plain numpy values
(or tape Tensors), the functions just run the Python loop or branch.

Carries are pytrees (tuples, lists, dicts) of arrays and scalars; a body must return a carry of
the same structure, shapes and dtypes (else TypeError naming both).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import tree
from ..errors import TracingError
from ..interpret import eval_function
from ..numpy.lists import routing_lists
from ..ir import AVal, Function, Var, dtype_name
from ..primitives import bind
from ..primitives.core import leaf_aval as _leaf_aval
from .loops import DEFAULT_MAX_STEPS, cond_p, scan_p, while_p
from ..trace import Trace, Tracer

__all__ = ["fori_loop", "while_loop", "cond", "DEFAULT_MAX_STEPS"]


# ---------------------------------------------------------------------------------------------
# helpers

def _is_tracer(x) -> bool:
    return isinstance(x, Tracer)


def _is_tape(x) -> bool:
    ctx = getattr(x, "_adj_context", None)
    return ctx is not None and ctx.level == 0


def _describe(avals, td) -> str:
    items = ", ".join(str(a) for a in avals)
    return f"({items})" if td != "*" else items


class _Region:
    """A traced region: its Function (args = explicit args + captured), the outer values it
    captured, and the structure of its output."""

    def __init__(self, fn, captured, out_tree, n_explicit):
        self.fn = fn
        self.captured = captured
        self.out_tree = out_tree
        self.n_explicit = n_explicit

    @property
    def out_avals(self):
        return self.fn.out_avals

    def consts_first(self, n_lead: int = 0) -> Function:
        """The Function with captured values moved right after the first `n_lead` args:
        (lead..., captured..., explicit...)."""
        a = self.fn.args
        lead, expl, cap = a[:n_lead], a[n_lead:self.n_explicit], a[self.n_explicit:]
        return Function(self.fn.name, lead + cap + expl, self.fn.consts, self.fn.eqns,
                        self.fn.results)


def _trace_region(fun, avals, build_args, name, outer_values, hints=None, out_like=None):
    """Trace `fun(*build_args(tracers))` on fresh tracers of `avals` (a new Trace, whose level
    is above every live trace). `out_like` (avals) gives the dtypes Python-scalar outputs take."""
    trace = Trace()
    tracers = [trace.new_arg(a, (hints or {}).get(i)) for i, a in enumerate(avals)]
    with routing_lists():  # np.array([traced, ...]): numpy/lists.py
        out = fun(*build_args(tracers))
    leaves, out_tree = tree.flatten(out)
    if out_like is not None and len(out_like) == len(leaves):
        leaves = [np.asarray(v, dtype=a.dtype) if isinstance(v, (bool, int, float)) else v
                  for v, a in zip(leaves, out_like)]
    for v in leaves:
        if not (hasattr(v, "_adj_context") or isinstance(v, (np.ndarray, np.generic,
                                                               numbers.Number))):
            raise TypeError(f"{name} returned a {type(v).__name__}; loop carries and branch "
                            f"outputs must be arrays, scalars or pytrees of them")
    fn = trace.to_function(name, leaves)
    return _Region(fn, trace.captured_outer, out_tree, len(avals))


class CarryTypeError(TypeError):
    """A body changed its carry's structure, shape or dtype. `captured`: whether the body
    closes over traced values (then the mismatch is an error even for plain inputs)."""
    captured = True


def _check_carry(what, in_tree, in_avals, out_tree, out_avals, captured=True):
    if in_tree != out_tree or list(in_avals) != list(out_avals):
        err = CarryTypeError(f"{what} must return a carry of the same structure, shapes and dtypes as "
                        f"its input: it went in as {_describe(in_avals, in_tree)} and came out "
                        f"as {_describe(out_avals, out_tree)}")
        err.captured = captured
        raise err


def _static_int(v, what):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Integral, np.integer)):
        arr = np.asarray(getattr(v, "data", v))
        if arr.shape == () and arr.dtype.kind in "iu":
            return int(arr)
        raise TypeError(f"fori_loop: {what} must be an integer, got {v!r}")
    return int(v)


# ---------------------------------------------------------------------------------------------
# fori_loop

def fori_loop(lower, upper, body_fun, init_val, *, checkpoint=None):
    """for i in range(lower, upper): val = body_fun(i, val); return val.

    With static (Python/numpy int) bounds the loop is a `scan` with a static trip count; with
    traced bounds it is a while_loop over (i, val). `checkpoint=k` (an int, or True for
    k = ceil(sqrt(n))) makes reverse mode store only every k-th carry and recompute the others
    one segment at a time: memory ~ n/k + k carries instead of n, for one extra forward run.
    """
    leaves, in_tree = tree.flatten(init_val)
    if any(_is_tape(x) for x in leaves + [lower, upper]) or \
            (not _is_tracer(lower) and not _is_tracer(upper) and not _has_tracer(leaves)
             and not _closes_over_tracer(lambda: _fori_region(lower, upper, body_fun, leaves,
                                                              in_tree))):
        return _python_fori(lower, upper, body_fun, init_val)
    if _is_tracer(lower) or _is_tracer(upper):
        return _dynamic_fori(lower, upper, body_fun, init_val)
    lo, hi = _static_int(lower, "lower"), _static_int(upper, "upper")
    region = _fori_region(lo, hi, body_fun, leaves, in_tree)
    n = max(hi - lo, 0)
    body = region.consts_first(1)
    consts = region.captured
    if checkpoint is True:
        checkpoint = max(1, math.isqrt(n - 1) + 1) if n > 1 else 1
    if checkpoint is not None and not isinstance(checkpoint, (bool, numbers.Integral)):
        raise TypeError(f"fori_loop: checkpoint must be an int or True, got {checkpoint!r}")
    if checkpoint and 1 < checkpoint < n:
        outs = _checkpointed_scan(body, consts, leaves, lo, n, int(checkpoint))
    else:
        outs = bind(scan_p, *consts, *leaves, body=body, length=n, start=lo, reverse=False,
                    n_consts=len(consts), n_carry=len(leaves), dynamic_length=False)
    return tree.unflatten(in_tree, outs)


def _has_tracer(leaves):
    return any(_is_tracer(x) for x in leaves)


def _closes_over_tracer(make_region) -> bool:
    """Trace a body once to see whether it closes over traced values (then it must become an
    op even though its explicit inputs are plain). A body that cannot be traced (e.g. it uses
    Python control flow on its values) cannot close over tracers meaningfully: run it in
    Python."""
    try:
        region = make_region()
    except CarryTypeError as exc:
        if exc.captured:
            raise
        return False
    except (TracingError, TypeError, ValueError, NotImplementedError):
        return False
    return any(bool(r.captured) for r in (region if isinstance(region, tuple) else (region,)))


def _fori_region(lower, upper, body_fun, leaves, in_tree):
    avals = [_leaf_aval(x) for x in leaves]
    region = _trace_region(
        body_fun, [AVal((), np.int64)] + avals,
        lambda t: (t[0], tree.unflatten(in_tree, t[1:])), "body",
        [lower, upper] + list(leaves), hints={0: "i"}, out_like=avals)
    _check_carry("fori_loop: body_fun", in_tree, avals, region.out_tree, region.out_avals,
                 bool(region.captured) or _has_tracer(leaves))
    return region


def _python_fori(lower, upper, body_fun, init_val):
    lo = lower if hasattr(lower, "_adj_context") else _static_int(lower, "lower")
    hi = upper if hasattr(upper, "_adj_context") else _static_int(upper, "upper")
    val = init_val
    for i in range(int(getattr(lo, "data", lo)), int(getattr(hi, "data", hi))):
        val = body_fun(i, val)
    return val


def _dynamic_fori(lower, upper, body_fun, init_val):
    def as_i64(v):
        return v.astype(np.int64) if _is_tracer(v) else np.int64(_static_int(v, "bound"))

    lo, hi = as_i64(lower), as_i64(upper)

    def body(c):
        i, val = c
        return i + 1, body_fun(i, val)

    return while_loop(lambda c: c[0] < hi, body, (lo, init_val))[1]


def _checkpointed_scan(body, consts, leaves, lo, n, k):
    """scan over n//k segments, each an inner scan of k steps, then the n%k remaining steps.
    The outer scan's reverse pass stores only the segment-start carries; each segment's inner
    scan is recomputed (storing its k carries) while its adjoint runs."""
    m, r = divmod(n, k)
    nk, nc = len(consts), len(leaves)
    c_avals = [a.aval for a in body.args[1:1 + nk]]
    k_avals = [a.aval for a in body.args[1 + nk:]]

    def traced(name, n_lead, fun):
        t = Trace()
        lead = [t.new_arg(AVal((), np.int64), h) for h in ("i", "seg")[:n_lead]]
        cs = [t.new_arg(a) for a in c_avals]
        ks = [t.new_arg(a, "c") for a in k_avals]
        outs = fun(lead, cs, ks)
        fn = t.to_function(name, outs)
        assert not t.captured
        return fn

    # inner body: (kk, seg, *consts, *carry) -> body(lo + seg*k + kk, *consts, *carry)
    inner = traced("segment_step", 2, lambda lead, cs, ks: eval_function(
        body, [lead[1] * k + lead[0] + lo] + cs + ks))

    def outer_fun(lead, cs, ks):
        return bind(scan_p, lead[0], *cs, *ks, body=inner, length=k, start=0, reverse=False,
                    n_consts=1 + nk, n_carry=nc, dynamic_length=False)

    outer = traced("segment", 1, outer_fun)
    carry = bind(scan_p, *consts, *leaves, body=outer, length=m, start=0, reverse=False,
                 n_consts=nk, n_carry=nc, dynamic_length=False)
    if r:
        carry = bind(scan_p, *consts, *carry, body=body, length=r, start=lo + m * k,
                     reverse=False, n_consts=nk, n_carry=nc, dynamic_length=False)
    return carry


# ---------------------------------------------------------------------------------------------
# while_loop

def while_loop(cond_fun, body_fun, init_val, *, max_steps=None):
    """while cond_fun(val): val = body_fun(val); return val.

    Differentiable in reverse mode (unlike JAX): the loop is re-run recording its trip count
    and the carries the body's adjoint needs into buffers of a static capacity `max_steps`
    (default DEFAULT_MAX_STEPS = 1024 iterations); a differentiated loop that runs longer
    raises RuntimeError asking for a larger max_steps. Without differentiation the loop is
    unbounded and max_steps is ignored.
    """
    if max_steps is not None and (not isinstance(max_steps, numbers.Integral) or max_steps < 1):
        raise TypeError(f"while_loop: max_steps must be a positive int, got {max_steps!r}")
    leaves, in_tree = tree.flatten(init_val)
    if any(_is_tape(x) for x in leaves) or (
            not _has_tracer(leaves) and not _closes_over_tracer(
                lambda: _while_regions(cond_fun, body_fun, leaves, in_tree))):
        val = init_val
        while _python_pred(cond_fun(val), "while_loop: cond_fun"):
            val = body_fun(val)
        return val
    cond_r, body_r = _while_regions(cond_fun, body_fun, leaves, in_tree)
    outs = bind(while_p, *cond_r.captured, *body_r.captured, *leaves,
                cond=cond_r.consts_first(), body=body_r.consts_first(),
                n_cond_consts=len(cond_r.captured), n_body_consts=len(body_r.captured),
                record=False, stash=(), max_steps=max_steps)
    return tree.unflatten(in_tree, outs)


def _while_regions(cond_fun, body_fun, leaves, in_tree):
    avals = [_leaf_aval(x) for x in leaves]
    build = lambda t: (tree.unflatten(in_tree, t),)  # noqa: E731
    cond_r = _trace_region(cond_fun, avals, build, "cond", leaves)
    got = cond_r.out_avals
    if len(got) != 1 or got[0] != AVal((), np.bool_):
        raise TypeError(f"while_loop: cond_fun must return a bool scalar, got "
                        f"{_describe(got, cond_r.out_tree)}")
    body_r = _trace_region(body_fun, avals, build, "body", leaves, out_like=avals)
    _check_carry("while_loop: body_fun", in_tree, avals, body_r.out_tree, body_r.out_avals,
                 bool(body_r.captured or cond_r.captured) or _has_tracer(leaves))
    return cond_r, body_r


def _python_pred(p, what):
    arr = np.asarray(getattr(p, "data", p)) if not isinstance(p, (bool, np.bool_)) else p
    if isinstance(arr, np.ndarray) and (arr.shape != () or arr.dtype != np.bool_):
        raise TypeError(f"{what} must return a bool scalar, got "
                        f"{dtype_name(arr.dtype) if arr.dtype != object else arr.dtype}"
                        f"[{','.join(map(str, arr.shape))}]")
    return bool(arr)


# ---------------------------------------------------------------------------------------------
# cond

def cond(pred, true_fun, false_fun, *operands):
    """true_fun(*operands) if pred else false_fun(*operands), with a bool scalar pred.

    With a traced pred both branches are traced (they must return the same structure, shapes
    and dtypes) into one `cond` op, which runs only the taken branch; its VJP differentiates
    the taken branch. With a concrete pred the chosen branch is simply called.
    """
    if not _is_tracer(pred):
        return (true_fun if _python_pred(pred, "cond: the predicate") else false_fun)(*operands)
    if pred.aval != AVal((), np.bool_):
        raise TypeError(f"cond: the predicate must be a bool scalar, got {pred.aval}; compare "
                        f"explicitly (e.g. x > 0) or reduce it (np.all / np.any)")
    leaves, in_tree = tree.flatten(operands)
    avals = [_leaf_aval(x) for x in leaves]
    build = lambda t: tree.unflatten(in_tree, t)  # noqa: E731
    t_r = _trace_region(true_fun, avals, build, "true_branch", [pred] + leaves)
    f_r = _trace_region(false_fun, avals, build, "false_branch", [pred] + leaves,
                        out_like=t_r.out_avals)
    if t_r.out_tree != f_r.out_tree or t_r.out_avals != f_r.out_avals:
        raise TypeError(f"cond: true_fun and false_fun must return the same structure, shapes "
                        f"and dtypes: true_fun returned {_describe(t_r.out_avals, t_r.out_tree)}"
                        f", false_fun returned {_describe(f_r.out_avals, f_r.out_tree)}")
    nt, nf = len(t_r.captured), len(f_r.captured)

    def unify(r, before, after):
        """Branch args: (*operands, *captured_true, *captured_false)."""
        fn = r.fn
        expl, cap = fn.args[:len(leaves)], fn.args[len(leaves):]
        pad_b = [Var(a.aval) for a in before]
        pad_a = [Var(a.aval) for a in after]
        return Function(fn.name, expl + pad_b + cap + pad_a, fn.consts, fn.eqns, fn.results)

    true_fn = unify(t_r, [], f_r.fn.args[len(leaves):])
    false_fn = unify(f_r, t_r.fn.args[len(leaves):], [])
    outs = bind(cond_p, pred, *leaves, *t_r.captured, *f_r.captured, true=true_fn,
                false=false_fn)
    assert len(outs) == len(t_r.out_avals) and nt + nf >= 0
    return tree.unflatten(t_r.out_tree, outs)
