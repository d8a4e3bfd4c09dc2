"""The selection kernels (argselect, argpartition): order statistics of each row by radix
select, O(n) per requested rank and deterministic, instead of a full sort.

Keys are sortkeys.order_key's (sortlib's map): a value's order-preserving unsigned 64-bit key (-0.0 ties 0.0,
NaNs last), so ranks are those of the stable sort when ties are broken by index. Per row:
1. one pass ORs and ANDs every key: the bits where keys differ are OR ^ AND, and the highest
   of them starts the digit window (data of one sign and exponent do not all fall in one
   bucket, as they would under a fixed top digit);
2. one pass histograms the window's digit (up to 16 bits; narrower for short rows), shared by
   every rank of the row;
3. per rank: the bucket holding it is found by a running sum of the counters; one pass copies
   that bucket's (key, index) pairs, in index order, to a candidate buffer (reused when the
   next rank falls in the same bucket, as median's two middle ranks and each quantile's lo/hi
   pair usually do), and ORs/ANDs their keys again. Then rounds on the candidates alone: a
   digit window below the previous one, a histogram, a copy of the one bucket, until one
   candidate is left or all candidates have equal keys; those are in index order, so the
   rank's element is the candidate at the remaining rank (the stable sort's tie order).
Every round's window starts at the highest bit where candidates differ, so each round splits
them; a bucket shares all bits down to the window's bottom, so there are at most 64 / 4
rounds. Copies are branch-free (store at the running count, advance by the match bit).
argpartition selects its pivots so, then places every element with one more pass: a pivot at
its kth, another element after the running count of its segment (the pivots below it)."""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from .emitters import EMITTERS, Emitter
from .kernels import I1, I32, I64, Index, for_range, for_span, i64, loop_nest, while_loop
from .sortkeys import order_key

MIN_BITS, MAX_BITS = 4, 16   # digit widths: 2**bits counters per round


def first_bits(n):
    """Round 0's digit width for rows of n: about log2(n) bits (clearing and scanning the
    2**bits counters costs no more than the pass over the row), MIN_BITS..MAX_BITS."""
    return max(MIN_BITS, min(MAX_BITS, n.bit_length() - 1))


class _Selector:
    """Radix select over one row at a time; key_at(i) gives the row's key at i (an i64)."""

    def __init__(self, L, n, key_at):
        self.L, self.b, self.n, self.key_at = L, L.builder, n, key_at
        self.bits0 = first_bits(n)
        b = self.b

        def buf(size, name):
            return L.temp_buffer((size,), np.int64).ptr
        # C0: round 0's bucket (kept for the next rank); A/B: ping-pong for later rounds
        self.keys = [buf(n, "c0k"), buf(n, "ak"), buf(n, "bk")]
        self.idx = [buf(n, "c0i"), buf(n, "ai"), buf(n, "bi")]
        counts = L.temp_buffer((2 << MAX_BITS,), np.int32).ptr
        self.counts0 = counts                                # round 0's histogram
        self.counts = b.gep(counts, [i64(1 << MAX_BITS)])  # later rounds'
        ctlz_t = ir.FunctionType(I64, [I64, I1])
        self.ctlz = b.module.declare_intrinsic("llvm.ctlz", [I64], ctlz_t)
        a = L.alloca
        self.diff0, self.lo0 = a(I64, "sel.diff0"), a(I64, "sel.lo0")
        self.cached, self.m0, self.diffc0 = a(I64, "sel.cached"), a(I64, "sel.m0"), \
            a(I64, "sel.diffc0")
        self.src_k, self.src_i = a(self.keys[0].type, "sel.srck"), a(self.idx[0].type, "sel.srci")
        self.m, self.diff, self.r = a(I64, "sel.m"), a(I64, "sel.diff"), a(I64, "sel.r")
        self.acc_or, self.acc_and, self.count = a(I64, "sel.or"), a(I64, "sel.and"), \
            a(I64, "sel.count")

    # -- helpers -------------------------------------------------------------------------
    def _high(self, diff):
        """The highest set bit of a nonzero diff."""
        return self.b.sub(i64(63), self.b.call(self.ctlz, [diff, ir.Constant(I1, 0)]))

    def _low(self, high, bits):
        b = self.b
        lo = b.add(b.sub(high, bits), i64(1))
        return b.select(b.icmp_signed("<", lo, i64(0)), i64(0), lo)

    def _digit(self, key, lo, mask):
        return self.b.and_(self.b.lshr(key, lo), mask)

    def _clear(self, counts, size):
        b = self.b
        for_span(b, i64(0), size, lambda q: b.store(ir.Constant(I32, 0), b.gep(counts, [q])),
                 "sel.clear")

    def _histogram(self, counts, m, key_of, lo, mask):
        b = self.b

        def add(i):
            slot = b.gep(counts, [self._digit(key_of(i), lo, mask)])
            b.store(b.add(b.load(slot), ir.Constant(I32, 1)), slot)
        for_span(b, i64(0), m, add, "sel.hist")

    def _find(self, counts, r):
        """(bucket, count below it) of rank r: the first q with sum(counts[:q+1]) > r."""
        b = self.b
        q, below = self.L.alloca(I64, "sel.q"), self.L.alloca(I64, "sel.below")
        b.store(i64(0), q)
        b.store(i64(0), below)

        def here():
            return b.zext(b.load(b.gep(counts, [b.load(q)])), I64)

        def more():
            return b.icmp_signed("<=", b.add(b.load(below), here()), r)

        def step():
            b.store(b.add(b.load(below), here()), below)
            b.store(b.add(b.load(q), i64(1)), q)
        while_loop(b, more, step, "sel.find")
        return b.load(q), b.load(below)

    def _copy(self, m, key_of, idx_of, bucket, lo, mask, dk, di):
        """Copy the pairs whose digit is `bucket` to dk/di, in order; returns (count, diff)."""
        b = self.b
        for slot, v in ((self.acc_or, 0), (self.acc_and, -1), (self.count, 0)):
            b.store(i64(v), slot)

        def one(i):
            key = key_of(i)
            hit = b.icmp_unsigned("==", self._digit(key, lo, mask), bucket)
            c = b.load(self.count)
            b.store(key, b.gep(dk, [c]))
            b.store(idx_of(i), b.gep(di, [c]))
            b.store(b.add(c, b.zext(hit, I64)), self.count)
            b.store(b.or_(b.load(self.acc_or), b.select(hit, key, i64(0))), self.acc_or)
            b.store(b.and_(b.load(self.acc_and), b.select(hit, key, i64(-1))), self.acc_and)
        for_span(b, i64(0), m, one, "sel.copy")
        return b.load(self.count), b.xor(b.load(self.acc_or), b.load(self.acc_and))

    # -- per row -------------------------------------------------------------------------
    def start_row(self):
        """Pass 1 and 2 (the row's diff bits, round 0's histogram); forget the cached bucket."""
        b = self.b
        b.store(i64(0), self.acc_or)
        b.store(i64(-1), self.acc_and)

        def fold(i):
            key = self.key_at(i)
            b.store(b.or_(b.load(self.acc_or), key), self.acc_or)
            b.store(b.and_(b.load(self.acc_and), key), self.acc_and)
        for_range(b, self.n, fold, name="sel.fold")
        diff = b.xor(b.load(self.acc_or), b.load(self.acc_and))
        b.store(diff, self.diff0)
        b.store(i64(-1), self.cached)
        with b.if_then(b.icmp_unsigned("!=", diff, i64(0))):
            bits = i64(self.bits0)
            lo = self._low(self._high(diff), bits)
            b.store(lo, self.lo0)
            self._clear(self.counts0, i64(1 << self.bits0))
            self._histogram(self.counts0, i64(self.n), self.key_at, lo,
                            i64((1 << self.bits0) - 1))

    def select(self, r):
        """The index (i64) of the row's element at stable rank r (an i64 in [0, n))."""
        b = self.b
        result = self.L.alloca(I64, "sel.result")
        b.store(r, result)  # all keys equal: the stable order is the identity
        with b.if_then(b.icmp_unsigned("!=", b.load(self.diff0), i64(0))):
            q, below = self._find(self.counts0, r)
            b.store(b.sub(r, below), self.r)
            with b.if_then(b.icmp_unsigned("!=", q, b.load(self.cached))):
                m, diff = self._copy(i64(self.n), self.key_at, lambda i: i, q, b.load(self.lo0),
                                     i64((1 << self.bits0) - 1), self.keys[0], self.idx[0])
                b.store(m, self.m0)
                b.store(diff, self.diffc0)
                b.store(q, self.cached)
            b.store(self.keys[0], self.src_k)
            b.store(self.idx[0], self.src_i)
            b.store(b.load(self.m0), self.m)
            b.store(b.load(self.diffc0), self.diff)

            def more():
                return b.and_(b.icmp_signed(">", b.load(self.m), i64(1)),
                              b.icmp_unsigned("!=", b.load(self.diff), i64(0)))
            while_loop(b, more, self._round, "sel.round")
            b.store(b.load(b.gep(b.load(self.src_i), [b.load(self.r)])), result)
        return b.load(result)

    def _round(self):
        """One refinement of the candidates src[0:m] into the other of A/B."""
        b = self.b
        m, diff = b.load(self.m), b.load(self.diff)
        width = b.sub(i64(64), b.call(self.ctlz, [m, ir.Constant(I1, 0)]))
        bits = b.sub(width, i64(1))
        bits = b.select(b.icmp_signed("<", bits, i64(MIN_BITS)), i64(MIN_BITS), bits)
        bits = b.select(b.icmp_signed(">", bits, i64(MAX_BITS)), i64(MAX_BITS), bits)
        lo = self._low(self._high(diff), bits)
        size = b.shl(i64(1), bits)
        mask = b.sub(size, i64(1))
        sk, si = b.load(self.src_k), b.load(self.src_i)

        def key_of(i):
            return b.load(b.gep(sk, [i]))
        self._clear(self.counts, size)
        self._histogram(self.counts, m, key_of, lo, mask)
        q, below = self._find(self.counts, b.load(self.r))
        b.store(b.sub(b.load(self.r), below), self.r)
        to_a = b.icmp_unsigned("!=", sk, self.keys[1])
        dk = b.select(to_a, self.keys[1], self.keys[2])
        di = b.select(to_a, self.idx[1], self.idx[2])
        cnt, nd = self._copy(m, key_of, lambda i: b.load(b.gep(si, [i])), q, lo, mask, dk, di)
        b.store(dk, self.src_k)
        b.store(di, self.src_i)
        b.store(cnt, self.m)
        b.store(nd, self.diff)


def _row_key(L, x, axis):
    b = L.builder

    def key(dims, i):
        d = list(dims)
        d[axis] = i
        return order_key(b, L.load(x, Index(x.shape, dims=d)))
    return key


def argselect_kernel(L, eqn, outs):
    out = outs[0]
    x, ranks = eqn.inputs
    axis = eqn.params["axis"]
    b = L.builder
    n, k = x.shape[axis], ranks.shape[axis]
    if out.size == 0:
        return
    outer = tuple(1 if a == axis else d for a, d in enumerate(x.shape))
    if n == 0:
        loop_nest(b, out.shape, lambda dims: out.store(b, Index(out.shape, dims=dims), i64(0)))
        return
    key = _row_key(L, x, axis)
    state = {}
    sel = _Selector(L, n, lambda i: key(state["dims"], i))

    def row(dims):
        state["dims"] = dims
        sel.start_row()

        def one(j):
            d = list(dims)
            d[axis] = j
            at = Index(ranks.shape, dims=d)
            r = L.load(ranks, at)
            r = b.select(b.icmp_signed("<", r, i64(0)), i64(0), r)
            r = b.select(b.icmp_signed(">", r, i64(n - 1)), i64(n - 1), r)
            out.store(b, Index(out.shape, dims=d), sel.select(r))
        for_range(b, k, one, name="sel.rank")
    loop_nest(b, outer, row)


def argpartition_kernel(L, eqn, outs):
    out = outs[0]
    x = eqn.inputs[0]
    axis, kth = eqn.params["axis"], tuple(eqn.params["kth"])
    b = L.builder
    n, J = x.shape[axis], len(kth)
    if out.size == 0:
        return
    outer = tuple(1 if a == axis else d for a, d in enumerate(x.shape))
    key = _row_key(L, x, axis)
    state = {}
    sel = _Selector(L, n, lambda i: key(state["dims"], i))
    # per pivot: its key and index; per segment s (between pivots s-1 and s): its next slot
    pk = L.temp_buffer((J,), np.int64).ptr
    pi = L.temp_buffer((J,), np.int64).ptr
    nxt = L.temp_buffer((J + 1,), np.int64).ptr
    kth_t = ir.ArrayType(I64, J)
    kth_g = ir.GlobalVariable(b.module, kth_t, name=b.module.get_unique_name("sel.kth"))
    kth_g.initializer = ir.Constant(kth_t, list(kth))
    kth_g.global_constant = True
    kth_g.linkage = "internal"
    kth_p = b.gep(kth_g, [i64(0), i64(0)])
    seg = L.alloca(I64, "part.seg")
    hit = L.alloca(I1, "part.hit")

    def row(dims):
        state["dims"] = dims
        sel.start_row()

        def pivot(j):
            i = sel.select(b.load(b.gep(kth_p, [j])))
            b.store(i, b.gep(pi, [j]))
            b.store(key(dims, i), b.gep(pk, [j]))
        for_range(b, J, pivot, name="part.pivot")

        def start(s):
            # segment s starts after pivot s-1 (segment 0 at 0)
            prev = b.select(b.icmp_signed(">", s, i64(0)), b.sub(s, i64(1)), i64(0))
            at = b.add(b.load(b.gep(kth_p, [prev])), i64(1))
            b.store(b.select(b.icmp_signed(">", s, i64(0)), at, i64(0)), b.gep(nxt, [s]))
        for_range(b, J + 1, start, name="part.start")

        def place(i):
            k = key(dims, i)
            b.store(i64(0), seg)
            b.store(ir.Constant(I1, 0), hit)

            def cmp(j):
                kj, ij = b.load(b.gep(pk, [j])), b.load(b.gep(pi, [j]))
                below = b.or_(b.icmp_unsigned("<", kj, k),
                              b.and_(b.icmp_unsigned("==", kj, k), b.icmp_signed("<", ij, i)))
                b.store(b.add(b.load(seg), b.zext(below, I64)), seg)
                b.store(b.or_(b.load(hit), b.icmp_signed("==", ij, i)), hit)
            for_range(b, J, cmp, name="part.cmp")
            s = b.load(seg)
            slot = b.gep(nxt, [s])
            free = b.load(slot)
            is_pivot = b.load(hit)
            pos = b.select(is_pivot, b.load(b.gep(kth_p, [b.select(
                b.icmp_signed("<", s, i64(J)), s, i64(J - 1))])), free)
            b.store(b.select(is_pivot, free, b.add(free, i64(1))), slot)
            d = list(dims)
            d[axis] = pos
            out.store(b, Index(out.shape, dims=d), i)
        for_range(b, n, place, name="part.place")
    loop_nest(b, outer, row)


EMITTERS["argselect"] = Emitter(None, argselect_kernel, "opaque")
EMITTERS["argpartition"] = Emitter(None, argpartition_kernel, "opaque")
