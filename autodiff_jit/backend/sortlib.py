"""The argsort kernel: per row, a stable LSD radix sort of (key, index) pairs, keys first mapped
to order-preserving unsigned 64-bit integers, so every comparison is integer.

Key map (numpy's order, kind="stable"): a float's bits, sign flipped if positive and all bits
flipped if negative, make unsigned order equal float order; -0.0 is first turned into 0.0 (numpy
compares them equal, so ties keep index order) and every NaN into the largest key (NaNs last, in
index order); an int64 has its sign bit flipped. float32 keys are widened to float64 (exact), so
their all-zero low digits cost nothing: see pass skipping below.

Radix sort (why, not a merge sort: a merge's next load waits on the previous comparison, so it
runs at the latency of load + compare + select per element and pass; a radix pass has no such
chain): one read of the row builds the histograms of every digit; a digit shared by the whole row
(e.g. the top digit of int64s of one sign and small range, the low digits of float32s) is skipped;
every other digit is one counting scatter between two ping-pong buffers. Digits are 11 bits (6
passes, 2048 counters each: the whole histogram table stays in L1/L2) for long rows, narrower
for short rows (fewer counters to clear and scan: digit_bits); rows of at most 64 are
insertion-sorted.
Indices are int32 in the buffers when the row length allows (less to move per pass).

One malloc'ed block serves every row; malloc and free are looked up in the running process with
ctypes and registered with the JIT under adj_* names (as blas.py does for BLAS), at import, so
code loaded from the disk cache resolves them too."""
from __future__ import annotations

import ctypes

from llvmlite import ir

from . import engine
from .emitters import EMITTERS, Emitter
from .kernels import F64, I8P, I32, I64, Index, for_range, i64, loop_nest

_LIBC = ctypes.CDLL(None)
for _name in ("malloc", "free"):
    engine.add_symbol("adj_" + _name, ctypes.cast(getattr(_LIBC, _name), ctypes.c_void_p).value)

INSERTION_MAX = 64   # rows up to this length: insertion sort (measured crossover: ~90)
DIGIT_BITS = (4, 5, 6, 8, 11)


def digit_bits(n):
    """The digit width for rows of n: a pass clears and scans 2**bits counters and moves n
    pairs (about three operations each), so short rows want narrow digits; 11 bits at most (the
    counters of all passes stay in L1/L2)."""
    return min(DIGIT_BITS, key=lambda b: -(-64 // b) * (2 * 2 ** b + 3 * n))
_SIGN = -(1 << 63)   # i64 constant 0x8000...0


def _declare(module, name, ret, args):
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ret, args), name)
    return fn


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


def _insertion_sort(L, keys, idx, n):
    """Stable insertion sort of keys[0:n] (unsigned) carrying idx along."""
    b = L.builder
    j = L.alloca(I64, name="ins.j")

    def outer(i):
        k = b.load(b.gep(keys, [i]))
        ix = b.load(b.gep(idx, [i]))
        b.store(i, j)

        def shifting():
            jv = b.load(j)
            prev = b.sub(jv, i64(1))
            safe = b.select(b.icmp_signed(">", jv, i64(0)), prev, i64(0))
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
    for_range(b, n, outer, name="ins", start=1)


def _radix_sort(L, bufs, n, bits, cnt_t, first_key):
    """LSD passes over the digits whose histograms (already counted into bufs.counts) are not
    all in one bucket; returns the allocas holding the sorted key and index pointers."""
    b = L.builder
    radix = 1 << bits
    ndigits = -(-64 // bits)
    src_k, src_i = L.alloca(bufs.keys[0].type), L.alloca(bufs.idx[0].type)
    dst_k, dst_i = L.alloca(bufs.keys[0].type), L.alloca(bufs.idx[0].type)
    b.store(bufs.keys[0], src_k)
    b.store(bufs.idx[0], src_i)
    b.store(bufs.keys[1], dst_k)
    b.store(bufs.idx[1], dst_i)
    total = L.alloca(cnt_t, name="rs.total")
    for d in range(ndigits):
        shift = d * bits
        counts = b.gep(bufs.counts, [i64(d * radix)])
        whole = b.load(b.gep(counts, [_digit(b, first_key, shift, bits)]))
        with b.if_then(b.icmp_unsigned("!=", whole, ir.Constant(cnt_t, n))):
            b.store(ir.Constant(cnt_t, 0), total)

            def scan(q):
                slot = b.gep(counts, [q])
                c = b.load(slot)
                t = b.load(total)
                b.store(t, slot)
                b.store(b.add(t, c), total)
            for_range(b, radix, scan, name=f"rs.scan{d}")
            ks, is_, kd, id_ = (b.load(p) for p in (src_k, src_i, dst_k, dst_i))

            def scatter(i):
                key = b.load(b.gep(ks, [i]))
                slot = b.gep(counts, [_digit(b, key, shift, bits)])
                pos = b.load(slot)
                b.store(b.add(pos, ir.Constant(cnt_t, 1)), slot)
                b.store(key, b.gep(kd, [pos]))
                b.store(b.load(b.gep(is_, [i])), b.gep(id_, [pos]))
            for_range(b, n, scatter, name=f"rs.pass{d}")
            b.store(kd, src_k)
            b.store(id_, src_i)
            b.store(ks, dst_k)
            b.store(is_, dst_i)
    return src_i


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
    small = n <= INSERTION_MAX
    bits = digit_bits(n)
    ndigits = -(-64 // bits)
    ncounts = 0 if small else ndigits << bits
    module = L.module
    malloc = _declare(module, "adj_malloc", I8P, [I64])
    free = _declare(module, "adj_free", ir.VoidType(), [I8P])
    raw = b.call(malloc, [i64(_Bufs.nbytes(n, idx_t, cnt_t, ncounts))])
    bufs = _Bufs(b, raw, n, idx_t, cnt_t)
    outer = tuple(1 if a == axis else d for a, d in enumerate(shape))
    one = ir.Constant(cnt_t, 1)

    def row(dims):
        if not small:
            def clear(q):
                b.store(ir.Constant(cnt_t, 0), b.gep(bufs.counts, [q]))
            for_range(b, ncounts, clear, name="rs.clear")

        def fill(i):
            d = list(dims)
            d[axis] = i
            v = L.load(x, Index(shape, dims=d))
            if v.type not in (F64, I64):
                v = b.fpext(v, F64)
            key = sort_key(b, v)
            b.store(key, b.gep(bufs.keys[0], [i]))
            b.store(b.trunc(i, idx_t) if idx_t != I64 else i, b.gep(bufs.idx[0], [i]))
            if not small:
                for dg in range(ndigits):
                    at = b.add(_digit(b, key, dg * bits, bits), i64(dg << bits))
                    slot = b.gep(bufs.counts, [at])
                    b.store(b.add(b.load(slot), one), slot)
        for_range(b, n, fill, name="sfill")
        if small:
            _insertion_sort(L, bufs.keys[0], bufs.idx[0], n)
            result = bufs.idx[0]
        else:
            result = b.load(_radix_sort(L, bufs, n, bits, cnt_t, b.load(bufs.keys[0])))

        def emit(i):
            d = list(dims)
            d[axis] = i
            v = b.load(b.gep(result, [i]))
            out.store(b, Index(out.shape, dims=d), b.sext(v, I64) if idx_t != I64 else v)
        for_range(b, n, emit, name="sout")
    loop_nest(b, outer, row)
    b.call(free, [raw])


EMITTERS["argsort"] = Emitter(None, argsort_kernel, "opaque")
