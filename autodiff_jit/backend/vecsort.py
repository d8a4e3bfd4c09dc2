"""A vectorized quicksort of signed 64-bit keys, for targets with AVX-512 (vpcompressq, 32
vector registers); sortlib uses it for rows whose keys alone are sorted (the values of
np.sort, float32 composites).

Plan (the scheme of x86-simd-sort, numpy's np.sort on AVX-512/AVX2 CPUs): a range longer than
BASE_MAX is partitioned around a pivot (the median of 8 samples, sorted by an in-register
network), W keys at a time, by one vector compare and two compress-stores (the keys below the
pivot packed from the front of the destination, the rest from the back). The partition goes
from one buffer to the other (the ranges of pending tasks are disjoint, so each task owns its
range in both), which keeps each pass a sequential read and two sequential write streams. A
range of at most BASE_MAX keys is sorted in registers by a bitonic network over N/W vectors
(N the next power of two >= 16, padded with the largest key; 128 ran no faster than 64 and
took 2 s more to compile), lane exchanges inside a vector
by constant shuffles and blends, and stored to the output buffer. Ties: when no key is below
the pivot (it is the smallest), the range is split by key <= pivot instead, and the keys equal
to it are done. A task deeper than 2 log2(n) levels (an adversarial input) is handed to
`fallback` (an O(n) -pass radix sort), which bounds both the time and the task stack.

Keys only: equal keys are indistinguishable, so stability needs no care (sortlib's float32
composites are unique; the float64 values of equal keys are rewritten in index order by
sortlib). Generic LLVM vector IR: correct on any target (an AVX2 target expands the
compress-stores into per-lane stores, which is slow: sortlib uses this plan only when the target
has AVX-512, `enabled()`)."""
from __future__ import annotations

from llvmlite import ir

from . import engine
from .kernels import I1, I32, I64, for_span, i64, while_loop

W = 8                 # lanes of a <W x i64> vector (one zmm)
BASE_MAX = 64         # ranges up to this long: one in-register network (8 zmm)
DEPTH_FACTOR = 2      # tasks deeper than DEPTH_FACTOR * log2(n) go to the fallback
VEC = ir.VectorType(I64, W)
MASK = ir.VectorType(I1, W)
KEY_MAX = (1 << 63) - 1

# None: by the target's features (AVX-512F); True/False: forced (tests run both plans on any
# x86 host)
FORCE: bool | None = None


def enabled() -> bool:
    """Whether sortlib should sort keys by this plan on the compile target."""
    if FORCE is not None:
        return FORCE
    return "+avx512f" in engine.host_cpu_features().split(",")


def _declare(b, name, ret, args):
    m = b.module
    fn = m.globals.get(name)
    if fn is None:
        fn = ir.Function(m, ir.FunctionType(ret, args), name=name)
    return fn


def _splat(b, v):
    vec = ir.VectorType(v.type, W)
    one = b.insert_element(ir.Constant(vec, ir.Undefined), v, i64(0))
    return b.shuffle_vector(one, ir.Constant(vec, ir.Undefined),
                            ir.Constant(ir.VectorType(I32, W), [0] * W))


def _min_max(b, a, c):
    lt = b.icmp_signed("<", a, c)
    return b.select(lt, a, c), b.select(lt, c, a)


def network(b, vs):
    """Bitonic sort (ascending) of the len(vs) * W keys held in the vectors vs (a power of two
    of them), position q * W + l in lane l of vs[q]; returns the sorted vectors."""
    vs = list(vs)
    n = len(vs) * W
    k = 2
    while k <= n:
        j = k // 2
        while j >= 1:
            if j >= W:
                jv = j // W
                for q in range(len(vs)):
                    if q & jv == 0:
                        lo, hi = _min_max(b, vs[q], vs[q + jv])
                        up = (q * W) & k == 0   # the block's direction: constant in a vector
                        vs[q], vs[q + jv] = (lo, hi) if up else (hi, lo)
            else:
                perm = ir.Constant(ir.VectorType(I32, W), [lane ^ j for lane in range(W)])
                for q in range(len(vs)):
                    other = b.shuffle_vector(vs[q], ir.Constant(VEC, ir.Undefined), perm)
                    lo, hi = _min_max(b, vs[q], other)
                    take_lo = [((lane & j) == 0) == (((q * W + lane) & k) == 0)
                               for lane in range(W)]
                    vs[q] = b.select(ir.Constant(MASK, [int(t) for t in take_lo]), lo, hi)
            j //= 2
        k *= 2
    return vs


def _lane_mask(b, start, m):
    """Lanes l with start + l < m (start an int, m an i64 value)."""
    lanes = ir.Constant(VEC, [start + lane for lane in range(W)])
    return b.icmp_signed("<", lanes, _splat(b, m))


def _base_sort(b, src, out, m):
    """Sort the m <= BASE_MAX keys at src into out (may be src) by one network, by the smallest
    size of 16, 32, .. BASE_MAX that holds them. Each size is its own function (LLVM's time
    on one large function grows faster than linearly: ~3x the compile time inline)."""
    sizes = [s for s in (16, 32, 64, 128) if s <= BASE_MAX]
    done = b.function.append_basic_block("vs.base.done")
    for size in sizes:
        here = b.block
        this = b.function.append_basic_block(f"vs.base{size}")
        nxt = b.function.append_basic_block(f"vs.base{size}.next")
        b.position_at_end(here)
        if size == sizes[-1]:
            b.branch(this)
        else:
            b.cbranch(b.icmp_signed("<=", m, i64(size)), this, nxt)
        b.position_at_end(this)
        b.call(_network_function(b.module, size), [src, out, m])
        b.branch(done)
        b.position_at_end(nxt)
    b.unreachable()
    b.position_at_end(done)


def _network_function(module, size):
    """void adj_sort_net<size>(i64* src, i64* out, i64 m): out[:m] = sorted(src[:m]), m <=
    size, in registers (padded with KEY_MAX)."""
    name = f"adj_sort_net{size}"
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    pi = I64.as_pointer()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [pi, pi, I64]), name=name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    src, out, m = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    pt = VEC.as_pointer()
    load = _declare(b, "llvm.masked.load.v8i64.p0", VEC, [pt, I32, MASK, VEC])
    store = _declare(b, "llvm.masked.store.v8i64.p0", ir.VoidType(), [VEC, pt, I32, MASK])
    pad = ir.Constant(VEC, [KEY_MAX] * W)
    vs = []
    for q in range(size // W):
        p = b.bitcast(b.gep(src, [i64(q * W)]), pt)
        vs.append(b.call(load, [p, ir.Constant(I32, 8), _lane_mask(b, q * W, m), pad]))
    for q, v in enumerate(network(b, vs)):
        p = b.bitcast(b.gep(out, [i64(q * W)]), pt)
        b.call(store, [v, p, ir.Constant(I32, 8), _lane_mask(b, q * W, m)])
    b.ret_void()
    return fn


def _pivot(b, src, m):
    """The median of 8 keys spread over src[0:m] (m >= 16)."""
    v = ir.Constant(VEC, ir.Undefined)
    step = b.ashr(m, i64(3))
    for t in range(W):
        at = b.add(b.ashr(step, i64(1)), b.mul(step, i64(t)))
        v = b.insert_element(v, b.load(b.gep(src, [at])), i64(t))
    return b.extract_element(network(b, [v])[0], i64(W // 2))


def _partition(L, src, dst, m, pivot, strict):
    """Write the m keys at src to dst, those below the pivot (strict: <, else <=) first, in
    any order; return how many they are (an i64 value)."""
    b = L.builder
    compress = _declare(b, "llvm.experimental.vector.compress.v8i64", VEC, [VEC, MASK, VEC])
    store = _declare(b, "llvm.masked.store.v8i64.p0", ir.VoidType(),
                     [VEC, VEC.as_pointer(), I32, MASK])
    i8 = ir.IntType(8)
    ctpop = b.module.declare_intrinsic("llvm.ctpop", [i8], ir.FunctionType(i8, [i8]))
    left = L.alloca(I64, name="vs.left")
    right = L.alloca(I64, name="vs.right")
    b.store(i64(0), left)
    b.store(m, right)
    pv = _splat(b, pivot)
    op = "<" if strict else "<="
    full = b.and_(m, i64(-W))
    undef = ir.Constant(VEC, ir.Undefined)
    reverse = ir.Constant(ir.VectorType(I32, W), list(range(W - 1, -1, -1)))
    iota = ir.Constant(VEC, list(range(W)))

    def block(t):
        # the keys below the pivot packed into the low lanes and stored whole at `left` (the
        # lanes past them land in the gap, which later keys fill); the others packed, lanes
        # reversed, and stored masked so that they end at `right` (the gap is >= W keys)
        i = b.mul(t, i64(W))
        v = b.load(b.bitcast(b.gep(src, [i]), VEC.as_pointer()), align=8)
        below = b.icmp_signed(op, v, pv)
        count = b.zext(b.call(ctpop, [b.bitcast(below, i8)]), I64)
        lo = b.load(left)
        end = b.load(right)
        packed = b.call(compress, [v, below, undef])
        b.store(packed, b.bitcast(b.gep(dst, [lo]), VEC.as_pointer()), align=8)
        rest = b.shuffle_vector(b.call(compress, [v, b.not_(below), undef]), undef, reverse)
        top = b.icmp_signed(">=", iota, _splat(b, count))
        b.call(store, [rest, b.bitcast(b.gep(dst, [b.sub(end, i64(W))]), VEC.as_pointer()),
                       ir.Constant(I32, 8), top])
        b.store(b.add(lo, count), left)
        b.store(b.sub(end, b.sub(i64(W), count)), right)
    for_span(b, i64(0), b.ashr(full, i64(3)), block, "vs.part")

    def tail(i):
        # branch-free: store at both ends; the wrong one is a slot a later key fills
        key = b.load(b.gep(src, [i]))
        below = b.icmp_signed(op, key, pivot)
        lo = b.load(left)
        hi = b.sub(b.load(right), i64(1))
        b.store(key, b.gep(dst, [hi]))
        b.store(key, b.gep(dst, [lo]))
        b.store(b.add(lo, b.zext(below, I64)), left)
        b.store(b.add(hi, b.zext(below, I64)), right)
    for_span(b, full, m, tail, "vs.tail")
    return b.load(left)


def quicksort(L, keys, out, n, fallback):
    """Sort the n (a Python int > BASE_MAX) signed i64 keys at keys[0], keys[1] as the
    partitions' second buffer; the sorted keys end in keys[out] (0 or 1). fallback(src,
    scratch, m) sorts src[0:m] in place (scratch: m free keys), for tasks past the depth
    limit."""
    b = L.builder
    depth_max = DEPTH_FACTOR * n.bit_length()
    cap = depth_max + 2
    stack = [L.alloca(ir.ArrayType(I64, cap), name=f"vs.stack{f}") for f in range(4)]
    sp = L.alloca(I64, name="vs.sp")
    dest = keys[out]

    def slot(f, at):
        return b.gep(stack[f], [i64(0), at])

    def push(lo, hi, parity, depth):
        at = b.load(sp)
        for f, v in enumerate((lo, hi, parity, depth)):
            b.store(v, slot(f, at))
        b.store(b.add(at, i64(1)), sp)

    b.store(i64(0), sp)
    push(i64(0), i64(n), i64(0), i64(0))

    def task():
        at = b.sub(b.load(sp), i64(1))
        b.store(at, sp)
        lo, hi, parity, depth = (b.load(slot(f, at)) for f in range(4))
        m = b.sub(hi, lo)
        odd = b.icmp_signed("!=", parity, i64(0))
        src = b.gep(b.select(odd, keys[1], keys[0]), [lo])
        other = b.gep(b.select(odd, keys[0], keys[1]), [lo])
        with b.if_else(b.icmp_signed("<=", m, i64(BASE_MAX))) as (small, large):
            with small:
                _base_sort(b, src, b.gep(dest, [lo]), m)
            with large:
                with b.if_else(b.icmp_signed(">=", depth, i64(depth_max))) as (deep, fine):
                    with deep:
                        fallback(src, other, m)
                        with b.if_then(b.icmp_unsigned("!=", src, b.gep(dest, [lo]))):
                            _copy(b, src, b.gep(dest, [lo]), m)
                    with fine:
                        _split(L, src, other, dest, lo, hi, m, parity, depth, push)
    while_loop(b, lambda: b.icmp_signed(">", b.load(sp), i64(0)), task, "vs.task")


def _split(L, src, other, dest, lo, hi, m, parity, depth, push):
    """Partition one task's range into the other buffer and push the parts."""
    b = L.builder
    pivot = _pivot(b, src, m)
    flip = b.xor(parity, i64(1))
    deeper = b.add(depth, i64(1))
    below = _partition(L, src, other, m, pivot, True)
    with b.if_else(b.icmp_signed("==", below, i64(0))) as (smallest, usual):
        with smallest:
            # the pivot is the smallest key: split off the keys equal to it (sorted)
            equal = _partition(L, src, other, m, pivot, False)
            pv = b.gep(dest, [lo])
            for_span(b, i64(0), equal, lambda i: b.store(pivot, b.gep(pv, [i])), "vs.equal")
            with b.if_then(b.icmp_signed("<", equal, m)):
                push(b.add(lo, equal), hi, flip, deeper)
        with usual:
            mid = b.add(lo, below)
            push(mid, hi, flip, deeper)
            push(lo, mid, flip, deeper)


def _copy(b, src, dst, m):
    for_span(b, i64(0), m, lambda i: b.store(b.load(b.gep(src, [i])), b.gep(dst, [i])),
             "vs.copy")
