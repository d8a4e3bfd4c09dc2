"""The convolve kernel (primitives/convolution.py): out[t] = sum over the overlap of
a[j] v[i - j], i = lo + t, one dot product per output.

a and the reversed v are first copied to contiguous scratch (a view operand, such as the
flipped vector of a VJP, has no buffer of its own), so the dot product reads both forward:
out[t] = sum_{j = max(0, i - m + 1)}^{min(n - 1, i)} a[j] r[j - i + m - 1], r = v reversed,
which LLVM vectorizes (reassociated partial sums: the order is fixed per machine, the value
within the sum's error bound). Each sum starts from +0.0 and only overlapping products are
terms, as numpy's: -0.0 terms give +0.0, an inf meets no padding zero."""
from __future__ import annotations

from .emitters import EMITTERS, FP, RED, Emitter, _binop
from .kernels import Index, const, for_range, for_span, i64, is_float_type


def _contiguous(L, v, reverse):
    """v (1-D) in scratch memory, reversed if asked."""
    b = L.builder
    n = v.shape[0]
    tmp = L.temp_buffer((n,), v.dtype)

    def body(i):
        src = b.sub(i64(n - 1), i) if reverse else i
        tmp.store(b, Index(tmp.shape, dims=[i]), L.load(v, Index(v.shape, dims=[src])))
    for_range(b, n, body, name="cv.copy")
    return tmp


def convolve_kernel(L, eqn, outs):
    out = outs[0]
    a, v = eqn.inputs
    lo = eqn.params["lo"]
    n, m = a.shape[0], v.shape[0]
    if out.size == 0:
        return
    b = L.builder
    fa, rv = _contiguous(L, a, False), _contiguous(L, v, True)
    zero = const(a.dtype, 0)
    fl = is_float_type(zero.type)
    acc = L.alloca(zero.type, name="cv.acc")

    def smax(x, y):
        return b.select(b.icmp_signed(">", x, y), x, y)

    def smin(x, y):
        return b.select(b.icmp_signed("<", x, y), x, y)

    def output(t):
        i = b.add(t, i64(lo))
        jlo = smax(i64(0), b.sub(i, i64(m - 1)))
        jhi = smin(i64(n), b.add(i, i64(1)))
        shift = b.sub(i64(m - 1), i)   # r index = j + shift
        b.store(zero, acc)

        def term(j):
            x = fa.load_at(b, fa.addr_linear(b, j))
            y = rv.load_at(b, rv.addr_linear(b, b.add(j, shift)))
            if fl:
                s = b.fadd(b.load(acc), b.fmul(x, y, flags=RED), flags=RED)
            else:
                s = _binop(b, "add", b.load(acc), _binop(b, "mul", x, y))
            b.store(s, acc)
        for_span(b, jlo, jhi, term, "cv.dot")
        s = b.load(acc)
        # numpy's sums start at +0.0 (all -0.0 terms give +0.0)
        s = b.fadd(s, zero, flags=FP) if fl else s
        out.store(b, Index(out.shape, dims=[t]), s)
    for_range(b, out.shape[0], output, name="cv.out")


EMITTERS["convolve"] = Emitter(None, convolve_kernel, "opaque")
