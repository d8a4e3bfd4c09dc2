"""The sort and argsort kernels: per row, a stable sort of (key, index) pairs, keys first mapped
to order-preserving unsigned 64-bit integers, so every comparison is integer.

Key map (numpy's order, kind="stable"): a float's bits, sign flipped if positive and all bits
flipped if negative, make unsigned order equal float order; -0.0 is first turned into 0.0 (numpy
compares them equal, so ties keep index order) and every NaN into the largest key (NaNs last, in
index order); an int64 has its sign bit flipped. float32 keys are widened to float64 (exact) in
the network plan; the MSD plan sorts them as composites (below).

Longer rows: a radix sort, not a merge sort: a merge's next load waits on the previous
comparison, so it runs at the latency of load + compare + select per element and pass; a radix
pass has no such chain. Two plans, by row length (static):
- network, rows up to NETWORK_ALWAYS (or NETWORK_MAX when there are LANES rows or more): a
  bitonic sorting network, LANES rows at a time, one vector lane per row (_network_rows);
- MSD, every longer row (_msd_sort): one counting scatter by the msd_bits(n) bits below the
  highest bit in which the keys differ puts the row into contiguous buckets; a long bucket gets
  a second scatter by about log2(its length) + 1 bits below its own highest differing bit, so
  mostly a key or none per sub-bucket; insertion sorts over whole ranges order what is left
  (their cost is the inversions within the short runs); a sub-bucket still longer than
  INSERTION_MAX whose keys differ (clustered keys) gets 8-bit LSD passes, skipping digits its
  keys share. Measured (normal float64s, one thread, A/B against the single-scatter MSD plan
  with per-bucket LSD passes, and the LSD plan below 32768 it replaced): 0.5-0.6x the time from
  3e3 to 2e4, 0.7x at 1e5, 0.85-1.0x at 1e6; int64 and uniform floats 0.65x at 1e4, 1.0x at
  1e5, 0.85x at 1e6; 100 distinct values 1.4x at 1e4 (a loss: LSD skipped most digits there),
  1.0x at 1e5 and 1e6.
On an x86 target with AVX-512 or AVX2, rows longer than NETWORK_ALWAYS go instead to vecsort's
vectorized quicksort (signed keys: key ^ SIGN; the same buffers, pairs or keys alone; the LSD
passes as its fallback past the depth limit; float32 values alone as 32-bit keys,
_quick32_rows), but on AVX2 keys alone only (quicksorts). AVX-512:
forward np.sort 1.6-1.8x numpy's np.sort instead of 2.5-3.6x (1e3-1e6 float64s, 1e5
float32s: 5.7x), gradients 15-40% faster; AVX2 (Zen 3): forward 1.0-1.4x instead of 1.3-2.0x
(float32 1.1-1.2x instead of 2.6x, 100 rows of 1000 1.1-1.2x instead of 3.0-4.0x).
What moves: (key, index) pairs when the permutation is wanted, int32 indices when the row
length allows; keys alone when only the values are (sort's permutation unread: forward np.sort,
median), each sorted key mapped back to its value; float32 rows always sort keys alone, each the
composite (32-bit key << 32 | index): unique, so ties come out in index order and the low half
is the permutation. Measured: keys alone take 0.7x the time of pairs (1e4-1e6 normal float64s).

One scratch block in the call's arena (reused across calls, allocated by the call path like
every temporary) serves every row."""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from . import vecsort
from .emitters import EMITTERS, Emitter
from .kernels import F64, I8, I8P, I32, I64, Index, for_range, for_span, i64, loop_nest, \
    reg_type, while_loop
from .sortkeys import SIGN, order_key

LANES = 8            # rows per vector in the network plan (<8 x i64>: 2 AVX2 ymm, 1 zmm)
NETWORK_ALWAYS = 128  # rows up to this length: the network plan
NETWORK_MAX = 1024   # ... and up to this one when there are at least LANES rows
REGISTER_GROUP = 16  # the network's passes run on groups of up to this many positions held
#                     in registers (AVX-512: 16 zmm; else half: 16 ymm)
INSERTION_MAX = 64   # MSD (sub-)buckets up to this length: insertion sort
MSD_BITS = 16        # the MSD plan's first scatter: digits of up to this width (msd_bits)
SUB_BITS = 13        # ... its second scatter, per bucket: digits of up to this width
BUCKET_BITS = 8      # ... LSD digits for a sub-bucket still longer than INSERTION_MAX


def msd_bits(n):
    """The MSD plan's first digit width for rows of n: about n/16 buckets, at most MSD_BITS:
    each bucket is a write stream of the scatter, and the second scatter inside each long
    bucket is cheap (in cache), so fewer, longer buckets win (measured, normal float64s and
    float32s: n/16 buckets 0.8-0.9x the time of n/2 at 1e5, the same at 1e4 and 1e6)."""
    return min(MSD_BITS, max(BUCKET_BITS, n.bit_length() - MSD_SLACK))


MSD_SLACK = 4

_SIGN = SIGN   # i64 constant 0x8000...0


def sort_key(b, v):
    """The unsigned 64-bit key (as an i64) of a float64 or int64 value: unsigned key order is
    numpy's sort order (-0.0 ties 0.0, NaNs last). One map for sorting and selection."""
    return order_key(b, v)


def _digit(b, key, shift, bits):
    return b.and_(b.lshr(key, i64(shift)), i64((1 << bits) - 1))


class _Bufs:
    """Pointers into the one scratch block: two key arrays, two index arrays (none when only
    the keys are sorted: idx_t None), the counters."""

    def __init__(self, b, raw, n, idx_t, cnt_t):
        def part(offset, ty):
            return b.bitcast(b.gep(raw, [i64(offset)]), ty.as_pointer())
        isz = idx_t.width // 8 if idx_t is not None else 0
        self.keys = [part(0, I64), part(8 * n, I64)]
        self.idx = [part(16 * n, idx_t), part(16 * n + isz * n, idx_t)] if isz else [None] * 2
        self.counts = part(16 * n + 2 * isz * n, cnt_t)

    @staticmethod
    def nbytes(n, idx_t, cnt_t, ncounts):
        isz = idx_t.width // 8 if idx_t is not None else 0
        return (16 + 2 * isz) * n + cnt_t.width // 8 * ncounts


def _count(b, counts, key, bits, ndigits, cnt_t):
    """Add key to the histogram of each of its ndigits digits (table d at counts[d << bits])."""
    for d in range(ndigits):
        slot = b.gep(counts, [b.add(_digit(b, key, d * bits, bits), i64(d << bits))])
        b.store(b.add(b.load(slot), ir.Constant(cnt_t, 1)), slot)


def _clear(b, counts, size, cnt_t):
    for_range(b, size, lambda q: b.store(ir.Constant(cnt_t, 0), b.gep(counts, [q])),
              name="rs.clear")


def _insertion_sort(L, keys, idx, m, budget=None):
    """Stable insertion sort of keys[0:m] (unsigned; m an i64 value) carrying idx along (None:
    keys only). budget: an i64 alloca of the shifts allowed; each shift takes one, and once
    it is down to 0 the sort stops shifting (keys[0:m] then a permutation, maybe unsorted)."""
    b = L.builder
    j = L.alloca(I64, name="ins.j")

    def outer(i):
        k = b.load(b.gep(keys, [i]))
        ix = b.load(b.gep(idx, [i])) if idx is not None else None
        b.store(i, j)

        def shifting():
            jv = b.load(j)
            safe = b.select(b.icmp_signed(">", jv, i64(0)), b.sub(jv, i64(1)), i64(0))
            more = b.and_(b.icmp_signed(">", jv, i64(0)),
                          b.icmp_unsigned(">", b.load(b.gep(keys, [safe])), k))
            if budget is not None:
                more = b.and_(more, b.icmp_signed(">", b.load(budget), i64(0)))
            return more

        def shift():
            if budget is not None:
                b.store(b.sub(b.load(budget), i64(1)), budget)
            jv = b.load(j)
            prev = b.sub(jv, i64(1))
            b.store(b.load(b.gep(keys, [prev])), b.gep(keys, [jv]))
            if idx is not None:
                b.store(b.load(b.gep(idx, [prev])), b.gep(idx, [jv]))
            b.store(prev, j)
        while_loop(b, shifting, shift, "ins.shift")
        jv = b.load(j)
        b.store(k, b.gep(keys, [jv]))
        if idx is not None:
            b.store(ix, b.gep(idx, [jv]))
    for_span(b, i64(1), m, outer, "ins")


def _network_rows(L, load, outer, n, put, store=None, dtype=np.float64):
    """The network plan: sorts of rows, LANES rows at a time, by a bitonic sorting network over
    64-bit keys stored transposed (position p of the chunk's rows is one vector), so every
    compare-exchange is one vector min and one max across LANES rows, with no branch on the
    data: n log^2 n / 4 of them for n a power of two, all ascending (the merge of two sorted
    halves compares position t with its mirror k - 1 - t, then half-cleans: no direction per
    block). load(dims, i) is element i of the row at outer position dims (a float64, float32 or
    int64 register value). Two modes:
    - put(dims, p, i) (store None): the permutation. Each item is the composite of the high
      bits of its key less the row's least key (shifted up by the leading zeros of the row's
      range) and its index in the low log2(size) bits: unique, so index order among keys whose kept bits agree. That is
      numpy's stable order unless two keys agree in the kept bits but not in the dropped low
      ones (keys spread over many binades, some a few ulps apart): a row that dropped bits
      and where two neighbours in the sorted order share their kept bits is then sorted again,
      by a stable insertion sort of the exact keys (equal keys are in index order already);
    - store(dims, p, value) (put None): keys alone, each sorted key mapped back to its value;
      in a row holding a -0.0 or a NaN (whose sign and payload its key does not keep) the
      zeros and NaNs are rewritten in index order by one more
      scalar pass over it.
    The row is padded to a power of two with the largest key (composite: with index >= n), which
    sorts after every real element (a NaN's key is the largest too: the index breaks the tie,
    and keys alone are indistinguishable). A last partial chunk repeats its last row in the
    spare lanes (same keys, same result: the same stores). The network runs as a few passes
    over the chunk's keys, each several stages on groups held in registers (_network_function).

    Measured (1000 rows of 100, float64, AVX-512, one thread; against the (key, index) pairs
    network, one stage per pass but the last few, it replaced): np.sort 4.2-4.9x numpy's time
    -> 0.8-1.0x, the gradient (the permutation) 1.4x numpy's AVX-512 argsort -> 0.4-0.5x;
    10000 rows of 16: np.sort 1.2x -> 0.3-0.4x. Before, the pairs network was 1.5-3x faster
    than the radix plans and 1.3x faster than rank counting (n*n vector compares) at 100;
    past 1024 the padding to 2048 loses to LSD."""
    b = L.builder
    perm = store is None
    vec = ir.VectorType(I64, LANES)
    rows = int(np.prod(outer, dtype=np.int64))
    size = 1 << max(1, (n - 1).bit_length())
    low = size - 1      # composites: the index bits
    keys = b.bitcast(L.temp_buffer((size * LANES,), np.int64).ptr, vec.as_pointer())
    # positions held in registers by a group of a network pass (16 vector registers)
    g = min(size, REGISTER_GROUP if vecsort.plan() == "avx512" else REGISTER_GROUP // 2)

    def ld(p):
        return b.load(b.gep(keys, [p]), align=8)  # arena buffers: 8-byte aligned, not 64

    def st(v, p):
        b.store(v, b.gep(keys, [p]), align=8)

    def splat(v):
        return b.shuffle_vector(b.insert_element(ir.Constant(vec, ir.Undefined), v, i64(0)),
                                ir.Constant(vec, ir.Undefined), ir.Constant(
                                    ir.VectorType(I32, LANES), [0] * LANES))

    def vconst(v):
        return ir.Constant(vec, [v] * LANES)

    network = _network_function(b.module, size, g)
    # per chunk, one bit a lane (LANES = 8): the rows to fix after the network
    odd = L.alloca(I8, name="nw.odd") if perm or np.dtype(dtype).kind == "f" else None
    ty = reg_type(dtype)
    if perm:
        scratch = b.bitcast(L.temp_buffer((2 * n,), np.int64).ptr, I64.as_pointer())
        exact_keys, exact_idx = scratch, b.gep(scratch, [i64(n)])
        least, most = L.alloca(vec, name="nw.least"), L.alloca(vec, name="nw.most")
        ctlz = b.module.globals.get("llvm.ctlz.v8i64") or ir.Function(
            b.module, ir.FunctionType(vec, [vec, ir.IntType(1)]), name="llvm.ctlz.v8i64")

    def chunk(c):
        lanes = []
        for lane in range(LANES):
            r = b.add(b.mul(c, i64(LANES)), i64(lane))
            r = b.select(b.icmp_signed("<", r, i64(rows)), r, i64(rows - 1))
            lanes.append(Index(outer, linear=r).dims(b))
        if odd is not None:
            b.store(ir.Constant(I8, 0), odd)

        def gather(i):
            v = None
            for lane, dims in enumerate(lanes):
                x = load(dims, i)
                if v is None:
                    v = ir.Constant(ir.VectorType(x.type, LANES), ir.Undefined)
                v = b.insert_element(v, x, i64(lane))
            return v

        if perm:
            b.store(vconst(-1), least)
            b.store(vconst(0), most)

        def fill(i):
            key, special = _signed_keys(b, gather(i))
            if perm:   # the row's range of unsigned keys
                u = b.xor(key, vconst(_SIGN))
                lo, hi = b.load(least), b.load(most)
                b.store(b.select(b.icmp_unsigned("<", u, lo), u, lo), least)
                b.store(b.select(b.icmp_unsigned(">", u, hi), u, hi), most)
            elif special is not None:
                b.store(b.or_(b.load(odd), b.bitcast(special, I8)), odd)
            st(key, i)
        for_range(b, n, fill, name="nw.fill")
        if perm:
            # keys less the row's least, shifted up to the top, so that the composite keeps as
            # many of the bits that vary as fit: rows of small integers, or of values a few
            # ulps apart, keep them all
            lo = b.load(least)
            span = b.sub(b.load(most), lo)
            shift = b.call(ctlz, [span, ir.Constant(ir.IntType(1), 0)])
            # lanes whose range does not fit above the index bits: some low bits dropped
            inexact = b.icmp_unsigned("<", shift, vconst(low.bit_length()))
            shift = b.select(b.icmp_unsigned("<", shift, vconst(63)), shift, vconst(63))

            def composite(i):
                u = b.shl(b.sub(b.xor(ld(i), vconst(_SIGN)), lo), shift)
                st(b.or_(b.and_(b.xor(u, vconst(_SIGN)), vconst(~low)), splat(i)), i)
            for_range(b, n, composite, name="nw.composite")

        def pad(i):
            top = (1 << 63) - 1
            st(b.or_(vconst(top & ~low), splat(i)) if perm else vconst(top), i)
        for_range(b, size, pad, name="nw.pad", start=n)
        b.call(network, [keys])

        def neighbours(p):
            # sorted neighbours whose kept bits agree, in a row that dropped some: maybe out
            # of exact order
            left, right = ld(p), ld(b.add(p, i64(1)))
            same = b.and_(b.icmp_unsigned("<=", b.xor(left, right), vconst(low)), inexact)
            b.store(b.or_(b.load(odd), b.bitcast(same, I8)), odd)

        def flagged(fix):
            # fix(lane, dims) for each lane whose bit is set in `odd` (one loop over the lanes:
            # the code once, not LANES times)
            flags = b.load(odd)
            with b.if_then(b.icmp_unsigned("!=", flags, ir.Constant(I8, 0)), likely=False):
                def one(lane):
                    bit = b.trunc(b.lshr(flags, b.trunc(lane, I8)), ir.IntType(1))
                    with b.if_then(bit):
                        r = b.add(b.mul(c, i64(LANES)), lane)
                        r = b.select(b.icmp_signed("<", r, i64(rows)), r, i64(rows - 1))
                        fix(lane, Index(outer, linear=r).dims(b))
                for_range(b, LANES, one, name="nw.lane")
        if perm:
            for_range(b, n - 1, neighbours, name="nw.ties")

            def exact(lane, dims):
                row = (lambda i: load(dims, i))
                _exact_order(L, keys, lane, n, low, row, exact_keys, exact_idx, None if
                             n <= NETWORK_ALWAYS else lambda: _exact_fallback(L, row, n,
                                                                              exact_idx))
            flagged(exact)

        def emit(p):
            v = ld(p)
            if perm:
                v = b.and_(v, vconst(low))
                for lane, dims in enumerate(lanes):
                    put(dims, p, b.extract_element(v, i64(lane)))
                return
            v = _key_values(b, v, ty)
            for lane, dims in enumerate(lanes):
                store(dims, p, b.extract_element(v, i64(lane)))
        for_range(b, n, emit, name="nw.put")
        if odd is not None and not perm:
            flagged(lambda lane, dims: _rewrite_zeros_nans(
                L, lambda i: load(dims, i), lambda p, v: store(dims, p, v), n))
    for_range(b, -(-rows // LANES), chunk, name="nw.chunk")


def network_passes(size, g):
    """The bitonic network over `size` positions as passes over memory: its stages in order
    (each a mask m: compare-exchange of positions p and p ^ m, the smaller at the lower one;
    merge k is the mirror stage k - 1, then the half-cleaners k/4 .. 1), packed greedily into
    passes whose masks span at most g values: the positions r ^ s, s in the span, of one group
    (r: one per coset) are closed under the pass's stages and held in registers. Returns a
    list of (masks, span, pivots): span a sorted tuple, pivots the leading bits of an echelon
    basis of it (a coset's representative: the value with those bits zero)."""
    stages = []
    k = 2
    while k <= size:
        stages.append(k - 1)
        j = k // 4
        while j >= 1:
            stages.append(j)
            j //= 2
        k *= 2
    passes, masks, span, basis = [], [], {0}, []
    for m in stages:
        if m not in span and 2 * len(span) > g:
            passes.append((masks, tuple(sorted(span)), _pivots(basis)))
            masks, span, basis = [], {0}, []
        if m not in span:
            span |= {x ^ m for x in span}
            basis.append(m)
        masks.append(m)
    passes.append((masks, tuple(sorted(span)), _pivots(basis)))
    return passes


def _pivots(basis):
    """The leading bits of an echelon form of the (independent) masks in basis, ascending."""
    rows = []
    for v in basis:
        for r in rows:
            if v ^ r < v:
                v ^= r
        rows.append(v)
        rows.sort(reverse=True)
    return sorted(v.bit_length() - 1 for v in rows)


def _network_function(module, size, g):
    """void adj_sort_rows_net<size>_<g>(<LANES x i64>* keys): the bitonic network of
    _network_rows over `size` positions of signed keys, in place, by network_passes: each pass
    one load and store of every position, its stages on groups of up to g positions held in
    registers (128 positions: 6 passes instead of 28 stages). The pair (r ^ s, r ^ s ^ m) of a
    group: its lower position is the one whose bit at m's top bit is 0, a pivot bit (0 in r):
    known statically. Its own function, not inlined: LLVM's time on one large function grows
    faster than linearly."""
    name = f"adj_sort_rows_net{size}_{g}"
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    vec = ir.VectorType(I64, LANES)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [vec.as_pointer()]), name=name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    fn.attributes.add("noinline")
    keys = fn.args[0]
    keys.add_attribute("noalias")
    b = ir.IRBuilder(fn.append_basic_block("entry"))

    def exchange(a, c):
        lt = b.icmp_signed("<", a, c)
        return b.select(lt, a, c), b.select(lt, c, a)

    for masks, span, pivots in network_passes(size, g):
        def group(t, masks=masks, span=span, pivots=pivots):
            r = t   # t's bits spread around the pivot bits (zeros there)
            for p_ in pivots:
                r = b.or_(b.shl(b.lshr(r, i64(p_)), i64(p_ + 1)), b.and_(r, i64((1 << p_) - 1)))
            ptrs = [b.gep(keys, [b.xor(r, i64(x))]) for x in span]
            v = [b.load(p_, align=8) for p_ in ptrs]   # arena buffers: 8-byte aligned
            slot = {x: q for q, x in enumerate(span)}
            for m in masks:
                top = 1 << (m.bit_length() - 1)
                for q, x in enumerate(span):
                    if not x & top:
                        o = slot[x ^ m]
                        v[q], v[o] = exchange(v[q], v[o])
            for p_, item in zip(ptrs, v):
                b.store(item, p_, align=8)
        for_range(b, size // len(span), group, name="nw.pass")
    b.ret_void()
    return fn


def _exact_order(L, keys, lane, n, low, load, exact_keys, exact_idx, fallback):
    """Lane `lane` of the network's sorted composites (keys: <LANES x i64> vectors), put in
    numpy's stable order: its n indices (the low bits) and their exact keys (of load(index))
    sorted by a stable insertion sort of the keys (the indices of equal keys are in order
    already), the indices written back as the composites (emit masks the low bits). Its
    shifts are bounded (EXACT_SHIFTS a position: a cluster of near keys in reverse order costs
    them quadratically); past that, fallback (None: unbounded) sorts the row again from
    its values into exact_idx."""
    b = L.builder
    flat = b.bitcast(keys, I64.as_pointer())

    def at(p):
        return b.gep(flat, [b.add(b.mul(p, i64(LANES)), lane)])

    def get(p):
        i = b.and_(b.load(at(p)), i64(low))
        b.store(i, b.gep(exact_idx, [p]))
        b.store(sort_key(b, _wide(b, load(i))), b.gep(exact_keys, [p]))
    for_range(b, n, get, name="nw.exact")
    budget = None if fallback is None else L.alloca(I64, name="nw.budget")
    if budget is not None:
        b.store(i64(EXACT_SHIFTS * n), budget)
    _insertion_sort(L, exact_keys, exact_idx, i64(n), budget)
    if budget is not None:
        with b.if_then(b.icmp_signed("<=", b.load(budget), i64(0)), likely=False):
            fallback()
    for_range(b, n, lambda p: b.store(b.load(b.gep(exact_idx, [p])), at(p)), name="nw.back")


EXACT_SHIFTS = 8   # _exact_order's insertion sort: shifts a position before the fallback


def _exact_fallback(L, load, n, exact_idx):
    """The row of n values load(i) sorted stably by the MSD plan of (key, index) pairs, the
    indices into exact_idx (the network plan's exact order past its insertion budget)."""
    b = L.builder
    cnt_t = I32 if n < 2 ** 31 else I64
    idx_t = I64
    ncounts = (1 << msd_bits(n)) + (1 << SUB_BITS) + (-(-64 // BUCKET_BITS) << BUCKET_BITS)
    words = -(-_Bufs.nbytes(n, idx_t, cnt_t, ncounts) // 8)
    raw = b.bitcast(L.temp_buffer((words,), np.int64).ptr, I8P)
    bufs = _Bufs(b, raw, n, idx_t, cnt_t)
    diff = L.alloca(I64, name="nw.fdiff")
    b.store(i64(0), diff)
    first = sort_key(b, _wide(b, load(i64(0))))

    def fill(i):
        key = sort_key(b, _wide(b, load(i)))
        b.store(key, b.gep(bufs.keys[0], [i]))
        b.store(i, b.gep(bufs.idx[0], [i]))
        b.store(b.or_(b.load(diff), b.xor(key, first)), diff)
    for_range(b, n, fill, name="nw.ffill")
    d = b.load(diff)
    # (all keys equal: the insertion sort cannot have run out: not here)
    with b.if_then(b.icmp_unsigned("!=", d, i64(0))):
        _msd_sort(L, bufs, n, cnt_t, d)
        for_range(b, n, lambda i: b.store(b.load(b.gep(bufs.idx[1], [i])),
                                          b.gep(exact_idx, [i])), name="nw.fcopy")


def _wide(b, v):
    return v if v.type in (F64, I64) else b.fpext(v, F64)


def _signed_keys(b, v):
    """The signed keys (sort_key ^ SIGN) of a vector of float64, float32 or int64 values, and
    (floats) the i1 vector of the lanes holding a -0.0 or a NaN, else None. For floats: the
    bits, the 63 low ones flipped if negative; every zero 0, every NaN the largest key."""
    w = v.type.count
    if v.type.element == I64:
        return v, None
    if v.type.element != F64:
        v = b.fpext(v, ir.VectorType(F64, w))
    ivec = ir.VectorType(I64, w)
    bits = b.bitcast(v, ivec)
    zero = ir.Constant(v.type, [0.0] * w)
    nan = b.fcmp_unordered("uno", v, v)
    odd = b.or_(nan, b.icmp_signed("==", bits, ir.Constant(ivec, [_SIGN] * w)))
    low = b.lshr(b.ashr(bits, ir.Constant(ivec, [63] * w)), ir.Constant(ivec, [1] * w))
    key = b.select(b.fcmp_ordered("==", v, zero), ir.Constant(ivec, [0] * w), b.xor(bits, low))
    return b.select(nan, ir.Constant(ivec, [(1 << 63) - 1] * w), key), odd


def _key_values(b, key, ty):
    """The values of type ty (double, float or i64) whose _signed_keys are the vector `key`,
    but for zeros (+0.0) and NaNs (some NaN)."""
    if ty == I64:
        return key
    w = key.type.count
    low = b.lshr(b.ashr(key, ir.Constant(key.type, [63] * w)), ir.Constant(key.type, [1] * w))
    v = b.bitcast(b.xor(key, low), ir.VectorType(F64, w))
    return v if ty == F64 else b.fptrunc(v, ir.VectorType(ty, w))


def _rewrite_zeros_nans(L, load, store, n):
    """Zeros and NaNs of a row whose sorted values came from keys alone: each written again, in
    index order (what a stable sort gives), at the zeros' positions (after the negatives) and
    the NaNs' (the last ones). load(i): element i of the row; store(p, v)."""
    b = L.builder
    below = L.alloca(I64, name="nw.below")
    nans = L.alloca(I64, name="nw.nans")
    for c in (below, nans):
        b.store(i64(0), c)

    def count(i):
        v = load(i)
        zero = ir.Constant(v.type, 0.0)
        b.store(b.add(b.load(below), b.zext(b.fcmp_ordered("<", v, zero), I64)), below)
        b.store(b.add(b.load(nans), b.zext(b.fcmp_unordered("uno", v, v), I64)), nans)
    for_range(b, n, count, name="nw.count")
    b.store(b.sub(i64(n), b.load(nans)), nans)   # now: the next NaN's position

    def fix(i):
        v = load(i)
        zero = ir.Constant(v.type, 0.0)
        with b.if_then(b.fcmp_unordered("uno", v, v)):
            q = b.load(nans)
            store(q, v)
            b.store(b.add(q, i64(1)), nans)
        with b.if_then(b.fcmp_ordered("==", v, zero)):
            q = b.load(below)
            store(q, v)
            b.store(b.add(q, i64(1)), below)
    for_range(b, n, fix, name="nw.fix")


def _lsd(L, keys, idx, counts, m, bits, ndigits, cnt_t):
    """LSD passes, ping-pong between keys[0]/idx[0] (holding the m pairs, m an i64 value) and
    keys[1]/idx[1], over the digits whose histograms (already in counts) are not all in one
    bucket. Returns the alloca holding the pointer to the sorted indices (idx None: keys only,
    the sorted keys)."""
    b = L.builder
    radix = 1 << bits
    pairs = idx is not None
    idx = idx if pairs else keys
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
                if pairs:
                    b.store(b.load(b.gep(is_, [i])), b.gep(id_, [pos]))
            for_span(b, i64(0), m, scatter, f"rs.pass{d}")
            for ptr, slot in zip((kd, id_, ks, is_), (src_k, src_i, dst_k, dst_i)):
                b.store(ptr, slot)
    return src_i


def _ctlz(b, v):
    i1 = ir.IntType(1)
    f = b.module.declare_intrinsic("llvm.ctlz", [I64], ir.FunctionType(I64, [I64, i1]))
    return b.call(f, [v, ir.Constant(i1, 0)])


def _window_low(b, diff, bits):
    """The lowest bit of the `bits`-bit window whose top is the highest set bit of diff (an
    i64 value, nonzero), clamped at 0."""
    lo = b.sub(b.sub(i64(63), _ctlz(b, diff)), i64(bits - 1))
    return b.select(b.icmp_signed("<", lo, i64(0)), i64(0), lo)


def _scatter_pass(L, src, dst, m, table, radix, lo, mask, cnt_t, name):
    """One stable counting scatter of the m pairs at src (keys, idx) to dst by the digit
    (key >> lo) & mask, with `radix` counters at table (cleared here). Leaves table[q] = the
    end of bucket q."""
    b = L.builder

    def slot_of(key):
        return b.gep(table, [b.and_(b.lshr(key, lo), mask)])
    _clear_span(b, table, radix, cnt_t, f"{name}.clear")

    def count(i):
        slot = slot_of(b.load(b.gep(src[0], [i])))
        b.store(b.add(b.load(slot), ir.Constant(cnt_t, 1)), slot)
    for_span(b, i64(0), m, count, f"{name}.count")
    _bucket_starts_span(L, table, radix, cnt_t, f"{name}.scan")

    def scatter(i):
        key = b.load(b.gep(src[0], [i]))
        slot = slot_of(key)
        pos = b.load(slot)
        b.store(b.add(pos, ir.Constant(cnt_t, 1)), slot)
        b.store(key, b.gep(dst[0], [pos]))
        if src[1] is not None:
            b.store(b.load(b.gep(src[1], [i])), b.gep(dst[1], [pos]))
    for_span(b, i64(0), m, scatter, f"{name}.scatter")


def _buckets(L, table, radix, cnt_t, body, name):
    """Call body(start, length) (i64 values) for each bucket 0 .. radix-1 whose end is
    table[q] (after _scatter_pass)."""
    b = L.builder
    start = L.alloca(I64, name=f"{name}.start")
    b.store(i64(0), start)

    def bucket(q):
        st = b.load(start)
        end = b.load(b.gep(table, [q]))
        end = b.zext(end, I64) if cnt_t != I64 else end
        body(st, b.sub(end, st))
        b.store(end, start)
    for_span(b, i64(0), radix, bucket, name)


def _lsd_in_place(L, keys, idx, counts, m, cnt_t):
    """Stable LSD sort (BUCKET_BITS digits; a digit all keys share costs no pass) of the m
    pairs at keys[0]/idx[0] (idx None: keys only), keys[1]/idx[1] as scratch; the sorted
    pairs end in keys[0]/idx[0]."""
    b = L.builder
    nb = -(-64 // BUCKET_BITS)
    _clear(b, counts, nb << BUCKET_BITS, cnt_t)
    for_span(b, i64(0), m, lambda i: _count(
        b, counts, b.load(b.gep(keys[0], [i])), BUCKET_BITS, nb, cnt_t), "bk.count")
    got = b.load(_lsd(L, keys, idx, counts, m, BUCKET_BITS, nb, cnt_t))
    idx = idx or (None, None)
    with b.if_then(b.icmp_unsigned("!=", got, idx[0] or keys[0])):  # odd number of passes
        _copy(b, (keys[1], idx[1]), (keys[0], idx[0]), m)


def _copy(b, src, dst, m):
    """dst[:m] = src[:m] for the (keys, idx) pointer pairs (idx None: keys only)."""
    def one(i):
        for s_, d_ in zip(src, dst):
            if s_ is not None:
                b.store(b.load(b.gep(s_, [i])), b.gep(d_, [i]))
    for_span(b, i64(0), m, one, "sort.copy")


def _msd_sort(L, bufs, n, cnt_t, diff):
    """The MSD plan: one counting scatter of the row (keys[0] -> keys[1]) by the msd_bits(n)
    bits just below the highest bit in which any key differs from the first (`diff`, nonzero,
    is the OR of key ^ first key), so each bucket is a contiguous, usually cache-sized run.
    Each bucket longer than INSERTION_MAX whose keys differ gets a second counting scatter
    (back to keys[0]) by the bits just below the highest bit in which its keys differ, about
    log2(length) + 1 of them (at most SUB_BITS: mostly one key or none per sub-bucket); the
    few sub-buckets still longer than INSERTION_MAX are LSD-sorted; one insertion sort over
    the bucket then orders the short sub-buckets, and the bucket is copied back. One last
    insertion sort over the row orders the short buckets. The sorted pairs end in
    bufs.keys[1]/idx[1] (bufs.idx None: keys only).

    Why two levels: float keys put sign, exponent and a few mantissa bits in the top 16, so a
    normal sample fills a few hundred of the 65536 buckets, a few hundred keys each; sorting
    them by LSD passes (each clearing and scanning 256 counters) or by insertion sort costs
    most of the time, one more scatter leaves runs of a key or two. Why insertion sorts over
    whole ranges, not per sub-bucket: a per-run loop costs a mispredicted branch or two per
    run; over the range, an element costs its inversions (all within its run) and one
    comparison."""
    b = L.builder
    bits = msd_bits(n)
    radix = 1 << bits
    table = bufs.counts
    sub_table = b.gep(table, [i64(radix)])
    lsd_counts = b.gep(sub_table, [i64(1 << SUB_BITS)])
    src = (bufs.keys[0], bufs.idx[0])
    dst = (bufs.keys[1], bufs.idx[1])
    pairs = bufs.idx[0] is not None
    _scatter_pass(L, src, dst, i64(n), table, i64(radix), _window_low(b, diff, bits),
                  i64(radix - 1), cnt_t, "msd")

    def bucket(st, m):
        keys = [b.gep(bufs.keys[1], [st]), b.gep(bufs.keys[0], [st])]
        idx = [b.gep(bufs.idx[1], [st]), b.gep(bufs.idx[0], [st])] if pairs else [None, None]
        with b.if_then(b.icmp_signed(">", m, i64(INSERTION_MAX))):
            d = _diff(L, keys[0], m)
            with b.if_then(b.icmp_unsigned("!=", d, i64(0))):  # else all equal: done
                # sub-digit width: bit_length(m) + 1 (2m .. 4m sub-buckets), <= SUB_BITS
                w = b.sub(i64(65), _ctlz(b, m))
                w = b.select(b.icmp_signed(">", w, i64(SUB_BITS)), i64(SUB_BITS), w)
                lo = b.sub(b.sub(i64(64), _ctlz(b, d)), w)
                lo = b.select(b.icmp_signed("<", lo, i64(0)), i64(0), lo)
                nsub = b.shl(i64(1), w)
                _scatter_pass(L, (keys[0], idx[0]), (keys[1], idx[1]), m, sub_table,
                              nsub, lo, b.sub(nsub, i64(1)), cnt_t, "sub")

                def sub_bucket(s2, m2):
                    with b.if_then(b.icmp_signed(">", m2, i64(INSERTION_MAX))):
                        k2 = [b.gep(keys[1], [s2]), b.gep(keys[0], [s2])]
                        i2 = [b.gep(idx[1], [s2]), b.gep(idx[0], [s2])] if pairs else None
                        # ties only (repeated values): already in order, no LSD passes
                        with b.if_then(b.icmp_unsigned("!=", _diff(L, k2[0], m2), i64(0))):
                            _lsd_in_place(L, k2, i2, lsd_counts, m2, cnt_t)
                _buckets(L, sub_table, nsub, cnt_t, sub_bucket, "sub.bucket")
                # the short runs: one insertion sort over the whole bucket (its keys are
                # out of order only within runs, so this costs the runs' inversions)
                _insertion_sort(L, keys[1], idx[1], m)
                _copy(b, (keys[1], idx[1]), (keys[0], idx[0]), m)
    _buckets(L, table, i64(radix), cnt_t, bucket, "msd.bucket")
    # the buckets of up to INSERTION_MAX keys, likewise: one insertion sort over the row
    _insertion_sort(L, bufs.keys[1], bufs.idx[1], i64(n))


def _diff(L, keys, m):
    """The OR of key ^ keys[0] over keys[0:m]: zero when all m keys are equal, else its
    highest bit is the highest in which they differ."""
    b = L.builder
    first = b.load(keys)
    acc = L.alloca(I64, name="sort.diff")
    b.store(i64(0), acc)
    for_span(b, i64(0), m, lambda i: b.store(b.or_(b.load(acc), b.xor(
        b.load(b.gep(keys, [i])), first)), acc), "sort.diff")
    return b.load(acc)


def _clear_span(b, counts, size, cnt_t, name):
    for_span(b, i64(0), size, lambda q: b.store(ir.Constant(cnt_t, 0), b.gep(counts, [q])),
             name)


def _bucket_starts_span(L, table, radix, cnt_t, name):
    """Counts -> bucket starts in place over `radix` (an i64 value) counters."""
    _bucket_starts(L.builder, table, L.alloca(cnt_t, name=f"{name}.total"), cnt_t, radix, name)


def _bucket_starts(b, table, total, cnt_t, radix, name):
    """Counts -> bucket starts in place: table[q] = sum(table[:q]) (an exclusive prefix sum over
    the `radix` counters of type cnt_t: a Python int, or an i64 value known only at run time);
    `total` is the scratch accumulator, ends at the sum."""
    b.store(ir.Constant(cnt_t, 0), total)

    def scan(q):
        slot = b.gep(table, [q])
        c = b.load(slot)
        t = b.load(total)
        b.store(t, slot)
        b.store(b.add(t, c), total)
    if isinstance(radix, int):
        for_range(b, radix, scan, name=name)
    else:
        for_span(b, i64(0), radix, scan, name)


def _msd_rows(L, key_at, outer, n, idx_t, emit, seen=None, finish=None):
    """The MSD plan over every row: fill the keys (and indices, unless idx_t is None), sort,
    then emit(dims, i, index, key) for each sorted position i (index None when keys only).
    seen(key) is called on each key as it is filled, finish(dims) after the row is emitted."""
    b = L.builder
    cnt_t = I32 if n < 2 ** 31 else I64
    ncounts = (1 << msd_bits(n)) + (1 << SUB_BITS) + (-(-64 // BUCKET_BITS) << BUCKET_BITS)
    words = -(-_Bufs.nbytes(n, idx_t, cnt_t, ncounts) // 8)
    raw = b.bitcast(L.temp_buffer((words,), np.int64).ptr, I8P)
    bufs = _Bufs(b, raw, n, idx_t, cnt_t)
    pairs = idx_t is not None
    # the vectorized quicksort, of signed keys (key ^ SIGN), where it is the faster plan
    quick = quicksorts(pairs)
    stored = (lambda k: b.xor(k, i64(_SIGN))) if quick else (lambda k: k)

    def row(dims):
        first = key_at(dims, i64(0))
        diff = L.alloca(I64, name="sort.diff")
        b.store(i64(0), diff)

        def fill(i):
            key = key_at(dims, i)
            b.store(stored(key), b.gep(bufs.keys[0], [i]))
            if pairs:
                b.store(b.trunc(i, idx_t) if idx_t != I64 else i, b.gep(bufs.idx[0], [i]))
            b.store(b.or_(b.load(diff), b.xor(key, first)), diff)
            if seen is not None:
                seen(key)
        for_range(b, n, fill, name="sfill")
        res_k = L.alloca(I64.as_pointer(), name="sort.keys")
        res_i = L.alloca(bufs.idx[0].type, name="sort.idx") if pairs else None
        b.store(bufs.keys[0], res_k)  # all keys equal: the identity
        if pairs:
            b.store(bufs.idx[0], res_i)
        d = b.load(diff)
        with b.if_then(b.icmp_unsigned("!=", d, i64(0))):
            if quick:
                vecsort.quicksort(L, bufs.keys, 1, n, lambda src, scratch, m, isrc, iscr:
                                  _lsd_signed(L, (src, scratch), (isrc, iscr) if pairs else
                                              None, bufs.counts, m, cnt_t),
                                  bufs.idx if pairs else None)
            else:
                _msd_sort(L, bufs, n, cnt_t, d)
            b.store(bufs.keys[1], res_k)
            if pairs:
                b.store(bufs.idx[1], res_i)
        keys = b.load(res_k)
        idx = b.load(res_i) if pairs else None
        for_range(b, n, lambda i: emit(dims, i, b.load(b.gep(idx, [i])) if pairs else None,
                                       stored(b.load(b.gep(keys, [i])))), name="sout")
        if finish is not None:
            finish(dims)
    loop_nest(b, outer, row)


def quicksorts(pairs):
    """Whether rows longer than NETWORK_ALWAYS (of (key, index) pairs or keys alone) go to
    vecsort's quicksort: on AVX-512 targets always, on AVX2 targets keys alone only (measured,
    gradient ratios to np.sort: rows of 1000 2.3-2.5 by the MSD plan, 2.8-3.1 by the quicksort,
    100 rows of 1000 3.1-3.2 against 3.4-3.5 (the network: 4.1-4.3); its 4-lane partitions
    move the indices as a second vector)."""
    which = vecsort.plan()
    return which == "avx512" or (which == "avx2" and not pairs)


def _lsd_signed(L, keys, idx, counts, m, cnt_t):
    """Stable sort of the m signed keys at keys[0] (indices along at idx[0], idx None: keys
    alone) in place by LSD passes, keys[1]/idx[1] as scratch (the quicksort's fallback past
    its depth limit): keys flipped to unsigned order and back."""
    b = L.builder

    def flip(i):
        p = b.gep(keys[0], [i])
        b.store(b.xor(b.load(p), i64(_SIGN)), p)
    for_span(b, i64(0), m, flip, "vs.unsigned")
    _lsd_in_place(L, list(keys), list(idx) if idx is not None else None, counts, m, cnt_t)
    for_span(b, i64(0), m, flip, "vs.signed")


def key_value(b, key, dtype):
    """The value of dtype (float64, float32 or int64) whose sort_key is `key`, for every key
    but those of zeros (-0.0 shares 0.0's) and NaNs (one key for every NaN)."""
    if dtype == np.int64:
        return b.xor(key, i64(_SIGN))
    # key >= 2**63 (unsigned): a positive float, only its sign bit flipped; else all bits
    mask = b.or_(b.xor(b.ashr(key, i64(63)), i64(-1)), i64(_SIGN))
    v = b.bitcast(b.xor(key, mask), F64)
    return v if dtype == np.float64 else b.fptrunc(v, ir.FloatType())


def _is_zero_or_nan_key(b, key):
    return b.or_(b.icmp_signed("==", key, i64(_SIGN)), b.icmp_signed("==", key, i64(-1)))


def _key32(b, v):
    """The unsigned 32-bit key (as an i64, zero-extended) of a float32 value, as sort_key."""
    i32 = ir.IntType(32)
    zero = ir.Constant(v.type, 0.0)
    v = b.select(b.fcmp_ordered("==", v, zero), zero, v)
    bits = b.bitcast(v, i32)
    flip = b.or_(b.ashr(bits, ir.Constant(i32, 31)), ir.Constant(i32, -(1 << 31)))
    key = b.select(b.fcmp_unordered("uno", v, v), ir.Constant(i32, -1), b.xor(bits, flip))
    return b.zext(key, I64)


def _value32(b, key):
    """The float32 whose _key32 is `key` (an i64 holding 32 bits), but for zeros and NaNs."""
    i32 = ir.IntType(32)
    k = b.trunc(key, i32)
    mask = b.or_(b.xor(b.ashr(k, ir.Constant(i32, 31)), ir.Constant(i32, -1)),
                 ir.Constant(i32, -(1 << 31)))
    return b.bitcast(b.xor(k, mask), ir.FloatType())


def _sort_rows(L, x, axis, vals, perm):
    """Sort every row of x along axis: the sorted values into vals and the permutation into
    perm (either None: not wanted). Plans: the network (short rows), else MSD of (key, index)
    pairs when the permutation is wanted, of keys alone when not; float32 rows always sort
    keys alone, each key the composite (32-bit key << 32 | index): unique, so the index
    order of ties is the key order, and the permutation is the low half."""
    b = L.builder
    shape = x.shape
    n = shape[axis]
    dtype = np.dtype(x.dtype)
    idx_t = I32 if n < 2 ** 31 else I64
    rows = int(np.prod(shape, dtype=np.int64)) // n
    # (with a quicksort, it and the MSD plan beat the network past NETWORK_ALWAYS: 100 rows
    # of 1000, AVX-512 2x; AVX2 forward (quicksort) 3x, gradient (MSD pairs) 1.3x. The
    # network of keys alone or composites is faster again on distinct values (AVX-512, 100
    # rows of 1000: np.sort 0.6x the time, the gradient 0.3x), but its permutation re-sorts
    # rows with ties among widely spread floats (rows of 1000 of ten integer values: 1.9x
    # the time of the quicksort plan) and near keys in bad order (2.7x))
    network = n <= NETWORK_ALWAYS or (rows >= LANES and n <= NETWORK_MAX
                                      and not vecsort.enabled())
    outer = tuple(1 if a == axis else d for a, d in enumerate(shape))

    def at(dims, i):
        d = list(dims)
        d[axis] = i
        return Index(shape, dims=d)

    def key_at(dims, i):
        v = L.load(x, at(dims, i))
        return sort_key(b, v if v.type in (F64, I64) else b.fpext(v, F64))

    def put(dims, p, i):
        if vals is not None:
            vals.store(b, at(dims, p), L.load(x, at(dims, i)))
        if perm is not None:
            perm.store(b, at(dims, p), i)

    if network:
        load = (lambda dims, i: L.load(x, at(dims, i)))
        if perm is None:    # values alone: keys alone
            _network_rows(L, load, outer, n, None,
                          lambda dims, p, v: vals.store(b, at(dims, p), v), dtype)
        else:
            _network_rows(L, load, outer, n, put)
        return

    def put_value(dims, p, i, special, value):
        """vals[p] = value (of the sorted key), or where `special` (zeros and NaNs: float keys
        that do not say sign or payload) the input's own element i."""
        with b.if_else(special) as (then, otherwise):
            with then:
                vals.store(b, at(dims, p), L.load(x, at(dims, i)))
            with otherwise:
                vals.store(b, at(dims, p), value)

    quick32 = dtype == np.float32 and perm is None and vecsort.enabled()
    if dtype == np.float32 and n <= 2 ** 32 and not quick32:
        def composite(dims, i):
            return b.or_(b.shl(_key32(b, L.load(x, at(dims, i))), i64(32)), i)

        def emit32(dims, p, _, key):
            i = b.and_(key, i64(0xFFFFFFFF))
            if perm is not None:
                perm.store(b, at(dims, p), i)
            if vals is not None:
                k32 = b.lshr(key, i64(32))
                special = b.or_(b.icmp_signed("==", k32, i64(1 << 31)),
                                b.icmp_signed("==", k32, i64(0xFFFFFFFF)))
                put_value(dims, p, i, special, _value32(b, k32))
        _msd_rows(L, composite, outer, n, None, emit32)
        return

    if perm is not None:
        def emit(dims, p, idx_v, key):
            i = b.sext(idx_v, I64) if idx_t != I64 else idx_v
            perm.store(b, at(dims, p), i)
            if vals is None:
                return
            if dtype == np.int64:
                vals.store(b, at(dims, p), key_value(b, key, dtype))
            else:
                put_value(dims, p, i, _is_zero_or_nan_key(b, key), key_value(b, key, dtype))
        _msd_rows(L, key_at, outer, n, idx_t, emit)
        return

    def emit_value(dims, p, idx_v, key):
        vals.store(b, at(dims, p), key_value(b, key, dtype))
    if dtype == np.int64:
        _msd_rows(L, key_at, outer, n, None, emit_value)
        return
    # float64 values alone: zeros and NaNs rewritten afterwards, in index order
    below = L.alloca(I64, name="sort.below")   # keys of negative numbers (before the zeros)
    nans = L.alloca(I64, name="sort.nans")
    special = L.alloca(I64, name="sort.special")  # zeros and NaNs

    def seen(key):
        b.store(b.add(b.load(below), b.zext(b.icmp_unsigned("<", key, i64(_SIGN)), I64)),
                below)
        b.store(b.add(b.load(nans), b.zext(b.icmp_signed("==", key, i64(-1)), I64)), nans)
        b.store(b.add(b.load(special), b.zext(_is_zero_or_nan_key(b, key), I64)), special)

    def finish(dims):
        with b.if_then(b.icmp_signed("!=", b.load(special), i64(0))):
            zero_at = L.alloca(I64, name="sort.zero_at")
            nan_at = L.alloca(I64, name="sort.nan_at")
            b.store(b.load(below), zero_at)
            b.store(b.sub(i64(n), b.load(nans)), nan_at)

            def fix(i):
                v = L.load(x, at(dims, i))
                zero = ir.Constant(v.type, 0.0)
                with b.if_then(b.fcmp_unordered("uno", v, v)):
                    q = b.load(nan_at)
                    vals.store(b, at(dims, q), v)
                    b.store(b.add(q, i64(1)), nan_at)
                with b.if_then(b.fcmp_ordered("==", v, zero)):
                    q = b.load(zero_at)
                    vals.store(b, at(dims, q), v)
                    b.store(b.add(q, i64(1)), zero_at)
            for_range(b, n, fix, name="sort.fix")
        for c in (below, nans, special):
            b.store(i64(0), c)

    for c in (below, nans, special):
        b.store(i64(0), c)
    if quick32:
        _quick32_rows(L, lambda dims, i: L.load(x, at(dims, i)), key_at, outer, n,
                      lambda dims, p, v: vals.store(b, at(dims, p), v), seen, finish)
        return
    _msd_rows(L, key_at, outer, n, None, emit_value, seen, finish)


def _quick32_rows(L, load, key_at, outer, n, store, seen, finish):
    """float32 values alone on an AVX-512 target: each row's 32-bit keys (signed: key ^ 2^31),
    16 to a vector, sorted by vecsort's quicksort (a heapsort past its depth limit) and mapped
    back to values; seen(key) gets each element's 64-bit key as it is filled (the zeros and
    NaNs are rewritten by finish(dims), as for float64)."""
    b = L.builder
    i32 = ir.IntType(32)
    raw = b.bitcast(L.temp_buffer((n,), np.int64).ptr, i32.as_pointer())   # 2n int32 keys
    keys = [raw, b.gep(raw, [i64(n)])]
    sign = ir.Constant(i32, -(1 << 31))

    def key(dims, i):
        return b.xor(b.trunc(_key32(b, load(dims, i)), i32), sign)

    def row(dims):
        first = key(dims, i64(0))
        diff = L.alloca(i32, name="sort.diff32")
        b.store(ir.Constant(i32, 0), diff)

        def fill(i):
            k = key(dims, i)
            b.store(k, b.gep(keys[0], [i]))
            b.store(b.or_(b.load(diff), b.xor(k, first)), diff)
            seen(key_at(dims, i))
        for_range(b, n, fill, name="sfill32")
        res = L.alloca(keys[0].type, name="sort.keys32")
        b.store(keys[0], res)   # all keys equal: as they are
        with b.if_then(b.icmp_unsigned("!=", b.load(diff), ir.Constant(i32, 0))):
            vecsort.quicksort(L, keys, 1, n,
                              lambda src, scratch, m, *_: vecsort.heapsort(L, src, m))
            b.store(keys[1], res)
        got = b.load(res)
        for_range(b, n, lambda i: store(dims, i, _value32(b, b.zext(b.xor(
            b.load(b.gep(got, [i])), sign), I64))), name="sout32")
        finish(dims)
    loop_nest(b, outer, row)


def argsort_kernel(L, eqn, outs):
    if outs[0].size:
        _sort_rows(L, eqn.inputs[0], eqn.params["axis"], None, outs[0])


def sort_kernel(L, eqn, outs):
    """sort: the sorted values and the permutation, each only when some equation reads it (a
    gradient program often reads the permutation alone). Without the permutation, the keys
    alone are sorted (a third less to move), each mapped back to its value; zeros and NaNs,
    whose keys do not say their sign or payload, are then rewritten in index order (what a
    stable sort gives) by one more pass over the row, run only when the row holds some."""
    vals, perm = outs
    read = [L.is_read(o) for o in eqn.outputs]
    if vals.size and any(read):
        _sort_rows(L, eqn.inputs[0], eqn.params["axis"], vals if read[0] else None,
                   perm if read[1] else None)


def unpermute_kernel(L, eqn, outs):
    """out[.., perm[.., j], ..] = g[.., j, ..]: one store per element. perm comes from a sort
    or partition (a permutation of each row); an index outside the row is clamped to 0 (a
    wrong value, never a store outside the array)."""
    out = outs[0]
    g, perm = eqn.inputs
    axis = eqn.params["axis"]
    n = out.shape[axis] if out.shape else 1
    b = L.builder

    def body(dims):
        j = L.load(perm, Index(perm.shape, dims=dims))
        j = b.select(b.icmp_unsigned("<", j, i64(n)), j, i64(0))
        d = list(dims)
        d[axis] = j
        out.store(b, Index(out.shape, dims=d), L.load(g, Index(g.shape, dims=dims)))
    loop_nest(b, out.shape, body)


EMITTERS["argsort"] = Emitter(None, argsort_kernel, "opaque")
EMITTERS["unpermute"] = Emitter(None, unpermute_kernel, "opaque")
EMITTERS["sort"] = Emitter(None, sort_kernel, "opaque")
