"""numpy's products (dot, matmul, outer, inner, vdot, tensordot, einsum) on traced values and
tape Tensors, all onto the dot_general and einsum2 primitives."""
from __future__ import annotations

import numbers

import numpy as np

import string

from ..primitives import linalg as L, reductions as R, shape as S
from ._base import UFUNCS, _shape, asvalue, implements, normalize_axes, ufunc
from ._gather import remap
from .shape import _common, broadcast_to, moveaxis, ravel, reshape, stack
from .ufuncs import multiply, subtract

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


def _sublist_letter(k):
    if k is Ellipsis:
        return "..."
    if not isinstance(k, numbers.Integral) or not 0 <= k < 52:
        raise ValueError(f"einsum: subscript {k!r} in a sublist must be an integer in [0, 52) "
                         f"or Ellipsis")
    return string.ascii_letters[k]


def _sublist_subscripts(args):
    """numpy's interleaved form einsum(a, [0, 1], b, [1, 2], [0, 2]) as the subscripts string
    'ab,bc->ac' and the operands (integer k is the k-th ASCII letter, as in numpy)."""
    pairs, out = args[:len(args) // 2 * 2], args[len(args) // 2 * 2:]
    operands = pairs[0::2]
    subs = ",".join("".join(_sublist_letter(k) for k in sub) for sub in pairs[1::2])
    if out:
        subs += "->" + "".join(_sublist_letter(k) for k in out[0])
    return subs, operands


@implements(np.einsum, defaults_only=("out", "dtype", "casting"))
def einsum(subscripts, *operands, out=None, dtype=None, order="K", casting="safe",
           optimize=False):
    if not isinstance(subscripts, str):
        subscripts, operands = _sublist_subscripts((subscripts,) + operands)
    spec = subscripts.replace(" ", "")
    ins, arrow, out = spec.partition("->")
    in_subs = ins.split(",")
    if len(in_subs) != len(operands):
        raise ValueError(f"einsum: {len(in_subs)} subscripts for {len(operands)} operands")
    values = _common([_strong(v) for v in operands])
    if "." in spec:
        in_subs, out, values = _expand_ellipsis(in_subs, out if arrow else None, values)
        arrow = True
    if not arrow:
        joined = "".join(in_subs)
        counts = {c: joined.count(c) for c in joined}
        out = "".join(sorted(c for c, n in counts.items() if n == 1))
    for k, (sub, v) in enumerate(zip(in_subs, values)):
        if len(sub) != len(_shape(v)):
            raise ValueError(f"einsum: operand {k} has {len(_shape(v))} dimensions but "
                             f"subscripts {sub!r}")
        if len(set(sub)) != len(sub):  # repeated index: take that diagonal first
            uniq = "".join(dict.fromkeys(sub))
            values[k] = remap(v, lambda p, sub=sub, uniq=uniq: np.einsum(f"{sub}->{uniq}", p))
            in_subs[k] = uniq
    acc, acc_sub = values[0], in_subs[0]
    if len(values) == 1:
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


def _expand_ellipsis(in_subs, out, values):
    """Spell '...' out with unused letters; the operands' '...' dims broadcast together."""
    used = set("".join(in_subs) + (out or ""))
    free = [c for c in string.ascii_letters if c not in used]
    counts = [len(_shape(v)) - len(s.replace("...", "")) if "..." in s else 0
              for s, v in zip(in_subs, values)]
    n = max(counts)
    letters = "".join(free[:n])
    ell_shape = np.broadcast_shapes(*[_shape(v)[s.index("..."):s.index("...") + k]
                                      for s, v, k in zip(in_subs, values, counts) if "..." in s])
    subs, vals = [], []
    for s, v, k in zip(in_subs, values, counts):
        if "..." in s:
            i = s.index("...")
            s = s.replace("...", letters)
            shape = _shape(v)
            v = broadcast_to(reshape(v, shape[:i] + (1,) * (n - k) + shape[i:]),
                             shape[:i] + ell_shape + shape[i + k:])
        subs.append(s)
        vals.append(v)
    if out is None:
        joined = "".join(in_subs).replace("...", "")
        out = letters + "".join(sorted(c for c in set(joined) if joined.count(c) == 1))
    else:
        out = out.replace("...", letters)
    return subs, out, vals


@implements(np.kron)
def kron(a, b):
    a, b = _common([_strong(a), _strong(b)])
    nd = max(len(_shape(a)), len(_shape(b)))
    sa = (1,) * (nd - len(_shape(a))) + _shape(a)
    sb = (1,) * (nd - len(_shape(b))) + _shape(b)
    a = reshape(a, tuple(d for x in sa for d in (x, 1)))
    b = reshape(b, tuple(d for x in sb for d in (1, x)))
    return reshape(multiply(a, b), tuple(x * y for x, y in zip(sa, sb)))


@implements(np.cross)
def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = _common([a, b])
    a = moveaxis(a, axisa, -1)
    b = moveaxis(b, axisb, -1)
    na, nb = _shape(a)[-1], _shape(b)[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError("incompatible dimensions for cross product\n(dimension must be 2 or 3)")
    if na == 2 or nb == 2:
        # 2-vectors: deprecated in numpy 2.0, refused from 2.5: let the installed numpy decide
        np.cross(np.zeros(_shape(a)), np.zeros(_shape(b)))
    ax = [a[..., i] for i in range(na)]
    bx = [b[..., i] for i in range(nb)]
    if na == nb == 2:
        return subtract(multiply(ax[0], bx[1]), multiply(ax[1], bx[0]))
    zero = 0.0
    ax += [zero] * (3 - na)
    bx += [zero] * (3 - nb)

    def part(i, j):
        if isinstance(ax[i], float) or isinstance(bx[j], float):
            t1 = None
        else:
            t1 = multiply(ax[i], bx[j])
        t2 = None if isinstance(ax[j], float) or isinstance(bx[i], float) else \
            multiply(ax[j], bx[i])
        if t1 is None and t2 is None:
            return multiply(ax[0] if not isinstance(ax[0], float) else bx[0], 0.0)
        if t2 is None:
            return t1
        return UFUNCS[np.negative](t2) if t1 is None else subtract(t1, t2)

    comps = [part(1, 2), part(2, 0), part(0, 1)]
    shape = np.broadcast_shapes(*[_shape(c) for c in comps])
    res = stack([broadcast_to(c, shape) for c in comps], -1)
    return moveaxis(res, -1, axisc)


def _gufunc_axis(axis, name):
    if axis is None:
        raise NotImplementedError(f"np.{name}(..., axis=None) is not supported")
    return axis


def _core(name, signature, *operands):
    """numpy's gufunc checks: each operand has its core dimensions, and the shared ones agree
    (core dimensions never broadcast)."""
    for i, (x, k) in enumerate(operands, 1):
        if len(_shape(x)) < k:
            raise ValueError(f"{name}: Input operand {i} does not have enough dimensions (has "
                             f"{len(_shape(x))}, gufunc core with signature {signature} "
                             f"requires {k})")


def _core_match(name, n1, n2):
    if n1 != n2:
        raise ValueError(f"{name}: Input operand 1 has a mismatch in its core dimension 0, with "
                         f"gufunc signature of size {n1} different from {n2}")


if hasattr(np, "vecdot"):
    @ufunc(np.vecdot)
    def vecdot(x1, x2, /, *, axis=-1):
        # real arrays: conj(x1) == x1
        x1, x2 = _common([x1, x2])
        _core("vecdot", "(n),(n)->()", (x1, 1), (x2, 1))
        ax = _gufunc_axis(axis, "vecdot")
        _core_match("vecdot", _shape(x1)[normalize_axes(ax, len(_shape(x1)))[0]],
                    _shape(x2)[normalize_axes(ax, len(_shape(x2)))[0]])
        # the gufunc's core axis of each operand goes last first; the loop axes then broadcast
        x1 = moveaxis(x1, ax, -1)
        x2 = moveaxis(x2, ax, -1)
        prod = multiply(x1, x2)
        return R.reduce_sum(prod, (len(_shape(prod)) - 1,))

if hasattr(np, "matvec"):
    @ufunc(np.matvec)
    def matvec(x1, x2, /):
        x1, x2 = _common([x1, x2])
        _core("matvec", "(m,n),(n)->(m)", (x1, 2), (x2, 1))
        _core_match("matvec", _shape(x1)[-1], _shape(x2)[-1])
        return R.reduce_sum(multiply(x1, reshape(x2, _shape(x2)[:-1] + (1, _shape(x2)[-1]))),
                            (max(len(_shape(x1)), len(_shape(x2)) + 1) - 1,))

    @ufunc(np.vecmat)
    def vecmat(x1, x2, /):
        x1, x2 = _common([x1, x2])
        _core("vecmat", "(n),(n,m)->(m)", (x1, 1), (x2, 2))
        _core_match("vecmat", _shape(x1)[-1], _shape(x2)[-2])
        prod = multiply(reshape(x1, _shape(x1) + (1,)), x2)
        return R.reduce_sum(prod, (len(_shape(prod)) - 2,))
