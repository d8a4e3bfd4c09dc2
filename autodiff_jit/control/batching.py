"""Batching rules (vmap) of the region ops: scan, while, cond and custom_vjp_call. Each batches
its regions with `batch_function`, so a batched loop is still one loop:

- scan: consts keep their batch axis; batched xs are stacked with the batch on axis 1 (so a
  body's slice has it on axis 0); a carry is batched when its initial value or anything the body
  feeds into it is (a fixpoint over the body); ys come out with the batch on axis 1;
- while: carries as for scan; if the predicate depends on the batch, the loop runs while any
  example's predicate holds and each example's carry stops changing when its own predicate
  turns false (a select in the body), as jax.lax.while_loop's batching does;
- cond: an unbatched predicate keeps one cond over batched branches; a batched predicate runs
  both branches on every example and selects, per example, the taken branch's results;
- custom_vjp_call: forward and backward regions batched, every operand with the batch first.

Cases left to the per-example loop (`loop_rule`): a scan with a batched trip count and a
recording while (the forward run inside a VJP, whose trip count and buffers are per example).
"""
from __future__ import annotations

import numpy as np

from ..interpret import eval_function
from ..primitives import bind
from ..primitives import elementwise as E, reductions as R, shape as S
from ..primitives.core import aval_of
from ..trace import Trace
from ..vmap import batch_function, loop_rule, move_batch_axis
from .custom import custom_vjp_call_p
from .loops import cond_p, scan_p, while_p


def _carry_fixpoint(body, lead_dims, carry_batched, n_carry, tail_dims, axis_size):
    """Which carries are batched: those whose initial value is, plus those the body makes
    batched from batched inputs (repeated until nothing changes)."""
    batched = list(carry_batched)
    while True:
        dims = list(lead_dims) + [0 if b else None for b in batched] + list(tail_dims)
        _, out = batch_function(body, dims, axis_size, "any")
        grown = [b or out[j] is not None for j, b in enumerate(batched[:n_carry])]
        if grown == batched:
            return batched
        batched = grown


def _per_example_pred(pred, like):
    """A batch-first (B,) predicate shaped to broadcast against a batch-first value."""
    nd = aval_of(like).ndim
    return S.reshape(pred, tuple(aval_of(pred).shape) + (1,) * (nd - 1))


# ---------------------------------------------------------------------------------------------
# scan

def _scan_batch(prim, axis_size, vals, dims, *, body, length, start, reverse, n_consts, n_carry,
                dynamic_length):
    params = dict(body=body, length=length, start=start, reverse=reverse, n_consts=n_consts,
                  n_carry=n_carry, dynamic_length=dynamic_length)
    pos = 1 if dynamic_length else 0
    if dynamic_length and dims[0] is not None:
        return loop_rule(prim, axis_size, vals, dims, **params)
    consts, cdims = vals[pos:pos + n_consts], dims[pos:pos + n_consts]
    carry, kdims = vals[pos + n_consts:pos + n_consts + n_carry], \
        dims[pos + n_consts:pos + n_consts + n_carry]
    xs, xdims = vals[pos + n_consts + n_carry:], dims[pos + n_consts + n_carry:]
    # stacked xs: the batch on axis 1, so that each row (a body argument) has it on axis 0
    xs = [x if d is None else S.moveaxis(x, d, 1) for x, d in zip(xs, xdims)]
    sdims = [None if d is None else 0 for d in xdims]
    lead = [None] + list(cdims)
    batched = _carry_fixpoint(body, lead, [d is not None for d in kdims], n_carry, sdims,
                              axis_size)
    n_y = len(body.results) - n_carry
    bbody, _ = batch_function(
        body, lead + [0 if b else None for b in batched] + sdims, axis_size,
        [0 if b else None for b in batched] + [0] * n_y, name=f"{body.name}_vmap")
    carry = [move_batch_axis(c, d, 0, axis_size) if b else c
             for c, d, b in zip(carry, kdims, batched)]
    outs = bind(scan_p, *vals[:pos], *consts, *carry, *xs, **dict(params, body=bbody))
    return outs, [0 if b else None for b in batched] + [1] * n_y


# ---------------------------------------------------------------------------------------------
# while

def _any(pred):
    """True where any example's predicate is (a bool scalar)."""
    count = R.reduce_sum(E.cast(pred, np.int64), tuple(range(aval_of(pred).ndim)))
    return bind(E.gt, count, np.int64(0))


def _while_batch(prim, axis_size, vals, dims, *, cond, body, n_cond_consts, n_body_consts,
                 record, stash, max_steps):
    params = dict(cond=cond, body=body, n_cond_consts=n_cond_consts,
                  n_body_consts=n_body_consts, record=record, stash=stash, max_steps=max_steps)
    if record:  # trip count and stash buffers differ per example
        return loop_rule(prim, axis_size, vals, dims, **params)
    a, b = n_cond_consts, n_cond_consts + n_body_consts
    cc, ccd = vals[:a], dims[:a]
    bc, bcd = vals[a:b], dims[a:b]
    carry, kdims = vals[b:], dims[b:]
    n_carry = len(carry)
    batched = _carry_fixpoint(body, bcd, [d is not None for d in kdims], n_carry, [], axis_size)
    _, pd = batch_function(cond, list(ccd) + [0 if x else None for x in batched], axis_size,
                           "any")
    pred_batched = pd[0] is not None
    if pred_batched:
        batched = [True] * n_carry
    kd = [0 if x else None for x in batched]
    bbody, _ = batch_function(body, list(bcd) + kd, axis_size, kd, name=f"{body.name}_vmap")
    carry = [move_batch_axis(c, d, 0, axis_size) if x else c
             for c, d, x in zip(carry, kdims, batched)]
    if not pred_batched:
        bcond, _ = batch_function(cond, list(ccd) + kd, axis_size, [None],
                                  name=f"{cond.name}_vmap")
        outs = bind(while_p, *cc, *bc, *carry, **dict(params, cond=bcond, body=bbody))
        return outs, kd
    bcond, _ = batch_function(cond, list(ccd) + kd, axis_size, [0], name=f"{cond.name}_vmap")
    # cond: does any example go on; body: each example steps only while its own cond holds
    t = Trace()
    c_args = [t.new_arg(aval_of(v)) for v in cc]
    k_args = [t.new_arg(aval_of(v)) for v in carry]
    any_cond = t.to_function(f"{cond.name}_any",
                             [_any(eval_function(bcond, c_args + k_args)[0])])
    t = Trace()
    c_args = [t.new_arg(aval_of(v)) for v in cc]
    b_args = [t.new_arg(aval_of(v)) for v in bc]
    k_args = [t.new_arg(aval_of(v)) for v in carry]
    go = eval_function(bcond, c_args + k_args)[0]
    new = eval_function(bbody, b_args + k_args)
    kept = [E.select(_per_example_pred(go, n), n, old) for n, old in zip(new, k_args)]
    sel_body = t.to_function(f"{body.name}_vmap", kept)
    outs = bind(while_p, *cc, *cc, *bc, *carry,
                **dict(params, cond=any_cond, body=sel_body, n_body_consts=len(cc) + len(bc)))
    return outs, kd


# ---------------------------------------------------------------------------------------------
# cond

def _cond_batch(prim, axis_size, vals, dims, *, true, false):
    pred, pd = vals[0], dims[0]
    ops, od = list(vals[1:]), list(dims[1:])
    n_out = len(true.results)
    bt, _ = batch_function(true, od, axis_size, 0, name=f"{true.name}_vmap")
    bf, _ = batch_function(false, od, axis_size, 0, name=f"{false.name}_vmap")
    if pd is None:
        return bind(cond_p, pred, *ops, true=bt, false=bf), [0] * n_out
    # a predicate per example: both branches for every example, then a per-example select
    pred = S.moveaxis(pred, pd, 0)
    t_outs = eval_function(bt, ops)
    f_outs = eval_function(bf, ops)
    return [E.select(_per_example_pred(pred, t), t, f) for t, f in zip(t_outs, f_outs)], \
        [0] * n_out


# ---------------------------------------------------------------------------------------------
# custom_vjp_call

def _custom_batch(prim, axis_size, vals, dims, *, fwd, bwd, num_outputs):
    ops = [move_batch_axis(v, d, 0, axis_size) for v, d in zip(vals, dims)]
    bfwd, _ = batch_function(fwd, [0] * len(ops), axis_size, 0, name=f"{fwd.name}_vmap")
    bbwd, _ = batch_function(bwd, [0] * len(bwd.args), axis_size, 0, name=f"{bwd.name}_vmap")
    outs = bind(custom_vjp_call_p, *ops, fwd=bfwd, bwd=bbwd, num_outputs=num_outputs)
    return outs, [0] * len(fwd.results)


scan_p.batch = _scan_batch
while_p.batch = _while_batch
cond_p.batch = _cond_batch
custom_vjp_call_p.batch = _custom_batch
