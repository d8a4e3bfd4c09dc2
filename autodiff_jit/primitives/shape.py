"""Shape primitives: reshape, transpose, broadcast_to, concatenate. They move data, never
compute, so their VJPs are other shape primitives (and the backend turns most into views).
reshape and broadcast_to live in broadcast.py (every family's rules use them) and are
re-exported here."""
from __future__ import annotations

import numpy as np

from ..ir import AVal
from .core import Primitive, aval_of, bind, register
from .broadcast import broadcast_to, broadcast_to_p, reshape, reshape_p  # noqa: F401  (re-exported)

# numpy names bound at import: numpy has a module __getattr__, so Python 3.11 never
# specializes an `np.name` lookup (~40 ns each, several per tape node)
_ND = np.ndarray


def _transpose_rule(x, *, perm):
    if sorted(perm) != list(range(x.ndim)):
        raise ValueError(f"transpose: {perm} is not a permutation of the {x.ndim} axes of {x.shape}")
    return AVal(tuple(x.shape[p] for p in perm), x.dtype)


def _inverse(perm):
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def _transpose_vjp(g, out, x, *, perm):
    if type(g) is _ND:   # tape backward: the view, without bind
        return (g.transpose(_inverse(perm)),)
    return (transpose(g, _inverse(perm)),)


transpose_p = register(Primitive(
    "transpose", _transpose_rule, lambda x, *, perm: np.transpose(x, perm),
    vjp=_transpose_vjp,
    jvp=lambda t, out, x, *, perm: None if t[0] is None else transpose(t[0], perm),
    torch_name="PermuteBackward0", family="shape"))


def _concat_rule(*xs, axis):
    first = xs[0]
    if not 0 <= axis < first.ndim:
        raise ValueError(f"concatenate: axis {axis} out of range for rank {first.ndim}")
    for x in xs[1:]:
        if x.dtype != first.dtype:
            raise TypeError(f"concatenate: dtypes {first.dtype} and {x.dtype} differ")
        if x.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(x.shape, first.shape))
                                       if i != axis):
            raise ValueError(f"concatenate: shapes {first.shape} and {x.shape} differ off axis {axis}")
    total = sum(x.shape[axis] for x in xs)
    return AVal(first.shape[:axis] + (total,) + first.shape[axis + 1:], first.dtype)


def _concat_vjp(g, out, *xs, axis):
    if type(g) is _ND:   # tape backward: views of g, without bind
        cts, offset, lead = [], 0, (slice(None),) * axis
        for x in xs:
            n = aval_of(x).shape[axis]
            cts.append(g[lead + (slice(offset, offset + n),)])
            offset += n
        return tuple(cts)
    from .indexing import slice_along
    cts, offset = [], 0
    for x in xs:
        n = aval_of(x).shape[axis]
        cts.append(slice_along(g, axis, offset, n))
        offset += n
    return tuple(cts)


def _concat_jvp(ts, out, *xs, axis):
    if all(t is None for t in ts):
        return None
    parts = [t if t is not None else np.zeros(aval_of(x).shape, aval_of(out).dtype)
             for t, x in zip(ts, xs)]
    return concatenate(parts, axis)


concatenate_p = register(Primitive(
    "concatenate", _concat_rule, lambda *xs, axis: np.concatenate(xs, axis=axis),
    vjp=_concat_vjp, jvp=_concat_jvp, torch_name="CatBackward0", family="shape"))


def transpose(x, perm):
    perm = tuple(int(p) for p in perm)
    if perm == tuple(range(len(perm))):
        return x
    return bind(transpose_p, x, perm=perm)


def concatenate(xs, axis):
    xs = list(xs)
    if len(xs) == 1:
        return xs[0]
    return bind(concatenate_p, *xs, axis=int(axis))


def moveaxis(x, src: int, dst: int):
    """x with axis `src` moved to position `dst` (a transpose, or x itself)."""
    if src == dst:
        return x
    perm = list(range(aval_of(x).ndim))
    perm.pop(src)
    perm.insert(dst, src)
    return transpose(x, perm)


# ---------------------------------------------------------------------------------------------
# batching rules (vmap; see batching.py)

def _transpose_batch(prim, axis_size, vals, dims, *, perm):
    d = dims[0]
    return transpose(vals[0], (d,) + tuple(p + (p >= d) for p in perm)), 0


def batch_first(axis_size, vals, dims):
    """Every operand with the batch at axis 0 (an unbatched one broadcast)."""
    return [moveaxis(v, d, 0) if d is not None else broadcast_to(v, (axis_size,) + aval_of(v).shape)
            for v, d in zip(vals, dims)]


def along_axis_batch(prim, axis_size, vals, dims, *, axis, **params):
    """An op of several operands along one `axis` (argselect, cumprod_grad): batch first."""
    return bind(prim, *batch_first(axis_size, vals, dims), axis=axis + 1, **params), 0


def _concat_batch(prim, axis_size, vals, dims, *, axis):
    return concatenate(batch_first(axis_size, vals, dims), axis + 1), 0


transpose_p.batch = _transpose_batch
concatenate_p.batch = _concat_batch
