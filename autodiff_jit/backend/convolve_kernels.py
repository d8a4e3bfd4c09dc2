"""The convolve kernel (primitives/convolution.py): out[t] = sum over the overlap of
a[j] v[i - j], i = lo + t, one dot product per output.

a and the reversed v are first copied to contiguous scratch (a view operand, such as the
flipped vector of a VJP, has no buffer of its own), so the dot product reads both forward:
out[t] = sum_{j = max(0, i - m + 1)}^{min(n - 1, i)} a[j] r[j - i + m - 1], r = v reversed,
which LLVM vectorizes (reassociated partial sums: the order is fixed per machine, the value
within the sum's error bound). Outputs go in blocks of 4 that share one pass over their
common span of a (one load of a for four products; a float span from VECTOR_SPAN long in
explicit 512-bit vectors, two accumulators an output, since LLVM's vectorizer keeps to 256
bits on AVX-512 targets), each adding its at most 3 edge terms before and after as
straight-line code (loops there tripled the compile time); outputs of
blocks without a common span go one by one. Each sum starts from +0.0 and only overlapping
products are terms, as numpy's: -0.0 terms give +0.0, an inf meets no padding zero.

Leading axes (a batch, as vmap makes it) are one loop around all of this, reusing the scratch."""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from .emitters import EMITTERS, FP, RED, Emitter, _binop
from .kernels import Index, const, for_range, for_span, i64, is_float_type


def _vector_type(ty):
    """add_common's vectors of the float type ty: VECTOR_BITS wide."""
    return ir.VectorType(ty, VECTOR_BITS // (64 if isinstance(ty, ir.DoubleType) else 32))


def _contiguous(L, tmp, v, pre, reverse):
    """Copy the vector v[pre] (pre: the leading indices) to the scratch tmp, reversed if
    asked."""
    b = L.builder
    n = v.shape[-1]

    def body(i):
        src = b.sub(i64(n - 1), i) if reverse else i
        tmp.store(b, Index(tmp.shape, dims=[i]), L.load(v, Index(v.shape, dims=pre + [src])))
    for_range(b, n, body, name="cv.copy")


def convolve_kernel(L, eqn, outs):
    out = outs[0]
    if out.size == 0:
        return
    a, v = eqn.inputs
    lead = a.shape[:-1]
    b = L.builder
    if v.shape[-1] <= SHORT_TAPS:
        def one(k):
            _convolve_short(L, eqn, out, Index(lead, linear=k).dims(b) if lead else [])
    elif out.shape[-1] <= SHORT_TAPS:
        accs = [L.alloca(const(a.dtype, 0).type, name=f"cv.acc{q}")
                for q in range(out.shape[-1])]

        def one(k):
            _convolve_few(L, eqn, out, Index(lead, linear=k).dims(b) if lead else [], accs)
    else:
        fa, rv = L.temp_buffer(a.shape[-1:], a.dtype), L.temp_buffer(v.shape[-1:], v.dtype)
        accs = [L.alloca(const(a.dtype, 0).type, name=f"cv.acc{q}") for q in range(BLOCK)]

        def one(k):
            pre = Index(lead, linear=k).dims(b) if lead else []
            _contiguous(L, fa, a, pre, False)
            _contiguous(L, rv, v, pre, True)
            _convolve_one(L, eqn, out, pre, fa, rv, accs)
    for_range(b, int(np.prod(lead, dtype=np.int64)), one, name="cv.batch")


def _operands(eqn, out):
    """(a, v, lo, n, m, size, zero, is_float): the inputs, the window's start, the lengths of
    a, v and the output, and the element type's zero."""
    a, v = eqn.inputs
    zero = const(a.dtype, 0)
    return (a, v, eqn.params["lo"], a.shape[-1], v.shape[-1], out.shape[-1], zero,
            is_float_type(zero.type))


def _convolve_short(L, eqn, out, pre):
    """out[pre] for a kernel of at most SHORT_TAPS taps: its taps in registers, a read in
    place (no scratch copies), and each output's terms unrolled. The outputs whose overlap is
    the whole kernel are one loop over t (independent iterations reading a[i - k] for
    consecutive i, which LLVM vectorizes across outputs, each sum kept in tap order); the
    few at the edges (at most m - 1 on each side) have their overlaps fixed at compile time."""
    a, v, lo, n, m, size, zero, fl = _operands(eqn, out)
    b = L.builder
    taps = [L.load(v, Index(v.shape, dims=pre + [i64(k)])) for k in range(m)]

    def output(t, i, ks):
        """out[t] = sum over ks of a[i - k] v[k], from +0.0 as numpy's sums."""
        s = zero
        for j, k in enumerate(ks):
            x = L.load(a, Index(a.shape, dims=pre + [b.sub(i, i64(k))]))
            if not fl:
                s = _binop(b, "add", s, _binop(b, "mul", x, taps[k]))
                continue
            p = b.fmul(x, taps[k], flags=FP)
            s = p if j == 0 else b.fadd(s, p, flags=FP)
        if fl and ks:
            # the +0.0 numpy's sums start from, added last and never fused into a multiply-add
            # (fma(x, v, 0.0) keeps the sign of a product that underflows to -0.0)
            s = b.fadd(s, zero)
        out.store(b, Index(out.shape, dims=pre + [t]), s)

    # interior: i = lo + t in [m - 1, n - 1], every tap overlaps
    t0 = min(max(0, m - 1 - lo), size)
    t1 = max(t0, min(size, n - lo))
    for_range(b, t1, lambda t: output(t, b.add(t, i64(lo)), range(m)), name="cv.short",
              start=t0)
    # the edges: the taps k with 0 <= i - k < n; none (a zero output) off the full convolution
    for t in list(range(t0)) + list(range(t1, size)):
        i = lo + t
        output(i64(t), i64(i), [k for k in range(m) if 0 <= i - k < n])


def _convolve_few(L, eqn, out, pre, accs):
    """out[pre] for at most SHORT_TAPS outputs of two long vectors (the kernel's gradient):
    one pass over the span of a all outputs overlap, every output's sum in its own
    accumulator (reassociated, so LLVM vectorizes each), a and v read in place (no scratch
    copies); the few edge terms before and after it (fixed at compile time) as straight-line
    code."""
    a, v, lo, n, m, size, zero, fl = _operands(eqn, out)
    b = L.builder
    spans = [(max(0, lo + t - m + 1), min(n, lo + t + 1)) for t in range(size)]
    c0, c1 = max(s[0] for s in spans), min(s[1] for s in spans)
    c1 = max(c0, c1)

    def mac(t, j):
        """acc_t += a[j] v[i - j], i = lo + t"""
        x = L.load(a, Index(a.shape, dims=pre + [j]))
        y = L.load(v, Index(v.shape, dims=pre + [b.sub(i64(lo + t), j)]))
        if fl:
            acc = b.fadd(b.load(accs[t]), b.fmul(x, y, flags=RED), flags=RED)
        else:
            acc = _binop(b, "add", b.load(accs[t]), _binop(b, "mul", x, y))
        b.store(acc, accs[t])
    for t in range(size):
        b.store(zero, accs[t])
    for_range(b, c1, lambda j: [mac(t, j) for t in range(size) if spans[t][0] < spans[t][1]],
              name="cv.few", start=c0)
    for t, (j0, j1) in enumerate(spans):
        for j in list(range(j0, min(j1, c0))) + list(range(max(j0, c1), j1)):
            mac(t, i64(j))
        acc = b.load(accs[t])
        # numpy's sums start at +0.0 (all -0.0 terms give +0.0)
        out.store(b, Index(out.shape, dims=pre + [i64(t)]),
                  b.fadd(acc, zero, flags=FP) if fl else acc)


def _convolve_one(L, eqn, out, pre, fa, rv, accs):
    """out[pre] from the contiguous a and reversed v."""
    a, v, lo, n, m, size, zero, fl = _operands(eqn, out)
    b = L.builder
    if fl:
        vaccs = [L.alloca(_vector_type(zero.type), name=f"cv.vacc{k}")
                 for k in range(BLOCK * UNROLL)]

    def smax(x, y):
        return b.select(b.icmp_signed(">", x, y), x, y)

    def smin(x, y):
        return b.select(b.icmp_signed("<", x, y), x, y)

    def bounds(t):
        """Output t's overlap [jlo, jhi) in a and the offset of r's index from j."""
        i = b.add(t, i64(lo))
        jlo = smax(i64(0), b.sub(i, i64(m - 1)))
        return jlo, smax(jlo, smin(i64(n), b.add(i, i64(1)))), b.sub(i64(m - 1), i)

    def mac(q, j, shift):
        """acc_q += a[j] r[j + shift]"""
        x = fa.load_at(b, fa.addr_linear(b, j))
        y = rv.load_at(b, rv.addr_linear(b, b.add(j, shift)))
        if fl:
            s = b.fadd(b.load(accs[q]), b.fmul(x, y, flags=RED), flags=RED)
        else:
            s = _binop(b, "add", b.load(accs[q]), _binop(b, "mul", x, y))
        b.store(s, accs[q])

    def add_terms(qs, shifts, j0, j1, name):
        """acc_q += a[j] r[j + shift_q] for j in [j0, j1), every q of qs in one loop."""
        for_span(b, j0, j1, lambda j: [mac(q, j, sh) for q, sh in zip(qs, shifts)], name)

    def add_common(shifts, j0, j1):
        """add_terms for every output of a block, floats: explicit vectors of 512 bits (LLVM's
        loop vectorizer keeps to 256-bit ymm on AVX-512 targets, so this doubles the products
        per load there; an AVX2 target splits each vector in two ymm), UNROLL accumulators an
        output to hide the add latency, the vector lanes added at the end; the last terms
        (fewer than a step) by the scalar loop."""
        vec = _vector_type(zero.type)
        w = vec.count
        step = w * UNROLL
        for acc in vaccs:
            b.store(ir.Constant(vec, [0.0] * w), acc)
        nsteps = b.sdiv(smax(i64(0), b.sub(j1, j0)), i64(step))

        def load(buf, j):
            return b.load(b.bitcast(buf.addr_linear(b, j), vec.as_pointer()),
                          align=buf.dtype.itemsize)

        def one_step(k):
            j = b.add(j0, b.mul(k, i64(step)))
            xs = [load(fa, b.add(j, i64(u * w))) for u in range(UNROLL)]
            for q, shift in enumerate(shifts):
                for u in range(UNROLL):
                    y = load(rv, b.add(b.add(j, shift), i64(u * w)))
                    acc = vaccs[q * UNROLL + u]
                    b.store(b.fadd(b.load(acc), b.fmul(xs[u], y, flags=FP), flags=FP), acc)
        for_span(b, i64(0), nsteps, one_step, "cv.vcommon")
        add_terms(list(range(len(shifts))), shifts, b.add(j0, b.mul(nsteps, i64(step))), j1,
                  "cv.common")
        for q in range(len(shifts)):
            total = b.load(vaccs[q * UNROLL])
            for u in range(1, UNROLL):
                total = b.fadd(total, b.load(vaccs[q * UNROLL + u]), flags=FP)
            lanes = [b.extract_element(total, i64(e)) for e in range(w)]
            while len(lanes) > 1:   # a tree: pairs of lanes, then pairs of those
                lanes = [b.fadd(lanes[e], lanes[e + 1], flags=FP)
                         for e in range(0, len(lanes), 2)]
            b.store(b.fadd(b.load(accs[q]), lanes[0], flags=FP), accs[q])

    def add_few(q, shift, j0, j1, most):
        """add_terms for a span of at most `most` terms, as straight-line code (no loop for
        LLVM to vectorize: compile time)."""
        for d in range(most):
            j = b.add(j0, i64(d))
            with b.if_then(b.icmp_signed("<", j, j1)):
                mac(q, j, shift)

    def finish(t, q):
        s = b.load(accs[q])
        # numpy's sums start at +0.0 (all -0.0 terms give +0.0)
        s = b.fadd(s, zero, flags=FP) if fl else s
        out.store(b, Index(out.shape, dims=pre + [t]), s)

    def output(t):
        jlo, jhi, shift = bounds(t)
        b.store(zero, accs[0])
        add_terms([0], [shift], jlo, jhi, "cv.dot")
        finish(t, 0)

    def block(k):
        # BLOCK neighbouring outputs share one pass over their common overlap (one load of a
        # per j for all of them); each adds its own few edge terms before and after it
        t0 = b.mul(k, i64(BLOCK))
        ts = [b.add(t0, i64(q)) for q in range(BLOCK)]
        bs = [bounds(t) for t in ts]
        c0, c1 = bs[-1][0], bs[0][1]   # jlo grows with t, and so does jhi
        for q in range(BLOCK):
            b.store(zero, accs[q])
            add_few(q, bs[q][2], bs[q][0], c0, BLOCK - 1 - q)
        shifts = [x[2] for x in bs]
        if fl:   # long spans: explicit vectors; short ones: LLVM's loop (less overhead)
            with b.if_else(b.icmp_signed(">=", b.sub(c1, c0), i64(VECTOR_SPAN))) as (vec, sc):
                with vec:
                    add_common(shifts, c0, c1)
                with sc:
                    add_terms(list(range(BLOCK)), shifts, c0, c1, "cv.common")
        else:
            add_terms(list(range(BLOCK)), shifts, c0, c1, "cv.common")
        for q in range(BLOCK):
            add_few(q, bs[q][2], c1, bs[q][1], q)
            finish(ts[q], q)
    k0, k1 = _blocks(lo, size, n, m)
    for_span(b, i64(k0), i64(k1), block, "cv.blk")
    # the other outputs one by one: t in [0, k0 BLOCK) and [k1 BLOCK, size), one loop
    head = k0 * BLOCK
    rest = head + size - k1 * BLOCK
    for_span(b, i64(0), i64(rest), lambda u: output(
        b.select(b.icmp_signed("<", u, i64(head)), u, b.add(u, i64(k1 * BLOCK - head)))),
        "cv.one")


def _blocks(lo, size, n, m):
    """The blocks k (outputs k BLOCK .. k BLOCK + BLOCK - 1) whose outputs all overlap in a
    common span (the first one's end at or after the last one's start), as `bounds`
    computes them: the first contiguous run [k0, k1) of them (the outputs of any other block
    go one by one)."""
    def jlo(i):
        return max(0, i - (m - 1))

    def ok(k):
        i = lo + k * BLOCK
        return jlo(i + BLOCK - 1) <= max(jlo(i), min(n, i + 1))
    k = 0
    while k < size // BLOCK and not ok(k):
        k += 1
    k0 = k
    while k < size // BLOCK and ok(k):
        k += 1
    return k0, k


BLOCK = 4   # outputs per pass over a
VECTOR_BITS = 512   # the common pass's explicit vectors (add_common)
UNROLL = 2   # ... and accumulators per output
VECTOR_SPAN = 96   # ... for common spans from this long (64 taps ran slower by it: its
#                    lane sums and scalar tail cost more than the wider products saved)
SHORT_TAPS = 8   # kernels up to this many taps: _convolve_short


EMITTERS["convolve"] = Emitter(None, convolve_kernel, "opaque")
