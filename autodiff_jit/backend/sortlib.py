"""The argsort kernel: per row, a stable radix sort of (key, index) pairs, keys first mapped to
order-preserving unsigned 64-bit integers, so every comparison is integer.

Key map (numpy's order, kind="stable"): a float's bits, sign flipped if positive and all bits
flipped if negative, make unsigned order equal float order; -0.0 is first turned into 0.0 (numpy
compares them equal, so ties keep index order) and every NaN into the largest key (NaNs last, in
index order); an int64 has its sign bit flipped. float32 keys are widened to float64 (exact), so
their all-zero low digits cost nothing: see pass skipping below.

Mostly a radix sort, not a merge sort: a merge's next load waits on the previous comparison, so it runs
at the latency of load + compare + select per element and pass; a radix pass has no such chain.
Three plans, by row length (static):
- up to RANK_MAX: rank counting, LANES rows at a time in vector registers (_rank_rows);
- LSD: one read of the row builds the histograms of every digit; a digit shared by the whole row
  (the top digit of int64s of one sign and small range, the low digits of float32s) is skipped;
  every other digit is one counting scatter between two ping-pong buffers. Digits are 11 bits (6
  passes, 2048 counters each) for long rows, narrower for short rows (digit_bits);
- MSD, from MSD_MIN: a row that big does not fit in L2 twice over, and an 11-bit scatter of it
  writes to 4096 places at once. One counting scatter by the 16 bits below the highest bit in
  which the keys differ puts the row into contiguous buckets (usually cache-sized); each is then
  sorted in place, insertion sort (up to INSERTION_MAX) or 8-bit LSD passes over the bits
  below the window (measured: half the LSD plan's time on 1e5 and 1e6 normal float64s; the
  same at 4e4).
Indices are int32 in the buffers when the row length allows (less to move per pass).

One scratch block in the call's arena (reused across calls, allocated by the call path like
every temporary) serves every row."""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from .emitters import EMITTERS, Emitter
from .kernels import F64, I8P, I32, I64, Index, for_range, for_span, i64, loop_nest

LANES = 8            # rows per vector in the rank plan (<8 x i64>: 2 AVX2 or AVX-512 ymm)
RANK_MAX = 128       # rows up to this length: the rank plan (LSD faster from ~170)
INSERTION_MAX = 64   # MSD buckets up to this length: insertion sort
MSD_MIN = 1 << 15    # rows from this length: the MSD plan (a first pass on the top 16 bits)
MSD_BITS = 16
BUCKET_BITS = 8      # the MSD plan's per-bucket LSD digits (bits below the MSD window: <= 48)
DIGIT_BITS = (4, 5, 6, 8, 11)


def digit_bits(n):
    """The digit width for rows of n: a pass clears and scans 2**bits counters and moves n
    pairs (about three operations each), so short rows want narrow digits; 11 bits at most (the
    counters of all passes stay in L1/L2)."""
    return min(DIGIT_BITS, key=lambda b: -(-64 // b) * (2 * 2 ** b + 3 * n))
_SIGN = -(1 << 63)   # i64 constant 0x8000...0


def _while(b, cond, body, name):
    """Emit `while cond(): body()` (cond returns an i1)."""
    fn = b.function
    head = fn.append_basic_block(f"{name}.head")
    loop = fn.append_basic_block(f"{name}.body")
    done = fn.append_basic_block(f"{name}.exit")
    b.branch(head)
    b.position_at_end(head)
    b.cbranch(cond(), loop, done)
    b.position_at_end(loop)
    body()
    b.branch(head)
    b.position_at_end(done)


def sort_key(b, v):
    """The unsigned 64-bit key (as an i64) of a float64 or int64 value: unsigned key order is
    numpy's sort order (-0.0 ties 0.0, NaNs last)."""
    if v.type != F64:
        return b.xor(v, i64(_SIGN))
    zero = ir.Constant(F64, 0.0)
    v = b.select(b.fcmp_ordered("==", v, zero), zero, v)
    bits = b.bitcast(v, I64)
    flip = b.or_(b.ashr(bits, i64(63)), i64(_SIGN))
    return b.select(b.fcmp_unordered("uno", v, v), i64(-1), b.xor(bits, flip))


def _digit(b, key, shift, bits):
    return b.and_(b.lshr(key, i64(shift)), i64((1 << bits) - 1))


class _Bufs:
    """Pointers into the one scratch block: two key arrays, two index arrays, the counters."""

    def __init__(self, b, raw, n, idx_t, cnt_t):
        def part(offset, ty):
            return b.bitcast(b.gep(raw, [i64(offset)]), ty.as_pointer())
        isz = idx_t.width // 8
        self.keys = [part(0, I64), part(8 * n, I64)]
        self.idx = [part(16 * n, idx_t), part(16 * n + isz * n, idx_t)]
        self.counts = part(16 * n + 2 * isz * n, cnt_t)

    @staticmethod
    def nbytes(n, idx_t, cnt_t, ncounts):
        return (16 + 2 * idx_t.width // 8) * n + cnt_t.width // 8 * ncounts


def _count(b, counts, key, bits, ndigits, cnt_t):
    """Add key to the histogram of each of its ndigits digits (table d at counts[d << bits])."""
    for d in range(ndigits):
        slot = b.gep(counts, [b.add(_digit(b, key, d * bits, bits), i64(d << bits))])
        b.store(b.add(b.load(slot), ir.Constant(cnt_t, 1)), slot)


def _clear(b, counts, size, cnt_t):
    for_range(b, size, lambda q: b.store(ir.Constant(cnt_t, 0), b.gep(counts, [q])),
              name="rs.clear")


def _insertion_sort(L, keys, idx, m):
    """Stable insertion sort of keys[0:m] (unsigned; m an i64 value) carrying idx along."""
    b = L.builder
    j = L.alloca(I64, name="ins.j")

    def outer(i):
        k = b.load(b.gep(keys, [i]))
        ix = b.load(b.gep(idx, [i]))
        b.store(i, j)

        def shifting():
            jv = b.load(j)
            safe = b.select(b.icmp_signed(">", jv, i64(0)), b.sub(jv, i64(1)), i64(0))
            return b.and_(b.icmp_signed(">", jv, i64(0)),
                          b.icmp_unsigned(">", b.load(b.gep(keys, [safe])), k))

        def shift():
            jv = b.load(j)
            prev = b.sub(jv, i64(1))
            b.store(b.load(b.gep(keys, [prev])), b.gep(keys, [jv]))
            b.store(b.load(b.gep(idx, [prev])), b.gep(idx, [jv]))
            b.store(prev, j)
        _while(b, shifting, shift, "ins.shift")
        jv = b.load(j)
        b.store(k, b.gep(keys, [jv]))
        b.store(ix, b.gep(idx, [jv]))
    for_span(b, i64(1), m, outer, "ins")


def _rank_rows(L, key_at, outer, n, put):
    """The rank plan: stable sorts of short rows, LANES rows at a time. The element at i goes to
    rank #{j < i: key_j <= key_i} + #{j > i: key_j < key_i}. That is n*n compares per row, but
    each is one lane of a vector compare across LANES rows (keys stored transposed: position i
    of the chunk's rows is one vector), with no branch on the data and no loop-carried chain
    but the counter add: for short rows, faster than insertion sort (a mispredicted branch per
    element) and than radix passes (counters to clear and scan per digit). A last partial
    chunk repeats its last row in the spare lanes (same keys, same ranks: the same stores).
    key_at(dims, i) is the key of element i of the row at outer position dims (signed order);
    put(dims, rank, i) stores index i at position rank."""
    b = L.builder
    vec = ir.VectorType(I64, LANES)
    rows = int(np.prod(outer, dtype=np.int64))
    keys = b.bitcast(L.temp_buffer((n * LANES,), np.int64).ptr, vec.as_pointer())
    acc = L.alloca(vec, name="rk.acc")
    one = ir.Constant(vec, [1] * LANES)

    def chunk(c):
        lanes = []
        for lane in range(LANES):
            r = b.add(b.mul(c, i64(LANES)), i64(lane))
            r = b.select(b.icmp_signed("<", r, i64(rows)), r, i64(rows - 1))
            lanes.append(Index(outer, linear=r).dims(b))

        def fill(i):
            v = ir.Constant(vec, ir.Undefined)
            for lane, dims in enumerate(lanes):
                v = b.insert_element(v, key_at(dims, i), i64(lane))
            b.store(v, b.gep(keys, [i]), align=8)  # arena buffers: 8-byte aligned, not 64
        for_range(b, n, fill, name="rk.fill")

        def count(k, lo, hi, pred):
            def step(j):
                hit = b.icmp_signed(pred, b.load(b.gep(keys, [j]), align=8), k)
                b.store(b.add(b.load(acc), b.select(hit, one, ir.Constant(vec, None))), acc)
            for_span(b, lo, hi, step, f"rk.{pred}")

        def element(i):
            k = b.load(b.gep(keys, [i]), align=8)
            b.store(ir.Constant(vec, None), acc)
            count(k, i64(0), i, "<=")
            count(k, b.add(i, i64(1)), i64(n), "<")
            ranks = b.load(acc)
            for lane, dims in enumerate(lanes):
                put(dims, b.extract_element(ranks, i64(lane)), i)
        for_range(b, n, element, name="rk.elem")
    for_range(b, -(-rows // LANES), chunk, name="rk.chunk")


def _lsd(L, keys, idx, counts, m, bits, ndigits, cnt_t):
    """LSD passes, ping-pong between keys[0]/idx[0] (holding the m pairs, m an i64 value) and
    keys[1]/idx[1], over the digits whose histograms (already in counts) are not all in one
    bucket. Returns the alloca holding the pointer to the sorted indices."""
    b = L.builder
    radix = 1 << bits
    src_k, src_i = L.alloca(keys[0].type), L.alloca(idx[0].type)
    dst_k, dst_i = L.alloca(keys[0].type), L.alloca(idx[0].type)
    for ptr, slot in zip((keys[0], idx[0], keys[1], idx[1]), (src_k, src_i, dst_k, dst_i)):
        b.store(ptr, slot)
    total = L.alloca(cnt_t, name="rs.total")
    first_key = b.load(keys[0])
    whole_row = b.trunc(m, cnt_t) if cnt_t != I64 else m
    for d in range(ndigits):
        shift = d * bits
        table = b.gep(counts, [i64(d * radix)])
        whole = b.load(b.gep(table, [_digit(b, first_key, shift, bits)]))
        with b.if_then(b.icmp_unsigned("!=", whole, whole_row)):
            _bucket_starts(b, table, total, cnt_t, radix, f"rs.scan{d}")
            ks, is_, kd, id_ = (b.load(p) for p in (src_k, src_i, dst_k, dst_i))

            def scatter(i):
                key = b.load(b.gep(ks, [i]))
                slot = b.gep(table, [_digit(b, key, shift, bits)])
                pos = b.load(slot)
                b.store(b.add(pos, ir.Constant(cnt_t, 1)), slot)
                b.store(key, b.gep(kd, [pos]))
                b.store(b.load(b.gep(is_, [i])), b.gep(id_, [pos]))
            for_span(b, i64(0), m, scatter, f"rs.pass{d}")
            for ptr, slot in zip((kd, id_, ks, is_), (src_k, src_i, dst_k, dst_i)):
                b.store(ptr, slot)
    return src_i


def _msd_sort(L, bufs, n, cnt_t, diff):
    """The MSD plan: one counting scatter of the row (keys[0] -> keys[1]) by the 16 bits just
    below the highest bit in which any key differs from the first (`diff`, nonzero, is the OR
    of key ^ first key), so each bucket is a contiguous, usually cache-sized run; then every
    bucket is sorted in place: insertion sort up to INSERTION_MAX, else LSD passes over the
    bits below the window (keys[0] as scratch, the indices copied back if they end there).
    Returns the sorted indices (bufs.idx[1])."""
    b = L.builder
    radix = 1 << MSD_BITS
    i1 = ir.IntType(1)
    ctlz = b.module.declare_intrinsic("llvm.ctlz", [I64], ir.FunctionType(I64, [I64, i1]))
    high = b.sub(i64(63), b.call(ctlz, [diff, ir.Constant(i1, 0)]))
    lo = b.sub(high, i64(MSD_BITS - 1))
    lo = b.select(b.icmp_signed("<", lo, i64(0)), i64(0), lo)
    mask = i64(radix - 1)
    table = bufs.counts
    bucket_counts = b.gep(table, [i64(radix)])
    nb = -(-48 // BUCKET_BITS)
    N = i64(n)

    def digit(key):
        return b.and_(b.lshr(key, lo), mask)
    _clear(b, table, radix, cnt_t)

    def count(i):
        slot = b.gep(table, [digit(b.load(b.gep(bufs.keys[0], [i])))])
        b.store(b.add(b.load(slot), ir.Constant(cnt_t, 1)), slot)
    for_span(b, i64(0), N, count, "msd.count")
    total = L.alloca(cnt_t, name="msd.total")
    _bucket_starts(b, table, total, cnt_t, radix, "msd.scan")

    def scatter(i):
        key = b.load(b.gep(bufs.keys[0], [i]))
        slot = b.gep(table, [digit(key)])
        pos = b.load(slot)
        b.store(b.add(pos, ir.Constant(cnt_t, 1)), slot)
        b.store(key, b.gep(bufs.keys[1], [pos]))
        b.store(b.load(b.gep(bufs.idx[0], [i])), b.gep(bufs.idx[1], [pos]))
    for_span(b, i64(0), N, scatter, "msd.scatter")
    # after the scatter, table[q] is the end of bucket q
    start = L.alloca(I64, name="msd.start")
    b.store(i64(0), start)

    def bucket(q):
        st = b.load(start)
        end = b.load(b.gep(table, [q]))
        end = b.zext(end, I64) if cnt_t != I64 else end
        m = b.sub(end, st)
        keys = [b.gep(bufs.keys[1], [st]), b.gep(bufs.keys[0], [st])]
        idx = [b.gep(bufs.idx[1], [st]), b.gep(bufs.idx[0], [st])]
        with b.if_else(b.icmp_signed(">", m, i64(INSERTION_MAX))) as (big, small):
            with big:
                _clear(b, bucket_counts, nb << BUCKET_BITS, cnt_t)
                for_span(b, i64(0), m, lambda i: _count(
                    b, bucket_counts, b.load(b.gep(keys[0], [i])), BUCKET_BITS, nb, cnt_t),
                    "bk.count")
                got = b.load(_lsd(L, keys, idx, bucket_counts, m, BUCKET_BITS, nb, cnt_t))
                with b.if_then(b.icmp_unsigned("!=", got, idx[0])):
                    for_span(b, i64(0), m, lambda i: b.store(b.load(b.gep(got, [i])),
                                                          b.gep(idx[0], [i])), "bk.back")
            with small:
                _insertion_sort(L, keys[0], idx[0], m)
        b.store(end, start)
    for_range(b, radix, bucket, name="msd.bucket")
    return bufs.idx[1]


def _bucket_starts(b, table, total, cnt_t, radix, name):
    """Counts -> bucket starts in place: table[q] = sum(table[:q]) (an exclusive prefix sum over
    the `radix` counters of type cnt_t); `total` is the scratch accumulator, ends at the sum."""
    b.store(ir.Constant(cnt_t, 0), total)

    def scan(q):
        slot = b.gep(table, [q])
        c = b.load(slot)
        t = b.load(total)
        b.store(t, slot)
        b.store(b.add(t, c), total)
    for_range(b, radix, scan, name=name)


def argsort_kernel(L, eqn, outs):
    out = outs[0]
    x = eqn.inputs[0]
    axis = eqn.params["axis"]
    b = L.builder
    shape = x.shape
    n = shape[axis]
    if n == 0 or out.size == 0:
        return
    idx_t = I32 if n < 2 ** 31 else I64
    cnt_t = idx_t
    plan = "rank" if n <= RANK_MAX else "msd" if n >= MSD_MIN else "lsd"
    outer = tuple(1 if a == axis else d for a, d in enumerate(shape))

    def key_at(dims, i):
        d = list(dims)
        d[axis] = i
        v = L.load(x, Index(shape, dims=d))
        return sort_key(b, v if v.type in (F64, I64) else b.fpext(v, F64))

    if plan == "rank":
        def signed_key(dims, i):
            return b.xor(key_at(dims, i), i64(_SIGN))

        def put(dims, rank, i):
            d = list(dims)
            d[axis] = rank
            out.store(b, Index(out.shape, dims=d), i)
        _rank_rows(L, signed_key, outer, n, put)
        return
    bits = digit_bits(n)
    ndigits = -(-64 // bits)
    ncounts = {"lsd": ndigits << bits,
               "msd": (1 << MSD_BITS) + (-(-48 // BUCKET_BITS) << BUCKET_BITS)}[plan]
    words = -(-_Bufs.nbytes(n, idx_t, cnt_t, ncounts) // 8)
    raw = b.bitcast(L.temp_buffer((words,), np.int64).ptr, I8P)
    bufs = _Bufs(b, raw, n, idx_t, cnt_t)

    def row(dims):
        if plan == "lsd":
            _clear(b, bufs.counts, ncounts, cnt_t)
        first = key_at(dims, i64(0))
        diff = L.alloca(I64, name="sort.diff")
        b.store(i64(0), diff)

        def fill(i):
            key = key_at(dims, i)
            b.store(key, b.gep(bufs.keys[0], [i]))
            b.store(b.trunc(i, idx_t) if idx_t != I64 else i, b.gep(bufs.idx[0], [i]))
            if plan == "lsd":
                _count(b, bufs.counts, key, bits, ndigits, cnt_t)
            elif plan == "msd":
                b.store(b.or_(b.load(diff), b.xor(key, first)), diff)
        for_range(b, n, fill, name="sfill")
        if plan == "lsd":
            result = b.load(_lsd(L, bufs.keys, bufs.idx, bufs.counts, i64(n), bits, ndigits,
                                 cnt_t))
        else:
            res = L.alloca(bufs.idx[0].type, name="sort.result")
            b.store(bufs.idx[0], res)  # all keys equal: the identity
            d = b.load(diff)
            with b.if_then(b.icmp_unsigned("!=", d, i64(0))):
                b.store(_msd_sort(L, bufs, n, cnt_t, d), res)
            result = b.load(res)

        def emit(i):
            d = list(dims)
            d[axis] = i
            v = b.load(b.gep(result, [i]))
            out.store(b, Index(out.shape, dims=d), b.sext(v, I64) if idx_t != I64 else v)
        for_range(b, n, emit, name="sout")
    loop_nest(b, outer, row)


EMITTERS["argsort"] = Emitter(None, argsort_kernel, "opaque")
