"""dot_general: the one contraction primitive. matmul, dot, outer, tensordot and two-operand
einsum all become `dot_general` plus transposes (see `einsum2`).

dot_general(a, b) {contract=((a axes), (b axes)), batch=((a axes), (b axes))}
has output dims: batch dims, then a's free dims, then b's free dims (as jax.lax.dot_general).
"""
from __future__ import annotations

import string

import numpy as np

from ..ir import AVal
from .core import Primitive, aval_of, bind, register
from . import reductions as R, shape as S

# numpy names bound at import: numpy has a module __getattr__, so Python 3.11 never
# specializes an `np.name` lookup (~40 ns each, several per tape node)
_ND = np.ndarray
_NP_ASARRAY = np.asarray
_GENERIC = np.generic
_NP_MATMUL = np.matmul
_NP_DOT = np.dot
_F3264 = (np.dtype(np.float64), np.dtype(np.float32))
_NP_MULTIPLY = np.multiply


def _free(ndim, *used):
    taken = set(used[0]) | set(used[1]) if len(used) == 2 else set(used[0])
    return [i for i in range(ndim) if i not in taken]


def _dot_rule(a, b, *, contract, batch):
    (ac, bc), (ab, bb) = contract, batch
    if a.dtype != b.dtype:
        raise TypeError(f"dot_general: dtypes {a.dtype} and {b.dtype} differ")
    if len(ac) != len(bc) or len(ab) != len(bb):
        raise ValueError("dot_general: contracting/batch axis lists must pair up")
    for i, j in list(zip(ac, bc)) + list(zip(ab, bb)):
        if not (0 <= i < a.ndim and 0 <= j < b.ndim) or a.shape[i] != b.shape[j]:
            raise ValueError(f"dot_general: shapes {a.shape} and {b.shape} are not aligned "
                             f"(axis {i} vs axis {j})")
    af, bf = _free(a.ndim, ac, ab), _free(b.ndim, bc, bb)
    shape = tuple(a.shape[i] for i in ab) + tuple(a.shape[i] for i in af) + \
        tuple(b.shape[i] for i in bf)
    return AVal(shape, a.dtype)


def _group(x, lead, mid, last):
    """x's axes rearranged to (*lead, prod(mid), prod(last)) as a view when strides allow:
    a single axis per group needs no copy, so BLAS gets transposed operands through its
    trans flags instead of a copied transpose (Xᵀg on an 8 MB X copied X on every call)."""
    order = list(lead) + list(mid) + list(last)
    if order != list(range(x.ndim)):
        x = x.transpose(order)
    if len(mid) == 1 and len(last) == 1:
        return x
    sh = x.shape
    nl = len(lead)
    m = 1
    for d in sh[nl:nl + len(mid)]:
        m *= d
    k = 1
    for d in sh[nl + len(mid):]:
        k *= d
    return x.reshape(sh[:nl] + (m, k))  # copies only when the grouped axes are not mergeable


def _dot_impl(a, b, *, contract, batch):
    """Reference implementation through np.matmul (BLAS) on (*B, M, K) @ (*B, K, N) views."""
    a, b = _NP_ASARRAY(a), _NP_ASARRAY(b)
    (ac, bc), (ab, bb) = contract, batch
    af, bf = _free(a.ndim, ac, ab), _free(b.ndim, bc, bb)
    out_shape = tuple(a.shape[i] for i in ab) + tuple(a.shape[i] for i in af) + \
        tuple(b.shape[i] for i in bf)
    if not ab and len(ac) == 1 and len(af) <= 1 and len(bf) <= 1:
        # the common no-batch cases as 1-D/2-D operands: matrix @ vector is a gemv, vector @
        # vector a dot, all on views (numpy passes transposed views to BLAS without copying)
        a2 = a if af + list(ac) == list(range(a.ndim)) else a.transpose(af + list(ac))
        b2 = b if list(bc) + bf == list(range(b.ndim)) else b.transpose(list(bc) + bf)
        out = _NP_MATMUL(a2, b2)
        return out if type(out) is _ND else np.asarray(out)
    a3 = _group(a, ab, af, ac)
    b3 = _group(b, bb, bc, bf)
    if ab and len(af) == 1 and len(bf) == 1 and b3.shape[-1] > 4 * a3.shape[-2]:
        # a batch of short-by-long products (Ls @ xc in the GMM: (k, d, d) @ (k, d, n)): the
        # result is laid out long axis first (as the transpose of bᵀ aᵀ), so that the
        # einsum's output order (n, k, d) that follows is a view with a contiguous last
        # axis, not one whose every element is n apart (2x slower to read elementwise)
        return _NP_MATMUL(b3.swapaxes(-1, -2), a3.swapaxes(-1, -2)).swapaxes(-1, -2)
    return _NP_MATMUL(a3, b3).reshape(out_shape)


def _letters(a_nd, b_nd, contract, batch):
    """Einsum subscripts (a, b, out) describing a dot_general."""
    (ac, bc), (ab, bb) = contract, batch
    pool = iter(string.ascii_letters)
    a_sub = [next(pool) for _ in range(a_nd)]
    b_sub = [None] * b_nd
    for i, j in zip(ac, bc):
        b_sub[j] = a_sub[i]
    for i, j in zip(ab, bb):
        b_sub[j] = a_sub[i]
    b_sub = [s or next(pool) for s in b_sub]
    af, bf = _free(a_nd, ac, ab), _free(b_nd, bc, bb)
    out = [a_sub[i] for i in ab] + [a_sub[i] for i in af] + [b_sub[i] for i in bf]
    return "".join(a_sub), "".join(b_sub), "".join(out)


# outputs up to this many elements come from np.dot (see mm2)
_DOT_MAX_OUT = 2048


def mm2(x, y):
    """x @ y for 2-D numpy arrays. Float32/64 operands that are C- or F-contiguous (transposed
    views included) with a small result go through np.dot: the same BLAS call (gemm, or syrk
    for a aᵀ) that np.matmul makes, so the same bits, without the ufunc machinery (~0.6 us
    instead of ~1.4 us on small matrices). np.dot zeroes its result before the gemm, which
    OpenBLAS zeroes again (beta = 0), so larger results come from np.matmul: 6-30% faster on
    the MLP's products (256 x 784 x 128: 1155 against 1240 us; 256 x 10 x 128: 31 against
    47 us). A column times a row (inner length 1) always takes np.dot: np.matmul does not
    hand a row view such as v.T of a column to BLAS and runs its own loop, 4.6x np.dot's
    time for a 200 x 200 result. Anything else (strided views, other dtypes), np.matmul."""
    dt = x.dtype
    if (dt is y.dtype or dt == y.dtype) and dt in _F3264 and \
            (x.shape[0] * y.shape[1] <= _DOT_MAX_OUT or x.shape[1] == 1):
        fx, fy = x.flags, y.flags
        if (fx.c_contiguous or fx.f_contiguous) and (fy.c_contiguous or fy.f_contiguous):
            return _NP_DOT(x, y)
    return _NP_MATMUL(x, y)


def outer_np(u, v):
    """np.multiply.outer(u, v) of two numpy vectors, to the bit. For float vectors of one
    dtype with no zero entry and a result of 1024 entries or more, it is a GEMM of inner
    length 1 (np.dot of a column and a row): half the multiply's time at 200 x 200, which
    runs numpy's inner loop once a row. Each entry is the one rounded product either way;
    GEMM adds it to +0.0, which changes only a -0.0 product, and that needs a zero factor,
    so vectors with a zero keep the multiply (nan and inf factors give the same either way).
    For products whose other modes compute them as dot_general, see outer_dot."""
    if u.dtype == v.dtype and u.dtype in _F3264 and u.size * v.size >= 1024 and \
            _DOT_OUTER_EXACT and u.all() and v.all():
        return _NP_DOT(u[:, None], v[None, :])
    return _NP_MULTIPLY.outer(u, v)


def outer_dot(u, v):
    """The outer product of two numpy vectors as dot_general computes it (the interpreter and
    compiled code: each product added to +0.0, so a -0.0 product comes out +0.0): np.dot of a
    column and a row, the GEMM of inner length 1 (np.multiply.outer's values otherwise, half
    its time at 200 x 200). np.multiply.outer plus +0.0 where the probe found the BLAS
    differs."""
    if u.dtype == v.dtype and u.dtype in _F3264 and _DOT_OUTER_EXACT:
        return _NP_DOT(u[:, None], v[None, :])
    out = _NP_MULTIPLY.outer(u, v)
    return out + out.dtype.type(0) if out.dtype.kind == "f" else out


def _dot_outer_is_exact():
    """Asked once at import: does the installed BLAS give np.multiply.outer's bits for a
    column times a row of nonzero factors (subnormal products kept, nan and inf as numpy's)?
    If not, outer_np keeps the multiply."""
    base = np.sin(np.arange(48) * 1.7 + 0.5) * 10.0 ** (np.arange(48) % 9 - 4)   # no zeros
    for dt in _F3264:
        tiny = np.sqrt(np.finfo(dt).smallest_normal) * 0.01   # tiny * tiny is subnormal
        a, b = base.astype(dt), base[::-1].astype(dt)
        a[:3], b[:2] = (tiny, np.inf, np.nan), (tiny, -np.inf)
        with np.errstate(all="ignore"):
            got, want = _NP_DOT(a[:, None], b[None, :]), _NP_MULTIPLY.outer(a, b)
        if not (np.array_equal(got, want, equal_nan=True) and
                np.array_equal(np.signbit(got), np.signbit(want))):
            return False
    return True


_DOT_OUTER_EXACT = _dot_outer_is_exact()


def _matmul_vjp(g, a, b, needs):
    """The VJP of a @ b for 1-D/2-D numpy operands (tape backward), without einsum's layer:
    ga = g bᵀ, gb = aᵀ g, with vectors as the matching rows/columns (JAX's dot_general rule)."""
    ga = gb = None
    if a.ndim == 2 and b.ndim == 2:
        if needs[0]:
            ga = mm2(g, b.T)
        if needs[1]:
            m, n = a.shape[1], g.shape[1]
            # a wide aᵀg (the weight gradient X^T g of a layer with many inputs) is 25-35%
            # faster in OpenBLAS (and MKL) as the transpose of gᵀa; a tall thin X (n x 3) is not
            gb = mm2(g.T, a).T if m > 2 * n and m * n >= 4096 else mm2(a.T, g)
    elif a.ndim == 1 and b.ndim == 2:
        if needs[0]:
            ga = _NP_MATMUL(b, g)
        if needs[1]:
            gb = outer_dot(a, g)
    elif a.ndim == 2:  # b 1-D
        if needs[0]:
            ga = outer_dot(g, b)
        if needs[1]:
            gb = _NP_MATMUL(g, a)
    else:   # a vector dot product: the scalar cotangent times the other vector
        if needs[0]:
            ga = _scaled(g, b)
        if needs[1]:
            gb = _scaled(g, a)
    return ga, gb


def _scaled(g, v):
    """g * v as dot_general computes it in the other modes: each product added to +0.0, so a
    -0.0 product comes out +0.0."""
    out = g * v
    if type(out) is _ND and out.dtype.kind == "f":
        out += out.dtype.type(0)     # (out is fresh)
    return out


def _dot_vjp(g, out, a, b, *, contract, batch, needs=(True, True)):
    # needs: which cotangents are wanted (tape mode skips the X in X @ w: an n x d outer product)
    if type(a) is _ND and type(b) is _ND and not batch[0] and a.ndim <= 2 and \
            b.ndim <= 2 and contract == ((a.ndim - 1,), (0,)) and \
            (type(g) is _ND or isinstance(g, _GENERIC)) and a.dtype == b.dtype:
        return _matmul_vjp(g, a, b, needs)
    key = (aval_of(a).ndim, aval_of(b).ndim, contract, batch)
    subs = _LETTERS.get(key)
    if subs is None:
        if len(_LETTERS) > 1024:
            _LETTERS.clear()
        subs = _LETTERS[key] = _letters(*key)
    a_sub, b_sub, o_sub = subs
    return (einsum2(o_sub, b_sub, a_sub, g, b) if needs[0] else None,
            einsum2(a_sub, o_sub, b_sub, a, g) if needs[1] else None)


_LETTERS: dict = {}  # (a.ndim, b.ndim, contract, batch) -> _letters


def _dot_jvp(t, out, a, b, *, contract, batch):
    ta, tb = t
    res = None
    if ta is not None:
        res = dot_general(ta, b, contract, batch)
    if tb is not None:
        part = dot_general(a, tb, contract, batch)
        res = part if res is None else res + part
    return res


dot_general_p = register(Primitive("dot_general", _dot_rule, _dot_impl, vjp=_dot_vjp, jvp=_dot_jvp,
                                   torch_name="MmBackward0", family="dot"))


def dot_general(a, b, contract, batch=((), ())):
    contract = (tuple(contract[0]), tuple(contract[1]))
    batch = (tuple(batch[0]), tuple(batch[1]))
    return bind(dot_general_p, a, b, contract=contract, batch=batch)


def einsum2(a_sub: str, b_sub: str, out_sub: str, a, b):
    """Two-operand einsum without repeated letters inside one operand, as dot_general."""
    plan = _PLANS.get((a_sub, b_sub, out_sub))
    if plan is None:
        plan = _einsum2_plan(a_sub, b_sub, out_sub)
        if len(_PLANS) > 1024:  # bound the cache for programs with ever-new subscripts
            _PLANS.clear()
        _PLANS[(a_sub, b_sub, out_sub)] = plan
    only_a, only_b, contract, batch, perm = plan
    if only_a:
        a = R.reduce_sum(a, only_a)
    if only_b:
        b = R.reduce_sum(b, only_b)
    return S.transpose(dot_general(a, b, contract, batch), perm)


_PLANS: dict = {}  # (a_sub, b_sub, out_sub) -> _einsum2_plan (tape backward asks per node)


def _einsum2_plan(a_sub, b_sub, out_sub):
    """What einsum2 does for these subscripts: the axes each operand sums away first, the
    dot_general's contract/batch axes, and the transpose of its result into out_sub."""
    for sub in (a_sub, b_sub, out_sub):
        if len(set(sub)) != len(sub):
            raise NotImplementedError(f"einsum: repeated index in {sub!r} (diagonals) is not "
                                      f"supported; write it with np.diagonal-free code")
    missing = set(out_sub) - set(a_sub) - set(b_sub)
    if missing:
        raise ValueError(f"einsum: output index {sorted(missing)} appears in no operand")
    # letters that appear in only one operand and not in the output are summed away first
    only_a = [i for i, c in enumerate(a_sub) if c not in b_sub and c not in out_sub]
    if only_a:
        a_sub = "".join(c for i, c in enumerate(a_sub) if i not in only_a)
    only_b = [i for i, c in enumerate(b_sub) if c not in a_sub and c not in out_sub]
    if only_b:
        b_sub = "".join(c for i, c in enumerate(b_sub) if i not in only_b)
    shared = [c for c in a_sub if c in b_sub]
    batch_l = [c for c in shared if c in out_sub]
    contract_l = [c for c in shared if c not in out_sub]
    contract = (tuple(a_sub.index(c) for c in contract_l), tuple(b_sub.index(c) for c in contract_l))
    batch = (tuple(a_sub.index(c) for c in batch_l), tuple(b_sub.index(c) for c in batch_l))
    res_sub = "".join(batch_l) + "".join(c for c in a_sub if c not in b_sub) + \
        "".join(c for c in b_sub if c not in a_sub)
    return (tuple(only_a), tuple(only_b), contract, batch,
            tuple(res_sub.index(c) for c in out_sub))


def _dot_batch(prim, axis_size, vals, dims, *, contract, batch):
    """Batched operands give dot_general one more batch dimension (or, batched on one side
    only, one more free dimension), so one BLAS call serves every example."""
    (a, b), (da, db) = vals, dims
    (ac, bc), (ab, bb) = contract, batch

    def shift(axes, d):
        return tuple(i + (i >= d) for i in axes)

    if da is not None and db is not None:
        a, b = S.moveaxis(a, da, 0), S.moveaxis(b, db, 0)
        return dot_general(a, b, (shift(ac, 0), shift(bc, 0)),
                           ((0,) + shift(ab, 0), (0,) + shift(bb, 0))), 0
    # Output axes: batch dims, a's free dims, b's free dims. When the batched operand's only
    # free axis is the batch, swapping the operands moves the batch to the other end of the
    # output: done when that keeps it at the end (first or last) the operand had it at, the
    # layout the surrounding rules keep (jacrev batches first, jacfwd last)
    if da is not None:
        af = _free(aval_of(a).ndim, shift(ac, da), shift(ab, da))
        if not ab and af == [da] and da == aval_of(a).ndim - 1 > 0:
            out = dot_general(b, a, (bc, shift(ac, da)))
            return out, aval_of(out).ndim - 1
        out = dot_general(a, b, (shift(ac, da), bc), (shift(ab, da), bb))
        return out, len(ab) + af.index(da)
    bf = _free(aval_of(b).ndim, shift(bc, db), shift(bb, db))
    if not ab and bf == [db] and db == 0 < aval_of(b).ndim - 1:
        return dot_general(b, a, (shift(bc, db), ac)), 0
    out = dot_general(a, b, (ac, shift(bc, db)), (ab, shift(bb, db)))
    a_free = aval_of(a).ndim - len(ac) - len(ab)
    return out, len(ab) + a_free + bf.index(db)


dot_general_p.batch = _dot_batch
