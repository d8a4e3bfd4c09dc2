"""Structured control flow as region primitives: `scan`, `while` and `cond`.

Each op owns closed region Functions in its params (values a body closes over are explicit
operands), so the IR of a loop is O(1) in its trip count.

scan     inputs  [n?] + consts + carry + xs
         params  body: (i: i64[], *consts, *carry, *x_slices) -> (*carry', *y_slices)
                 length (static trip count, or capacity when dynamic_length), start (value of
                 i at the first row), reverse, n_consts, n_carry, dynamic_length
         outputs final carry + ys stacked to (length, ...)
         Iteration k (k = 0..n-1, or n-1..0 when reverse) runs the body with i = start + k
         on row k of each x and writes row k of each y. With dynamic_length, the first input
         is the trip count n <= length; rows >= n of ys are zero.
         `fori_loop` with static bounds is a scan without xs/ys.

while    inputs  cond_consts + body_consts + carry
         params  cond: (*cond_consts, *carry) -> bool[];  body: (*body_consts, *carry) -> carry
                 n_cond_consts, n_body_consts, record, stash, max_steps
         outputs final carry; with record=True also the trip count n (i64[]) and one buffer
                 (max_steps, ...) per carry index in `stash`, holding the carry at the start of
                 each iteration (rows >= n are zero).

cond     inputs  pred (bool[]) + operands
         params  true, false: (*operands) -> outputs (same types)

Reverse mode
------------
The VJP of a scan is a scan in the opposite direction. The body's adjoint is built once, as IR,
with `vjp_function`; only the carry components that adjoint actually reads are stored per
iteration (the forward is re-run with those components as extra stacked outputs — a later
pass, `merge_recorded_loops`, fuses that recording run with the plain forward run). Everything
else the body's adjoint needs is recomputed inside the reverse body from the stored carry.

A while loop's trip count is data-dependent, but the IR has static shapes, so the recording run
writes into buffers of a static capacity `max_steps` (default `DEFAULT_MAX_STEPS`) and returns
the trip count n; the reverse pass is a scan with dynamic length n over those buffers. A loop
that runs more than max_steps iterations while being differentiated raises a RuntimeError that
says which value to pass. Forward-only while loops are unbounded.

The VJP of cond is a cond whose branches are the branches' adjoints: only the taken branch's
adjoint runs.
"""
from __future__ import annotations

import numpy as np

from ..ir import AVal, Function, Var, is_float, uses
from .core import Primitive, bind, register

DEFAULT_MAX_STEPS = 1024
def _impl_apply(prim, *args, **params):
    return prim.impl(*args, **params)


def run_region(fn: Function, args) -> list:
    from ..interpret import eval_function
    return eval_function(fn, args, apply=_impl_apply)


def _fmt(avals) -> str:
    return "(" + ", ".join(str(a) for a in avals) + ")"


def _check_avals(what, expected, got):
    expected, got = list(expected), list(got)
    if expected != got:
        raise TypeError(f"{what}: expected {_fmt(expected)}, got {_fmt(got)}")


# ---------------------------------------------------------------------------------------------
# scan

def _scan_split(args, n_consts, n_carry, dynamic_length):
    pos = 1 if dynamic_length else 0
    n = args[0] if dynamic_length else None
    consts = list(args[pos:pos + n_consts])
    carry = list(args[pos + n_consts:pos + n_consts + n_carry])
    xs = list(args[pos + n_consts + n_carry:])
    return n, consts, carry, xs


def _scan_rule(*avals, body, length, start, reverse, n_consts, n_carry, dynamic_length):
    n, consts, carry, xs = _scan_split(avals, n_consts, n_carry, dynamic_length)
    if dynamic_length and (n.shape != () or n.dtype.kind != "i"):
        raise TypeError(f"scan: the trip count must be an integer scalar, got {n}")
    for x in xs:
        if x.ndim == 0 or x.shape[0] != length:
            raise TypeError(f"scan: stacked input {x} does not have {length} rows")
    slices = [AVal(x.shape[1:], x.dtype) for x in xs]
    _check_avals("scan: body arguments", [AVal((), np.int64)] + consts + carry + slices,
                 body.in_avals)
    outs = body.out_avals
    _check_avals("scan: the body's carry output must match its carry input", carry, outs[:n_carry])
    return list(carry) + [AVal((length,) + y.shape, y.dtype) for y in outs[n_carry:]]


def _scan_impl(*args, body, length, start, reverse, n_consts, n_carry, dynamic_length):
    n, consts, carry, xs = _scan_split(args, n_consts, n_carry, dynamic_length)
    if dynamic_length:
        n = int(n)
        if not 0 <= n <= length:
            raise RuntimeError(f"scan: trip count {n} exceeds the capacity {length}")
    else:
        n = length
    y_avals = body.out_avals[n_carry:]
    ys = [np.zeros((length,) + a.shape, a.dtype) for a in y_avals]
    carry = [np.asarray(c) for c in carry]
    xs = [np.asarray(x) for x in xs]
    for k in (range(n - 1, -1, -1) if reverse else range(n)):
        outs = run_region(body, [np.int64(start + k)] + consts + carry + [x[k] for x in xs])
        carry = outs[:n_carry]
        for y, v in zip(ys, outs[n_carry:]):
            y[k] = v
    carry = [np.asarray(c, dtype=a.dtype) for c, a in zip(carry, body.out_avals[:n_carry])]
    return carry + ys


def _scan_vjp(cts, outs, *ins, body, length, start, reverse, n_consts, n_carry, dynamic_length):
    n, consts, carry, xs = _scan_split(ins, n_consts, n_carry, dynamic_length)
    ct_carry, ct_ys = list(cts[:n_carry]), list(cts[n_carry:])
    params = dict(length=length, start=start, reverse=reverse, n_consts=n_consts,
                  n_carry=n_carry, dynamic_length=dynamic_length)

    def record(stash):
        """Re-run the forward with the carry components in `stash` as extra stacked outputs."""
        extra = [body.args[1 + n_consts + s] for s in stash]
        if not stash:
            return [], n
        rec_body = body.replace(results=body.results + extra)
        lead = [n] if dynamic_length else []
        res = bind(scan_p, *lead, *consts, *carry, *xs, body=rec_body, **params)
        return res[len(body.results):], n

    g = _loop_vjp(body, consts, carry, xs, ct_carry, ct_ys, n, record, length=length,
                  start=start, reverse=reverse, dynamic_length=dynamic_length)
    return ([None] if dynamic_length else []) + g


scan_p = register(Primitive("scan", _scan_rule, _scan_impl, vjp=_scan_vjp, multiple_results=True,
                            torch_name="ScanBackward", family="control"))


def _is_traced(x):
    return getattr(x, "_adj_context", None) is not None


def _zeros(aval):
    return np.zeros(aval.shape, aval.dtype)


def _loop_vjp(body, consts, carry, xs, ct_carry, ct_ys, n, record, *, length, start, reverse,
              dynamic_length):
    """Cotangents of (consts, carry, xs) of a loop whose body is
    body(i, *consts, *carry, *x_slices) -> (*carry', *y_slices).

    `record(stash)` runs the forward again and returns (one stacked buffer per index in
    `stash` holding the carry at the start of each iteration, the trip count n). The reverse pass is a scan in the opposite
    direction (over n iterations when dynamic_length) carrying the carry cotangents and the
    accumulated const cotangents."""
    from ..ad import vjp_function
    from ..passes.dce import dce
    from ..trace import Trace
    nk, nc = len(consts), len(carry)
    c_args = body.args[1:1 + nk]
    k_args = body.args[1 + nk:1 + nk + nc]
    x_args = body.args[1 + nk + nc:]
    # gradients: every float carry (cotangents flow through it even from a constant init),
    # float consts/xs that are traced (plain arrays are constants of the enclosing function)
    k_pos = [j for j, a in enumerate(k_args) if is_float(a.dtype)]
    c_pos = [j for j, a in enumerate(c_args) if is_float(a.dtype) and _is_traced(consts[j])]
    x_pos = [j for j, a in enumerate(x_args) if is_float(a.dtype) and _is_traced(xs[j])]
    if not k_pos and not c_pos and not x_pos:
        return [None] * (nk + nc + len(xs))
    wrt = [1 + nk + j for j in k_pos] + [1 + j for j in c_pos] + [1 + nk + nc + j for j in x_pos]
    adj = vjp_function(body, wrt, seed_args=True, name=f"{body.name}_vjp")
    n_res = len(body.results)
    adj = dce(adj.replace(results=adj.results[n_res:]))
    used = uses(adj)
    stash = tuple(j for j, a in enumerate(adj.args[1 + nk:1 + nk + nc]) if id(a) in used)
    bufs, n = record(stash)

    # reverse body: (i, *consts, *ct_carry[k_pos], *acc[c_pos], *xs, *stash_rows, *ct_ys)
    y_avals = body.out_avals[nc:]
    rt = Trace()
    i = rt.new_arg(AVal((), np.int64), "i")
    rc = [rt.new_arg(a.aval, "k") for a in c_args]
    rct = [rt.new_arg(k_args[j].aval, "ct") for j in k_pos]
    racc = [rt.new_arg(c_args[j].aval, "acc") for j in c_pos]
    rx = [rt.new_arg(a.aval, "x") for a in x_args]
    rs = [rt.new_arg(k_args[j].aval, "c") for j in stash]
    rcty = [rt.new_arg(a, "ct_y") for a in y_avals]
    carry_in = [None] * nc
    for j, v in zip(stash, rs):
        carry_in[j] = v
    seeds_carry = [_zeros(a) for a in body.out_avals[:nc]]
    for j, v in zip(k_pos, rct):
        seeds_carry[j] = v
    from ..interpret import eval_function
    g = eval_function(adj, [i] + rc + carry_in + rx + seeds_carry + rcty)
    g_k, g_c, g_x = g[:len(k_pos)], g[len(k_pos):len(k_pos) + len(c_pos)], \
        g[len(k_pos) + len(c_pos):]
    new_acc = [a + b for a, b in zip(racc, g_c)]
    rbody = rt.to_function(f"{body.name}_rev", list(g_k) + new_acc + list(g_x))
    if rt.captured:
        raise AssertionError("internal error: the reverse loop body captured an outer value")
    # operands of the reverse scan
    r_consts = list(consts)
    r_carry = [ct_carry[j] if ct_carry[j] is not None else _zeros(k_args[j].aval) for j in k_pos]
    r_carry += [_zeros(c_args[j].aval) for j in c_pos]
    r_xs = list(xs) + list(bufs)
    for ct, a in zip(ct_ys, y_avals):
        r_xs.append(ct if ct is not None else np.zeros((length,) + a.shape, a.dtype))
    lead = [n] if dynamic_length else []
    res = bind(scan_p, *lead, *r_consts, *r_carry, *r_xs, body=rbody, length=length, start=start,
               reverse=not reverse, n_consts=len(r_consts), n_carry=len(r_carry),
               dynamic_length=dynamic_length)
    out_k, out_c, out_x = res[:len(k_pos)], res[len(k_pos):len(k_pos) + len(c_pos)], \
        res[len(k_pos) + len(c_pos):]
    g_consts, g_carry, g_xs = [None] * nk, [None] * nc, [None] * len(xs)
    for j, v in zip(k_pos, out_k):
        g_carry[j] = v
    for j, v in zip(c_pos, out_c):
        g_consts[j] = v
    for j, v in zip(x_pos, out_x):
        g_xs[j] = v
    return g_consts + g_carry + g_xs


# ---------------------------------------------------------------------------------------------
# while

def _while_split(args, n_cond_consts, n_body_consts):
    a, b = n_cond_consts, n_cond_consts + n_body_consts
    return list(args[:a]), list(args[a:b]), list(args[b:])


def _while_rule(*avals, cond, body, n_cond_consts, n_body_consts, record, stash, max_steps):
    cc, bc, carry = _while_split(avals, n_cond_consts, n_body_consts)
    _check_avals("while: cond arguments", cc + carry, cond.in_avals)
    _check_avals("while: body arguments", bc + carry, body.in_avals)
    if cond.out_avals != [AVal((), np.bool_)]:
        raise TypeError(f"while: cond must return one bool[], got {_fmt(cond.out_avals)}")
    _check_avals("while: the body's carry output must match its carry input", carry,
                 body.out_avals)
    out = list(carry)
    if record:
        out.append(AVal((), np.int64))
        out += [AVal((max_steps,) + carry[s].shape, carry[s].dtype) for s in stash]
    return out


def _while_impl(*args, cond, body, n_cond_consts, n_body_consts, record, stash, max_steps):
    cc, bc, carry = _while_split(args, n_cond_consts, n_body_consts)
    carry = [np.asarray(c) for c in carry]
    bufs = [np.zeros((max_steps,) + carry[s].shape, carry[s].dtype) for s in stash] \
        if record else []
    k = 0
    while bool(run_region(cond, cc + carry)[0]):
        if record:
            if k >= max_steps:
                raise RuntimeError(
                    f"while_loop ran more than max_steps={max_steps} iterations while being "
                    f"differentiated (reverse mode stores each iteration in a buffer of that "
                    f"static size); pass a larger max_steps=... to autodiff_jit.while_loop")
            for buf, s in zip(bufs, stash):
                buf[k] = carry[s]
        carry = run_region(body, bc + carry)
        k += 1
    carry = [np.asarray(c, dtype=a.dtype) for c, a in zip(carry, body.out_avals)]
    return carry + ([np.int64(k)] + bufs if record else [])


def _while_vjp(cts, outs, *ins, cond, body, n_cond_consts, n_body_consts, record, stash,
               max_steps):
    cc, bc, carry = _while_split(ins, n_cond_consts, n_body_consts)
    nc = len(carry)
    # As a scan body: (i, *body_consts, *carry) -> (*carry', *stashed carry (when recorded))
    i = Var(AVal((), np.int64), "i")
    sbody = Function(body.name, [i] + body.args, body.consts, body.eqns, body.results)
    ct_ys = []
    if record:  # the recorded buffers are outputs too: their cotangents flow into the carry
        sbody = sbody.replace(results=sbody.results + [body.args[n_body_consts + s]
                                                       for s in stash])
        ct_ys = list(cts[nc + 1:])
    steps = max_steps or DEFAULT_MAX_STEPS

    def rec(st):  # the trip count is needed even when no carry needs storing
        res = bind(while_p, *cc, *bc, *carry, cond=cond, body=body, n_cond_consts=n_cond_consts,
                   n_body_consts=n_body_consts, record=True, stash=tuple(st), max_steps=steps)
        return res[nc + 1:], res[nc]

    g = _loop_vjp(sbody, bc, carry, [], list(cts[:nc]), ct_ys, None, rec,
                  length=steps, start=0, reverse=False, dynamic_length=True)
    return [None] * len(cc) + g


while_p = register(Primitive("while", _while_rule, _while_impl, vjp=_while_vjp,
                             multiple_results=True, torch_name="WhileBackward", family="control"))


# ---------------------------------------------------------------------------------------------
# cond

def _cond_rule(pred, *ops, true, false):
    if pred.shape != () or pred.dtype != np.bool_:
        raise TypeError(f"cond: the predicate must be a bool scalar, got {pred}")
    _check_avals("cond: true branch arguments", ops, true.in_avals)
    _check_avals("cond: false branch arguments", ops, false.in_avals)
    _check_avals("cond: the branches must return the same types (true vs false)",
                 true.out_avals, false.out_avals)
    return true.out_avals


def _cond_impl(pred, *ops, true, false):
    branch = true if bool(pred) else false
    return [np.asarray(o, dtype=a.dtype) for o, a in zip(run_region(branch, list(ops)),
                                                         branch.out_avals)]


def _cond_vjp(cts, outs, pred, *ops, true, false):
    from ..ad import vjp_function
    from ..passes.dce import dce
    wrt = [j for j, (o, a) in enumerate(zip(ops, true.args)) if is_float(a.dtype) and _is_traced(o)]
    if not wrt:
        return [None] * (1 + len(ops))
    n_out = len(true.results)

    def adjoint(branch):
        adj = vjp_function(branch, wrt, seed_args=True, name=f"{branch.name}_vjp")
        return dce(adj.replace(results=adj.results[n_out:]))

    seeds = [c if c is not None else _zeros(a) for c, a in zip(cts, true.out_avals)]
    g = bind(cond_p, pred, *ops, *seeds, true=adjoint(true), false=adjoint(false))
    out = [None] * (1 + len(ops))
    for j, v in zip(wrt, g):
        out[1 + j] = v
    return out


cond_p = register(Primitive("cond", _cond_rule, _cond_impl, vjp=_cond_vjp, multiple_results=True,
                            torch_name="CondBackward", family="control"))

__all__ = ["scan_p", "while_p", "cond_p", "DEFAULT_MAX_STEPS"]
