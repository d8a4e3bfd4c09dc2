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

Forward mode
------------
The JVP of each op is the same op over (primal, tangent) operands, whose regions are the
regions' JVPs built once with `jvp_function`: scan carries (carry, tangent carry) and stacks the
tangent ys too; while keeps the predicate on the primal carry (a recording while, inside a VJP,
also records the tangents of its stashed carries); cond runs the taken branch's JVP. Every float
carry gets a tangent (zero-initialized when its initial value has none). Nothing is recorded.
"""
from __future__ import annotations

import numpy as np

from ..ad import vjp_function
from ..interpret import eval_function
from ..ir import AVal, Function, Var, dce, is_float, uses
from ..jvp import jvp_function
from ..primitives.core import Primitive, aval_of, bind, register
from ..primitives.elementwise import cast
from ..primitives.shape import broadcast_to_p
from ..trace import Trace

DEFAULT_MAX_STEPS = 1024
def _impl_apply(prim, *args, **params):
    return prim.impl(*args, **params)


def run_region(fn: Function, args) -> list:
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


# ---------------------------------------------------------------------------------------------
# forward mode (JVP): each region op's JVP is the same op over (primal, tangent) operands whose
# regions are the regions' JVPs (`jvp_function`). Nothing is recorded.

def _region_jvp(fn: Function, wrt, name):
    """(jvp of `fn` w.r.t. args `wrt`, positions of its float results). Its args are fn's args
    then one tangent per `wrt`; its results fn's results then one tangent per float result."""
    tfn = jvp_function(fn, list(wrt), name=name)
    n = len(fn.results)
    out_f = [j for j, r in enumerate(fn.out_avals) if is_float(r.dtype)]
    return tfn, out_f, tfn.args[len(fn.args):], [tfn.results[n + j] for j in out_f]


def _float_active(tangents, avals):
    return [j for j, (t, a) in enumerate(zip(tangents, avals)) if t is not None and
            is_float(a.dtype)]


def _tangent_or_zeros(t, aval):
    """The tangent operand for a primal of type `aval`: zeros for a zero (None) tangent, else
    the tangent fitted to `aval` (defensive; jvp_function already fits tangents to their
    values' types)."""
    if t is None:
        return _zeros(aval)
    if aval_of(t).shape != aval.shape:
        t = bind(broadcast_to_p, t, shape=aval.shape)
    return cast(t, aval.dtype)


def _scan_jvp(tangents, outs, *ins, body, length, start, reverse, n_consts, n_carry,
              dynamic_length):
    """A scan over (consts, tangent consts; carry, tangent carry; xs, tangent xs) whose body is
    the body's JVP; tangent ys are extra stacked outputs."""
    n, consts, carry, xs = _scan_split(ins, n_consts, n_carry, dynamic_length)
    _, t_consts, t_carry, t_xs = _scan_split(tangents, n_consts, n_carry, dynamic_length)
    nk, nc = len(consts), len(carry)
    c_args, k_args = body.args[1:1 + nk], body.args[1 + nk:1 + nk + nc]
    x_args = body.args[1 + nk + nc:]
    c_pos = _float_active(t_consts, [a.aval for a in c_args])
    x_pos = _float_active(t_xs, [a.aval for a in x_args])
    # every float carry gets a tangent (zero when its initial value's is), since the body can
    # make it depend on the perturbed consts/xs
    k_pos = [j for j, a in enumerate(k_args) if is_float(a.dtype)]
    wrt = [1 + j for j in c_pos] + [1 + nk + j for j in k_pos] + [1 + nk + nc + j for j in x_pos]
    tfn, out_f, t_args, t_res = _region_jvp(body, wrt, f"{body.name}_jvp")
    tc, tk = t_args[:len(c_pos)], t_args[len(c_pos):len(c_pos) + len(k_pos)]
    tx = t_args[len(c_pos) + len(k_pos):]
    y_f = [j - nc for j in out_f if j >= nc]
    # out_f's carry part equals k_pos (the body's carry output types are its carry input's)
    t_res_k, t_res_y = t_res[:len(k_pos)], t_res[len(k_pos):]
    a = tfn.args[:len(body.args)]
    jbody = tfn.replace(
        args=[a[0]] + a[1:1 + nk] + tc + a[1 + nk:1 + nk + nc] + tk + a[1 + nk + nc:] + tx,
        results=tfn.results[:nc] + t_res_k + tfn.results[nc:len(body.results)] + t_res_y)
    jbody = dce(jbody)
    lead = [n] if dynamic_length else []
    stacked = [AVal((length,) + a.shape, a.dtype) for a in x_args]
    res = bind(scan_p, *lead,
               *consts, *[_tangent_or_zeros(t_consts[j], c_args[j].aval) for j in c_pos],
               *carry, *[_tangent_or_zeros(t_carry[j], k_args[j].aval) for j in k_pos],
               *xs, *[_tangent_or_zeros(t_xs[j], stacked[j]) for j in x_pos],
               body=jbody, length=length, start=start, reverse=reverse,
               n_consts=nk + len(c_pos), n_carry=nc + len(k_pos), dynamic_length=dynamic_length)
    nk2, n_y = nc + len(k_pos), len(body.results) - nc
    t_out = [None] * (nc + n_y)
    for j, v in zip(k_pos, res[nc:nk2]):
        t_out[j] = v
    for j, v in zip(y_f, res[nk2 + n_y:]):
        t_out[nc + j] = v
    return t_out


scan_p = register(Primitive("scan", _scan_rule, _scan_impl, vjp=_scan_vjp, jvp=_scan_jvp,
                            multiple_results=True, torch_name="ScanBackward", family="control"))


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


def _while_jvp(tangents, outs, *ins, cond, body, n_cond_consts, n_body_consts, record, stash,
               max_steps):
    """A while over (carry, tangent carry) with the same predicate on the primal carry, whose
    body is the body's JVP. A recording loop (inside a VJP: hessian = jacfwd(grad)) also
    records the tangents of its stashed carries."""
    cc, bc, carry = _while_split(ins, n_cond_consts, n_body_consts)
    _, t_bc, t_carry = _while_split(tangents, n_cond_consts, n_body_consts)
    nb, nc = len(bc), len(carry)
    b_pos = _float_active(t_bc, [a.aval for a in body.args[:nb]])
    k_pos = [j for j, a in enumerate(body.args[nb:]) if is_float(a.dtype)]
    wrt = list(b_pos) + [nb + j for j in k_pos]
    tfn, _, t_args, t_res = _region_jvp(body, wrt, f"{body.name}_jvp")
    a = tfn.args[:len(body.args)]
    jbody = dce(tfn.replace(args=a[:nb] + t_args[:len(b_pos)] + a[nb:] + t_args[len(b_pos):],
                            results=tfn.results[:nc] + t_res))
    jcond = cond.replace(args=cond.args + [Var(a[nb + j].aval, "t") for j in k_pos])
    t_stash = tuple(nc + k_pos.index(s) for s in stash if s in k_pos) if record else ()
    res = bind(while_p, *cc, *bc, *[_tangent_or_zeros(t_bc[j], a[j].aval) for j in b_pos],
               *carry, *[_tangent_or_zeros(t_carry[j], a[nb + j].aval) for j in k_pos],
               cond=jcond, body=jbody, n_cond_consts=len(cc), n_body_consts=nb + len(b_pos),
               record=record, stash=tuple(stash) + t_stash, max_steps=max_steps)
    nk2 = nc + len(k_pos)
    t_out = [None] * len(outs)
    for j, v in zip(k_pos, res[nc:nk2]):
        t_out[j] = v
    if record:  # outputs: carry, n, stashed buffers
        bufs_t = res[nk2 + 1 + len(stash):]
        it = iter(bufs_t)
        for q, s in enumerate(stash):
            if s in k_pos:
                t_out[nc + 1 + q] = next(it)
    return t_out


while_p = register(Primitive("while", _while_rule, _while_impl, vjp=_while_vjp, jvp=_while_jvp,
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


def _cond_jvp(tangents, outs, pred, *ops, true, false):
    """A cond whose branches are the branches' JVPs: only the taken branch runs."""
    t_ops = tangents[1:]
    wrt = _float_active(t_ops, true.in_avals)
    n_out = len(true.results)

    def branch(fn):
        tfn, out_f, t_args, t_res = _region_jvp(fn, wrt, f"{fn.name}_jvp")
        return dce(tfn.replace(results=tfn.results[:n_out] + t_res)), out_f

    jt, out_f = branch(true)
    jf, _ = branch(false)
    res = bind(cond_p, pred, *ops,
               *[_tangent_or_zeros(t_ops[j], true.args[j].aval) for j in wrt], true=jt, false=jf)
    t_out = [None] * n_out
    for j, v in zip(out_f, res[n_out:]):
        t_out[j] = v
    return t_out


cond_p = register(Primitive("cond", _cond_rule, _cond_impl, vjp=_cond_vjp, jvp=_cond_jvp,
                            multiple_results=True, torch_name="CondBackward", family="control"))

__all__ = ["scan_p", "while_p", "cond_p", "DEFAULT_MAX_STEPS"]
