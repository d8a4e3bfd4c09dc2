"""dot_general: BLAS (numpy's OpenBLAS, through blas.py) for large float contractions, loop
nests otherwise.

Canonical form: out[B, M, N] = sum_K A[B, M, K] * B[B, K, N], where B/M/N/K are the products of
the batch, a-free, b-free and contracted axes. Each operand is looked at as a strided view of a
buffer (stored values, and transposes/reshapes of them, are views); when its axis groups can be
merged into a (batch, rows, cols) matrix with unit stride on one side, it is passed to BLAS
directly (the transpose becomes the BLAS trans flag and leading dimension). Otherwise it is first
copied into an arena temporary in canonical layout. gemv is used when M == 1 or N == 1.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from ..ir import Var
from . import blas, lapack, parallel
from .emitters import EMITTERS, FP, RED, Emitter, _binop
from .kernels import I8P, I64, Buffer, Index, const, for_range, for_span, i64, is_float_type, \
    loop_nest, reg_type

BLAS_MIN_WORK = 4096   # M*N*K below this: inline loops beat a BLAS call
OUT_ACCUMULATE_BYTES = 256 * 1024   # loop dots may accumulate into an output up to this size
BLAS_MIN_DIM = 1       # every non-unit one of M, N, K at least this (1: no thin-shape rule;
                       # OpenBLAS measured 5-13x faster than the loops on thin products such as
                       # 256x128 @ 128x10, 1e5x3 @ 3x2, 10x10 @ 10x1e4 -- docs/design/backend.md)


def _free(ndim, c, bt):
    used = set(c) | set(bt)
    return [i for i in range(ndim) if i not in used]


def _prod(xs):
    return int(np.prod(xs, dtype=np.int64)) if len(xs) else 1


def strided_view(L, v):
    """(element pointer, shape, strides) of `v` if it is a buffer or a transpose/reshape of one."""
    buf = L.buffer_of(v)
    if buf is not None:
        return buf.ptr, buf.shape, buf.strides
    eqn = L.producer.get(id(v))
    if eqn is None or L.plan.is_stored(v):
        return None
    name = eqn.prim.name
    if name == "transpose":
        src = strided_view(L, eqn.inputs[0])
        if src is None:
            return None
        ptr, shape, strides = src
        perm = eqn.params["perm"]
        return ptr, tuple(shape[p] for p in perm), tuple(strides[p] for p in perm)
    if name == "reshape":
        src = strided_view(L, eqn.inputs[0])
        if src is None:
            return None
        ptr, shape, strides = src
        if strides != Buffer(None, shape, v.dtype).strides and _prod(shape) > 1:
            # only dense sources reshape freely (ignore size-1 axes' strides)
            dense = Buffer(None, shape, v.dtype).strides
            if any(s != d for s, d, n in zip(strides, dense, shape) if n != 1):
                return None
        return ptr, v.shape, Buffer(None, v.shape, v.dtype).strides
    return None


def _merge(shape, strides, axes):
    """Merge `axes` (in order) into one (size, stride); None if they are not uniformly strided."""
    axes = [a for a in axes if shape[a] != 1]
    size = _prod([shape[a] for a in axes])
    if not axes:
        return size, 0
    for x, y in zip(axes, axes[1:]):
        if strides[x] != strides[y] * shape[y]:
            return None
    return size, strides[axes[-1]]


def _matrix(view, batch, rows, cols):
    """BLAS description (ptr, trans, ld, batch_stride) of the (rows x cols) matrix, or None."""
    if view is None:
        return None
    ptr, shape, strides = view
    mb, mr, mc = _merge(shape, strides, batch), _merge(shape, strides, rows), \
        _merge(shape, strides, cols)
    if mb is None or mr is None or mc is None:
        return None
    (_, bs), (r, rs), (c, cs) = mb, mr, mc
    if c <= 1 or cs == 1:
        ld = rs if r > 1 else max(c, 1)
        if ld < max(c, 1):
            return None
        return ptr, False, ld, bs
    if r <= 1 or rs == 1:
        ld = cs
        if ld < max(r, 1):
            return None
        return ptr, True, ld, bs
    return None


def _copy_canonical(L, v, order):
    """Copy operand `v` into a temporary laid out as transpose(v, order), C-contiguous."""
    b = L.builder
    shape = tuple(v.shape[i] for i in order)
    tmp = L.temp_buffer(shape, v.dtype)

    def body(dims):
        src = [None] * len(order)
        for k, ax in enumerate(order):
            src[ax] = dims[k]
        tmp.store(b, Index(shape, dims=dims), L.load(v, Index(v.shape, dims=src)))
    loop_nest(b, shape, body)
    return tmp.ptr, shape, tmp.strides


def dot_kernel(L, eqn, outs):
    out = outs[0]
    a, bv = eqn.inputs
    (ac, bc), (ab, bb) = eqn.params["contract"], eqn.params["batch"]
    af, bf = _free(len(a.shape), ac, ab), _free(len(bv.shape), bc, bb)
    Bn = _prod([a.shape[i] for i in ab])
    M = _prod([a.shape[i] for i in af])
    N = _prod([bv.shape[i] for i in bf])
    K = _prod([a.shape[i] for i in ac])
    dt = np.dtype(out.dtype)
    big = all(d >= BLAS_MIN_DIM for d in (M, N, K) if d != 1) and (M > 1 or N > 1)
    use_blas = (dt.kind == "f" and min(Bn, M, N, K) > 0 and M * N * K >= BLAS_MIN_WORK
                and big and blas.available())
    if use_blas:
        _blas_dot(L, eqn, out, a, bv, (ab, af, ac), (bb, bc, bf), Bn, M, N, K)
    else:
        _loop_dot(L, eqn, out, a, bv, (ab, af, ac), (bb, bc, bf))


def _blas_dot(L, eqn, out, a, bv, aaxes, baxes, Bn, M, N, K):
    b = L.builder
    ab, af, ac = aaxes
    bb, bc, bf = baxes
    dt = np.dtype(out.dtype)
    A = _matrix(strided_view(L, a), ab, af, ac)
    if A is None:
        A = _matrix(_copy_canonical(L, a, list(ab) + af + list(ac)),
                    range(len(ab)), range(len(ab), len(ab) + len(af)),
                    range(len(ab) + len(af), len(a.shape)))
    Bm = _matrix(strided_view(L, bv), bb, bc, bf)
    if Bm is None:
        Bm = _matrix(_copy_canonical(L, bv, list(bb) + list(bc) + bf),
                     range(len(bb)), range(len(bb), len(bb) + len(bc)),
                     range(len(bb) + len(bc), len(bv.shape)))
    pa, ta, lda, sa = A
    pb, tb, ldb, sb = Bm
    # unit stride along K of each operand, for gemv's incx
    ka = lda if ta else 1
    kb = 1 if tb else ldb

    def plan(bld, ptrs, bi):
        """The BLAS call of batch bi (an i64 value; None: the only one) given the operands'
        base pointers, emitted with builder bld."""
        def at(q, stride):
            return q if (bi is None or stride == 0) else bld.gep(q, [bld.mul(bi, i64(stride))],
                                                                inbounds=True)
        A_, B_, C_ = at(ptrs[0], sa), at(ptrs[1], sb), at(ptrs[2], M * N)
        if N == 1:
            if not ta:
                return ("gemv", A_, B_, C_, M, K, False, lda, max(kb, 1))
            return ("gemv", A_, B_, C_, K, M, True, lda, max(kb, 1))
        if M == 1:
            if not tb:
                return ("gemv", B_, A_, C_, K, N, True, ldb, max(ka, 1))
            return ("gemv", B_, A_, C_, N, K, False, ldb, max(ka, 1))
        return ("gemm", A_, B_, C_, M, N, K, ta, tb, lda, ldb, N)

    base = (pa, pb, out.ptr)
    if Bn == 1:
        p = plan(b, base, None)
        if not _split_blas(L, dt, p):
            _emit_call(b, dt, p)
    else:
        def batches(bld, ptrs, lo, hi):
            for_span(bld, lo, hi, lambda bi: _emit_call(bld, dt, plan(bld, ptrs, bi)),
                     name="batch")
        if not _split_batches(L, base, Bn, M * N * K, batches):
            for_range(b, Bn, lambda bi: _emit_call(b, dt, plan(b, base, bi)), name="batch")

def _emit_call(b, dt, p):
    """One BLAS call described by a plan ("gemv", A, x, y, m, n, trans, lda, incx) or
    ("gemm", A, B, C, M, N, K, trans_a, trans_b, lda, ldb, ldc)."""
    if p[0] == "gemv":
        _, A, x, y, m, n, trans, lda, incx = p
        blas.emit_gemv(b, dt, A, x, y, m, n, trans=trans, lda=lda, incx=incx)
    else:
        _, A, B, C, M, N, K, ta, tb, lda, ldb, ldc = p
        blas.emit_gemm(b, dt, A, B, C, M, N, K, trans_a=ta, trans_b=tb, lda=lda, ldb=ldb, ldc=ldc)


# -- large products split over the thread pool ------------------------------------------------
# OpenBLAS at several threads splits each call statically and its threads wait for each other:
# on a busy machine a descheduled thread stalls the whole call (logistic's 1e4 x 100 gemv 24x
# slower at two threads than at one under load: docs/design/backend.md). A product of at least
# SPLIT_MIN_WORK multiply-adds is therefore, when numpy's OpenBLAS is set to more than one
# thread, cut along one output dimension into chunks fixed by the shape, each chunk one BLAS
# call with OpenBLAS set to one thread, run on pool.py's pool (whoever is free claims the
# next chunk). Each output element is computed by one one-thread call, so the result is the
# same for every thread count > 1 (deterministic), and in the shapes measured bitwise equal to
# the one-thread call; at one BLAS thread the single call runs unchanged.
SPLIT_MIN_WORK = 1 << 18        # multiply-adds below which a product stays one call
SPLIT_MIN_CHUNK_WORK = 1 << 15  # smallest chunk worth a call of its own
SPLIT_ALIGN = 8                 # chunks start at multiples of this many output rows/columns
# Each gemm chunk is a BLAS call that packs the whole of the operand it shares with the other
# chunks, so the split costs extra work in proportion to 1 / (rows per chunk), whatever K:
# 256x784x128 (the MLP's X @ W1) at one thread, Zen 4: one call 1.11 ms; 2 chunks of 128 rows
# 1.16 ms in all, 4 of 64 1.31, 16 of 16 2.23 (at two threads slower than one call at one).
# A gemm chunk therefore has at least this many rows (or columns), and a product too narrow
# for two such chunks is cut in two halves.
SPLIT_MIN_GEMM_UNITS = 128


def _split_axis(p):
    """(units, work per unit, chunk) for a plan: the output dimension cut into chunks, and
    chunk(b, ptrs, lo, n) -> the plan of the chunk [lo, lo + n) given the operand pointers."""
    if p[0] == "gemv":
        _, _, _, _, m, n, trans, lda, incx = p
        units, other = (n, m) if trans else (m, n)

        def chunk(b, ptrs, lo, cnt):
            A, x, y = ptrs
            A = b.gep(A, [lo if trans else b.mul(lo, i64(lda))], inbounds=True)
            y = b.gep(y, [lo], inbounds=True)
            return ("gemv", A, x, y, m if trans else cnt, cnt if trans else n, trans, lda, incx)
        return units, other, chunk
    _, _, _, _, M, N, K, ta, tb, lda, ldb, ldc = p
    if M >= N:
        def chunk(b, ptrs, lo, cnt):
            A, B, C = ptrs
            A = b.gep(A, [lo if ta else b.mul(lo, i64(lda))], inbounds=True)
            C = b.gep(C, [b.mul(lo, i64(ldc))], inbounds=True)
            return ("gemm", A, B, C, cnt, N, K, ta, tb, lda, ldb, ldc)
        return M, N * K, chunk

    def chunk(b, ptrs, lo, cnt):
        A, B, C = ptrs
        B = b.gep(B, [b.mul(lo, i64(ldb)) if tb else lo], inbounds=True)
        C = b.gep(C, [lo], inbounds=True)
        return ("gemm", A, B, C, M, cnt, K, ta, tb, lda, ldb, ldc)
    return N, M * K, chunk


def _split_blas(L, dt, p) -> bool:
    """Emit plan `p` as a run-time choice: OpenBLAS at several threads -> chunks on the pool,
    each a one-thread call; else the single call. False (nothing emitted) when the product is
    too small or numpy's BLAS has no thread control."""
    if _short_output(dt, p):
        return _split_contraction(L, dt, p)
    units, unit_work, chunk = _split_axis(p)
    if units < 2 or units * unit_work < SPLIT_MIN_WORK:
        return False
    per = max(-(-units // parallel.MAX_CHUNKS), -(-SPLIT_MIN_CHUNK_WORK // unit_work))
    if p[0] == "gemm":
        per = max(per, min(SPLIT_MIN_GEMM_UNITS, -(-units // 2)))
    per = -(-per // SPLIT_ALIGN) * SPLIT_ALIGN
    if per >= units:
        return False
    nchunks = -(-units // per)

    def run_chunk(cb, mine, lo, hi):
        _emit_call(cb, dt, chunk(cb, mine, lo, cb.sub(hi, lo)))
    return _on_pool(L, [p[1], p[2], p[3]], units, per, nchunks, run_chunk,
                    lambda: _emit_call(L.builder, dt, p))


# A product with a short output and a long contraction cut along its output would give each
# chunk a few columns of every row of A (a transposed gemv, y = A^T x with A row-major [m, n]:
# logistic regression's X^T g, n = 100; strided 64-byte reads from 1e4 rows, slower at two
# threads than the whole call at one on an AVX-512 Xeon: 196 -> 450 us), or no split at all
# (mse_linear's X^T R, a 3 x 2 gemm over 1e5 rows, left to OpenBLAS's own two threads: 1.2x
# its one-thread time). Such a product is cut along the contraction instead: chunk c of the
# contraction [c per, (c + 1) per) writes its partial product into row c of a scratch, and the
# output is the sum of the rows in chunk order. The chunks are fixed by the shape and at one
# thread the caller runs the same chunks in order, so the result is bitwise the same at every
# thread count (it differs from one whole call only in the order of the sum's terms).
CONTRACTION_SPLIT_MAX_BYTES = 8192   # outputs of at most this many bytes: split the contraction


def _short_output(dt, p) -> bool:
    if p[0] == "gemv":
        return p[6] and p[5] * dt.itemsize <= CONTRACTION_SPLIT_MAX_BYTES
    return p[4] * p[5] * dt.itemsize <= CONTRACTION_SPLIT_MAX_BYTES


def _contraction_chunk(b, dt, p, ptrs, lo, cnt, out):
    """The BLAS call of contraction rows [lo, lo + cnt) of plan p, writing to `out` (with the
    operand pointers `ptrs` as seen by the builder b)."""
    if p[0] == "gemv":
        _, _, _, _, m, n, _, lda, incx = p
        A, x = ptrs
        return ("gemv", b.gep(A, [b.mul(lo, i64(lda))], inbounds=True),
                b.gep(x, [b.mul(lo, i64(incx))], inbounds=True), out, cnt, n, True, lda, incx)
    _, _, _, _, M, N, K, ta, tb, lda, ldb, ldc = p
    A, B = ptrs
    A = b.gep(A, [b.mul(lo, i64(lda)) if ta else lo], inbounds=True)   # op(A) [M, K]
    B = b.gep(B, [lo if tb else b.mul(lo, i64(ldb))], inbounds=True)   # op(B) [K, N]
    return ("gemm", A, B, out, M, N, cnt, ta, tb, lda, ldb, N)


def _split_contraction(L, dt, p) -> bool:
    if p[0] == "gemv":
        units, size, ops, y = p[4], p[5], [p[1], p[2]], p[3]
    else:
        units, size, ops, y = p[6], p[4] * p[5], [p[1], p[2]], p[3]
        if p[11] != p[5]:
            return False               # C with a leading dimension of its own: not combined here
    if units < 2 or units * size < SPLIT_MIN_WORK:
        return False
    per = max(-(-units // parallel.MAX_CHUNKS), -(-SPLIT_MIN_CHUNK_WORK // size))
    per = -(-per // SPLIT_ALIGN) * SPLIT_ALIGN
    if per >= units:
        return False
    nchunks = -(-units // per)
    partial = L.temp_buffer((nchunks, size), dt)

    def run_chunk(cb, mine, lo, hi):
        part = cb.gep(mine[2], [cb.mul(cb.udiv(lo, i64(per)), i64(size))], inbounds=True)
        _emit_call(cb, dt, _contraction_chunk(cb, dt, p, mine[:2], lo, cb.sub(hi, lo), part))

    def serial():
        b = L.builder

        def one(c):
            lo = b.mul(c, i64(per))
            end = b.add(lo, i64(per))
            run_chunk(b, ops + [partial.ptr], lo,
                      b.select(b.icmp_signed("<", end, i64(units)), end, i64(units)))
        for_range(b, nchunks, one, name="blaschunk")
    if not _on_pool(L, ops + [partial.ptr], units, per, nchunks, run_chunk, serial):
        return False
    b = L.builder

    def combine(j):
        acc = b.load(b.gep(partial.ptr, [j], inbounds=True))
        for c in range(1, nchunks):
            acc = b.fadd(acc, b.load(b.gep(partial.ptr, [b.add(j, i64(c * size))],
                                           inbounds=True)))
        b.store(acc, b.gep(y, [j], inbounds=True))
    for_range(b, size, combine, name="blassum")
    return True


def _split_batches(L, ptrs, Bn, batch_work, batches) -> bool:
    """A batched product's batch loop as chunks of whole batches on the pool, each batch the
    same one-thread BLAS call as in the loop (so the result is bitwise that of one thread);
    False (nothing emitted) when the product is too small or has no thread control.
    batches(builder, ptrs, lo, hi) emits the calls of batches [lo, hi)."""
    if Bn * batch_work < SPLIT_MIN_WORK:
        return False
    per = max(-(-Bn // parallel.MAX_CHUNKS), -(-SPLIT_MIN_CHUNK_WORK // max(batch_work, 1)))
    if per >= Bn:
        return False
    return _on_pool(L, list(ptrs), Bn, per, -(-Bn // per), batches,
                    lambda: batches(L.builder, ptrs, i64(0), i64(Bn)))


def _on_pool(L, ptrs, units, per, nchunks, run_chunk, single) -> bool:
    """Emit a run-time choice: numpy's OpenBLAS at several threads -> `nchunks` chunks of
    `per` units on the pool with OpenBLAS set to one thread (chunk c runs
    run_chunk(builder, ptrs, lo, hi) over [c per, min((c + 1) per, units)), the operand
    pointers `ptrs` passed through the chunk's environment); else single() in place. False
    (nothing emitted) when numpy's BLAS has no thread control."""
    fns = lapack.thread_functions(L.module)
    if fns is None:
        return False
    get, put = fns
    m = L.module
    k = getattr(m, "_adj_chunks", 0)
    m._adj_chunks = k + 1
    f = ir.Function(m, ir.FunctionType(ir.VoidType(), [I8P, I64]), name=f"{L.name}_chunk{k}")
    f.linkage = "internal"
    f.attributes.add("nounwind")
    cb = ir.IRBuilder(f.append_basic_block("entry"))
    envpp = cb.bitcast(f.args[0], I8P.as_pointer())
    mine = [cb.bitcast(cb.load(cb.gep(envpp, [i64(j)], inbounds=True)), q.type)
            for j, q in enumerate(ptrs)]
    lo = cb.mul(f.args[1], i64(per), flags=["nsw"])
    end = cb.add(lo, i64(per), flags=["nsw"])
    hi = cb.select(cb.icmp_signed("<", end, i64(units)), end, i64(units))
    run_chunk(cb, mine, lo, hi)
    cb.ret_void()

    b = L.builder
    i32 = ir.IntType(32)
    env = L.alloca(ir.ArrayType(I8P, len(ptrs)), name="blasenv")
    threads = b.call(get, [])
    with b.if_else(b.icmp_signed(">", threads, ir.Constant(i32, 1))) as (many, one):
        with many:
            for j, q in enumerate(ptrs):
                b.store(b.bitcast(q, I8P), b.gep(env, [i64(0), i64(j)], inbounds=True))
            b.call(put, [ir.Constant(i32, 1)])
            b.call(parallel.declare_runtime(m), [f, b.bitcast(env, I8P), i64(nchunks)])
            b.call(put, [threads])
        with one:
            single()
    return True

def dot_expr(L, eqn, index):
    """One element of a short contraction (fuse.is_inline_dot), K multiply-adds unrolled, in
    order k = 0, 1, ... onto +0.0 (what the loop kernel and numpy do: a sum of -0.0 products,
    an outer product's -0.0 among them, is +0.0)."""
    import itertools
    a, bv = eqn.inputs
    (ac, bc), (ab, bb) = eqn.params["contract"], eqn.params["batch"]
    af, bf = _free(len(a.shape), ac, ab), _free(len(bv.shape), bc, bb)
    b = L.builder
    od = index.dims(b)
    nb, nf = len(ab), len(af)
    ad = [None] * len(a.shape)
    bd = [None] * len(bv.shape)
    for i, (x, y) in enumerate(zip(ab, bb)):
        ad[x] = bd[y] = od[i]
    for i, x in enumerate(af):
        ad[x] = od[nb + i]
    for i, y in enumerate(bf):
        bd[y] = od[nb + nf + i]
    fl = is_float_type(reg_type(eqn.outputs[0].dtype))
    acc = const(eqn.outputs[0].dtype, 0) if fl else None
    for kd in itertools.product(*[range(a.shape[x]) for x in ac]):
        for x, y, k in zip(ac, bc, kd):
            ad[x] = bd[y] = i64(k)
        va = L.load(a, Index(a.shape, dims=list(ad)))
        vb = L.load(bv, Index(bv.shape, dims=list(bd)))
        prod = b.fmul(va, vb, flags=FP) if fl else _binop(b, "mul", va, vb)
        acc = prod if acc is None else (b.fadd(acc, prod, flags=FP) if fl else
                                        _binop(b, "add", acc, prod))
    return acc if acc is not None else const(eqn.outputs[0].dtype, 0)


def _virtual_strides(L, v):
    """Element strides of operand `v` as laid out in memory (a stored buffer or a transpose /
    reshape of one), else C order of its shape (inlined values are computed in any order)."""
    view = strided_view(L, v) if isinstance(v, Var) else None
    if view is not None:
        return view[2]
    return Buffer(None, v.shape, v.dtype).strides


def _loop_order(L, a, bv, out, aaxes, baxes):
    """Iteration axes of the contraction, each (size, a axis, b axis, out axis) (None where the
    axis is absent), ordered outermost first by decreasing total stride (memory order)."""
    ab, af, ac = aaxes
    bb, bc, bf = baxes
    nb, nf = len(ab), len(af)
    axes = [(a.shape[x], x, y, i) for i, (x, y) in enumerate(zip(ab, bb))]
    axes += [(a.shape[x], x, None, nb + i) for i, x in enumerate(af)]
    axes += [(bv.shape[y], None, y, nb + nf + i) for i, y in enumerate(bf)]
    axes += [(a.shape[x], x, y, None) for x, y in zip(ac, bc)]
    sa, sb, so = _virtual_strides(L, a), _virtual_strides(L, bv), out.strides

    def cost(ax):
        n, x, y, o = ax
        if n == 1:
            return 0
        return (sa[x] if x is not None else 0) + (sb[y] if y is not None else 0) + \
            (so[o] if o is not None else 0)
    return sorted(axes, key=lambda ax: -cost(ax))


def _loop_dot(L, eqn, out, a, bv, aaxes, baxes):
    b = L.builder
    ab, af, ac = aaxes
    bb, bc, bf = baxes
    ty = reg_type(out.dtype)
    fl = is_float_type(ty)
    kshape = [a.shape[i] for i in ac]
    zero = const(out.dtype, 0)
    nb, nf = len(ab), len(af)

    order = _loop_order(L, a, bv, out, aaxes, baxes)
    nontrivial = [ax for ax in order if ax[0] != 1]
    seen_out = False
    contract_outer = False
    for ax in reversed(nontrivial):
        if ax[3] is not None:
            seen_out = True
        elif seen_out:
            contract_outer = True
    if contract_outer and out.size * out.dtype.itemsize <= OUT_ACCUMULATE_BYTES:
        # A contracted axis is outer in memory (e.g. sum over the rows of two tall arrays):
        # walk both operands in memory order and accumulate into the (small, cached) output.
        L.fill(out, zero)
        shape = [ax[0] for ax in order]

        def body(dims):
            ad = [None] * len(a.shape)
            bd = [None] * len(bv.shape)
            od = [None] * len(out.shape)
            for d, (_, x, y, o) in zip(dims, order):
                if x is not None:
                    ad[x] = d
                if y is not None:
                    bd[y] = d
                if o is not None:
                    od[o] = d
            va = L.load(a, Index(a.shape, dims=ad))
            vb = L.load(bv, Index(bv.shape, dims=bd))
            p = out.addr(b, Index(out.shape, dims=od))
            prod = b.fmul(va, vb, flags=FP) if fl else _binop(b, "mul", va, vb)
            cur = out.load_at(b, p)
            out.store_at(b, p, b.fadd(cur, prod, flags=FP) if fl else _binop(b, "add", cur, prod))
        loop_nest(b, shape, body)
        return

    acc = L.alloca(ty, name="dacc")

    def outer(oidx):
        od = oidx.dims(b)
        b.store(zero, acc)

        def inner(kd):
            ad = [None] * len(a.shape)
            bd = [None] * len(bv.shape)
            for i, (x, y) in enumerate(zip(ab, bb)):
                ad[x] = od[i]
                bd[y] = od[i]
            for i, x in enumerate(af):
                ad[x] = od[nb + i]
            for i, y in enumerate(bf):
                bd[y] = od[nb + nf + i]
            for i, (x, y) in enumerate(zip(ac, bc)):
                ad[x] = kd[i]
                bd[y] = kd[i]
            va = L.load(a, Index(a.shape, dims=ad))
            vb = L.load(bv, Index(bv.shape, dims=bd))
            if fl:
                s = b.fadd(b.load(acc), b.fmul(va, vb, flags=RED), flags=RED)
            else:
                s = _binop(b, "add", b.load(acc), _binop(b, "mul", va, vb))
            b.store(s, acc)
        loop_nest(b, kshape, inner)
        out.store(b, oidx, b.load(acc))
    L.iterate(out.shape, outer, False)


EMITTERS["dot_general"] = Emitter(dot_expr, dot_kernel, "dot")
