"""numpy's products (dot, matmul, outer, inner, vdot, tensordot, einsum) on traced values and
tape Tensors, all onto the dot_general and einsum2 primitives."""
from __future__ import annotations

import numbers

import numpy as np

from ..primitives import linalg as L, reductions as R, shape as S
from ._base import UFUNCS, _shape, asvalue, implements
from .shape import _common, ravel
from .ufuncs import multiply

def _check_aligned(op, a, b):
    """a's last axis against b's second-to-last (or only) axis, with numpy's wording."""
    sa, sb = _shape(a), _shape(b)
    kb = len(sb) - 2 if len(sb) >= 2 else 0
    if sa[-1] != sb[kb]:
        raise ValueError(f"{op}: shapes {sa} and {sb} not aligned: {sa[-1]} (dim {len(sa) - 1}) "
                         f"!= {sb[kb]} (dim {kb})")


def _strong(x):
    """np.dot/outer/inner/... turn a Python scalar into an array first (np.dot(x32, 0.5) is
    float64), unlike ufuncs, where a Python scalar takes the array's dtype."""
    return np.asarray(x) if isinstance(x, (bool, int, float, complex)) else x


@implements(np.dot, defaults_only=("out",))
def dot(a, b, out=None):
    a, b = _common([_strong(a), _strong(b)])
    na, nb = len(_shape(a)), len(_shape(b))
    if na == 0 or nb == 0:
        return multiply(a, b)
    _check_aligned("dot", a, b)
    return L.dot_general(a, b, ((na - 1,), (nb - 2 if nb >= 2 else 0,)))


@implements(np.matmul, defaults_only=("out",))
def matmul(a, b, /, out=None):
    # np.matmul is a ufunc in numpy 2: `ndarray @ tracer` arrives through __array_ufunc__
    a, b = _common([a, b])
    na, nb = len(_shape(a)), len(_shape(b))
    if na == 0 or nb == 0:
        raise ValueError("matmul: Input operand does not have enough dimensions")
    _check_aligned("matmul", a, b)
    if na <= 2 and nb <= 2:
        return dot(a, b)
    if nb == 1:  # (..., M, K) @ (K,)
        return L.dot_general(a, b, ((na - 1,), (0,)))
    if na == 1:  # (K,) @ (..., K, N)
        return L.dot_general(a, b, ((0,), (nb - 2,)))
    if na == 2:  # (M, K) @ (..., K, N): contract, then move M after the batch dims
        res = L.dot_general(a, b, ((1,), (nb - 2,)))
        perm = list(range(1, nb - 1)) + [0, nb - 1]
        return S.transpose(res, perm)
    if nb == 2:  # (..., M, K) @ (K, N)
        return L.dot_general(a, b, ((na - 1,), (0,)))
    batch = np.broadcast_shapes(_shape(a)[:-2], _shape(b)[:-2])
    a = S.broadcast_to(a, batch + _shape(a)[-2:])
    b = S.broadcast_to(b, batch + _shape(b)[-2:])
    nbatch = len(batch)
    return L.dot_general(a, b, ((nbatch + 1,), (nbatch,)),
                         (tuple(range(nbatch)), tuple(range(nbatch))))


UFUNCS[np.matmul] = matmul


@implements(np.outer, defaults_only=("out",))
def outer(a, b, out=None):
    a, b = _common([_strong(a), _strong(b)])
    return L.dot_general(ravel(a), ravel(b), ((), ()))


@implements(np.inner)
def inner(a, b):
    a, b = _common([_strong(a), _strong(b)])
    na, nb = len(_shape(a)), len(_shape(b))
    if na == 0 or nb == 0:
        return multiply(a, b)
    return L.dot_general(a, b, ((na - 1,), (nb - 1,)))


@implements(np.vdot)
def vdot(a, b):
    return dot(ravel(asvalue(a)), ravel(asvalue(b)))


@implements(np.tensordot)
def tensordot(a, b, axes=2):
    a, b = _common([_strong(a), _strong(b)])
    na, nb = len(_shape(a)), len(_shape(b))
    if isinstance(axes, numbers.Integral):
        ax_a, ax_b = list(range(na - axes, na)), list(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, numbers.Integral) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, numbers.Integral) else list(ax_b)
    return L.dot_general(a, b, (tuple(x % na for x in ax_a), tuple(x % nb for x in ax_b)))


@implements(np.einsum, defaults_only=("out", "dtype", "casting"))
def einsum(subscripts, *operands, out=None, dtype=None, order="K", casting="safe",
           optimize=False):
    spec = subscripts.replace(" ", "")
    if "." in spec:
        raise NotImplementedError("einsum with '...' is not supported; spell out the indices")
    ins, arrow, out = spec.partition("->")
    in_subs = ins.split(",")
    if len(in_subs) != len(operands):
        raise ValueError(f"einsum: {len(in_subs)} subscripts for {len(operands)} operands")
    if not arrow:
        counts = {c: ins.count(c) for c in ins if c != ","}
        out = "".join(sorted(c for c, n in counts.items() if n == 1))
    values = _common(operands)
    acc, acc_sub = values[0], in_subs[0]
    if len(values) == 1:
        if len(set(acc_sub)) != len(acc_sub):
            raise NotImplementedError("einsum: repeated indices in one operand (diagonal/trace) "
                                      "are not supported")
        summed = [i for i, c in enumerate(acc_sub) if c not in out]
        if summed:
            acc = R.reduce_sum(acc, summed)
            acc_sub = "".join(c for i, c in enumerate(acc_sub) if i not in summed)
        return S.transpose(acc, [acc_sub.index(c) for c in out])
    for k in range(1, len(values)):
        later = "".join(in_subs[k + 1:]) + out
        b_sub = in_subs[k]
        keep = "".join(dict.fromkeys(c for c in acc_sub + b_sub if c in later))
        acc = L.einsum2(acc_sub, b_sub, keep, acc, values[k])
        acc_sub = keep
    return S.transpose(acc, [acc_sub.index(c) for c in out])
