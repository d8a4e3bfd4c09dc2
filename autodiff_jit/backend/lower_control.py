"""LLVM emitters for the region ops `scan`, `while` and `cond` (see control/loops.py).

Each becomes real control flow: a loop (header / body / exit blocks with an i64 counter phi) or
a two-way branch, whose body is the region Function lowered ONCE with the same machinery as a
top-level function (fusion plan, per-primitive emitters, arena slots for intermediates). Code
size and compile time therefore do not depend on the trip count.

Storage: the loop carry lives in the op's output buffers (initialized from the inputs); each
iteration computes the new carry into scratch buffers, then copies it back, so a body result
may freely read any carry argument. Stacked inputs are read, and stacked outputs written, in
place through a row pointer (base + k * row_size). The recording `while` (record=True) writes
each iteration's carry into its buffers; the reverse `scan` with a dynamic trip count reads
them.

Errors in compiled code: a recording while loop that runs past `max_steps` keeps computing the
forward value but cannot record; it returns the trip count -1, and a dynamic-length scan given a
trip count outside [0, capacity] fills its outputs with NaN (integer outputs with 0) -- so the
gradient is NaN, never garbage -- and it reports WHILE_MAX_STEPS (status.py), so the call
path raises the interpreter's RuntimeError, as every mode does.

Registration: importing this module adds the emitters to `emitters.EMITTERS` (lower.py imports it).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from ..ir import Function, Lit
from ..passes import fuse
from ..passes.inline import inline_calls
from . import status
from .emitters import EMITTERS, Emitter
from .kernels import I1, I64, Buffer, Index, const, for_range, for_span, i64, mem_type


# ---------------------------------------------------------------------------------------------
# helpers

def _scalar_buf(L, dtype, value=None, name="t"):
    ptr = L.alloca(mem_type(dtype), name=name)
    buf = Buffer(ptr, (), dtype)
    if value is not None:
        buf.store(L.builder, Index(()), value)
    return buf


def _scratch(L, aval, keys):
    """A buffer for one value of `aval` that lives until the op is emitted."""
    if aval.size <= 1:
        return Buffer(L.alloca(mem_type(aval.dtype), name="c"), aval.shape, aval.dtype)
    key = L._alloc(aval.size * aval.dtype.itemsize)
    keys.append(key)
    return Buffer(L._arena_ptr(key, aval.dtype), aval.shape, aval.dtype)


def _input_buffer(L, atom, keys):
    """A Buffer holding `atom` (an operand of the op): its own storage, or a materialized copy
    (literals, and views/inlined expressions the fusion plan did not store)."""
    buf = L.buffer_of(atom)
    if buf is not None:
        return buf
    if isinstance(atom, Lit):
        return _scalar_buf(L, atom.dtype, const(atom.dtype, atom.value), "lit")
    if id(atom) in L.scalar_consts:
        return _scalar_buf(L, atom.dtype, L.scalar_consts[id(atom)], "k")
    buf = _scratch(L, atom.aval, keys)
    L.store_kernel(atom, buf)
    return buf


def _copy(L, src: Buffer, dst: Buffer):
    b = L.builder
    if src.size <= 1:
        dst.store_at(b, dst.ptr, src.load_at(b, src.ptr))
        return
    for_range(b, src.size, lambda j: dst.store_at(b, dst.addr_linear(b, j),
                                                    src.load_at(b, src.addr_linear(b, j))))


def _fill(L, dst: Buffer, value):
    b = L.builder
    if dst.size == 0:
        return
    if dst.size == 1:
        dst.store_at(b, dst.ptr, value)
        return
    for_range(b, dst.size, lambda j: dst.store_at(b, dst.addr_linear(b, j), value))


def _zero(dtype):
    return const(dtype, 0)


def _poison_value(dtype):
    return const(dtype, np.nan) if np.dtype(dtype).kind == "f" else const(dtype, 0)


def _row(L, buf: Buffer, k) -> Buffer:
    """Row k (an i64 value) of a stacked buffer."""
    shape = buf.shape[1:]
    size = int(np.prod(shape, dtype=np.int64))
    b = L.builder
    off = b.mul(k, i64(size), flags=["nsw"]) if size != 1 else k
    return Buffer(b.gep(buf.ptr, [off], inbounds=True), shape, buf.dtype)


def emit_region(L, fn: Function, arg_bufs, keys) -> None:
    """Lower `fn`'s equations at the builder's position, with its args bound to `arg_bufs`.
    Afterwards each result can be read with `L.load` / `L.store_kernel`."""
    if any(e.prim.name == "custom_vjp_call" for e in fn.eqns):
        raise AssertionError("custom_vjp_call regions are inlined (_prepare) before emission")
    # Region Functions may share Vars with other regions (a recording re-run of a loop reuses
    # its body's equations): forget storage decisions of earlier emissions.
    for e in fn.eqns:
        for o in e.outputs:
            L.buffers.pop(id(o), None)
            L._needs_dims.pop(id(o), None)
    for a in fn.args:
        L._needs_dims.pop(id(a), None)
    for a, buf in zip(fn.args, arg_bufs):
        L.buffers[id(a)] = buf
    for c, value in fn.consts.items():
        arr = np.ascontiguousarray(value, dtype=c.dtype)
        if arr.ndim == 0:
            L.scalar_consts[id(c)] = const(c.dtype, arr.reshape(-1)[0])
            continue
        L.keepalive.append(arr)
        ptr = ir.Constant(I64, arr.ctypes.data).inttoptr(mem_type(c.dtype).as_pointer())
        L.buffers[id(c)] = Buffer(ptr, arr.shape, c.dtype)
    for e in fn.eqns:
        for o in e.outputs:
            L.producer[id(o)] = e
    plan = fuse.plan(fn)
    saved = getattr(L, "_group_temps", [])
    for g in plan.groups:
        L._group_temps = []
        outs = []
        for o in g.root.outputs:
            outs.append(_scratch(L, o.aval, keys))
        L.emitters[g.root.prim.name].kernel(L, g.root, outs)
        for o, buf in zip(g.root.outputs, outs):
            L.buffers[id(o)] = buf
        keys.extend(L._group_temps)
    L._group_temps = saved


def _prepare(fn: Function) -> Function:
    return inline_calls(fn)


def _store_result(L, atom, dst: Buffer):
    if isinstance(atom, Lit):
        _fill(L, dst, const(atom.dtype, atom.value))
    elif L.buffer_of(atom) is not None:
        _copy(L, L.buffer_of(atom), dst)
    else:
        L.store_kernel(atom, dst)


def _loop(L, n, body, *, reverse=False, name="loop"):
    """for k in range(n) (or reversed) with a dynamic i64 bound n; body(k)."""
    b = L.builder
    if reverse:
        for_span(b, i64(0), n, lambda i: body(b.sub(b.sub(n, i64(1)), i)), name=name)
    else:
        for_span(b, i64(0), n, body, name=name)


# ---------------------------------------------------------------------------------------------
# scan

def _scan_kernel(L, eqn, outs):
    p = eqn.params
    body = _prepare(p["body"])
    nk, nc, length, start = p["n_consts"], p["n_carry"], p["length"], p["start"]
    dyn = p["dynamic_length"]
    b = L.builder
    keys: list = []
    ins = [_input_buffer(L, a, keys) for a in eqn.inputs]
    lead = 1 if dyn else 0
    consts = ins[lead:lead + nk]
    init = ins[lead + nk:lead + nk + nc]
    xs = ins[lead + nk + nc:]
    carry, ys = outs[:nc], outs[nc:]
    for src, dst in zip(init, carry):
        _copy(L, src, dst)
    new = [_scratch(L, r.aval, keys) for r in body.results[:nc]]
    i_buf = _scalar_buf(L, np.int64, name="i")

    def iteration(k):
        b.store(b.add(k, i64(start)), i_buf.ptr)
        emit_region(L, body, [i_buf] + consts + carry + [_row(L, x, k) for x in xs], keys)
        for r, dst in zip(body.results[:nc], new):
            _store_result(L, r, dst)
        for r, y in zip(body.results[nc:], ys):
            _store_result(L, r, _row(L, y, k))
        for src, dst in zip(new, carry):
            _copy(L, src, dst)

    if not dyn:
        if length > 0:
            _loop(L, i64(length), iteration, reverse=p["reverse"], name="scan")
    else:
        n = L.load(eqn.inputs[0], Index(())) if not isinstance(eqn.inputs[0], Lit) else \
            i64(int(eqn.inputs[0].value))
        for y in ys:  # rows >= n stay zero
            _fill(L, y, _zero(y.dtype))
        ok = b.and_(b.icmp_signed(">=", n, i64(0)), b.icmp_signed("<=", n, i64(length)))
        with b.if_else(ok) as (then, otherwise):
            with then:
                _loop(L, n, iteration, reverse=p["reverse"], name="scan")
            with otherwise:  # an overflowed recording while loop: poison the gradient
                for o in outs:
                    _fill(L, o, _poison_value(o.dtype))
    for key in keys:
        L._free(key)


# ---------------------------------------------------------------------------------------------
# while

def _while_kernel(L, eqn, outs):
    p = eqn.params
    cond, body = _prepare(p["cond"]), _prepare(p["body"])
    nq, nb = p["n_cond_consts"], p["n_body_consts"]
    record, stash, max_steps = p["record"], p["stash"], p["max_steps"]
    b = L.builder
    keys: list = []
    ins = [_input_buffer(L, a, keys) for a in eqn.inputs]
    cc, bc, init = ins[:nq], ins[nq:nq + nb], ins[nq + nb:]
    nc = len(init)
    carry = outs[:nc]
    for src, dst in zip(init, carry):
        _copy(L, src, dst)
    new = [_scratch(L, r.aval, keys) for r in body.results]
    bufs = outs[nc + 1:] if record else []
    for buf in bufs:
        _fill(L, buf, _zero(buf.dtype))
    count = _scalar_buf(L, np.int64, i64(0), "count")
    overflow = _scalar_buf(L, np.bool_, ir.Constant(I1, 0), "overflow")

    fn = b.function
    head = fn.append_basic_block("while.head")
    bodyb = fn.append_basic_block("while.body")
    exit_ = fn.append_basic_block("while.exit")
    b.branch(head)
    b.position_at_end(head)
    emit_region(L, cond, cc + carry, keys)
    pred = L.load(cond.results[0], Index(())) if not isinstance(cond.results[0], Lit) else \
        const(np.bool_, cond.results[0].value)
    # an out-of-bounds index: numpy would have raised; do not spin on clamped values
    pred = b.and_(pred, b.not_(L.pending_error()))
    b.cbranch(pred, bodyb, exit_)
    b.position_at_end(bodyb)
    k = b.load(count.ptr)
    if record:
        fits = b.icmp_signed("<", k, i64(max_steps))
        with b.if_else(fits) as (then, otherwise):
            with then:
                for s, buf in zip(stash, bufs):
                    _copy(L, carry[s], _row(L, buf, k))
            with otherwise:
                b.store(ir.Constant(overflow.ptr.type.pointee, 1), overflow.ptr)
    emit_region(L, body, bc + carry, keys)
    for r, dst in zip(body.results, new):
        _store_result(L, r, dst)
    for src, dst in zip(new, carry):
        _copy(L, src, dst)
    b.store(b.add(k, i64(1)), count.ptr)
    b.branch(head)
    b.position_at_end(exit_)
    if record:
        n = b.load(count.ptr)
        bad = b.icmp_unsigned("!=", b.load(overflow.ptr), ir.Constant(overflow.ptr.type.pointee, 0))
        outs[nc].store(b, Index(()), b.select(bad, i64(-1), n))
        status.report_if(L, bad, status.WHILE_MAX_STEPS, max_steps)
    for key in keys:
        L._free(key)


# ---------------------------------------------------------------------------------------------
# cond

def _cond_kernel(L, eqn, outs):
    p = eqn.params
    true, false = _prepare(p["true"]), _prepare(p["false"])
    b = L.builder
    keys: list = []
    ins = [_input_buffer(L, a, keys) for a in eqn.inputs[1:]]
    pred_atom = eqn.inputs[0]
    pred = const(np.bool_, pred_atom.value) if isinstance(pred_atom, Lit) else \
        L.load(pred_atom, Index(()))
    with b.if_else(pred) as (then, otherwise):
        for block, region in ((then, true), (otherwise, false)):
            with block:
                emit_region(L, region, ins, keys)
                for r, dst in zip(region.results, outs):
                    _store_result(L, r, dst)
    for key in keys:
        L._free(key)


def register():
    EMITTERS["scan"] = Emitter(None, _scan_kernel, "loop")
    EMITTERS["while"] = Emitter(None, _while_kernel, "loop")
    EMITTERS["cond"] = Emitter(None, _cond_kernel, "branch")


register()

__all__ = ["emit_region", "register"]
