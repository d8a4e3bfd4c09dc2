"""Order-preserving integer keys for sorting and selection: a float64 or int64 value's
unsigned 64-bit key (held in an i64) whose unsigned order is numpy's sort order.

A float's bits, sign flipped if positive and all bits flipped if negative, order as the
floats do; -0.0 is first turned into 0.0 (numpy compares them equal, so ties keep index
order) and every NaN into the largest key (NaNs last). An int64 has its sign bit flipped.
float32 values are widened to float64 first (exact). The map sortlib and selectlib share,
kept here so that selectlib does not load the sort kernels (sortlib uses it too)."""
from __future__ import annotations

from llvmlite import ir

from .kernels import F64, I64, i64

SIGN = -(1 << 63)   # i64 constant 0x8000...0


def order_key(b, v):
    """The key of a float64, float32 or int64 register value."""
    if v.type == I64:
        return b.xor(v, i64(SIGN))
    if v.type != F64:
        v = b.fpext(v, F64)
    zero = ir.Constant(F64, 0.0)
    v = b.select(b.fcmp_ordered("==", v, zero), zero, v)
    bits = b.bitcast(v, I64)
    flip = b.or_(b.ashr(bits, i64(63)), i64(SIGN))
    return b.select(b.fcmp_unordered("uno", v, v), i64(-1), b.xor(bits, flip))
