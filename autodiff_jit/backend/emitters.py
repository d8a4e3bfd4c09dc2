"""The per-primitive emitter table: `EMITTERS[name] -> Emitter(expr, kernel)`.

* `expr(L, eqn, index) -> value`: the value of the equation's output at one element (elementwise
  operations and views). Such equations can be computed inline inside a consumer's loop.
* `kernel(L, eqn, out_buffers)`: emit the loop nest that stores the output(s). Elementwise and
  view equations that are stored use the generic `L.store_kernel`.

Semantics follow each primitive's numpy implementation (see autodiff_jit/primitives).
Floating-point flags: none on elementwise +,-,* (each operation rounds once, as numpy's:
a fused multiply-add would move a value by an ulp, enough to flip a comparison, a floor or a
histogram bin); `contract` (FMA) only inside products' and convolutions' accumulations, and
`reassoc` on the accumulator of inner-axis float sums/products so they vectorize (see
docs/backend.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from llvmlite import ir

from ..ir import Lit, Var
from . import mathlib
from .kernels import F64, I1, I64, Index, const, for_range, i64, is_float_type, loop_nest, \
    reg_type

FP = ("contract",)       # accumulations of products (dot, convolve, cumprod's gradient)
ELEMENTWISE = ()         # elementwise arithmetic: numpy's roundings, bit for bit
RED = ("reassoc", "contract")


@dataclass
class Emitter:
    expr: Callable | None = None
    kernel: Callable | None = None
    kind: str = "elementwise"


def _store_kernel(L, eqn, outs):
    L.store_kernel(eqn.outputs[0], outs[0])


# ---------------------------------------------------------------------------------------------
# scalar operations on LLVM values

def truth(b, v):
    """numpy truthiness of a register value -> i1."""
    ty = v.type
    if ty == I1:
        return v
    if is_float_type(ty):
        return b.fcmp_unordered("!=", v, ir.Constant(ty, 0.0))
    return b.icmp_signed("!=", v, ir.Constant(ty, 0))


def convert(b, v, src, dst):
    src, dst = np.dtype(src), np.dtype(dst)
    if src == dst:
        return v
    dty = reg_type(dst)
    if dst == np.bool_:
        return truth(b, v)
    if src == np.bool_:
        return b.uitofp(v, dty) if dst.kind == "f" else b.zext(v, dty)
    if src.kind == "f" and dst.kind == "f":
        return b.fpext(v, dty) if dst.itemsize > src.itemsize else b.fptrunc(v, dty)
    if src.kind == "f":
        return _float_to_int(b, v, src, dst)
    if dst.kind == "f":
        return b.sitofp(v, dty)
    return b.sext(v, dty) if dst.itemsize > src.itemsize else b.trunc(v, dty)


# What this machine's numpy gives for NaN or an out-of-range float -> int cast: INT_MIN on
# x86 (cvttsd2si), saturation on ARM. Compiled code gives the same as the interpreter.
with np.errstate(invalid="ignore"):
    _NUMPY_CAST_INVALID_IS_INT_MIN = int(np.array([np.nan]).astype(np.int64)[0]) == \
        np.iinfo(np.int64).min


def _float_to_int(b, v, src, dst):
    """float -> int as numpy does on this machine (fptosi alone is poison out of range)."""
    dty = reg_type(dst)
    if dst.kind == "i" and _NUMPY_CAST_INVALID_IS_INT_MIN:
        bound = 2.0 ** (8 * dst.itemsize - 1)  # int32 / int64: in range iff -bound <= v < bound
        ok = b.and_(b.fcmp_ordered(">=", v, ir.Constant(v.type, -bound)),
                    b.fcmp_ordered("<", v, ir.Constant(v.type, bound)))
        return b.select(ok, b.fptosi(v, dty), ir.Constant(dty, int(np.iinfo(dst).min)))
    fn = L_module(b).declare_intrinsic("llvm.fptosi.sat", [dty, reg_type(src)],
                                       ir.FunctionType(dty, [reg_type(src)]))
    return b.call(fn, [v])


def L_module(b):
    return b.module


def _intr(b, name, v, *more):
    ty = v.type
    fn = b.module.declare_intrinsic(name, [ty], ir.FunctionType(ty, [ty] * (1 + len(more))))
    return b.call(fn, [v, *more])


def _neg(b, v):
    return b.fneg(v) if is_float_type(v.type) else b.sub(ir.Constant(v.type, 0), v)


def _abs(b, v):
    if is_float_type(v.type):
        return _intr(b, "llvm.fabs", v)
    if v.type == I1:
        return v
    return b.select(b.icmp_signed("<", v, ir.Constant(v.type, 0)), _neg(b, v), v)


def _sign(b, v):
    ty = v.type
    if ty == I1:
        return v
    if is_float_type(ty):
        one, m1 = ir.Constant(ty, 1.0), ir.Constant(ty, -1.0)
        zero = ir.Constant(ty, 0.0)  # numpy: sign(-0.0) is +0.0, sign(nan) is nan
        return b.select(b.fcmp_ordered(">", v, zero), one,
                        b.select(b.fcmp_ordered("<", v, zero), m1,
                                 b.select(b.fcmp_ordered("==", v, zero), zero, v)))
    z = ir.Constant(ty, 0)
    return b.select(b.icmp_signed(">", v, z), ir.Constant(ty, 1),
                    b.select(b.icmp_signed("<", v, z), ir.Constant(ty, -1), z))


def _mul(b, x, y):
    if is_float_type(x.type):
        return b.fmul(x, y, flags=ELEMENTWISE)
    if x.type == I1:
        return b.and_(x, y)
    return b.mul(x, y)


def _ipow(b, x, y: int, dtype):
    """np.power(x, y) for a static int y (negative: through float, as the primitive does)."""
    ty = x.type
    if y < 0:
        if is_float_type(ty):
            # 1 / x**n, unless x**n overflows: then (1/x)**n keeps numpy's subnormal results
            # (1e160 ** -2 is 1e-320, not 0)
            one = ir.Constant(ty, 1.0)
            direct = b.fdiv(one, _ipow(b, x, -y, dtype))
            via_recip = _ipow(b, b.fdiv(one, x), -y, dtype)
            tiny = b.fcmp_ordered("==", direct, ir.Constant(ty, 0.0))
            return b.select(tiny, via_recip, direct)
        xf = convert(b, x, dtype, np.float64)
        return convert(b, b.fdiv(ir.Constant(F64, 1.0), _ipow(b, xf, -y, np.float64)),
                       np.float64, dtype)
    if y == 0:
        return const(dtype, 1)
    result, base = None, x
    while y:
        if y & 1:
            result = base if result is None else _mul(b, result, base)
        y >>= 1
        if y:
            base = _mul(b, base, base)
    return result


def _math(name):
    def op(b, v):
        return b.call(mathlib.get_math_function(b.module, name, v.type), [v])
    return op


_UNARY_OPS = {
    "neg": _neg,
    "sqrt": lambda b, v: _intr(b, "llvm.sqrt", v),
    "abs": _abs,
    "sign": _sign,
    "floor": lambda b, v: _intr(b, "llvm.floor", v),
    "ceil": lambda b, v: _intr(b, "llvm.ceil", v),
    "round": lambda b, v: _intr(b, "llvm.roundeven", v),
    "stop_gradient": lambda b, v: v,
    "logical_not": lambda b, v: b.xor(truth(b, v), ir.Constant(I1, 1)),
}
for _n in mathlib.MATH_FUNCTIONS:
    if _n != "pow":
        _UNARY_OPS[_n] = _math(_n)


def _unary_expr(L, eqn, index):
    x = L.load(eqn.inputs[0], index)
    name = eqn.prim.name
    b = L.builder
    if name == "integer_pow":
        return _ipow(b, x, eqn.params["y"], eqn.inputs[0].dtype)
    if name == "convert_element_type":
        return convert(b, x, eqn.inputs[0].dtype, eqn.params["dtype"])
    return _UNARY_OPS[name](b, x)


def _fmax(b, x, y, is_max):
    """np.maximum / np.minimum: NaN-propagating; on a tie the second operand, as numpy's array
    loops (so maximum(-0.0, 0.0) is 0.0 and maximum(0.0, -0.0) is -0.0, where llvm.maximum
    would order -0.0 below 0.0)."""
    ty = x.type
    if is_float_type(ty):
        keep_x = b.or_(b.fcmp_ordered(">" if is_max else "<", x, y), b.fcmp_unordered("uno", x, x))
        return b.select(keep_x, x, y)
    if ty == I1:
        return b.or_(x, y) if is_max else b.and_(x, y)
    return _intr(b, "llvm.smax" if is_max else "llvm.smin", x, y)


def _fmax_ignoring_nan(b, x, y, is_max):
    """np.fmax / np.fmin: a NaN operand loses; on a tie (0.0 vs -0.0 too) the second, as
    numpy's array loops (its scalar loop keeps the first: the sign of a zero is unspecified)."""
    if not is_float_type(x.type):
        return _fmax(b, x, y, is_max)
    keep_x = b.or_(b.fcmp_ordered(">" if is_max else "<", x, y), b.fcmp_unordered("uno", y, y))
    return b.select(keep_x, x, y)


def _fmod(b, x, y):
    """np.fmod: frem is C's fmod; integers take srem, guarded where it is undefined (numpy
    gives 0 for a divisor of 0, and INT_MIN % -1 is 0)."""
    ty = x.type
    if is_float_type(ty):
        return b.frem(x, y)
    zero, one = ir.Constant(ty, 0), ir.Constant(ty, 1)
    bad = b.or_(b.icmp_signed("==", y, zero), b.icmp_signed("==", y, ir.Constant(ty, -1)))
    r = b.srem(x, b.select(bad, one, y))
    return b.select(bad, zero, r)


_CMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}


def _binop(b, name, x, y):
    ty = x.type
    fl = is_float_type(ty)
    if name == "add":
        return b.fadd(x, y, flags=ELEMENTWISE) if fl else (b.or_(x, y) if ty == I1 else b.add(x, y))
    if name == "sub":
        return b.fsub(x, y, flags=ELEMENTWISE) if fl else (b.xor(x, y) if ty == I1 else b.sub(x, y))
    if name == "mul":
        return _mul(b, x, y)
    if name == "div":
        return b.fdiv(x, y)
    if name == "fmod":
        return _fmod(b, x, y)
    if name == "pow":
        return b.call(mathlib.get_math_function(b.module, "pow", ty), [x, y])
    if name == "maximum":
        return _fmax(b, x, y, True)
    if name == "minimum":
        return _fmax(b, x, y, False)
    if name in ("fmax", "fmin"):
        return _fmax_ignoring_nan(b, x, y, name == "fmax")
    if name in _CMP:
        op = _CMP[name]
        if fl:
            return b.fcmp_unordered(op, x, y) if op == "!=" else b.fcmp_ordered(op, x, y)
        if ty == I1:
            return b.icmp_unsigned(op, x, y)
        return b.icmp_signed(op, x, y)
    if name == "logical_and":
        return b.and_(truth(b, x), truth(b, y))
    if name == "logical_or":
        return b.or_(truth(b, x), truth(b, y))
    if name == "logical_xor":
        return b.xor(truth(b, x), truth(b, y))
    raise NotImplementedError(name)


def bcast_index(L, eqn, pos, index: Index) -> Index:
    """Index of operand `pos` of an elementwise equation (numpy broadcasting)."""
    a = eqn.inputs[pos]
    shape = a.shape
    if shape == index.shape:
        return index

    def make():
        if a.aval.size == 1:
            return Index(shape)
        out = index.dims(L.builder)
        lead = len(index.shape) - len(shape)
        dims = [i64(0) if d == 1 else out[lead + k] for k, d in enumerate(shape)]
        return Index(shape, dims=dims)
    return index.derive(("bcast", shape), make)


def _load_op(L, eqn, pos, index):
    a = eqn.inputs[pos]
    if isinstance(a, Lit):
        return const(a.dtype, a.value)
    return L.load(a, bcast_index(L, eqn, pos, index))


def _binary_expr(L, eqn, index):
    x = _load_op(L, eqn, 0, index)
    y = _load_op(L, eqn, 1, index)
    return _binop(L.builder, eqn.prim.name, x, y)


def _select_expr(L, eqn, index):
    c = _load_op(L, eqn, 0, index)
    x = _load_op(L, eqn, 1, index)
    y = _load_op(L, eqn, 2, index)
    return L.builder.select(c, x, y)


# ---------------------------------------------------------------------------------------------
# views: index arithmetic

def _view(make_index):
    def expr(L, eqn, index):
        src = eqn.inputs[0]
        if isinstance(src, Lit):
            return const(src.dtype, src.value)
        sub = index.derive((id(eqn),), lambda: make_index(L, eqn, index))
        return L.load(src, sub)
    return expr


def _reshape_index(L, eqn, index):
    shape = eqn.inputs[0].shape
    if eqn.inputs[0].aval.size <= 1:
        return Index(shape)
    return Index(shape, linear=index.linear(L.builder))


def _transpose_index(L, eqn, index):
    perm = eqn.params["perm"]
    out = index.dims(L.builder)
    dims = [None] * len(perm)
    for i, p in enumerate(perm):
        dims[p] = out[i]
    return Index(eqn.inputs[0].shape, dims=dims)


def _broadcast_index(L, eqn, index):
    shape = eqn.inputs[0].shape
    if eqn.inputs[0].aval.size <= 1:
        return Index(shape)
    out = index.dims(L.builder)
    lead = len(index.shape) - len(shape)
    return Index(shape, dims=[i64(0) if d == 1 else out[lead + k] for k, d in enumerate(shape)])


def _slice_index(L, eqn, index):
    b = L.builder
    start, step = eqn.params["start"], eqn.params["step"]
    out = index.dims(b)
    dims = []
    for d, s, st in zip(out, start, step):
        v = d if st == 1 else b.mul(d, i64(st))
        dims.append(v if s == 0 else b.add(v, i64(s)))
    return Index(eqn.inputs[0].shape, dims=dims)


def _scatter_expr(L, eqn, index):
    """scatter_slice as a pad view: out[i] = g[(i - start) / step] where i hits the slice, else
    0. g is read at a clamped (always in-bounds) index and the value selected away."""
    g = eqn.inputs[0]
    b = L.builder
    start, step = eqn.params["start"], eqn.params["step"]
    zero = const(g.dtype, 0)
    if g.aval.size == 0:
        return zero
    out = index.dims(b)
    hit, dims = None, []
    for d, s, st, n in zip(out, start, step, g.shape):
        known = L.ranges.get(id(d)) if st == 1 else None
        if known is not None:
            lo, hi = known[0] - s, known[1] - s
            if hi <= 0 or lo >= n:      # statically outside the slice: a zero
                return zero
            if lo >= 0 and hi <= n:     # statically inside: no check, no clamp
                dims.append(b.sub(d, i64(s)) if s else d)
                continue
        rel = b.sub(d, i64(s))
        if st == 1:
            j = rel
            ok = b.icmp_unsigned("<", rel, i64(n))
        else:
            if st < 0:
                rel = b.sub(i64(0), rel)
            j = b.udiv(rel, i64(abs(st)))
            ok = b.and_(b.icmp_unsigned("==", b.urem(rel, i64(abs(st))), i64(0)),
                        b.icmp_unsigned("<", j, i64(n)))
            if st < 0:
                ok = b.and_(ok, b.icmp_signed(">=", rel, i64(0)))
        j = b.select(ok, j, i64(0))
        dims.append(j)
        hit = ok if hit is None else b.and_(hit, ok)
    v = L.load(g, index.derive((id(eqn),), lambda: Index(g.shape, dims=dims)))
    return v if hit is None else b.select(hit, v, zero)


def _norm_index(b, v, n):
    """numpy index -> (in-bounds i64, i1 out of bounds). Negative wraps; an out-of-range index
    is clamped (we must never read outside the array) and flagged: numpy raises for it."""
    v = b.sext(v, I64) if v.type.width < 64 else v
    v = b.select(b.icmp_signed("<", v, i64(0)), b.add(v, i64(n)), v)
    bad = b.icmp_unsigned(">=", v, i64(n))   # still negative, or >= n
    v = b.select(b.icmp_signed("<", v, i64(0)), i64(0), v)
    return b.select(b.icmp_signed(">", v, i64(n - 1)), i64(max(n - 1, 0)), v), bad


def _traced_index(L, idx, n) -> bool:
    """Whether the index atom can be out of bounds at run time: a literal or constant index
    array was checked when it was traced (numpy/indexing.py)."""
    if isinstance(idx, Lit):
        return False
    c = L.fn.consts.get(idx)
    if c is not None:
        c = np.asarray(c)
        return c.size > 0 and not (-n <= c.min() and c.max() < n)
    return True


def _gather_index(L, idx, j, n):
    j, bad = _norm_index(L.builder, j, n)
    if _traced_index(L, idx, n):
        L.flag_index_error(bad)
    return j


def _take_expr(L, eqn, index):
    x, idx = eqn.inputs
    axis = eqn.params["axis"]
    k = len(idx.shape)
    b = L.builder
    out = index.dims(b)
    if isinstance(idx, Lit):
        j = const(idx.dtype, idx.value)
    else:
        j = L.load(idx, Index(idx.shape, dims=out[axis:axis + k]))
    j = _gather_index(L, idx, j, x.shape[axis])
    dims = out[:axis] + [j] + out[axis + k:]
    return L.load(x, Index(x.shape, dims=dims))


# ---------------------------------------------------------------------------------------------
# reductions

def _reducer(name, dtype):
    """(combine(b, acc, v), init, reassoc-able) for a reduction."""
    dt = np.dtype(dtype)
    fl = dt.kind == "f"
    if name == "reduce_sum":
        init = const(dt, 0)
        if fl:
            return (lambda b, a, v: b.fadd(a, v, flags=RED)), init
        return (lambda b, a, v: b.or_(a, v) if dt == np.bool_ else b.add(a, v)), init
    if name == "reduce_prod":
        init = const(dt, 1)
        if fl:
            return (lambda b, a, v: b.fmul(a, v, flags=RED)), init
        return (lambda b, a, v: b.and_(a, v) if dt == np.bool_ else b.mul(a, v)), init
    is_max = name == "reduce_max"
    if fl:
        init = const(dt, -np.inf if is_max else np.inf)
    elif dt == np.bool_:
        init = const(dt, not is_max)
    else:
        info = np.iinfo(dt)
        init = const(dt, info.min if is_max else info.max)
    return (lambda b, a, v: _fmax(b, a, v, is_max)), init


def _accumulator(name, dtype):
    """(register dtype, widen, narrow) of a register accumulator. A float32 sum accumulates in
    float64: its error is then below numpy's pairwise-summation bound (~log2(n) eps32) for
    any length, where a float32 running sum's grows as n * eps32."""
    dt = np.dtype(dtype)
    if name == "reduce_sum" and dt == np.float32:
        f64 = reg_type(np.dtype(np.float64))
        f32 = reg_type(dt)
        return np.dtype(np.float64), (lambda b, v: b.fpext(v, f64)), \
            (lambda b, v: b.fptrunc(v, f32))
    same = lambda b, v: v  # noqa: E731
    return dt, same, same


def reduce_init(L, eqn, out, ax):
    """Initialise the part of a nested reduction's output that accumulates across the nest
    loop over axis `ax` (the leading kept axes are fixed by L.prefix)."""
    x = eqn.inputs[0]
    axes = eqn.params["axes"]
    _, init = _reducer(eqn.prim.name, x.dtype)
    kept = [a for a in range(len(x.shape)) if a not in axes]
    loop_axes = [a for a in kept if a > ax]

    def body(dims):
        full = dict(zip(loop_axes, dims))
        od = [L.prefix[a] if a < ax else full[a] for a in kept]
        out.store(L.builder, Index(out.shape, dims=od), init)
    if loop_axes:
        loop_nest(L.builder, [x.shape[a] for a in loop_axes], body)
    else:
        body([])


def _nest_reduce(L, eqn, out):
    """A reduction inside loop nests: the leading len(L.prefix) axes of its input are fixed.
    Reduced prefix axes accumulate into the output (initialised by reduce_init before the
    nest loop); the other reduced axes use a register accumulator."""
    x = eqn.inputs[0]
    axes = eqn.params["axes"]
    b = L.builder
    combine, init = _reducer(eqn.prim.name, x.dtype)
    shape, nd = x.shape, len(x.shape)
    pre = list(L.prefix)
    d = len(pre)
    kept = [a for a in range(nd) if a not in axes]
    kept_rest = [a for a in range(d, nd) if a not in axes]
    red_rest = [a for a in range(d, nd) if a in axes]
    cross = any(a < d for a in axes)

    def full(kd, rd):
        dims = pre + [None] * (nd - d)
        for a, v in zip(kept_rest, kd):
            dims[a] = v
        for a, v in zip(red_rest, rd):
            dims[a] = v
        return dims

    def outer(kd):
        if not axes:
            dims = full(kd, [])
            out.store(b, Index(out.shape, dims=[dims[a] for a in kept]),
                      L.load(x, Index(shape, dims=dims)))
            return
        od = full(kd, [None] * len(red_rest))
        p = out.addr(b, Index(out.shape, dims=[od[a] for a in kept]))
        if not red_rest:
            v = L.load(x, Index(shape, dims=full(kd, [])))
            out.store_at(b, p, combine(b, out.load_at(b, p), v))
            return
        acc_dt, widen, narrow = _accumulator(eqn.prim.name, x.dtype)
        wide_combine, _ = _reducer(eqn.prim.name, acc_dt)
        acc = L.alloca(reg_type(acc_dt), name="acc")
        b.store(widen(b, out.load_at(b, p) if cross else init), acc)

        def inner(rd):
            v = L.load(x, Index(shape, dims=full(kd, rd)))
            b.store(wide_combine(b, b.load(acc), widen(b, v)), acc)
        loop_nest(b, [shape[a] for a in red_rest], inner)
        out.store_at(b, p, narrow(b, b.load(acc)))
    if kept_rest:
        loop_nest(b, [shape[a] for a in kept_rest], outer)
    else:
        outer([])


def _reduce_kernel(L, eqn, outs):
    out = outs[0]
    x = eqn.inputs[0]
    axes = eqn.params["axes"]
    b = L.builder
    combine, init = _reducer(eqn.prim.name, x.dtype)
    if isinstance(x, Lit):
        raise NotImplementedError("reduction of a literal")
    if L.prefix:
        _nest_reduce(L, eqn, out)
        return
    shape = x.shape
    nd = len(shape)
    if not axes:
        L.iterate(shape, lambda idx: out.store(b, idx, L.load(x, idx)), not L.needs_dims(x))
        return
    red_shape = [shape[a] for a in axes]
    red_size = int(np.prod(red_shape, dtype=np.int64))
    kept = [i for i in range(nd) if i not in axes]
    if red_size == 0 or x.aval.size == 0:
        L.fill(out, init)
        return
    if (nd - 1) in axes:
        trailing = tuple(axes) == tuple(range(nd - len(axes), nd))
        flat = trailing and not L.needs_dims(x)
        acc_dt, widen, narrow = _accumulator(eqn.prim.name, x.dtype)
        wide_combine, _ = _reducer(eqn.prim.name, acc_dt)
        acc = L.alloca(reg_type(acc_dt), name="acc")

        def outer(oidx):
            b.store(widen(b, init), acc)
            if flat:
                base = b.mul(oidx.linear(b), i64(red_size)) if out.size > 1 else None

                def inner(r):
                    lin = r if base is None else b.add(base, r, flags=["nuw", "nsw"])
                    v = L.load(x, Index(shape, linear=lin))
                    b.store(wide_combine(b, b.load(acc), widen(b, v)), acc)
                for_range(b, red_size, inner, name="r")
            else:
                od = oidx.dims(b)

                def inner(rd):
                    dims = [None] * nd
                    for k, a in enumerate(kept):
                        dims[a] = od[k]
                    for k, a in enumerate(axes):
                        dims[a] = rd[k]
                    v = L.load(x, Index(shape, dims=dims))
                    b.store(wide_combine(b, b.load(acc), widen(b, v)), acc)
                loop_nest(b, red_shape, inner)
            out.store(b, oidx, narrow(b, b.load(acc)))
        L.iterate(out.shape, outer, True)
    else:
        # last axis kept: accumulate into the output row by row (numpy's order), vectorized
        # along the kept inner axis
        L.fill(out, init)

        def body(dims):
            oidx = Index(out.shape, dims=[dims[a] for a in kept])
            p = out.addr(b, oidx)
            v = L.load(x, Index(shape, dims=dims))
            out.store_at(b, p, combine(b, out.load_at(b, p), v))
        loop_nest(b, shape, body)


def _arg_kernel(L, eqn, outs):
    out = outs[0]
    x = eqn.inputs[0]
    axis = eqn.params["axis"]
    b = L.builder
    shape = x.shape
    n = shape[axis]
    is_max = eqn.prim.name == "argmax"
    ty = reg_type(x.dtype)
    if n == 0 or out.size == 0:
        L.fill(out, i64(0))
        return
    best = L.alloca(ty, name="best")
    besti = L.alloca(I64, name="besti")

    def outer(oidx):
        od = oidx.dims(b)
        first = L.load(x, Index(shape, dims=od[:axis] + [i64(0)] + od[axis:]))
        b.store(first, best)
        b.store(i64(0), besti)

        def inner(i):
            v = L.load(x, Index(shape, dims=od[:axis] + [i] + od[axis:]))
            cur = b.load(best)
            if is_float_type(ty):
                better = b.fcmp_ordered(">" if is_max else "<", v, cur)
                # the first NaN wins (numpy)
                nan_new = b.and_(b.fcmp_unordered("uno", v, v), b.fcmp_ordered("ord", cur, cur))
                better = b.or_(better, nan_new)
            elif ty == I1:
                better = b.icmp_unsigned(">" if is_max else "<", v, cur)
            else:
                better = b.icmp_signed(">" if is_max else "<", v, cur)
            b.store(b.select(better, v, cur), best)
            b.store(b.select(better, i, b.load(besti)), besti)
        for_range(b, n, inner, name="a")
        out.store(b, oidx, b.load(besti))
    L.iterate(out.shape, outer, True)


def _cumsum_kernel(L, eqn, outs):
    _running_kernel(L, eqn, outs, "add")


def _cumprod_kernel(L, eqn, outs):
    _running_kernel(L, eqn, outs, "mul")


SCAN_TILE = 8  # rows scanned together (one running value each, in registers)


def _running_kernel(L, eqn, outs, op):
    """out[i] = out[i-1] op x[i] along the axis (cumsum: add, cumprod: mul)."""
    out = outs[0]
    x = eqn.inputs[0]
    axis, reverse = eqn.params["axis"], eqn.params.get("reverse", False)
    shape = x.shape
    # the op's exact identity: -0.0 for a float sum (numpy's cumsum of [-0.0] is -0.0; a
    # +0.0 start would turn it into +0.0)
    zero = const(x.dtype, (-0.0 if np.dtype(x.dtype).kind == "f" else 0) if op == "add" else 1)
    if all(d == 1 for d in shape[axis + 1:]):
        _running_rows(L, x, out, axis, reverse, op, zero)
        return
    b = L.builder
    n = shape[axis]
    first = n - 1 if reverse else 0
    step = out.strides[axis]

    # scan axis outside the innermost one: the inner loop runs over independent columns
    def body(dims):
        idx = Index(shape, dims=dims)
        v = L.load(x, idx)
        p = out.addr(b, idx)
        i = dims[axis]
        is_first = b.icmp_unsigned("==", i, i64(first))
        # previous element; on the first one read our own (unwritten) slot and discard it
        off = b.select(is_first, i64(0), i64(step if reverse else -step))
        prev = out.load_at(b, b.gep(p, [off], inbounds=True))
        prev = b.select(is_first, zero, prev)
        out.store_at(b, p, _binop(b, op, prev, v))
    loop_nest(b, shape, body, reverse_axes=(axis,) if reverse else ())


def _running_rows(L, x, out, axis, reverse, op, zero):
    """The scan axis innermost: each element waits for the one before (the op's latency), so
    SCAN_TILE rows are scanned together, each running value in a register (a phi): their
    chains overlap."""
    b = L.builder
    shape = x.shape
    n = shape[axis]
    outer = tuple(1 if a == axis else d for a, d in enumerate(shape))
    rows = int(np.prod(outer, dtype=np.int64))
    accs = [L.alloca(zero.type, name=f"scan.acc{k}") for k in range(SCAN_TILE)]

    def tile(first_row, lanes):
        dims = [Index(outer, linear=b.add(first_row, i64(k))).dims(b) for k in range(lanes)]
        for acc in accs[:lanes]:
            b.store(zero, acc)

        def step(i):
            for d, acc in zip(dims, accs):
                d = list(d)
                d[axis] = i
                v = _binop(b, op, b.load(acc), L.load(x, Index(shape, dims=d)))
                b.store(v, acc)
                out.store(b, Index(out.shape, dims=d), v)
        for_range(b, n, step, reverse=reverse, name="scan")
    full = rows // SCAN_TILE
    for_range(b, full, lambda t: tile(b.mul(t, i64(SCAN_TILE)), SCAN_TILE), name="scan.tile")
    if rows % SCAN_TILE:
        tile(i64(full * SCAN_TILE), rows % SCAN_TILE)


def _concat_kernel(L, eqn, outs):
    out = outs[0]
    axis = eqn.params["axis"]
    b = L.builder
    offset = 0
    for part in eqn.inputs:
        shape = part.shape
        off = offset

        def body(dims, part=part, off=off, shape=shape):
            odims = list(dims)
            if off:
                odims[axis] = b.add(dims[axis], i64(off))
            v = L.load(part, Index(shape, dims=dims)) if isinstance(part, Var) else \
                const(part.dtype, part.value)
            out.store(b, Index(out.shape, dims=odims), v)
        loop_nest(b, shape, body)
        offset += shape[axis]


# innermost axis of take_runs/take_runs_add: one copy loop per run up to this many runs (pad:
# 3), beyond that one loop reading a source-index table
MAX_RUN_LOOPS = 8


def _run_table(L, axis_runs):
    """A constant global array: the source index of each output position along one axis."""
    idx = [st + sp * k for st, n, sp in axis_runs for k in range(n)]
    arr_t = ir.ArrayType(I64, len(idx))
    g = ir.GlobalVariable(L.module, arr_t, name=L.module.get_unique_name("adj.runs"))
    g.linkage = "internal"
    g.global_constant = True
    g.initializer = ir.Constant(arr_t, idx)
    return g


def _runs_nest(L, runs, shape, body, skip=None):
    """Loops over the output `shape` of take_runs; body(source dims, output dims). An axis of
    one run maps affinely, an outer axis of several runs through a table; the innermost axis
    gets one loop per run (a plain strided copy LLVM vectorizes). skip (per axis, the offset
    of its identity run, see _identity_block; innermost runs in loops): the positions inside
    every axis's identity run are left out."""
    b = L.builder
    tables = {}

    def affine(run, d):
        st, _, sp = run
        v = d if sp == 1 else b.mul(d, i64(sp))
        return v if st == 0 else b.add(v, i64(st))

    def source(a, d):
        if len(runs[a]) == 1:
            return affine(runs[a][0], d)
        if a not in tables:
            tables[a] = _run_table(L, runs[a])
        return b.load(b.gep(tables[a], [i64(0), d], inbounds=True))

    per_run = len(runs[-1]) <= MAX_RUN_LOOPS
    outer_shape = shape[:-1] if per_run else shape

    def outer(dims):
        src = [source(a, d) for a, d in enumerate(dims)]
        if not per_run:
            body(src, dims)
            return
        inside = None
        if skip is not None:   # the outer dims all inside their identity runs
            inside = ir.Constant(I1, 1)
            for d, (o, n) in zip(dims, skip):
                inside = b.and_(inside, b.and_(b.icmp_signed(">=", d, i64(o)),
                                               b.icmp_signed("<", d, i64(o + n))))
        off = 0
        for run in runs[-1]:
            def inner(j, off=off, run=run):
                body(src + [affine(run, j)], list(dims) + [b.add(j, i64(off))])
            if skip is None:
                for_range(b, run[1], inner, name="run")
            else:   # the run's positions before, inside and after the block
                lo, hi = skip[-1][0] - off, skip[-1][0] + skip[-1][1] - off
                cuts = [0, min(max(lo, 0), run[1]), min(max(hi, 0), run[1]), run[1]]
                for k, (j0, j1) in enumerate(zip(cuts, cuts[1:])):
                    if j1 <= j0:
                        continue
                    if k == 1:
                        with b.if_then(b.not_(inside)):
                            for_range(b, j1, inner, name="run", start=j0)
                    else:
                        for_range(b, j1, inner, name="run", start=j0)
            off += run[1]
    loop_nest(b, outer_shape, outer)


def _take_runs_kernel(L, eqn, outs):
    out, x = outs[0], eqn.inputs[0]
    b = L.builder
    _runs_nest(L, eqn.params["runs"], out.shape, lambda src, dims: out.store(
        b, Index(out.shape, dims=dims), L.load(x, Index(x.shape, dims=src))))


def _identity_block(runs, shape):
    """Per axis, (offset, d): the output positions offset .. offset + d - 1 of the runs read
    the axis's d elements once, in order (np.pad's interior, which a reflect run may begin
    or end), or None if some axis has no such block."""
    block = []
    for axis_runs, d in zip(runs, shape):
        src = np.concatenate([st + sp * np.arange(n) for st, n, sp in axis_runs]) \
            if axis_runs else np.zeros(0, np.int64)
        at = [o for o in np.flatnonzero(src == 0)
              if o + d <= src.size and np.array_equal(src[o:o + d], np.arange(d))]
        if not at:
            return None
        block.append((int(at[0]), d))
    return block


def _take_runs_add_kernel(L, eqn, outs):
    out, g = outs[0], eqn.inputs[0]
    runs = eqn.params["runs"]
    b = L.builder
    add = b.fadd if is_float_type(reg_type(out.dtype)) else b.add
    block = _identity_block(runs, out.shape) if out.size and \
        len(runs[-1]) <= MAX_RUN_LOOPS else None
    if block is None:
        L.fill(out, const(out.dtype, 0))
    else:
        # the block that reads every element once (np.pad's interior) is stored, not added:
        # no zero fill; + 0 keeps the sums' +0.0 start (a -0.0 alone gives +0.0)
        zero = const(out.dtype, 0)
        loop_nest(b, out.shape, lambda dims: out.store(b, Index(out.shape, dims=dims), add(
            L.load(g, Index(g.shape, dims=[d if o == 0 else b.add(d, i64(o))
                                           for d, (o, _) in zip(dims, block)])), zero)))

    def body(src, dims):
        p = out.addr(b, Index(out.shape, dims=src))
        out.store_at(b, p, add(out.load_at(b, p), L.load(g, Index(g.shape, dims=dims))))
    _runs_nest(L, runs, g.shape, body, skip=block)


def _scatter_slice_kernel(L, eqn, outs):
    out = outs[0]
    g = eqn.inputs[0]
    start, step = eqn.params["start"], eqn.params["step"]
    b = L.builder
    L.fill(out, const(out.dtype, 0))

    def body(dims):
        odims = []
        for d, s, st in zip(dims, start, step):
            v = d if st == 1 else b.mul(d, i64(st))
            odims.append(v if s == 0 else b.add(v, i64(s)))
        out.store(b, Index(out.shape, dims=odims), L.load(g, Index(g.shape, dims=dims)))
    loop_nest(b, g.shape, body)


def _take_add_kernel(L, eqn, outs):
    out = outs[0]
    g, idx = eqn.inputs
    axis, size = eqn.params["axis"], eqn.params["size"]
    k = len(idx.shape)
    b = L.builder
    L.fill(out, const(out.dtype, 0))
    if size == 0:
        return

    def body(dims):
        if isinstance(idx, Lit):
            j = const(idx.dtype, idx.value)
        else:
            j = L.load(idx, Index(idx.shape, dims=dims[axis:axis + k]))
        j = _gather_index(L, idx, j, size)
        odims = dims[:axis] + [j] + dims[axis + k:]
        p = out.addr(b, Index(out.shape, dims=odims))
        v = L.load(g, Index(g.shape, dims=dims))
        out.store_at(b, p, _binop(b, "add", out.load_at(b, p), v))
    loop_nest(b, g.shape, body)


def _scatter_kernel(L, eqn, outs):
    # out = x, then out[idx[k]] = upd[k] in order (a repeated index keeps its last update)
    out = outs[0]
    x, idx, upd = eqn.inputs
    b = L.builder
    L.iterate(out.shape, lambda index: out.store(b, index, L.load(x, index)), True)
    n = out.shape[0]
    if n == 0:
        return

    def body(k):
        j = L.load(idx, Index(idx.shape, dims=[k]))
        j = _gather_index(L, idx, j, n)
        out.store(b, Index(out.shape, dims=[j]), L.load(upd, Index(upd.shape, dims=[k])))
    for_range(b, idx.shape[0], body, name="scatter")


def _call_kernel(L, eqn, outs):
    raise NotImplementedError("custom_vjp_call is inlined before lowering "
                              "(passes.inline.inline_calls)")


# ---------------------------------------------------------------------------------------------
# the table

def _build_table():
    from ..primitives import all_primitives
    t = {}
    for name, prim in all_primitives().items():
        if prim.family == "unary" and (name in _UNARY_OPS or name in ("integer_pow",
                                                                      "convert_element_type")):
            t[name] = Emitter(_unary_expr, _store_kernel, "elementwise")
        elif prim.family == "binary":
            t[name] = Emitter(_binary_expr, _store_kernel, "elementwise")
    t["select"] = Emitter(_select_expr, _store_kernel, "elementwise")
    t["reshape"] = Emitter(_view(_reshape_index), _store_kernel, "view")
    t["transpose"] = Emitter(_view(_transpose_index), _store_kernel, "view")
    t["broadcast_to"] = Emitter(_view(_broadcast_index), _store_kernel, "view")
    t["slice"] = Emitter(_view(_slice_index), _store_kernel, "view")
    t["take"] = Emitter(_take_expr, _store_kernel, "gather")
    for r in ("reduce_sum", "reduce_max", "reduce_min", "reduce_prod"):
        t[r] = Emitter(None, _reduce_kernel, "reduce")
    t["argmax"] = t["argmin"] = Emitter(None, _arg_kernel, "reduce")
    t["cumsum"] = Emitter(None, _cumsum_kernel, "scan")
    t["cumprod"] = Emitter(None, _cumprod_kernel, "scan")
    t["concatenate"] = Emitter(None, _concat_kernel, "opaque")
    t["scatter_slice"] = Emitter(_scatter_expr, _store_kernel, "view")
    t["take_runs"] = Emitter(None, _take_runs_kernel, "opaque")
    t["take_runs_add"] = Emitter(None, _take_runs_add_kernel, "opaque")
    t["take_add"] = Emitter(None, _take_add_kernel, "opaque")
    t["scatter"] = Emitter(None, _scatter_kernel, "opaque")
    t["custom_vjp_call"] = Emitter(None, _call_kernel, "call")
    return t


EMITTERS = _build_table()
