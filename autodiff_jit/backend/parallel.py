"""Large fused loops split into chunks that a small persistent thread pool runs on every core.

What runs in parallel: a top-level kernel (not inside a loop nest) that is one loop over an
iteration space -- a stored elementwise/view/gather group, a reduction over trailing axes that
keeps some (each output element one unit of work), or a reduction to a single value (each
chunk sums its part into a slot of its own, then the slots are combined in chunk order) --
when its estimated work (iterations x fused equations) is at least `MIN_WORK`. Everything else,
and every smaller problem, stays a plain loop in the calling thread.

Determinism: the chunks are fixed at compile time from the problem's shape alone (never from
the thread count or from scheduling): at most `MAX_CHUNKS` chunks, each at least
`MIN_CHUNK_WORK`, flat chunks a multiple of 64 elements. Each chunk is the same machine code
whichever thread runs it, and the partial results of a reduction are combined in chunk order
by the caller. So results are bitwise identical for every `ad.config.num_threads`, 1 included
(with one thread the caller runs the chunks itself, in order). A reduction that is split sums
in a different order than the unsplit loop would (a compile-time property of the shape), so it
may differ from numpy's pairwise sum by rounding, as any compiled reduction does.

The pool (`pool.py`: LLVM IR, compiled once per process when the first code that uses it is compiled
or loaded): `num_threads - 1` worker threads (pthreads). The caller of `adj_parallel_for(chunk_fn,
env, n)` publishes the task in one 64-bit word (generation | n | next chunk); every thread, the
caller included, claims chunks by compare-and-swap on that word, so a worker that wakes late
finds no chunk left and a loaded machine degrades to the serial loop rather than waiting. After
a region a worker spins up to `SPIN` rounds of the CPU's pause instruction on the word (the next
split loop of the same gradient, or the next call, starts without a wake-up; less after regions
it came too late for), then sleeps on a condition variable; the caller signals it only when a
worker is asleep. The caller spins, then yields the CPU, until the chunks workers took have
finished. A second thread calling compiled
code while a region runs (or a region started from inside a chunk) runs its chunks serially. A
forked child resets the pool (its workers do not exist there) and starts its own.

The thread count is a run-time setting (`ad.config.num_threads`, read when it changes):
compiled code never depends on it, so changing it needs no recompilation, and the disk cache
is shared between thread counts.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from ..ir import Var
from ..passes import fuse
from . import mathlib
# the pool itself (its runtime, counters, thread-count hooks) is pool.py, which a disk hit
# imports without this module's emitters
from .pool import RUNTIME_SYMBOL, chunk_type
from .emitters import EMITTERS, _accumulator, _fmax, _reduce_kernel, _reducer, _store_kernel, \
    reduce_init
from .kernels import I8, I8P, I64, VOID, Buffer, Index, for_range, for_span, i64, \
    mem_type, reg_type

MIN_WORK = 1 << 17         # iterations x fused equations below which a loop stays serial
MIN_CHUNK_WORK = 1 << 15   # smallest chunk worth handing to another thread
MAX_CHUNKS = 16            # chunks per loop (spread over the threads, taken dynamically)
FLAT_ALIGN = 64            # flat chunks start at multiples of this (same vector/remainder split)

_CHUNK_TY = chunk_type()


# ---------------------------------------------------------------------------------------------
# the plan: which groups are split, into which chunks

class Split:
    """How one group is split: `units` iterations (flat elements or axis-0 rows) of which each
    chunk takes `per_chunk`; mode 'loop' (the group's own loop, chunked) or 'total' (a
    reduction to one value: partial results per chunk)."""
    __slots__ = ("mode", "shape", "flat", "units", "per_chunk", "nchunks", "cuts")

    def __init__(self, mode, shape, flat, units, per_chunk, cuts=()):
        self.mode, self.shape, self.flat, self.cuts = mode, tuple(shape), flat, list(cuts)
        self.units, self.per_chunk = units, per_chunk
        self.nchunks = -(-units // per_chunk)

    def __repr__(self):
        return (f"Split({self.mode}, shape={self.shape}, flat={self.flat}, "
                f"{self.nchunks} chunks of {self.per_chunk})")


def _chunking(units, unit_work, flat):
    """(per_chunk) for `units` iterations of `unit_work` each, or None when not worth it."""
    if units < 2 or units * unit_work < MIN_WORK:
        return None
    per = max(-(-units // MAX_CHUNKS), -(-MIN_CHUNK_WORK // unit_work))
    if flat:
        per = -(-per // FLAT_ALIGN) * FLAT_ALIGN
    return per if per < units else None


# Work per element of one equation, in units of a simple arithmetic operation: the math
# library's functions (exp, log, tanh, sin, pow, ...) cost tens of instructions each.
MATH_COST = 8
_MATH = frozenset(mathlib.MATH_FUNCTIONS) | {"pow", "div", "sqrt", "fmod"}


def group_cost(g) -> int:
    """Estimated work per iteration of group `g`'s loop."""
    return max(1, sum(MATH_COST if e.prim.name in _MATH else 1 for e in g.eqns))


def split_of(L, g) -> Split | None:
    """The Split of group `g` (a top-level fuse.Group) in lowerer `L`, or None (serial)."""
    root = g.root
    em = EMITTERS[root.prim.name]
    cost = group_cost(g)
    L._group = g
    try:
        if em.kernel is _store_kernel:
            out = root.outputs[0]
            return _loop_split(out.shape, not L.needs_dims(out), cost, L._pad_breaks(out.shape))
        if em.kernel is _reduce_kernel:
            x = root.inputs[0]
            if not isinstance(x, Var):
                return None
            axes, nd = tuple(root.params["axes"]), len(x.shape)
            if x.aval.size == 0:
                return None
            if not axes:
                return _loop_split(x.shape, not L.needs_dims(x), cost, L._pad_breaks(x.shape))
            if axes != tuple(range(nd - len(axes), nd)):
                return None
            red = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
            out = root.outputs[0]
            if out.aval.size > 1:
                if L._pad_breaks(out.shape):
                    return None
                # one unit per output element (iterate(out.shape, ..., flat=True))
                per = _chunking(out.aval.size, red * cost, False)
                return Split("loop", out.shape, True, out.aval.size, per) if per else None
            flat = not L.needs_dims(x)
            s = _loop_split(x.shape, flat, cost, L._pad_breaks(x.shape))
            if s is not None:
                s.mode = "total"
            return s
    finally:
        L._group = None
    return None


def _loop_split(shape, flat, cost, cuts=()):
    """Split of iterate(shape, ..., flat): flat elements, or axis-0 rows (always when padding
    views cut axis 0 into segments, as Lowerer.iterate does)."""
    size = int(np.prod(shape, dtype=np.int64))
    if len(shape) == 0 or size <= 1:
        return None
    if (flat or len(shape) == 1) and not cuts:
        per = _chunking(size, cost, True)
        return Split("loop", shape, True, size, per) if per else None
    row = size // shape[0]
    per = _chunking(shape[0], row * cost, row == 1)
    return Split("loop", shape, False, shape[0], per, cuts) if per else None


# ---------------------------------------------------------------------------------------------
# emission: the chunk function and the call into the pool

def iterate_chunk(L, shape, body):
    """Lowerer.iterate inside a chunk function: the chunk's part of the split loop."""
    split, lo, hi = L.chunk
    if tuple(shape) != split.shape or L.chunk_loops or L._pad_breaks(shape) != split.cuts:
        raise RuntimeError(f"parallel split {split!r} met a loop over {tuple(shape)}")
    L.chunk_loops += 1
    b = L.builder
    if split.flat:
        for_span(b, lo, hi, lambda i: body(Index(shape, linear=i)), name="c")
        return
    def row(i):
        L.rest_nest(shape, i, body)
    if not split.cuts:
        for_span(b, lo, hi, row, name="c")
        return
    # the chunk's part of each segment between padding boundaries (see Lowerer.iterate): inside
    # one, every padding view is statically all-hit or all-zero
    bounds = [0] + split.cuts + [shape[0]]
    for a, z in zip(bounds, bounds[1:]):
        s_lo = b.select(b.icmp_signed(">", lo, i64(a)), lo, i64(a))
        s_hi = b.select(b.icmp_signed("<", hi, i64(z)), hi, i64(z))

        def seg(i, a=a, z=z):
            L.set_range(i, a, z)
            row(i)
        for_span(b, s_lo, s_hi, seg, name="seg")


def _reads(L, atom, found, seen):
    """Stored values that computing `atom` inline reads (mirrors Lowerer.load)."""
    if not isinstance(atom, Var) or id(atom) in seen:
        return
    seen.add(id(atom))
    buf = L.buffers.get(id(atom))
    if buf is not None:
        found[id(atom)] = buf
        return
    if id(atom) in L.scalar_consts:
        return
    eqn = L.producer.get(id(atom))
    if eqn is not None:
        for i in eqn.inputs:
            _reads(L, i, found, seen)


def emit_split(L, item, outs_of, split: Split):
    """Emit `item` (a top-level group or nest; outs_of: id(group) -> its output buffers) as a
    chunk function run by the pool, in place of L.emit_group / L.emit_nest."""
    groups = list(item.groups()) if isinstance(item, fuse.Nest) else [item]
    found, seen, alias = {}, set(), {}
    for g in groups:
        for i in g.root.inputs:
            _reads(L, i, found, seen)
    produced = {id(o) for g in groups for o in g.root.outputs}
    passed, by_ptr = [], {}
    for vid, buf in found.items():
        if vid in produced or isinstance(buf.ptr, ir.Constant):
            continue
        if id(buf.ptr) in by_ptr:      # one argument per pointer (they are noalias)
            alias[vid] = by_ptr[id(buf.ptr)]
            continue
        by_ptr[id(buf.ptr)] = vid
        passed.append((vid, buf))
    # members reducing over the split axis: one private copy of the output per chunk
    cross = {id(g): _chunk_copies(L, g.root.outputs[0], split.nchunks)
             for g in groups if split.mode == "nest" and _reduces_rows(g)}
    outs = [(g, cross.get(id(g), o)) for g in groups for o in outs_of[id(g)]]
    g0 = groups[0]
    acc_dt = None
    if split.mode == "total":
        acc_dt, _, _ = _accumulator(g0.root.prim.name, g0.root.inputs[0].dtype)
    slots = [buf.ptr for _, buf in passed] + [o.ptr for _, o in outs]

    m = L.module
    k = getattr(m, "_adj_chunks", 0)
    m._adj_chunks = k + 1
    slot_types = [p.type for p in slots]
    if acc_dt is not None:
        slot_types.append(mem_type(acc_dt).as_pointer())
    # a traced index out of bounds inside a chunk: the chunk's own flag (Lowerer._flag) is
    # stored into this byte of the caller's, which ORs it into the function's flag after the
    # pool call (an alloca of the entry cannot be used from another function)
    chunk_oob = L.alloca(I8, name="chunk_oob")
    slot_types.append(I8P)
    # the chunk's code takes its pointers as noalias arguments (as the entry's body does), so
    # its loops vectorize without run-time alias checks; the pool calls a wrapper that
    # unpacks them from the env array (inlined: LLVM keeps noalias as scope metadata)
    fb = ir.Function(m, ir.FunctionType(VOID, slot_types + [I64]), name=f"{L.name}_chunk{k}_body")
    fb.linkage = "internal"
    fb.attributes.add("alwaysinline")
    fb.attributes.add("nounwind")
    for a in fb.args[:-1]:
        a.add_attribute("noalias")
    saved = (L.builder, L.entry_block, L.buffers, L._index_flag, L._index_checked)
    L._index_flag, L._index_checked = None, False
    entry = fb.append_basic_block("entry")
    L.entry_block = entry
    body_block = fb.append_basic_block("body")
    L.builder = b = ir.IRBuilder(body_block)
    c = fb.args[-1]

    def slot(j, ty):
        return fb.args[j]
    L.buffers = dict(L.buffers)
    for j, (vid, buf) in enumerate(passed):
        L.buffers[vid] = Buffer(slot(j, buf.ptr.type), buf.shape, buf.dtype)
    for vid, other in alias.items():
        buf = found[vid]
        L.buffers[vid] = Buffer(L.buffers[other].ptr, buf.shape, buf.dtype)
    n_in = len(passed)
    chunk_outs_of = {id(g): [] for g in groups}
    for j, (g, o) in enumerate(outs):
        ptr = slot(n_in + j, o.ptr.type)
        if id(g) in cross:       # this chunk's copy
            shape = tuple(g.root.outputs[0].shape)
            ptr = b.gep(ptr, [b.mul(c, i64(o.shape[1]), flags=["nsw"])], inbounds=True)
            o = Buffer(ptr, shape, o.dtype)
        chunk_outs_of[id(g)].append(Buffer(ptr, o.shape, o.dtype))
    partials = None
    if acc_dt is not None:
        partials = slot(len(slots), None)
    lo = b.mul(c, i64(split.per_chunk), flags=["nsw"])
    end = b.add(lo, i64(split.per_chunk), flags=["nsw"])
    hi = b.select(b.icmp_signed("<", end, i64(split.units)), end, i64(split.units))
    try:
        if split.mode == "nest":
            for g in groups:
                if id(g) in cross:
                    reduce_init(L, g.root, chunk_outs_of[id(g)][0], 0)
            _emit_nest_rows(L, item, chunk_outs_of, lo, hi)
        else:
            L.chunk, L.chunk_loops = (split, lo, hi), 0
            if split.mode == "total":
                _emit_partial(L, g0, partials, c)
            else:
                L.emit_group(g0, chunk_outs_of[id(g0)])
        chunk_flagged = L._index_checked
        if chunk_flagged:
            with b.if_then(b.load(L._index_flag), likely=False):
                b.store_atomic(ir.Constant(I8, 1), fb.args[len(slot_types) - 1],
                               ordering="monotonic", align=1)
    finally:
        L.chunk = None
        L.builder, L.entry_block, L.buffers, L._index_flag, L._index_checked = saved
    b.ret_void()
    ir.IRBuilder(entry).branch(body_block)   # (after the allocas the body added)
    f = ir.Function(m, _CHUNK_TY, name=f"{L.name}_chunk{k}")
    f.linkage = "internal"
    f.attributes.add("nounwind")
    wb = ir.IRBuilder(f.append_basic_block("entry"))
    envpp = wb.bitcast(f.args[0], I8P.as_pointer())
    wb.call(fb, [wb.bitcast(wb.load(wb.gep(envpp, [i64(j)], inbounds=True)), ty)
                 for j, ty in enumerate(slot_types)] + [f.args[1]])
    wb.ret_void()
    for g in groups:
        for o, buf in zip(g.root.outputs, outs_of[id(g)]):
            L.buffers[id(o)] = buf

    # the caller: env (pointer slots), the pool call, then the partials combined in order
    b = L.builder
    nslots = len(slots) + (partials is not None) + 1     # + chunk_oob
    env_arr = L.alloca(ir.ArrayType(I8P, nslots), name="penv")
    for j, p in enumerate(slots):
        b.store(b.bitcast(p, I8P), b.gep(env_arr, [i64(0), i64(j)], inbounds=True))
    if acc_dt is not None:
        part_arr = L.alloca(ir.ArrayType(reg_type(acc_dt), split.nchunks), name="partials")
        first = b.gep(part_arr, [i64(0), i64(0)], inbounds=True)
        b.store(b.bitcast(first, I8P), b.gep(env_arr, [i64(0), i64(len(slots))], inbounds=True))
    b.store(ir.Constant(I8, 0), chunk_oob)
    b.store(chunk_oob, b.gep(env_arr, [i64(0), i64(nslots - 1)], inbounds=True))
    b.call(declare_runtime(m), [f, b.bitcast(env_arr, I8P), i64(split.nchunks)])
    if chunk_flagged:
        L.flag_index_error(b.icmp_unsigned("!=", b.load(chunk_oob), ir.Constant(I8, 0)))
    if acc_dt is not None:
        _combine_partials(L, g0, first, split.nchunks, outs_of[id(g0)][0])
    for g in groups:
        if id(g) in cross:
            _combine_copies(L, g, cross[id(g)], outs_of[id(g)][0], split.nchunks)


def _reduces_rows(g) -> bool:
    return EMITTERS[g.root.prim.name].kernel is _reduce_kernel and 0 in g.root.params["axes"]


def _ordered_combine(b, name, dtype):
    """combine(acc, v) of a reduction without reassociation (partials combine in order)."""
    dt = np.dtype(dtype)
    if dt.kind == "f" and name == "reduce_sum":
        return lambda a, v: b.fadd(a, v)
    if dt.kind == "f" and name == "reduce_prod":
        return lambda a, v: b.fmul(a, v)
    if dt.kind == "f":
        return lambda a, v: _fmax(b, a, v, name == "reduce_max")
    red, _ = _reducer(name, dt)
    return lambda a, v: red(b, a, v)


# Chunks on different threads accumulate into their copies row after row (mse_linear's bias
# gradient: 2 doubles a copy), so copies that shared a cache line would have the two cores
# take the line from each other on every row. Copies are COPY_ALIGN_BYTES apart (the arena
# aligns to 64 bytes, so no two share a line; 128 keeps Intel's adjacent-line prefetcher, which
# fetches lines in pairs, mostly off a neighbour's line).
COPY_ALIGN_BYTES = 128


def _chunk_copies(L, out, nchunks) -> Buffer:
    """Scratch of shape (nchunks, stride): row c is chunk c's private copy of `out` (its first
    out.size elements), rows COPY_ALIGN_BYTES apart."""
    item = np.dtype(out.dtype).itemsize
    size = max(1, int(np.prod(out.shape, dtype=np.int64)))
    line = max(1, COPY_ALIGN_BYTES // item)
    return L.temp_buffer((nchunks, -(-size // line) * line), out.dtype)


def _combine_copies(L, g, copies: Buffer, out: Buffer, n):
    """out = copies[0] (+) copies[1] (+) ... (+) copies[n-1], elementwise, in chunk order."""
    b = L.builder
    size = max(1, out.size)
    stride = copies.shape[1]
    combine = _ordered_combine(b, g.root.prim.name, out.dtype)

    def element(j):
        total = copies.load_at(b, copies.addr_linear(b, j))
        for k in range(1, n):
            lin = b.add(j, i64(k * stride), flags=["nuw", "nsw"])
            total = combine(total, copies.load_at(b, copies.addr_linear(b, lin)))
        out.store_at(b, out.addr_linear(b, j) if out.size > 1 else out.ptr, total)
    for_range(b, size, element, name="comb")


def _emit_nest_rows(L, nest, outs_of, lo, hi):
    """Rows lo..hi of a top-level nest's loop (Lowerer.emit_nest with run-time bounds)."""
    for_span(L.builder, lo, hi, lambda i: L.emit_nest_row(nest, outs_of, i), name="n0")


def split_of_nest(L, nest) -> Split | None:
    """Split of a top-level nest over its loop's rows (every member a plain elementwise/view
    group or a reduction). Each row writes its own part of every output, except the members
    that reduce over the nest's axis: each chunk accumulates those into a private copy, and
    the copies are combined in chunk order after the loop."""
    if nest.depth != 1:
        return None
    work = 0
    for g in nest.groups():
        em = EMITTERS[g.root.prim.name]
        if em.kernel is not _reduce_kernel and em.kernel is not _store_kernel:
            return None
        space = fuse.space(g)
        if space is None or not space or space[0] != nest.extent:
            return None
        work += int(np.prod(space, dtype=np.int64)) * group_cost(g)
    per = _chunking(nest.extent, max(1, work // nest.extent), False)
    return Split("nest", (nest.extent,), False, nest.extent, per) if per else None


def _emit_partial(L, g, partials, c):
    """Chunk body of a reduction to one value: partials[c] = reduce(x over the chunk)."""
    eqn = g.root
    x = eqn.inputs[0]
    b = L.builder
    _, init = _reducer(eqn.prim.name, x.dtype)
    acc_dt, widen, _ = _accumulator(eqn.prim.name, x.dtype)
    wide_combine, _ = _reducer(eqn.prim.name, acc_dt)
    acc = L.alloca(reg_type(acc_dt), name="acc")
    b.store(widen(b, init), acc)
    L._group = g

    def body(idx):
        b.store(wide_combine(b, b.load(acc), widen(b, L.load(x, idx))), acc)
    iterate_chunk(L, x.shape, body)
    L._group = None
    b.store(b.load(acc), b.gep(partials, [c], inbounds=True))


def _combine_partials(L, g, first, n, out):
    """out = partials[0] (+) partials[1] (+) ... in chunk order (no reassociation)."""
    eqn = g.root
    b = L.builder
    acc_dt, _, narrow = _accumulator(eqn.prim.name, eqn.inputs[0].dtype)
    combine = _ordered_combine(b, eqn.prim.name, acc_dt)
    total = b.load(first)
    for j in range(1, n):
        total = combine(total, b.load(b.gep(first, [i64(j)], inbounds=True)))
    out.store(b, Index(out.shape), narrow(b, total))


def declare_runtime(m):
    fn = m.globals.get(RUNTIME_SYMBOL)
    if fn is None:
        fnty = ir.FunctionType(VOID, [_CHUNK_TY.as_pointer(), I8P, I64])
        fn = ir.Function(m, fnty, name=RUNTIME_SYMBOL)
        fn.attributes.add("nounwind")
    return fn
