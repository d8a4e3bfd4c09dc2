"""Building blocks for the emitters: LLVM types per dtype, index spaces, buffers, loops.

An `Index` names one element of a static iteration space. It carries per-axis i64 values and/or
the linear C-order index, each computed lazily from the other, so a flat loop over contiguous
data never does div/mod, and a nested loop never multiplies out a linear index it does not need.
Values computed at an `Index` are cached on it (`Index.cache`), so an operand used twice in one
loop body is loaded and computed once.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir

F64, F32 = ir.DoubleType(), ir.FloatType()
I64, I32, I8, I1 = ir.IntType(64), ir.IntType(32), ir.IntType(8), ir.IntType(1)
VOID = ir.VoidType()
I8P = I8.as_pointer()

_REG = {np.dtype(np.float64): F64, np.dtype(np.float32): F32, np.dtype(np.int64): I64,
        np.dtype(np.int32): I32, np.dtype(np.bool_): I1}


def reg_type(dtype) -> ir.Type:
    """Type of a value in registers (bool is i1)."""
    return _REG[np.dtype(dtype)]


def mem_type(dtype) -> ir.Type:
    """Type of an element in memory (numpy bools are bytes)."""
    dt = np.dtype(dtype)
    return I8 if dt == np.bool_ else _REG[dt]


def is_float_type(ty) -> bool:
    return ty in (F64, F32)


def const(dtype, value) -> ir.Constant:
    dt = np.dtype(dtype)
    ty = reg_type(dt)
    if dt == np.bool_:
        return ir.Constant(I1, int(bool(value)))
    if dt.kind == "f":
        return ir.Constant(ty, float(dt.type(value)))
    return ir.Constant(ty, int(value))


def i64(v: int) -> ir.Constant:
    return ir.Constant(I64, int(v))


class Index:
    """An element of a static iteration space `shape`."""
    __slots__ = ("shape", "_dims", "_linear", "cache", "derived")

    def __init__(self, shape, dims=None, linear=None):
        self.shape = tuple(shape)
        self._dims = list(dims) if dims is not None else None
        self._linear = linear
        if dims is None and linear is None:
            if any(d != 1 for d in self.shape):
                raise ValueError("Index needs dims or a linear index")
            self._dims = [i64(0)] * len(self.shape)
        self.cache = {}
        self.derived = {}

    def dims(self, b: ir.IRBuilder) -> list:
        if self._dims is None:
            dims = [None] * len(self.shape)
            rem = self._linear
            for ax in range(len(self.shape) - 1, -1, -1):
                d = self.shape[ax]
                if d == 1:
                    dims[ax] = i64(0)
                elif ax == 0:
                    dims[ax] = rem
                else:
                    dims[ax] = b.urem(rem, i64(d))
                    rem = b.udiv(rem, i64(d))
            self._dims = dims
        return self._dims

    def linear(self, b: ir.IRBuilder):
        if self._linear is None:
            lin = i64(0)
            first = True
            for d, v in zip(self.shape, self._dims):
                if first:
                    lin, first = v, False
                elif d != 1:
                    lin = b.add(b.mul(lin, i64(d), flags=["nuw", "nsw"]), v, flags=["nuw", "nsw"])
            self._linear = lin if not first else i64(0)
        return self._linear

    def derive(self, key, make):
        """A derived index (e.g. the broadcast operand's), built once per key."""
        got = self.derived.get(key)
        if got is None:
            got = self.derived[key] = make()
        return got


class Buffer:
    """A C-contiguous array in memory: element pointer, shape, dtype."""
    __slots__ = ("ptr", "shape", "dtype")

    def __init__(self, ptr, shape, dtype):
        self.ptr = ptr
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def strides(self):
        st, acc = [], 1
        for d in reversed(self.shape):
            st.append(acc)
            acc *= d
        return tuple(reversed(st))

    def addr(self, b, index: Index):
        if self.size <= 1:
            return self.ptr
        return b.gep(self.ptr, [index.linear(b)], inbounds=True)

    def addr_linear(self, b, lin):
        return b.gep(self.ptr, [lin], inbounds=True)

    def load(self, b, index: Index):
        return self.load_at(b, self.addr(b, index))

    def load_at(self, b, p):
        v = b.load(p)
        if self.dtype == np.bool_:
            v = b.icmp_unsigned("!=", v, ir.Constant(I8, 0))
        return v

    def store(self, b, index: Index, value):
        self.store_at(b, self.addr(b, index), value)

    def store_at(self, b, p, value):
        if self.dtype == np.bool_:
            value = b.zext(value, I8)
        b.store(value, p)


# A loop whose whole nest runs fewer iterations than this is not worth vectorizing: it gets
# `llvm.loop.vectorize.enable false` (saves the vector body + remainder code and its compile time).
SMALL_LOOP = 128
# An innermost loop with fewer iterations than this is not vectorized either, whatever the trip
# count of its enclosing loops: a vector body + remainder for e.g. 10 iterations costs compile
# time (LoopVectorize, LSR, codegen) for little or no run-time gain.
SHORT_TRIP = 16
NOVEC_TAG = "adj.novec."


def _no_vectorize(b, br):
    """Tag `br` (a loop backedge) for engine.loop_metadata to turn into a 'do not vectorize'
    loop ID (llvmlite cannot build the self-referential node itself)."""
    m = b.module
    k = getattr(m, "_adj_novec", 0)
    m._adj_novec = k + 1
    br.set_metadata("llvm.loop", m.add_metadata([ir.MetaDataString(m, f"{NOVEC_TAG}{k}")]))


def for_span(b: ir.IRBuilder, lo, hi, body, name: str = "i"):
    """Emit `for i in range(lo, hi)` over i64 values known only at run time (lo, hi: LLVM
    values), calling body(i); the builder ends after the loop."""
    fn = b.function
    pre = b.block
    head = fn.append_basic_block(f"{name}.head")
    bodyb = fn.append_basic_block(f"{name}.body")
    exit_ = fn.append_basic_block(f"{name}.exit")
    b.branch(head)
    b.position_at_end(head)
    phi = b.phi(I64, name=name)
    phi.add_incoming(lo, pre)
    b.cbranch(b.icmp_signed("<", phi, hi), bodyb, exit_)
    b.position_at_end(bodyb)
    body(phi)
    # i < hi here, so i + 1 cannot overflow
    phi.add_incoming(b.add(phi, i64(1), flags=["nsw"]), b.block)
    b.branch(head)
    b.position_at_end(exit_)


def for_range(b: ir.IRBuilder, n: int, body, reverse: bool = False, name: str = "i",
              start: int = 0):
    """Emit `for i in range(start, n)` (or reversed) calling body(i). Nothing for an empty
    range, no loop for one iteration."""
    if n - start <= 0:
        return
    if n - start == 1:
        body(i64(start))
        return
    outer = getattr(b, "_adj_trips", 1)
    trips = outer * (n - start)
    b._adj_trips = trips
    fn = b.function
    pre = b.block
    header = fn.append_basic_block(f"{name}.head")
    bodyb = fn.append_basic_block(f"{name}.body")
    exit_ = fn.append_basic_block(f"{name}.exit")
    b.branch(header)
    b.position_at_end(header)
    phi = b.phi(I64, name=name)
    phi.add_incoming(i64(start), pre)
    done = b.icmp_unsigned("<", phi, i64(n))
    b.cbranch(done, bodyb, exit_)
    b.position_at_end(bodyb)
    idx = b.sub(i64(n - 1 + start), phi, flags=["nuw", "nsw"]) if reverse else phi
    nloops = getattr(b, "_adj_loops", 0) + 1
    b._adj_loops = nloops
    body(idx)
    innermost = b._adj_loops == nloops
    b._adj_trips = outer
    nxt = b.add(phi, i64(1), flags=["nuw", "nsw"])
    phi.add_incoming(nxt, b.block)
    br = b.branch(header)
    if trips < SMALL_LOOP or (innermost and n - start < SHORT_TRIP):
        _no_vectorize(b, br)
    b.position_at_end(exit_)


def loop_nest(b: ir.IRBuilder, shape, body, reverse_axes=(), order=None):
    """Nested loops over `shape` (outermost first, or in `order`); body(list of per-axis i64)."""
    shape = tuple(shape)
    order = list(order) if order is not None else list(range(len(shape)))
    dims = [i64(0)] * len(shape)

    def rec(k):
        if k == len(order):
            body(list(dims))
            return
        ax = order[k]

        def inner(i):
            dims[ax] = i
            rec(k + 1)
        for_range(b, shape[ax], inner, reverse=ax in reverse_axes, name=f"i{ax}")

    if any(d == 0 for d in shape):
        return
    rec(0)


def while_loop(b: ir.IRBuilder, cond, body, name: str = "w"):
    """Emit `while cond(): body()` (cond() returns an i1); the builder ends after the loop."""
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
