"""The selection kernels (argselect, argpartition): order statistics of each row, O(n) per
requested rank and deterministic, instead of a full sort.

Keys are sortkeys.order_key's (sortlib's map): a value's order-preserving unsigned 64-bit
key (-0.0 ties 0.0, NaNs last), so ranks are those of the stable sort when ties are broken
by index.

Rows from SAMPLE_MIN long, per rank: a bracket. Every (n/s)-th element is the sample (drawn
once per row); the sample's order statistics 1.5 sqrt(s) ranks either side of the target's
(selected by the radix path below, on the sample) bound it; one pass over the row counts the
elements below the lower bound and copies the indices of those within (branch-free: store at
the running count, advance it by the hit bit; values compared, no key computed), a few per
cent of the row; their keys are computed in a pass over them alone. If the rank lands among
them, the radix rounds below finish on them; if the sample misled, the row takes the radix
path. A rank among the previous rank's candidates reuses them (median's two middle ranks, a
quantile's lo/hi pair).

The radix path (shorter rows, and the fallback), per row, built once on first use:
1. one pass ORs and ANDs every key: the bits where keys differ are OR ^ AND, and the highest
   of them starts the digit window (data of one sign and exponent do not all fall in one
   bucket, as they would under a fixed top digit);
2. one pass histograms the window's digit (up to 16 bits; narrower for short rows), shared by
   every rank of the row;
3. per rank: the bucket holding it is found by a running sum of the counters; one pass copies
   that bucket's (key, index) pairs, in index order, to a candidate buffer, and ORs/ANDs their
   keys again. Then rounds on the candidates alone: a digit window below the previous one, a
   histogram, a copy of the one bucket, until one candidate is left or all candidates have
   equal keys; those are in index order, so the rank's element is the candidate at the
   remaining rank (the stable sort's tie order).
Every round's window starts at the highest bit where candidates differ, so each round splits
them; a bucket shares all bits down to the window's bottom, so there are at most 64 / 4
rounds.

argpartition selects its pivots so, then places every element with one more pass: a pivot at
its kth, another element after the running count of its segment (the pivots below it).
partition writes each element's value at that position (and its index, when read);
partition_grad runs the same pass backwards, dx[i] = g[element i's position]. On rows that are
contiguous in memory the bracket pass and the placing around one pivot go a vector at a time
(selectvec.py)."""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from . import selectvec
from .emitters import EMITTERS, Emitter
from .kernels import I1, I32, I64, Index, for_range, for_span, i64, loop_nest, while_loop
from .sortkeys import order_key

MIN_BITS, MAX_BITS = 4, 16   # digit widths: 2**bits counters per round
REGISTER_PIVOTS = 8          # argpartition with up to this many kth: counters in registers
SAMPLE_MIN = 1 << 13         # rows from this length: a sampled bracket first
SAMPLE_MAX = 4096            # sample size (n // 8 below that)


def sample_size(n):
    return min(SAMPLE_MAX, n // 8)


def bracket_halfwidth(s):
    """Sample ranks on each side of the target's: 3 standard deviations of a sample rank at
    the median (sqrt(s / 4)), so about 1 rank in 300 misses and falls back."""
    return max(2, 3 * int(np.sqrt(s)) // 2)


def first_bits(n):
    """Round 0's digit width for rows of n: about log2(n) bits (clearing and scanning the
    2**bits counters costs no more than the pass over the row), MIN_BITS..MAX_BITS."""
    return max(MIN_BITS, min(MAX_BITS, n.bit_length() - 1))


class _Selector:
    """Radix select over one row at a time; key_at(i) gives the row's key at i (an i64)."""

    def __init__(self, L, n, key_at, value_at=None, sample=True, row_at=None):
        self.L, self.b, self.n, self.key_at, self.value_at = L, L.builder, n, key_at, value_at
        # row_at(): the row's element pointer when it is contiguous (vector passes), or None
        self.row_at = row_at
        self.bits0 = first_bits(n)
        b = self.b

        def buf(size, name):
            return L.temp_buffer((size,), np.int64).ptr
        # C0: round 0's bucket (kept for the next rank); A/B: ping-pong for later rounds
        self.keys = [buf(n, "c0k"), buf(n, "ak"), buf(n, "bk")]
        self.idx = [buf(n, "c0i"), buf(n, "ai"), buf(n, "bi")]
        # digits never get wider than round 0's (later rounds have fewer candidates)
        counts = L.temp_buffer((2 << self.bits0,), np.int32).ptr
        self.counts0 = counts                                # round 0's histogram
        self.counts = b.gep(counts, [i64(1 << self.bits0)])  # later rounds'
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
        self.ready = a(I1, "sel.ready")                 # round 0's histogram is built
        self.below, self.cand = a(I64, "sel.below"), a(I64, "sel.cand")  # the bracket in C0
        self.klo, self.khi = a(I64, "sel.klo"), a(I64, "sel.khi")
        self.jlo, self.jhi = a(I64, "sel.jlo"), a(I64, "sel.jhi")  # their sample positions
        self.sampled = None
        if sample and n >= SAMPLE_MIN:
            self.s = sample_size(n)
            self.sample = buf(self.s, "sample")
            self.sampled = _Selector(L, self.s, lambda i: b.load(b.gep(self.sample, [i])),
                                     sample=False)

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
        """Forget the previous row's histogram and candidates; draw the sample (every
        (n / s)-th element: deterministic)."""
        b = self.b
        b.store(ir.Constant(I1, 0), self.ready)
        b.store(i64(-1), self.cached)
        b.store(i64(0), self.cand)
        b.store(i64(0), self.below)
        if self.sampled is not None:
            step = self.n // self.s
            for_range(b, self.s, lambda j: b.store(self.key_at(b.mul(j, i64(step))),
                                                   b.gep(self.sample, [j])), name="sel.sample")
            self.sampled.start_row()

    def _histogram0(self):
        """Pass 1 and 2, once per row and only if needed: the row's diff bits, round 0's
        histogram."""
        b = self.b
        with b.if_then(b.not_(b.load(self.ready))):
            b.store(ir.Constant(I1, 1), self.ready)
            b.store(i64(0), self.acc_or)
            b.store(i64(-1), self.acc_and)

            def fold(i):
                key = self.key_at(i)
                b.store(b.or_(b.load(self.acc_or), key), self.acc_or)
                b.store(b.and_(b.load(self.acc_and), key), self.acc_and)
            for_range(b, self.n, fold, name="sel.fold")
            diff = b.xor(b.load(self.acc_or), b.load(self.acc_and))
            b.store(diff, self.diff0)
            with b.if_then(b.icmp_unsigned("!=", diff, i64(0))):
                bits = i64(self.bits0)
                lo = self._low(self._high(diff), bits)
                b.store(lo, self.lo0)
                self._clear(self.counts0, i64(1 << self.bits0))
                self._histogram(self.counts0, i64(self.n), self.key_at, lo,
                                i64((1 << self.bits0) - 1))

    def _in_bracket(self, r):
        """An i1: rank r is among the candidates in C0 (ranks below .. below + cand)."""
        b = self.b
        below = b.load(self.below)
        return b.and_(b.icmp_signed("<=", below, r),
                      b.icmp_signed("<", r, b.add(below, b.load(self.cand))))

    def _bracket(self, r):
        """The sampled path: keys [klo, khi] from the sample's ranks around r's; one pass
        counts the row's keys below klo and copies those within to C0."""
        b = self.b
        s, h = self.s, bracket_halfwidth(self.s)
        at = b.sdiv(b.mul(r, i64(s)), i64(self.n))
        lo = b.sub(at, i64(h))
        lo = b.select(b.icmp_signed("<", lo, i64(0)), i64(0), lo)
        hi = b.add(at, i64(h))
        hi = b.select(b.icmp_signed(">", hi, i64(s - 1)), i64(s - 1), hi)
        sel = self.sampled
        # the sample's extremes stand for the row's: the bracket is open at that end
        b.store(i64(0), self.klo)
        with b.if_then(b.icmp_signed(">", lo, i64(0))):
            b.store(sel.select(lo), self.jlo)
            b.store(b.load(b.gep(self.sample, [b.load(self.jlo)])), self.klo)
        b.store(i64(-1), self.khi)
        with b.if_then(b.icmp_signed("<", hi, i64(s - 1))):
            b.store(sel.select(hi), self.jhi)
            b.store(b.load(b.gep(self.sample, [b.load(self.jhi)])), self.khi)
        b.store(i64(0), self.count)
        b.store(i64(0), self.below)
        dk, di = self.keys[0], self.idx[0]

        def keep(i, under, hit):
            # branch-free: store at the running count, advance it by the hit bit (a branch
            # measured 3x slower)
            c = b.load(self.count)
            b.store(i, b.gep(di, [c]))
            b.store(b.add(c, b.zext(hit, I64)), self.count)
            b.store(b.add(b.load(self.below), b.zext(under, I64)), self.below)

        def by_keys():
            klo, khi = b.load(self.klo), b.load(self.khi)

            def one(i):
                key = self.key_at(i)
                under = b.icmp_unsigned("<", key, klo)
                keep(i, under, b.and_(b.not_(under), b.icmp_unsigned("<=", key, khi)))
            for_range(b, self.n, one, name="sel.bracket")
        if self.value_at is None:
            by_keys()
        else:
            self._by_values(lo, hi, keep, by_keys)
        m = b.load(self.count)
        b.store(m, self.cand)
        b.store(m, self.m0)
        # the candidates' keys and diff bits: a pass over them alone (a few per cent of the row)
        b.store(i64(0), self.acc_or)
        b.store(i64(-1), self.acc_and)

        def fold(i):
            key = self.key_at(b.load(b.gep(di, [i])))
            b.store(key, b.gep(dk, [i]))
            b.store(b.or_(b.load(self.acc_or), key), self.acc_or)
            b.store(b.and_(b.load(self.acc_and), key), self.acc_and)
        for_span(b, i64(0), m, fold, "sel.bfold")
        b.store(b.xor(b.load(self.acc_or), b.load(self.acc_and)), self.diffc0)
        b.store(i64(-1), self.cached)  # C0 holds the bracket now, not a bucket

    def _by_values(self, lo, hi, keep, by_keys):
        """The bracket pass comparing values, not keys (one compare per bound, no key
        computed): the bounds are the sample elements' values, an open end -inf (or the
        smallest int) below and a flag above. A NaN bound takes the key pass instead."""
        b, L = self.b, self.L
        step = self.n // self.s
        one_v = self.value_at(i64(0))
        ty = one_v.type
        is_float = ty != I64
        lo_v, hi_v = L.alloca(ty, "sel.vlo"), L.alloca(ty, "sel.vhi")
        low = ir.Constant(ty, float("-inf")) if is_float else i64(-(1 << 63))
        b.store(low, lo_v)
        b.store(low, hi_v)
        with b.if_then(b.icmp_signed(">", lo, i64(0))):
            b.store(self.value_at(b.mul(b.load(self.jlo), i64(step))), lo_v)
        with b.if_then(b.icmp_signed("<", hi, i64(self.s - 1))):
            b.store(self.value_at(b.mul(b.load(self.jhi), i64(step))), hi_v)
        vlo, vhi = b.load(lo_v), b.load(hi_v)
        hi_open = b.icmp_signed(">=", hi, i64(self.s - 1))
        plan = selectvec.bracket_plan() if self.row_at is not None else None

        def run(one):
            if plan is None:
                for_range(b, self.n, one, name="sel.vbracket")
            else:
                selectvec.bracket(L, self.row_at(), self.n, vlo, vhi, hi_open,
                                  self.idx[0], self.count, self.below, one, plan)
        if not is_float:
            def one(i):
                v = self.value_at(i)
                under = b.icmp_signed("<", v, vlo)
                keep(i, under, b.and_(b.not_(under),
                                      b.or_(hi_open, b.icmp_signed("<=", v, vhi))))
            run(one)
            return
        nan = b.or_(b.fcmp_unordered("uno", vlo, vlo),
                    b.and_(b.not_(hi_open), b.fcmp_unordered("uno", vhi, vhi)))
        with b.if_else(nan) as (with_nan, plain):
            with with_nan:
                by_keys()
            with plain:
                def one(i):
                    v = self.value_at(i)
                    under = b.fcmp_ordered("<", v, vlo)  # NaN: not under (keys: NaNs last)
                    keep(i, under, b.and_(b.not_(under),
                                          b.or_(hi_open, b.fcmp_ordered("<=", v, vhi))))
                run(one)

    def select(self, r):
        """The index (i64) of the row's element at stable rank r (an i64 in [0, n))."""
        b = self.b
        result = self.L.alloca(I64, "sel.result")
        done = self.L.alloca(I1, "sel.done")
        b.store(ir.Constant(I1, 0), done)
        if self.sampled is not None:
            with b.if_then(b.not_(self._in_bracket(r))):
                self._bracket(r)
            with b.if_then(self._in_bracket(r)):
                b.store(b.sub(r, b.load(self.below)), self.r)
                self._refine(result)
                b.store(ir.Constant(I1, 1), done)
        with b.if_then(b.not_(b.load(done))):  # radix select from the whole row
            self._histogram0()
            b.store(r, result)  # all keys equal: the stable order is the identity
            with b.if_then(b.icmp_unsigned("!=", b.load(self.diff0), i64(0))):
                q, below = self._find(self.counts0, r)
                b.store(b.sub(r, below), self.r)
                with b.if_then(b.icmp_unsigned("!=", q, b.load(self.cached))):
                    m, diff = self._copy(i64(self.n), self.key_at, lambda i: i, q,
                                         b.load(self.lo0), i64((1 << self.bits0) - 1),
                                         self.keys[0], self.idx[0])
                    b.store(m, self.m0)
                    b.store(diff, self.diffc0)
                    b.store(q, self.cached)
                    b.store(i64(0), self.cand)  # C0 holds a bucket now, not the bracket
                self._refine(result)
        return b.load(result)

    def _refine(self, result):
        """Rounds on C0's m0 candidates for rank self.r among them; the index to `result`."""
        b = self.b
        b.store(self.keys[0], self.src_k)
        b.store(self.idx[0], self.src_i)
        b.store(b.load(self.m0), self.m)
        b.store(b.load(self.diffc0), self.diff)

        def more():
            return b.and_(b.icmp_signed(">", b.load(self.m), i64(1)),
                          b.icmp_unsigned("!=", b.load(self.diff), i64(0)))
        while_loop(b, more, self._round, "sel.round")
        b.store(b.load(b.gep(b.load(self.src_i), [b.load(self.r)])), result)

    def _round(self):
        """One refinement of the candidates src[0:m] into the other of A/B."""
        b = self.b
        m, diff = b.load(self.m), b.load(self.diff)
        width = b.sub(i64(64), b.call(self.ctlz, [m, ir.Constant(I1, 0)]))
        bits = b.sub(width, i64(1))
        bits = b.select(b.icmp_signed("<", bits, i64(MIN_BITS)), i64(MIN_BITS), bits)
        bits = b.select(b.icmp_signed(">", bits, i64(self.bits0)), i64(self.bits0), bits)
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
        return order_key(b, _row_value(L, x, axis)(dims, i))
    return key


def _row_value(L, x, axis):
    def value(dims, i):
        d = list(dims)
        d[axis] = i
        return L.load(x, Index(x.shape, dims=d))
    return value


def _row_pointer(L, buf, axis, state):
    """row_at for _Selector: the current row's element pointer when `buf` is a buffer whose
    rows along `axis` are contiguous (the vector passes' case), else None."""
    if buf is None or any(d != 1 for d in buf.shape[axis + 1:]):
        return None

    def row_at():
        d = list(state["dims"])
        d[axis] = i64(0)
        return buf.addr(L.builder, Index(buf.shape, dims=d))
    return row_at


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
    value = _row_value(L, x, axis)
    sel = _Selector(L, n, lambda i: key(state["dims"], i), lambda i: value(state["dims"], i),
                    row_at=_row_pointer(L, L.buffer_of(x), axis, state))

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
    if outs[0].size:
        _partition_rows(L, eqn, None, outs[0])


def partition_kernel(L, eqn, outs):
    """partition: the partitioned values and the permutation, each only when some equation
    reads it (np.partition's forward reads the values alone, its gradient the permutation)."""
    vals, perm = outs
    read = [L.is_read(o) for o in eqn.outputs]
    if vals.size and any(read):
        _partition_rows(L, eqn, vals if read[0] else None, perm if read[1] else None)


def partition_grad_kernel(L, eqn, outs):
    """partition_grad(x, g): the placing pass of partition(x) run backwards, dx[i] = g[the
    position partition gives element i]: no permutation stored, no scatter."""
    if outs[0].size:
        _partition_rows(L, eqn, None, None, (eqn.inputs[1], outs[0]))


def _partition_rows(L, eqn, vals, perm, grad=None):
    """Each row's stable-rank pivots selected, then every element placed by one pass: its
    index to perm and its value to vals at the same position (either may be None); with
    grad = (g, dx) instead, element i's dx is g at that position."""
    x = eqn.inputs[0]
    axis, kth = eqn.params["axis"], tuple(eqn.params["kth"])
    b = L.builder
    n, J = x.shape[axis], len(kth)
    outer = tuple(1 if a == axis else d for a, d in enumerate(x.shape))
    key = _row_key(L, x, axis)
    state = {}
    value = _row_value(L, x, axis)
    sel = _Selector(L, n, lambda i: key(state["dims"], i), lambda i: value(state["dims"], i),
                    row_at=_row_pointer(L, L.buffer_of(x), axis, state))
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
    counters = [L.alloca(I64, f"part.next{j}") for j in range(J + 1)] \
        if J <= REGISTER_PIVOTS else []

    def put(dims, pos, i, v=None):
        """Element i (value v, loaded if not given) at position pos of its row."""
        d = list(dims)
        d[axis] = pos
        at = Index(x.shape, dims=d)
        if grad is not None:
            di = list(dims)
            di[axis] = i
            grad[1].store(b, Index(x.shape, dims=di), L.load(grad[0], at))
        if perm is not None:
            perm.store(b, at, i)
        if vals is not None:
            vals.store(b, at, value(dims, i) if v is None else v)

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
            if J <= REGISTER_PIVOTS:
                pos = place_in_registers(k, i)
            else:
                pos = place_in_memory(k, i)
            put(dims, pos, i)

        if 1 < J <= REGISTER_PIVOTS:
            piv = [(b.load(b.gep(pk, [i64(j)])), b.load(b.gep(pi, [i64(j)]))) for j in range(J)]
            for c, start in zip(counters, [0] + [k + 1 for k in kth]):
                b.store(i64(start), c)

        def place_in_registers(k, i):
            # segment counters in registers: a select chain, no read-modify-write of memory
            belows = [b.or_(b.icmp_unsigned("<", kj, k),
                            b.and_(b.icmp_unsigned("==", kj, k), b.icmp_signed("<", ij, i)))
                      for kj, ij in piv]
            pos = b.load(counters[0])
            for j in range(J):  # past pivot j: segment j + 1
                pos = b.select(belows[j], b.load(counters[j + 1]), pos)
            for j in range(J):
                pos = b.select(b.icmp_signed("==", piv[j][1], i), i64(kth[j]), pos)
            # advance the counter of the segment taken (a pivot takes none)
            seg_of = [b.and_(belows[j - 1] if j else ir.Constant(I1, 1),
                             b.not_(belows[j]) if j < J else ir.Constant(I1, 1))
                      for j in range(J + 1)]
            pivot = ir.Constant(I1, 0)
            for j in range(J):
                pivot = b.or_(pivot, b.icmp_signed("==", piv[j][1], i))
            for j in range(J + 1):
                step = b.zext(b.and_(seg_of[j], b.not_(pivot)), I64)
                b.store(b.add(b.load(counters[j]), step), counters[j])
            return pos

        def place_in_memory(k, i):
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
            return pos
        if J == 1:
            place_around_one(dims)
        else:
            for_range(b, n, place, name="part.place")

    def place_around_one(dims):
        """One pivot at index ip, value p: compare values, not keys. Before ip, ties with p
        go below it (index order), after ip they go above: two loops, one compare each.
        Float compares are ordered (a NaN is never below a number; -0.0 ties 0.0, as the
        keys do); a NaN pivot has every number below it, and the NaNs before ip."""
        ip = b.load(pi)
        row_at = _row_pointer(L, L.buffer_of(x), axis, state)
        perm_at, vals_at = (_row_pointer(L, o, axis, state) for o in (perm, vals))
        g_at, dx_at = (_row_pointer(L, o, axis, state) for o in (
            (L.buffer_of(grad[0]), grad[1]) if grad is not None else (None, None)))
        d = list(dims)
        d[axis] = ip
        pval = L.load(x, Index(x.shape, dims=d))
        is_float = pval.type != I64
        p_nan = b.fcmp_unordered("uno", pval, pval) if is_float else None
        b.store(i64(0), counters[0])
        b.store(i64(kth[0] + 1), counters[1])

        def loop(lo, hi, ties_below, name):
            def one(i):
                d = list(dims)
                d[axis] = i
                v = L.load(x, Index(x.shape, dims=d))
                if is_float:
                    below = b.fcmp_ordered("<=" if ties_below else "<", v, pval)
                    v_nan = b.fcmp_unordered("uno", v, v)
                    below = b.or_(below, b.and_(p_nan, ir.Constant(I1, 1) if ties_below
                                                else b.not_(v_nan)))
                else:
                    below = b.icmp_signed("<=" if ties_below else "<", v, pval)
                lo_c, hi_c = b.load(counters[0]), b.load(counters[1])
                pos = b.select(below, lo_c, hi_c)
                b.store(b.add(lo_c, b.zext(below, I64)), counters[0])
                b.store(b.add(hi_c, b.zext(b.not_(below), I64)), counters[1])
                put(dims, pos, i, v)
            if row_at is None or not selectvec.place_plan() or \
                    (grad is not None and g_at is None):
                for_span(b, lo, hi, one, name)
            else:   # (x's rows contiguous: so are the outputs', of its shape)
                selectvec.place(L, row_at(), perm_at and perm_at(), vals_at and vals_at(), lo,
                                hi, pval, p_nan, ties_below, counters[0], counters[1], one,
                                grad=grad and (g_at(), dx_at()))
        loop(i64(0), ip, True, "part.before")
        loop(b.add(ip, i64(1)), i64(n), False, "part.after")
        put(dims, i64(kth[0]), ip, pval)
    loop_nest(b, outer, row)


EMITTERS["argselect"] = Emitter(None, argselect_kernel, "opaque")
EMITTERS["argpartition"] = Emitter(None, argpartition_kernel, "opaque")
EMITTERS["partition"] = Emitter(None, partition_kernel, "opaque")
EMITTERS["partition_grad"] = Emitter(None, partition_grad_kernel, "opaque")
