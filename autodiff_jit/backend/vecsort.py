"""A vectorized quicksort of signed integer keys (64-bit or 32-bit), alone or with an index
each, for x86 targets with AVX-512 (vpcompressq/d) or AVX2 (vpermd): sortlib's plan there for
rows longer than 128 (on AVX2 of keys alone: sortlib.quicksorts).

Plan (the scheme of x86-simd-sort, numpy's np.sort on AVX-512 CPUs): a range longer than
BASE_MAX is partitioned around a pivot (the median of one vector of spread samples, sorted by
an in-register network), one vector of keys at a time, by one vector compare and two
compresses (the keys below the pivot packed from the front of the destination, the rest from
the back). The partition goes from one buffer to the other (the ranges of pending tasks are
disjoint, so each task owns its range in both): each pass is a sequential read and two
sequential write streams. A range of at most BASE_MAX keys is sorted in registers by a
bitonic network over 16, 32 or 64 positions (padded with the largest key; lane exchanges
inside a vector by constant shuffles and blends; 128 ran no faster than 64 and took 2 s more
to compile) and stored to the output buffer. Ties: when no key is below the pivot (it is the
smallest), the range is split by key <= pivot instead, and the keys equal to it are done. A
task deeper than DEPTH_FACTOR log2(n) levels (an adversarial input) is handed to `fallback`
(sortlib's LSD passes, a heapsort for 32-bit keys), which bounds both the time and the task
stack.

Order of equal keys: keys alone need none (equal keys are indistinguishable; sortlib rewrites
the float values whose keys do not say sign or payload). (key, index) pairs: see quicksort.
Partitions by target (`plan()`): AVX-512 compresses 8 (16) keys a vector; AVX2 has no
compress (LLVM makes it a chain of per-lane operations), so there the partition takes one
ymm (4 i64 or 8 i32 keys) at a time and one permutation from a constant table indexed by the
comparison's bit mask (vpermd), the scheme of the published AVX2 quicksorts (x86-simd-sort's
AVX2 path). The networks are generic vector IR (an <8 x i64> is two ymm on AVX2), smaller
there (AVX2_BASE_MAX: 16 vector registers, and compile time).
sortlib uses the quicksort only where `enabled()`; FORCE picks a plan (tests, benchmarks) and
is part of the disk cache's key."""
from __future__ import annotations

from llvmlite import ir

from . import engine
from .kernels import I1, I32, I64, for_span, i64, while_loop

BASE_MAX = 64         # ranges up to this long: one in-register network (<= 8 zmm)
BASE_MAX32 = 128      # ... for 32-bit keys alone (8 zmm, as 64 of 64 bits; 1e5 float32s:
#                       np.sort 1.64x numpy's time -> 1.35x, +0.2 s compile; 256: no faster,
#                       +1 s)
PAIRS_BASE_MAX = 32   # ... for (key, index) pairs (a network of 64 pairs: +0.8 s compile)
AVX2_BASE_MAX = 32    # ... on AVX2 targets, keys alone (64 ran no faster, +0.3 s compile)
DEPTH_FACTOR = 2      # tasks deeper than DEPTH_FACTOR * log2(n) go to the fallback
ZMM_BITS = 512        # keys of w bits: 512 / w lanes (8 i64, 16 i32)


def lanes(ty):
    """Lanes of one zmm of keys of integer type ty."""
    return ZMM_BITS // ty.width


def _mask_type(w):
    return ir.VectorType(I1, w)

# None: by the target's features; "avx512", "avx2" or "off": forced (tests run each plan the
# host can execute)
FORCE: str | None = None
PLANS = ("avx512", "avx2")


def plan() -> str | None:
    """The partition sortlib's quicksort uses on the compile target: "avx512" (compresses),
    "avx2" (permutation tables and vpermd), or None (no quicksort: sortlib's radix plans)."""
    if FORCE is not None:
        return FORCE if FORCE in PLANS else None
    features = engine.host_cpu_features().split(",")
    if "+avx512f" in features:
        return "avx512"
    return "avx2" if "+avx2" in features else None


def enabled() -> bool:
    """Whether sortlib should sort keys by a quicksort on the compile target."""
    return plan() is not None


def base_size(pairs: bool, width: int = 64) -> int:
    """The longest range the quicksort sorts by one in-register network, by plan (and key
    width: 32-bit keys alone fill half the registers of 64-bit ones)."""
    if plan() == "avx2":
        return AVX2_BASE_MAX
    if pairs:
        return PAIRS_BASE_MAX
    return BASE_MAX32 if width == 32 else BASE_MAX


def _declare(b, name, ret, args):
    m = b.module
    fn = m.globals.get(name)
    if fn is None:
        fn = ir.Function(m, ir.FunctionType(ret, args), name=name)
    return fn


def _splat(b, v, w):
    vec = ir.VectorType(v.type, w)
    one = b.insert_element(ir.Constant(vec, ir.Undefined), v, i64(0))
    return b.shuffle_vector(one, ir.Constant(vec, ir.Undefined),
                            ir.Constant(ir.VectorType(I32, w), [0] * w))


def _less(b, a, c):
    """a < c lane-wise for (key,) or (key, index) vector tuples (pairs: lexicographically)."""
    lt = b.icmp_signed("<", a[0], c[0])
    if len(a) == 1:
        return lt
    return b.or_(lt, b.and_(b.icmp_signed("==", a[0], c[0]), b.icmp_signed("<", a[1], c[1])))


def _min_max(b, a, c):
    lt = _less(b, a, c)
    return (tuple(b.select(lt, x, y) for x, y in zip(a, c)),
            tuple(b.select(lt, y, x) for x, y in zip(a, c)))


def network(b, vs):
    """Bitonic sort (ascending) of the len(vs) * W items held in vs (a power of two of (key,)
    or (key, index) vector tuples: pairs order lexicographically), position q * W + l in
    lane l of vs[q]; returns the sorted tuples."""
    vs = list(vs)
    W = vs[0][0].type.count
    MASK = _mask_type(W)
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
                    other = tuple(b.shuffle_vector(x, ir.Constant(x.type, ir.Undefined), perm)
                                  for x in vs[q])
                    lo, hi = _min_max(b, vs[q], other)
                    take_lo = ir.Constant(MASK, [
                        int(((lane & j) == 0) == (((q * W + lane) & k) == 0))
                        for lane in range(W)])
                    vs[q] = tuple(b.select(take_lo, x, y) for x, y in zip(lo, hi))
            j //= 2
        k *= 2
    return vs


def _lane_mask(b, start, m, w):
    """Lanes l < w with start + l < m (start an int, m an i64 value)."""
    at = ir.Constant(ir.VectorType(I64, w), [start + lane for lane in range(w)])
    return b.icmp_signed("<", at, _splat(b, m, w))


def _base_sort(b, src, out, m, idx_t, base_max):
    """Sort the m <= base_max items at src (a tuple of key and index pointers: pairs when the
    index is there) into out (may be src) by one network, by the smallest size of 16, 32, ..
    base_max that holds them. Each size is its own function (LLVM's time on one large function
    grows faster than linearly: ~3x the compile time inline)."""
    sizes = [s for s in (16, 32, 64, 128, 256) if s <= base_max]
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
        b.call(_network_function(b.module, size, src[0].type.pointee, idx_t),
               [*src, *out, m])
        b.branch(done)
        b.position_at_end(nxt)
    b.unreachable()
    b.position_at_end(done)


def _masked(b, ty, W):
    vec = ir.VectorType(ty, W)
    MASK = _mask_type(W)
    pt = vec.as_pointer()
    suffix = f"v{W}i{ty.width}.p0"
    return (_declare(b, f"llvm.masked.load.{suffix}", vec, [pt, I32, MASK, vec]),
            _declare(b, f"llvm.masked.store.{suffix}", ir.VoidType(), [vec, pt, I32, MASK]))


def _network_function(module, size, kt, idx_t):
    """void adj_sort_net<size>(keys src, [idx src,] keys out, [idx out,] i64 m): out[:m] =
    sorted(src[:m]), m <= size, in registers (padded with the largest item)."""
    name = f"adj_sort_net{size}_i{kt.width}" + (f"_i{idx_t.width}" if idx_t else "")
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    types = [kt] if idx_t is None else [kt, idx_t]
    W = lanes(kt)
    ptrs = [t.as_pointer() for t in types]
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), ptrs * 2 + [I64]), name=name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    src, out, m = fn.args[:len(types)], fn.args[len(types):-1], fn.args[-1]
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    vs = []
    for q in range(size // W):
        mask = _lane_mask(b, q * W, m, W)
        item = []
        for t, p in zip(types, src):
            load, _ = _masked(b, t, W)
            vec = ir.VectorType(t, W)
            pad = ir.Constant(vec, [(1 << (t.width - 1)) - 1] * W)
            at = b.bitcast(b.gep(p, [i64(q * W)]), vec.as_pointer())
            item.append(b.call(load, [at, ir.Constant(I32, t.width // 8), mask, pad]))
        vs.append(tuple(item))
    for q, item in enumerate(network(b, vs)):
        mask = _lane_mask(b, q * W, m, W)
        for t, p, v in zip(types, out, item):
            _, store = _masked(b, t, W)
            at = b.bitcast(b.gep(p, [i64(q * W)]), ir.VectorType(t, W).as_pointer())
            b.call(store, [v, at, ir.Constant(I32, t.width // 8), mask])
    b.ret_void()
    return fn


def _pivot(b, src, m):
    """The median of one vector of keys spread over src[0:m] (m > BASE_MAX)."""
    W = lanes(src.type.pointee)
    v = ir.Constant(ir.VectorType(src.type.pointee, W), ir.Undefined)
    step = b.sdiv(m, i64(W))
    for t in range(W):
        at = b.add(b.ashr(step, i64(1)), b.mul(step, i64(t)))
        v = b.insert_element(v, b.load(b.gep(src, [at])), i64(t))
    return b.extract_element(network(b, [(v,)])[0][0], i64(W // 2))


def _partition(L, src, dst, m, pivot, strict):
    """Write the m items at src (tuples of pointers: keys[, indices]) to dst, those whose key
    is below the pivot (strict: <, else <=) first, in their order, the others after them in
    reverse order; return how many are below (an i64 value). One vector of keys at a time,
    by compresses (AVX-512) or by one permutation from a table (AVX2: _permuted)."""
    b = L.builder
    avx2 = plan() == "avx2"
    kt = src[0].type.pointee
    W = AVX2_BITS // kt.width if avx2 else lanes(kt)
    iw = ir.IntType(W)
    ctpop = b.module.declare_intrinsic("llvm.ctpop", [iw], ir.FunctionType(iw, [iw]))
    left = L.alloca(I64, name="vs.left")
    right = L.alloca(I64, name="vs.right")
    b.store(i64(0), left)
    b.store(m, right)
    pv = _splat(b, pivot, W)
    op = "<" if strict else "<="
    blocks = b.sdiv(m, i64(W))
    if avx2:
        # a block stores whole vectors at both ends, which must not overlap: the last W to 2W
        # - 1 items go to the tail (m > base_size >= 2W)
        blocks = b.sub(blocks, i64(1))

    def block(t):
        i = b.mul(t, i64(W))
        vs = [b.load(b.bitcast(b.gep(p, [i]), ir.VectorType(p.type.pointee, W).as_pointer()),
                     align=p.type.pointee.width // 8) for p in src]
        below = b.bitcast(b.icmp_signed(op, vs[0], pv), iw)
        count = b.zext(b.call(ctpop, [below]), I64)
        lo = b.load(left)
        end = b.load(right)
        store = _permuted if avx2 else _compressed
        for v, p in zip(vs, dst):
            store(b, v, below, count, b.gep(p, [lo]), b.gep(p, [b.sub(end, i64(W))]))
        b.store(b.add(lo, count), left)
        b.store(b.sub(end, b.sub(i64(W), count)), right)
    for_span(b, i64(0), blocks, block, "vs.part")

    def tail(i):
        # branch-free: store at both ends; the wrong one is a slot a later item fills
        items = [b.load(b.gep(p, [i])) for p in src]
        below = b.icmp_signed(op, items[0], pivot)
        lo = b.load(left)
        hi = b.sub(b.load(right), i64(1))
        for v, p in zip(items, dst):
            b.store(v, b.gep(p, [hi]))
            b.store(v, b.gep(p, [lo]))
        b.store(b.add(lo, b.zext(below, I64)), left)
        b.store(b.add(hi, b.zext(below, I64)), right)
    for_span(b, b.mul(blocks, i64(W)), m, tail, "vs.tail")
    return b.load(left)


def _compressed(b, v, below, count, at_left, at_right):
    """AVX-512: the lanes below the pivot (bits of `below`) packed into the low lanes and stored
    whole at at_left (the lanes past them land in the gap, which later items fill); the others
    packed, lanes reversed, and stored masked so that they end at at_right + W (the gap is >= W
    items)."""
    vec = v.type
    W = vec.count
    mask_t = _mask_type(W)
    below = b.bitcast(below, mask_t)
    undef = ir.Constant(vec, ir.Undefined)
    compress = _declare(b, f"llvm.experimental.vector.compress.v{W}i{vec.element.width}",
                        vec, [vec, mask_t, vec])
    _, store = _masked(b, vec.element, W)
    align = vec.element.width // 8
    b.store(b.call(compress, [v, below, undef]), b.bitcast(at_left, vec.as_pointer()),
            align=align)
    reverse = ir.Constant(ir.VectorType(I32, W), list(range(W - 1, -1, -1)))
    rest = b.shuffle_vector(b.call(compress, [v, b.not_(below), undef]), undef, reverse)
    iota = ir.Constant(ir.VectorType(I64, W), list(range(W)))
    top = b.icmp_signed(">=", iota, _splat(b, count, W))
    b.call(store, [rest, b.bitcast(at_right, vec.as_pointer()), ir.Constant(I32, align), top])


AVX2_BITS = 256   # the AVX2 partition's vectors: one ymm of keys (4 i64, 8 i32)


def _permuted(b, v, below, count, at_left, at_right):
    """AVX2 (no compress): one permutation from a table puts the lanes below the pivot first,
    in order, and the others after them in reverse order; the vector is stored whole at both
    ends: at at_left its low `count` lanes are the ones below, at at_right the others end at
    at_right + W; the rest of each store lands in the gap (>= 2W items: no overlap), which
    later items fill (no masked stores)."""
    vec = v.type
    W = vec.count
    if W * vec.element.width != AVX2_BITS:   # keys alone (sortlib.quicksorts): one ymm
        raise NotImplementedError(f"AVX2 partition of {W} x i{vec.element.width}")
    table = _table(b.module, W, vec.element.width)
    order = b.load(b.gep(table, [i64(0), b.zext(below, I64)]), align=16)
    i32x8 = ir.VectorType(I32, 8)   # vpermd over 32-bit lanes (two per 64-bit lane)
    f = _declare(b, "llvm.x86.avx2.permd", i32x8, [i32x8, i32x8])
    q = b.bitcast(b.call(f, [b.bitcast(v, i32x8), order]), vec)
    align = vec.element.width // 8
    b.store(q, b.bitcast(at_right, vec.as_pointer()), align=align)
    b.store(q, b.bitcast(at_left, vec.as_pointer()), align=align)


def _table(module, W, width):
    """The constant permutation table of _permuted for W lanes of `width` bits: entry `mask`
    (bit l: lane l below the pivot) lists the 32-bit lanes (width / 32 per lane) of the lanes
    below, in order, then of the others in reverse order."""
    name = f"adj_sort_perm{W}x{width}"
    g = module.globals.get(name)
    if g is not None:
        return g
    sub = width // 32
    vec = ir.VectorType(I32, W * sub)
    entries = []
    for mask in range(1 << W):
        order = ([lane for lane in range(W) if mask >> lane & 1]
                 + [lane for lane in reversed(range(W)) if not mask >> lane & 1])
        entries.append(ir.Constant(vec, [sub * lane + s for lane in order for s in range(sub)]))
    g = ir.GlobalVariable(module, ir.ArrayType(vec, 1 << W), name=name)
    g.initializer = ir.Constant(g.type.pointee, entries)
    g.global_constant = True
    g.linkage = "internal"
    g.align = 32
    return g


def quicksort(L, keys, out, n, fallback, idx=None):
    """Sort the n (a Python int > base_size) signed i64 keys at keys[0], keys[1] as the
    partitions' second buffer; the sorted keys end in keys[out] (0 or 1). idx: the two index
    buffers of (key, index) pairs (indices 0 .. n-1 in idx[0]), sorted along so that equal
    keys keep index order. fallback(src, scratch, m, isrc, iscratch) sorts the m items at src
    (indices at isrc, None for keys alone) in place and stably, for tasks past the depth
    limit.

    Order of equal keys: a partition keeps the order of the items below the pivot and reverses
    that of the others (the compress-stores), so the items of a task are in index order or
    in reverse index order, tracked per task; networks compare (key, index) pairs, a run of
    keys equal to the pivot is written in index order, and a reversed task is reversed
    before the (stable) fallback."""
    b = L.builder
    depth_max = int(DEPTH_FACTOR * n.bit_length())
    cap = depth_max + 2
    stack = [L.alloca(ir.ArrayType(I64, cap), name=f"vs.stack{f}") for f in range(5)]
    sp = L.alloca(I64, name="vs.sp")
    bufs = [keys] if idx is None else [keys, idx]
    base_max = base_size(idx is not None, keys[0].type.pointee.width)
    idx_t = None if idx is None else idx[0].type.pointee

    def slot(f, at):
        return b.gep(stack[f], [i64(0), at])

    def push(*fields):
        at = b.load(sp)
        for f, v in enumerate(fields):
            b.store(v, slot(f, at))
        b.store(b.add(at, i64(1)), sp)

    b.store(i64(0), sp)
    push(i64(0), i64(n), i64(0), i64(0), i64(0))

    def task():
        at = b.sub(b.load(sp), i64(1))
        b.store(at, sp)
        lo, hi, parity, depth, rev = (b.load(slot(f, at)) for f in range(5))
        m = b.sub(hi, lo)
        odd = b.icmp_signed("!=", parity, i64(0))
        src = tuple(b.gep(b.select(odd, p[1], p[0]), [lo]) for p in bufs)
        other = tuple(b.gep(b.select(odd, p[0], p[1]), [lo]) for p in bufs)
        dest = tuple(b.gep(p[out], [lo]) for p in bufs)
        with b.if_else(b.icmp_signed("<=", m, i64(base_max))) as (small, large):
            with small:
                _base_sort(b, src, dest, m, idx_t, base_max)
            with large:
                with b.if_else(b.icmp_signed(">=", depth, i64(depth_max))) as (deep, fine):
                    with deep:
                        _deep(L, src, other, dest, m, rev, fallback)
                    with fine:
                        _split(L, src, other, dest, lo, hi, m, (parity, depth, rev), push)
    while_loop(b, lambda: b.icmp_signed(">", b.load(sp), i64(0)), task, "vs.task")


def _deep(L, src, other, dest, m, rev, fallback):
    """A task past the depth limit: into index order if reversed (pairs), fallback, output."""
    b = L.builder
    if len(src) > 1:
        with b.if_then(b.icmp_signed("!=", rev, i64(0))):
            for s_, o_ in zip(src, other):
                _copy(b, s_, o_, m, reverse=True)
                _copy(b, o_, s_, m)
    fallback(src[0], other[0], m, *(src[1:] or [None]), *(other[1:] or [None]))
    with b.if_then(b.icmp_unsigned("!=", src[0], dest[0])):
        for s_, d_ in zip(src, dest):
            _copy(b, s_, d_, m)


def _split(L, src, other, dest, lo, hi, m, state, push):
    """Partition one task's range into the other buffer and push the parts."""
    b = L.builder
    parity, depth, rev = state
    pivot = _pivot(b, src[0], m)
    flip = b.xor(parity, i64(1))
    deeper = b.add(depth, i64(1))
    below = _partition(L, src, other, m, pivot, True)
    with b.if_else(b.icmp_signed("==", below, i64(0))) as (smallest, usual):
        with smallest:
            # the pivot is the smallest key: split off the items equal to it (sorted once in
            # index order)
            equal = _partition(L, src, other, m, pivot, False)
            for_span(b, i64(0), equal, lambda i: b.store(pivot, b.gep(dest[0], [i])),
                     "vs.equal")
            if len(src) > 1:
                with b.if_else(b.icmp_signed("!=", rev, i64(0))) as (backward, forward):
                    with backward:   # (via src: dest may be other)
                        _copy(b, other[1], src[1], equal, reverse=True)
                        with b.if_then(b.icmp_unsigned("!=", src[1], dest[1])):
                            _copy(b, src[1], dest[1], equal)
                    with forward:
                        _copy(b, other[1], dest[1], equal)
            with b.if_then(b.icmp_signed("<", equal, m)):
                push(b.add(lo, equal), hi, flip, deeper, b.xor(rev, i64(1)))
        with usual:
            mid = b.add(lo, below)
            push(mid, hi, flip, deeper, b.xor(rev, i64(1)))
            push(lo, mid, flip, deeper, rev)


def _copy(b, src, dst, m, reverse=False):
    """dst[:m] = src[:m] (reverse: src[m-1::-1])."""
    def one(i):
        at = b.sub(b.sub(m, i64(1)), i) if reverse else i
        b.store(b.load(b.gep(src, [at])), b.gep(dst, [i]))
    for_span(b, i64(0), m, one, "vs.copy")


def heapsort(L, keys, m):
    """Sort the m signed keys at keys in place by a heapsort (O(m log m), no scratch): the
    depth-limit fallback of the 32-bit keys, which have no radix plan."""
    b = L.builder
    root = L.alloca(I64, name="hs.root")
    going = L.alloca(I1, name="hs.going")

    def at(i):
        return b.gep(keys, [i])

    def sift(start, stop):
        b.store(start, root)
        b.store(ir.Constant(I1, 1), going)

        def step():
            r = b.load(root)
            child = b.add(b.mul(r, i64(2)), i64(1))
            with b.if_else(b.icmp_signed("<", child, stop)) as (inside, leaf):
                with inside:
                    nxt = b.add(child, i64(1))
                    safe = b.select(b.icmp_signed("<", nxt, stop), nxt, child)
                    bigger = b.icmp_signed("<", b.load(at(child)), b.load(at(safe)))
                    c = b.select(bigger, safe, child)
                    top, kid = b.load(at(r)), b.load(at(c))
                    swap = b.icmp_signed("<", top, kid)
                    b.store(b.select(swap, kid, top), at(r))
                    b.store(b.select(swap, top, kid), at(c))
                    b.store(c, root)
                    b.store(swap, going)
                with leaf:
                    b.store(ir.Constant(I1, 0), going)
        while_loop(b, lambda: b.load(going), step, "hs.sift")

    # heapify: roots m/2 - 1 .. 0
    half = b.sdiv(m, i64(2))
    for_span(b, i64(0), half, lambda t: sift(b.sub(b.sub(half, i64(1)), t), m), "hs.heapify")

    def pop(t):
        e = b.sub(b.sub(m, i64(1)), t)
        first, last = b.load(at(i64(0))), b.load(at(e))
        b.store(last, at(i64(0)))
        b.store(first, at(e))
        sift(i64(0), e)
    for_span(b, i64(0), b.sub(m, i64(1)), pop, "hs.pop")
