"""The argsort kernel: per row, (key, index) pairs are sorted by a bottom-up merge sort emitted
in LLVM IR (stable, NaNs last: numpy's kind="stable" order) in a malloc'ed buffer. malloc and
free are looked up in the running process with ctypes and registered with the JIT under adj_*
names (as blas.py does for BLAS), at import, so code loaded from the disk cache resolves them
too."""
from __future__ import annotations

import ctypes

from llvmlite import ir

from . import engine
from .emitters import EMITTERS, Emitter
from .kernels import F64, I8P, I64, Index, for_range, i64, loop_nest

I32 = ir.IntType(32)
_LIBC = ctypes.CDLL(None)
for _name in ("malloc", "free"):
    engine.add_symbol("adj_" + _name, ctypes.cast(getattr(_LIBC, _name), ctypes.c_void_p).value)


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


def _before(b, kr, kl, float_keys):
    """Must the right run's key go first (stable merge: strictly before, NaNs last)?"""
    if not float_keys:
        return b.icmp_signed("<", kr, kl)
    nan_l = b.fcmp_unordered("uno", kl, kl)
    nan_r = b.fcmp_unordered("uno", kr, kr)
    return b.or_(b.fcmp_ordered("<", kr, kl), b.and_(nan_l, b.not_(nan_r)))


def _merge_sort(L, src, dst, n, float_keys):
    """Bottom-up merge sort of n (key, index) pairs in `src` (scratch `dst`); returns the
    pointer alloca holding the sorted buffer. Stable, so ties keep index order."""
    b = L.builder
    bufs = [L.alloca(src.type, name="ms.src"), L.alloca(src.type, name="ms.dst")]
    b.store(src, bufs[0])
    b.store(dst, bufs[1])
    width, lo, i, j, k = (L.alloca(I64, name=nm) for nm in ("ms.w", "ms.lo", "ms.i", "ms.j",
                                                               "ms.k"))
    N = i64(n)
    b.store(i64(1), width)

    def width_pass():
        w = b.load(width)
        a, out = b.load(bufs[0]), b.load(bufs[1])
        b.store(i64(0), lo)

        def merge_runs():
            lo_v = b.load(lo)
            mid = b.select(b.icmp_signed("<", b.add(lo_v, w), N), b.add(lo_v, w), N)
            two = b.add(lo_v, b.add(w, w))
            hi = b.select(b.icmp_signed("<", two, N), two, N)
            b.store(lo_v, i)
            b.store(mid, j)
            b.store(lo_v, k)
            last_l = b.sub(mid, i64(1))
            last_r = b.sub(hi, i64(1))

            def step():
                iv, jv, kv = b.load(i), b.load(j), b.load(k)
                ii = b.select(b.icmp_signed("<", iv, mid), iv, last_l)
                jj = b.select(b.icmp_signed("<", jv, hi), jv, last_r)
                left = b.load(b.gep(a, [ii]))
                right = b.load(b.gep(a, [jj]))
                kl = b.extract_value(left, 0)
                kr = b.extract_value(right, 0)
                take_left = b.and_(b.icmp_signed("<", iv, mid),
                                   b.or_(b.icmp_signed(">=", jv, hi),
                                         b.not_(_before(b, kr, kl, float_keys))))
                b.store(b.select(take_left, left, right), b.gep(out, [kv]))
                b.store(b.select(take_left, b.add(iv, i64(1)), iv), i)
                b.store(b.select(take_left, jv, b.add(jv, i64(1))), j)
                b.store(b.add(kv, i64(1)), k)
            _while(b, lambda: b.icmp_signed("<", b.load(k), hi), step, "ms.merge")
            b.store(hi, lo)
        _while(b, lambda: b.icmp_signed("<", b.load(lo), N), merge_runs, "ms.runs")
        b.store(out, bufs[0])
        b.store(a, bufs[1])
        b.store(b.add(w, w), width)
    _while(b, lambda: b.icmp_signed("<", b.load(width), N), width_pass, "ms.width")
    return bufs[0]


def argsort_kernel(L, eqn, outs):
    out = outs[0]
    x = eqn.inputs[0]
    axis = eqn.params["axis"]
    b = L.builder
    shape = x.shape
    n = shape[axis]
    if n == 0 or out.size == 0:
        return
    float_keys = x.dtype.kind == "f"
    key = F64 if float_keys else I64
    pair = ir.LiteralStructType([key, I64])
    module = L.module
    malloc = _declare(module, "adj_malloc", I8P, [I64])
    free = _declare(module, "adj_free", ir.VoidType(), [I8P])
    raw = b.call(malloc, [i64(2 * 16 * n)])
    buf = b.bitcast(raw, pair.as_pointer())
    scratch = b.gep(buf, [i64(n)])
    outer = tuple(1 if a == axis else d for a, d in enumerate(shape))
    zero32, one32 = ir.Constant(I32, 0), ir.Constant(I32, 1)

    def row(dims):
        def fill(i):
            d = list(dims)
            d[axis] = i
            v = L.load(x, Index(shape, dims=d))
            if float_keys and v.type != F64:
                v = b.fpext(v, F64)
            slot = b.gep(buf, [i])
            b.store(v, b.gep(slot, [zero32, zero32]))
            b.store(i, b.gep(slot, [zero32, one32]))
        for_range(b, n, fill, name="sfill")
        result = _merge_sort(L, buf, scratch, n, float_keys)

        def emit(i):
            d = list(dims)
            d[axis] = i
            slot = b.gep(b.load(result), [i])
            out.store(b, Index(out.shape, dims=d), b.load(b.gep(slot, [zero32, one32])))
        for_range(b, n, emit, name="sout")
    loop_nest(b, outer, row)
    b.call(free, [raw])


EMITTERS["argsort"] = Emitter(None, argsort_kernel, "opaque")


