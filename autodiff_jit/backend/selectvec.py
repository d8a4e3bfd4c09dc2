"""Vector passes of the selection kernels (selectlib) over a row that is contiguous in memory,
a block of elements at a time: the scalar passes cost a load, two compares and a dependent store
per element (about 1.5 ns), which made the bracket pass, not the radix rounds, the cost of a
selection.

A block is one zmm of values (8 of 64 bits, 16 of 32); their indices are i64 vectors of as
many lanes.

- bracket: count the row's elements below a bound and pack the indices of those within
  [lo, hi] (a few per cent of the row) into a buffer, in index order;
- place: argpartition around one pivot, the indices below it packed to the front of the
  output row, the others after the pivot's slot, each side in index order.

By plan (vecsort.plan(), which FORCE sets for tests and which is part of the cache key):
"avx512" packs a vector's hits by one compress (vpcompressq); "avx2" has no compress (LLVM
expands it lane by lane through the stack), so there the bracket compares a vector at a time
and stores a block's hits one by one only when it has any, and the placing keeps the scalar
loop; without a plan (other targets, FORCE "off") both stay scalar. The last n % (block size)
elements always take the scalar body."""
from __future__ import annotations

from llvmlite import ir

from . import vecsort
from .kernels import I64, for_span, i64
from .vecsort import _declare, _masked, _splat

VECTOR_BITS = 512   # values per block: 8 of 64 bits, 16 of 32 (one zmm)


def lanes(ty):
    """Elements of type ty per block."""
    return VECTOR_BITS // (8 * _bytes(ty))


def bracket_plan():
    """How the bracket pass runs: "compress", "blocks" (vector compares, hits stored one by
    one) or None (the scalar loop)."""
    return {"avx512": "compress", "avx2": "blocks"}.get(vecsort.plan())


def place_plan():
    """Whether argpartition's placing around one pivot packs by compresses."""
    return vecsort.plan() == "avx512"


def _iota(b, start, w):
    return b.add(_splat(b, start, w), ir.Constant(ir.VectorType(I64, w), list(range(w))))


def _popcount(b, mask):
    """Set lanes of an <w x i1> mask, as an i64."""
    iw = ir.IntType(mask.type.count)
    ctpop = b.module.declare_intrinsic("llvm.ctpop", [iw], ir.FunctionType(iw, [iw]))
    return b.zext(b.call(ctpop, [b.bitcast(mask, iw)]), I64)


def _compress(b, v, mask):
    vec = v.type
    name = f"llvm.experimental.vector.compress.v{vec.count}i{vec.element.width}"
    fn = _declare(b, name, vec, [vec, mask.type, vec])
    return b.call(fn, [v, mask, ir.Constant(vec, ir.Undefined)])


def _load(b, row, i, w):
    ty = row.type.pointee
    vec = ir.VectorType(ty, w)
    return b.load(b.bitcast(b.gep(row, [i]), vec.as_pointer()), align=_bytes(ty))


def _bytes(ty):
    return 4 if isinstance(ty, ir.FloatType) else 8


def _pieces(b, vec, mask):
    """vec and its lane mask cut in vectors of at most 512 bits (16 i64 indices beside 16
    float32 values: two; LLVM's compress of a wider vector does not compile right)."""
    per = max(1, VECTOR_BITS // vec.type.element.width)
    if vec.type.count <= per:
        return [(vec, mask)]
    out = []
    for k in range(0, vec.type.count, per):
        sel = ir.Constant(ir.VectorType(ir.IntType(32), per), list(range(k, k + per)))
        out.append((b.shuffle_vector(vec, ir.Constant(vec.type, ir.Undefined), sel),
                    b.shuffle_vector(mask, ir.Constant(mask.type, ir.Undefined), sel)))
    return out


def _is_float(ty):
    return isinstance(ty, (ir.FloatType, ir.DoubleType))


def _blocks(b, lo, hi, w, block, scalar, name):
    """block(i) for i = lo, lo + w, ... while a whole vector of w fits before hi; then
    scalar(i) for the rest (lo, hi: i64 values)."""
    nblocks = b.sdiv(b.sub(hi, lo), i64(w))
    for_span(b, i64(0), nblocks, lambda t: block(b.add(lo, b.mul(t, i64(w)))), name)
    for_span(b, b.add(lo, b.mul(nblocks, i64(w))), hi, scalar, name + ".tail")


def bracket(L, row, n, vlo, vhi, hi_open, idx, count, below, scalar, plan):
    """The bracket pass over row[0:n] (values, float or int64): `below` (an i64 slot) counts
    the elements < vlo, the indices of those >= vlo and (hi_open or <= vhi) go to
    idx[count...] (count: an i64 slot). Float compares are ordered: a NaN is not below, and
    within only when the bracket is open above (NaNs sort last). scalar(i) is the scalar
    body, for the tail."""
    b = L.builder
    ty = vlo.type
    fl = _is_float(ty)
    w = lanes(ty)
    lo_s, hi_s = _splat(b, vlo, w), _splat(b, vhi, w)
    open_s = _splat(b, hi_open, w)

    def block(i):
        v = _load(b, row, i, w)
        if fl:
            under = b.fcmp_ordered("<", v, lo_s)
            low_enough = b.fcmp_ordered("<=", v, hi_s)
        else:
            under = b.icmp_signed("<", v, lo_s)
            low_enough = b.icmp_signed("<=", v, hi_s)
        hit = b.and_(b.not_(under), b.or_(open_s, low_enough))
        b.store(b.add(b.load(below), _popcount(b, under)), below)
        if plan == "compress":
            c = b.load(count)
            # whole vectors stored: lanes past the hits land where later hits go (count
            # <= the lanes before the piece, so it ends inside idx[0:n])
            for piece, m in _pieces(b, _iota(b, i, w), hit):
                at = b.bitcast(b.gep(idx, [c]), piece.type.as_pointer())
                b.store(_compress(b, piece, m), at, align=8)
                c = b.add(c, _popcount(b, m))
            b.store(c, count)
            return
        iw = ir.IntType(w)
        with b.if_then(b.icmp_unsigned("!=", b.bitcast(hit, iw), ir.Constant(iw, 0))):
            for lane in range(w):   # branch-free inside: store, advance by the hit bit
                c = b.load(count)
                b.store(b.add(i, i64(lane)), b.gep(idx, [c]))
                bit = b.extract_element(hit, i64(lane))
                b.store(b.add(c, b.zext(bit, I64)), count)
    _blocks(b, i64(0), i64(n), w, block, scalar, "sel.vbracket")


def place(L, row, perm_row, vals_row, lo, hi, pval, p_nan, ties_below, lo_c, hi_c, scalar,
          grad=None):
    """argpartition's placing of the elements row[lo:hi] around the pivot value pval (ties
    below it when ties_below: the elements before the pivot's index); an element below goes
    to position lo_c..., the others to hi_c... (i64 slots, advanced): its index to perm_row,
    its value to vals_row (either may be None); grad = (g_row, dx_row): the placing run
    backwards, dx_row[i] = g_row[that position] (two expand-loads, the inverse of the
    compresses). p_nan (an i1, floats): the pivot is NaN, so
    every number is below it, and every NaN when ties_below. Stores are masked to the packed
    lanes: the two sides meet."""
    b = L.builder
    ty = pval.type
    fl = _is_float(ty)
    w = lanes(ty)
    p_s = _splat(b, pval, w)
    as_int = ir.IntType(8 * _bytes(ty))

    def block(i):
        v = _load(b, row, i, w)
        if fl:
            below = b.fcmp_ordered("<=" if ties_below else "<", v, p_s)
            nan_below = _splat(b, p_nan, w)
            if not ties_below:
                nan_below = b.and_(nan_below, b.not_(b.fcmp_unordered("uno", v, v)))
            below = b.or_(below, nan_below)
        else:
            below = b.icmp_signed("<=" if ties_below else "<", v, p_s)
        nb = _popcount(b, below)
        lo_at, hi_at = b.load(lo_c), b.load(hi_c)
        streams = []
        if perm_row is not None:
            streams.append((perm_row, _iota(b, i, w)))
        if vals_row is not None:   # values moved as integers of their width (bits kept)
            streams.append((b.bitcast(vals_row, as_int.as_pointer()),
                            b.bitcast(v, ir.VectorType(as_int, w))))
        if grad is not None:
            g_row, dx_row = grad
            vt = ir.VectorType(as_int, w)
            gi = b.bitcast(g_row, as_int.as_pointer())
            expand = _declare(b, f"llvm.masked.expandload.v{w}i{as_int.width}", vt,
                              [as_int.as_pointer(), below.type, vt])
            from_lo = b.call(expand, [b.gep(gi, [lo_at]), below, ir.Constant(vt, ir.Undefined)])
            both = b.call(expand, [b.gep(gi, [hi_at]), b.not_(below), from_lo])
            b.store(both, b.bitcast(b.gep(b.bitcast(dx_row, as_int.as_pointer()), [i]),
                                    vt.as_pointer()), align=_bytes(ty))
        for out, items in streams:
            for side, at in ((below, lo_at), (b.not_(below), hi_at)):
                for piece, m in _pieces(b, items, side):
                    pw = piece.type.count
                    _, store = _masked(b, piece.type.element, pw)
                    k = _popcount(b, m)
                    keep = b.icmp_signed("<", ir.Constant(ir.VectorType(I64, pw), list(
                        range(pw))), _splat(b, k, pw))
                    ptr = b.bitcast(b.gep(out, [at]), piece.type.as_pointer())
                    b.call(store, [_compress(b, piece, m), ptr,
                                   ir.Constant(ir.IntType(32), piece.type.element.width // 8),
                                   keep])
                    at = b.add(at, k)
        b.store(b.add(lo_at, nb), lo_c)
        b.store(b.add(hi_at, b.sub(i64(w), nb)), hi_c)
    _blocks(b, lo, hi, w, block, scalar, "part.vplace")
