"""numpy's API on autodiff values: what `np.exp(x)`, `x @ y`, `x.sum()` and `x[1:]` mean when x is
a tracer (compiled mode) or a tape Tensor (tape mode).

`ArrayOps` supplies numpy's protocols (`__array_ufunc__`, `__array_function__`), Python
operators, methods and indexing. Each numpy function is implemented once here, in terms of
primitives through `bind`, so tracers and Tensors share every rule. Composite functions
(mean, var, norm, clip, logaddexp, ...) are traced into primitives.
"""
from __future__ import annotations

import numbers
import operator
import re

import numpy as np

from .ir import is_float
from .primitives import aval_of, bind
from .primitives import elementwise as E, indexing as I, linalg as L, reductions as R, shape as S
from .primitives.control import stop_gradient_p

UFUNCS: dict = {}
FUNCTIONS: dict = {}


def implements(*np_fns, table=None):
    def deco(fn):
        for f in np_fns:
            (table if table is not None else FUNCTIONS)[f] = fn
        return fn
    return deco


def ufunc(*np_fns):
    return implements(*np_fns, table=UFUNCS)


def _shape(x):
    return aval_of(x).shape


def _dtype(x):
    return aval_of(x).dtype


def _is_traced(x):
    return getattr(x, "_adj_context", None) is not None


def asvalue(x):
    """Accept what numpy accepts: lists/tuples (possibly holding traced values) become arrays."""
    if isinstance(x, (list, tuple)):
        if any(_is_traced(v) or isinstance(v, (list, tuple)) for v in x):
            return stack([asvalue(v) for v in x], 0)
        return np.asarray(x)
    return x


# ---------------------------------------------------------------------------------------------
# elementwise ufuncs

def _binary(prim, to_float=False):
    def fn(a, b):
        a, b = E.promote(asvalue(a), asvalue(b), to_float=to_float)
        return bind(prim, a, b)
    return fn


def _unary(prim, to_float=True):
    def fn(x):
        x = asvalue(x)
        if to_float and not is_float(_dtype(x)):
            x = E.cast(x, np.float64)
        return bind(prim, x)
    return fn


add = ufunc(np.add)(_binary(E.add))
subtract = ufunc(np.subtract)(_binary(E.sub))
multiply = ufunc(np.multiply)(_binary(E.mul))
divide = ufunc(np.true_divide)(_binary(E.div, to_float=True))
maximum = ufunc(np.maximum)(_binary(E.maximum))
minimum = ufunc(np.minimum)(_binary(E.minimum))
for _np_fn, _prim in [(np.less, E.lt), (np.less_equal, E.le), (np.greater, E.gt),
                      (np.greater_equal, E.ge), (np.equal, E.eq), (np.not_equal, E.ne),
                      (np.logical_and, E.logical_and), (np.logical_or, E.logical_or),
                      (np.logical_xor, E.logical_xor)]:
    UFUNCS[_np_fn] = _binary(_prim)
for _np_fn, _prim in [(np.exp, E.exp), (np.log, E.log), (np.log1p, E.log1p), (np.expm1, E.expm1),
                      (np.sqrt, E.sqrt), (np.sin, E.sin), (np.cos, E.cos), (np.tan, E.tan),
                      (np.tanh, E.tanh), (np.sinh, E.sinh), (np.cosh, E.cosh),
                      (np.arcsin, E.arcsin), (np.arccos, E.arccos), (np.arctan, E.arctan),
                      (np.floor, E.floor), (np.ceil, E.ceil), (np.rint, E.round_)]:
    UFUNCS[_np_fn] = _unary(_prim)
UFUNCS[np.negative] = _unary(E.neg, to_float=False)
UFUNCS[np.absolute] = UFUNCS[np.fabs] = _unary(E.abs_, to_float=False)
UFUNCS[np.sign] = _unary(E.sign, to_float=False)
UFUNCS[np.logical_not] = lambda x: bind(E.logical_not, E.cast(asvalue(x), np.bool_))
UFUNCS[np.positive] = lambda x: x


@ufunc(np.power)
def power(a, b):
    a, b = asvalue(a), asvalue(b)
    exponent = b.item() if isinstance(b, np.generic) else b
    if isinstance(exponent, numbers.Real) and not isinstance(exponent, bool) and \
            float(exponent).is_integer() and abs(exponent) <= 64:
        # Integer exponents keep numpy's meaning for negative bases (-2.0**3 == -8).
        if not is_float(_dtype(a)) and exponent < 0:
            raise ValueError("Integers to negative integer powers are not allowed (as in numpy)")
        if isinstance(exponent, float) and not is_float(_dtype(a)):
            a = E.cast(a, np.float64)
        return E.integer_pow(a, int(exponent))
    a, b = E.promote(a, b, to_float=True)
    return bind(E.pow_, a, b)


@ufunc(np.square)
def square(x):
    return E.integer_pow(asvalue(x), 2)


@ufunc(np.reciprocal)
def reciprocal(x):
    return divide(1.0, x)


@ufunc(np.exp2)
def exp2(x):
    return power(2.0, x)


@ufunc(np.log2)
def log2(x):
    return divide(UFUNCS[np.log](x), float(np.log(2.0)))


@ufunc(np.log10)
def log10(x):
    return divide(UFUNCS[np.log](x), float(np.log(10.0)))


@ufunc(np.hypot)
def hypot(a, b):
    return UFUNCS[np.sqrt](add(square(a), square(b)))


@ufunc(np.logaddexp)
def logaddexp(a, b):
    m = stop_gradient(maximum(a, b))
    return add(m, UFUNCS[np.log](add(UFUNCS[np.exp](subtract(a, m)),
                                     UFUNCS[np.exp](subtract(b, m)))))


@ufunc(np.isnan)
def isnan(x):
    return UFUNCS[np.not_equal](x, x)


@ufunc(np.isinf)
def isinf(x):
    return UFUNCS[np.equal](UFUNCS[np.absolute](x), np.inf)


@ufunc(np.isfinite)
def isfinite(x):
    return UFUNCS[np.logical_not](UFUNCS[np.logical_or](isnan(x), isinf(x)))


def stop_gradient(x):
    """Identity on values; the gradient does not flow through it."""
    if not _is_traced(x):
        return x
    return bind(stop_gradient_p, x)


# ---------------------------------------------------------------------------------------------
# reductions

def normalize_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, numbers.Integral):
        axis = (axis,)
    out = []
    for a in axis:
        a = int(a)
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(a, ndim)
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"duplicate value in 'axis': {axis}")
    return tuple(sorted(out))


def _keep(x, reduced, axes, keepdims):
    if not keepdims:
        return x
    shape = tuple(1 if i in axes else d for i, d in enumerate(_shape(reduced)))
    return S.reshape(x, shape)


def _check_out(kw):
    for key in ("out", "where", "initial"):
        if kw.get(key) is not None and not (key == "where" and kw[key] is True):
            raise NotImplementedError(f"the {key}= argument is not supported on traced values")


@implements(np.sum)
def sum_(x, axis=None, dtype=None, keepdims=False, **kw):
    _check_out(kw)
    x = asvalue(x)
    if dtype is not None:
        x = E.cast(x, dtype)
    elif _dtype(x) == np.bool_ or _dtype(x) == np.int32:
        x = E.cast(x, np.int64)
    axes = normalize_axes(axis, len(_shape(x)))
    return _keep(R.reduce_sum(x, axes) if axes else x, x, axes, keepdims)


@implements(np.mean)
def mean(x, axis=None, dtype=None, keepdims=False, **kw):
    x = asvalue(x)
    if not is_float(_dtype(x)):
        x = E.cast(x, dtype or np.float64)
    axes = normalize_axes(axis, len(_shape(x)))
    count = int(np.prod([_shape(x)[a] for a in axes], dtype=np.int64))
    return divide(sum_(x, axes, dtype, keepdims, **kw), float(count))


@implements(np.var)
def var(x, axis=None, dtype=None, ddof=0, keepdims=False, **kw):
    x = asvalue(x)
    if not is_float(_dtype(x)):
        x = E.cast(x, np.float64)
    axes = normalize_axes(axis, len(_shape(x)))
    count = int(np.prod([_shape(x)[a] for a in axes], dtype=np.int64))
    centered = subtract(x, mean(x, axes, keepdims=True))
    return divide(sum_(multiply(centered, centered), axes, keepdims=keepdims), float(count - ddof))


@implements(np.std)
def std(x, axis=None, dtype=None, ddof=0, keepdims=False, **kw):
    return UFUNCS[np.sqrt](var(x, axis, dtype, ddof, keepdims, **kw))


def _extremum(prim):
    def fn(x, axis=None, out=None, keepdims=False, **kw):
        _check_out(dict(kw, out=out))
        x = asvalue(x)
        axes = normalize_axes(axis, len(_shape(x)))
        if any(_shape(x)[a] == 0 for a in axes):
            raise ValueError("zero-size array to reduction operation which has no identity")
        return _keep(bind(prim, x, axes=axes) if axes else x, x, axes, keepdims)
    return fn


amax = implements(np.max, np.amax)(_extremum(R.reduce_max_p))
amin = implements(np.min, np.amin)(_extremum(R.reduce_min_p))


@implements(np.prod)
def prod(x, axis=None, dtype=None, keepdims=False, **kw):
    _check_out(kw)
    x = asvalue(x)
    if dtype is not None:
        x = E.cast(x, dtype)
    axes = normalize_axes(axis, len(_shape(x)))
    return _keep(R.reduce_prod(x, axes) if axes else x, x, axes, keepdims)


def _arg(prim):
    def fn(x, axis=None, out=None, keepdims=False):
        x = asvalue(x)
        if axis is None:
            x, axis = ravel(x), 0
        axis = normalize_axes(axis, len(_shape(x)))[0]
        res = bind(prim, x, axis=axis)
        return _keep(res, x, (axis,), keepdims)
    return fn


argmax = implements(np.argmax)(_arg(R.argmax_p))
argmin = implements(np.argmin)(_arg(R.argmin_p))


@implements(np.cumsum)
def cumsum(x, axis=None, dtype=None, out=None):
    x = asvalue(x)
    if dtype is not None:
        x = E.cast(x, dtype)
    if axis is None:
        x, axis = ravel(x), 0
    return R.cumsum(x, normalize_axes(axis, len(_shape(x)))[0])


@implements(np.average)
def average(x, axis=None, weights=None, returned=False, keepdims=False):
    if weights is None:
        return mean(x, axis, keepdims=keepdims)
    total = sum_(multiply(x, weights), axis, keepdims=keepdims)
    return divide(total, sum_(multiply(np.ones(_shape(x)), weights), axis, keepdims=keepdims))


@implements(np.linalg.norm)
def norm(x, ord=None, axis=None, keepdims=False):
    x = asvalue(x)
    if ord in (None, 2, "fro") and (ord != 2 or axis is not None or len(_shape(x)) == 1):
        return UFUNCS[np.sqrt](sum_(multiply(x, x), axis, keepdims=keepdims))
    if ord == 1 and (axis is not None or len(_shape(x)) == 1):
        return sum_(UFUNCS[np.absolute](x), axis, keepdims=keepdims)
    if ord == np.inf and (axis is not None or len(_shape(x)) == 1):
        return amax(UFUNCS[np.absolute](x), axis, keepdims=keepdims)
    raise NotImplementedError(f"np.linalg.norm with ord={ord!r} on a rank-{len(_shape(x))} value "
                              f"is not supported; use ord=None/1/2/inf on vectors or axis=")


# ---------------------------------------------------------------------------------------------
# shapes

def _resolve_shape(shape, size):
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    shape = [int(d) for d in shape]
    if shape.count(-1) > 1:
        raise ValueError("can only specify one unknown dimension")
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape array of size {size} into shape {tuple(shape)}")
        shape[shape.index(-1)] = size // known
    return tuple(shape)


@implements(np.reshape)
def reshape(x, shape=None, order="C", **kw):
    if shape is None:
        shape = kw.pop("newshape")
    if order != "C":
        raise NotImplementedError("only order='C' reshapes are supported")
    x = asvalue(x)
    return S.reshape(x, _resolve_shape(shape, aval_of(x).size))


@implements(np.ravel)
def ravel(x, order="C"):
    return reshape(x, (-1,), order)


@implements(np.transpose)
def transpose(x, axes=None):
    x = asvalue(x)
    nd = len(_shape(x))
    perm = tuple(reversed(range(nd))) if axes is None else tuple(a % nd for a in axes)
    return S.transpose(x, perm)


@implements(np.swapaxes)
def swapaxes(x, axis1, axis2):
    nd = len(_shape(x))
    perm = list(range(nd))
    perm[axis1 % nd], perm[axis2 % nd] = perm[axis2 % nd], perm[axis1 % nd]
    return S.transpose(x, perm)


@implements(np.moveaxis)
def moveaxis(x, source, destination):
    nd = len(_shape(x))
    src = normalize_axes(source, nd) if isinstance(source, numbers.Integral) else \
        [s % nd for s in source]
    dst = [destination % nd] if isinstance(destination, numbers.Integral) else \
        [d % nd for d in destination]
    src = list(src)
    order = [a for a in range(nd) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return S.transpose(x, order)


@implements(np.expand_dims)
def expand_dims(x, axis):
    shape = list(_shape(x))
    axes = (axis,) if isinstance(axis, numbers.Integral) else axis
    nd = len(shape) + len(axes)
    for a in sorted(a % nd for a in axes):
        shape.insert(a, 1)
    return S.reshape(x, shape)


@implements(np.squeeze)
def squeeze(x, axis=None):
    shape = _shape(x)
    if axis is None:
        axes = [i for i, d in enumerate(shape) if d == 1]
    else:
        axes = normalize_axes(axis, len(shape))
        for a in axes:
            if shape[a] != 1:
                raise ValueError("cannot select an axis to squeeze out which has size not equal "
                                 "to one")
    return S.reshape(x, [d for i, d in enumerate(shape) if i not in axes])


@implements(np.broadcast_to)
def broadcast_to(x, shape):
    return S.broadcast_to(asvalue(x), _resolve_shape(shape, 0) if -1 not in np.atleast_1d(shape)
                          else shape)


@implements(np.atleast_1d)
def atleast_1d(x):
    return reshape(x, (1,)) if len(_shape(x)) == 0 else x


def _common(values):
    values = [asvalue(v) for v in values]
    return E.promote(*values)


@implements(np.concatenate)
def concatenate(values, axis=0, out=None, dtype=None):
    values = _common(values)
    if axis is None:
        values, axis = [ravel(v) for v in values], 0
    return S.concatenate(values, normalize_axes(axis, len(_shape(values[0])))[0])


@implements(np.stack)
def stack(values, axis=0, out=None, dtype=None):
    values = _common(values)
    shapes = {_shape(v) for v in values}
    if len(shapes) != 1:
        raise ValueError(f"all input arrays must have the same shape, got {sorted(shapes)}")
    nd = len(_shape(values[0])) + 1
    axis = normalize_axes(axis, nd)[0]
    return S.concatenate([expand_dims(v, axis) for v in values], axis)


@implements(np.hstack)
def hstack(values, dtype=None):
    values = [atleast_1d(asvalue(v)) for v in values]
    return concatenate(values, 0 if len(_shape(values[0])) == 1 else 1)


@implements(np.vstack)
def vstack(values, dtype=None):
    values = [asvalue(v) for v in values]
    values = [reshape(v, (1, -1)) if len(_shape(v)) <= 1 else v for v in values]
    return concatenate(values, 0)


@implements(np.flip)
def flip(x, axis=None):
    x = asvalue(x)
    for a in normalize_axes(axis, len(_shape(x))):
        n = _shape(x)[a]
        if n > 1:
            x = I.slice_along(x, a, n - 1, n, step=-1)
    return x


@implements(np.diff)
def diff(x, n=1, axis=-1):
    x = asvalue(x)
    axis = normalize_axes(axis, len(_shape(x)))[0]
    for _ in range(n):
        m = _shape(x)[axis]
        x = subtract(I.slice_along(x, axis, 1, m - 1), I.slice_along(x, axis, 0, m - 1))
    return x


@implements(np.copy)
def copy(x, *args, **kw):
    return x


@implements(np.shape)
def shape_of(x):
    return _shape(x)


@implements(np.ndim)
def ndim_of(x):
    return len(_shape(x))


@implements(np.size)
def size_of(x, axis=None):
    return aval_of(x).size if axis is None else _shape(x)[axis]


@implements(np.zeros_like)
def zeros_like(x, dtype=None, **kw):
    return np.zeros(_shape(x), dtype or _dtype(x))


@implements(np.ones_like)
def ones_like(x, dtype=None, **kw):
    return np.ones(_shape(x), dtype or _dtype(x))


@implements(np.full_like)
def full_like(x, fill_value, dtype=None, **kw):
    return np.full(_shape(x), fill_value, dtype or _dtype(x))


@implements(np.where)
def where(condition, x=None, y=None):
    if x is None or y is None:
        raise NotImplementedError("np.where(condition) with one argument gives a data-dependent "
                                  "shape; use the three-argument form np.where(c, x, y)")
    c = asvalue(condition)
    if _dtype(c) != np.bool_:
        c = UFUNCS[np.not_equal](c, 0)
    return E.select(c, asvalue(x), asvalue(y))


@implements(np.clip)
def clip(x, a_min=None, a_max=None, out=None, **kw):
    a_min = kw.pop("min", a_min)
    a_max = kw.pop("max", a_max)
    if a_min is not None:
        x = maximum(x, a_min)
    if a_max is not None:
        x = minimum(x, a_max)
    return x


# ---------------------------------------------------------------------------------------------
# products

def _check_aligned(op, a, b):
    """a's last axis against b's second-to-last (or only) axis, with numpy's wording."""
    sa, sb = _shape(a), _shape(b)
    kb = len(sb) - 2 if len(sb) >= 2 else 0
    if sa[-1] != sb[kb]:
        raise ValueError(f"{op}: shapes {sa} and {sb} not aligned: {sa[-1]} (dim {len(sa) - 1}) "
                         f"!= {sb[kb]} (dim {kb})")


@implements(np.dot)
def dot(a, b, out=None):
    a, b = _common([a, b])
    na, nb = len(_shape(a)), len(_shape(b))
    if na == 0 or nb == 0:
        return multiply(a, b)
    _check_aligned("dot", a, b)
    return L.dot_general(a, b, ((na - 1,), (nb - 2 if nb >= 2 else 0,)))


@implements(np.matmul)
def matmul(a, b, **kw):
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


@implements(np.outer)
def outer(a, b, out=None):
    a, b = _common([a, b])
    return L.dot_general(ravel(a), ravel(b), ((), ()))


@implements(np.inner)
def inner(a, b):
    a, b = _common([a, b])
    na, nb = len(_shape(a)), len(_shape(b))
    if na == 0 or nb == 0:
        return multiply(a, b)
    return L.dot_general(a, b, ((na - 1,), (nb - 1,)))


@implements(np.vdot)
def vdot(a, b):
    return dot(ravel(asvalue(a)), ravel(asvalue(b)))


@implements(np.tensordot)
def tensordot(a, b, axes=2):
    a, b = _common([a, b])
    na, nb = len(_shape(a)), len(_shape(b))
    if isinstance(axes, numbers.Integral):
        ax_a, ax_b = list(range(na - axes, na)), list(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, numbers.Integral) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, numbers.Integral) else list(ax_b)
    return L.dot_general(a, b, (tuple(x % na for x in ax_a), tuple(x % nb for x in ax_b)))


@implements(np.einsum)
def einsum(subscripts, *operands, optimize=False, **kw):
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


@implements(np.take)
def take(x, indices, axis=None, out=None, mode="raise"):
    x = asvalue(x)
    if axis is None:
        x, axis = ravel(x), 0
    axis = normalize_axes(axis, len(_shape(x)))[0]
    return bind(I.take_p, x, _index_array(indices, _shape(x)[axis]), axis=axis)


@implements(np.astype) if hasattr(np, "astype") else (lambda f: f)
def astype(x, dtype, copy=True):
    return E.cast(x, dtype)


# ---------------------------------------------------------------------------------------------
# indexing: x[key]

def _index_array(idx, dim):
    """Integer index array with negative entries wrapped (constants now, traced values in IR)."""
    if _is_traced(idx):
        if _dtype(idx).kind not in "iu":
            raise IndexError("arrays used as indices must be of integer type")
        idx = E.cast(idx, np.int64)
        return E.select(UFUNCS[np.less](idx, 0), add(idx, dim), idx)
    arr = np.asarray(idx)
    if arr.dtype.kind not in "iu":
        raise IndexError(f"arrays used as indices must be of integer (or boolean) type, "
                         f"got {arr.dtype}")
    if arr.size and (arr.max() >= dim or arr.min() < -dim):
        raise IndexError(f"index {arr.max() if arr.max() >= dim else arr.min()} is out of bounds "
                         f"for axis with size {dim}")
    return np.where(arr < 0, arr + dim, arr).astype(np.int64)


def _expand_key(key, ndim):
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    for k in key:
        if isinstance(k, (list,)):
            k = np.asarray(k)
        if isinstance(k, np.ndarray) and k.dtype == np.bool_:
            out.extend(np.nonzero(k))  # a constant mask is a set of constant index arrays
        elif _is_traced(k) and _dtype(k) == np.bool_:
            raise IndexError("boolean mask indexing with a traced mask has a data-dependent "
                             "shape; use np.where(mask, x, 0) instead")
        else:
            out.append(k)
    used = sum(1 for k in out if k is not None and k is not Ellipsis)
    ellipses = [i for i, k in enumerate(out) if k is Ellipsis]  # `is`: items may be arrays
    if len(ellipses) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if used > ndim:
        raise IndexError(f"too many indices for array: array is {ndim}-dimensional, "
                         f"but {used} were indexed")
    if ellipses:
        i = ellipses[0]
        out[i:i + 1] = [slice(None)] * (ndim - used)
    else:
        out += [slice(None)] * (ndim - used)
    return out


def getitem(x, key):
    x = asvalue(x)
    shape = _shape(x)
    if type(key) is slice and shape:  # x[a:b:c], the most common key: no key expansion needed
        s, e, st = key.indices(shape[0])
        n = len(range(s, e, st))
        if n == shape[0] and st == 1:
            return x
        rest = len(shape) - 1
        return bind(I.slice_p, x, start=(s if n else 0,) + (0,) * rest, step=(st,) + (1,) * rest,
                    shape=(n,) + shape[1:])
    items = _expand_key(key, len(shape))
    is_adv = [not isinstance(k, (slice, type(None))) and
              (_is_traced(k) or isinstance(k, np.ndarray)) for k in items]
    if any(is_adv):
        if any(k is None for k in items):
            raise NotImplementedError("np.newaxis combined with array indices is not supported")
        return _advanced(x, items)
    # basic indexing: strided slice, then a reshape for integers and None
    start, step, sizes, out_shape = [], [], [], []
    axis = 0
    for k in items:
        if k is None:
            out_shape.append(1)
            continue
        d = shape[axis]
        if isinstance(k, slice):
            s, e, st = k.indices(d)
            n = len(range(s, e, st))
            start.append(s if n else 0)
            step.append(st)
            sizes.append(n)
            out_shape.append(n)
        else:
            i = operator.index(k)
            if not -d <= i < d:
                raise IndexError(f"index {i} is out of bounds for axis {axis} with size {d}")
            start.append(i % d)
            step.append(1)
            sizes.append(1)
        axis += 1
    if tuple(sizes) != shape or any(st != 1 for st in step) or any(start):
        x = bind(I.slice_p, x, start=tuple(start), step=tuple(step), shape=tuple(sizes))
    return S.reshape(x, out_shape)


def _advanced(x, items):
    """Array indices (plus any ints among them) gather from the flattened indexed axes."""
    shape = _shape(x)
    adv_axes = [i for i, k in enumerate(items) if not isinstance(k, slice)]
    # apply the slices first; they keep every axis
    sliced = tuple(k if isinstance(k, slice) else slice(None) for k in items)
    x = getitem(x, sliced)
    shape = _shape(x)
    # move advanced axes to the front, flatten them into one axis, gather with a flat index
    rest = [i for i in range(len(shape)) if i not in adv_axes]
    x = S.transpose(x, adv_axes + rest)
    adv_dims = [shape[i] for i in adv_axes]
    x = S.reshape(x, [int(np.prod(adv_dims, dtype=np.int64))] + [shape[i] for i in rest])
    idx_vals = [_index_array(items[i], shape[i]) for i in adv_axes]
    bshape = np.broadcast_shapes(*[_shape(v) for v in idx_vals])
    flat = None
    for v, d in zip(idx_vals, adv_dims):
        flat = v if flat is None else add(multiply(flat, d), v)
    if not _is_traced(flat):
        flat = np.broadcast_to(np.asarray(flat, np.int64), bshape)
    else:
        flat = S.broadcast_to(flat, bshape)
    res = bind(I.take_p, x, flat, axis=0)
    contiguous = adv_axes == list(range(adv_axes[0], adv_axes[-1] + 1))
    if contiguous and adv_axes[0] > 0:
        # numpy keeps adjacent advanced dims in place of the indexed axes
        k, nb = adv_axes[0], len(bshape)
        perm = list(range(nb, nb + k)) + list(range(nb)) + list(range(nb + k, len(_shape(res))))
        res = S.transpose(res, perm)
    return res


# ---------------------------------------------------------------------------------------------
# x[key] = v, as a pure update

def setitem(x, key, value):
    """The value of `x` after numpy's `x[key] = value`, as new IR: the written positions are
    worked out now (the key must not hold traced values), the new values are scattered to
    them and `select` keeps x elsewhere. Repeated positions keep the last write, as numpy."""
    shape = _shape(x)
    if any(_is_traced(k) for k in (key if isinstance(key, tuple) else (key,))):
        raise NotImplementedError("x[key] = v with a traced index is not supported; build the "
                                  "result with np.where(mask, v, x) instead")
    size = aval_of(x).size
    positions = np.arange(size).reshape(shape)[key]   # numpy decides what key selects
    flat = np.asarray(positions).ravel()
    value = E.cast(asvalue(value), _dtype(x))
    src = ravel(broadcast_to(value, np.shape(positions)))
    targets, first_from_end = np.unique(flat[::-1], return_index=True)
    winners = (len(flat) - 1 - first_from_end).astype(np.int64)  # last write to each target
    if not np.array_equal(targets, flat):  # reorder (and drop overwritten writes) to match
        src = bind(I.take_p, src, winners, axis=0)
    written = I.take_add(src, targets.astype(np.int64), 0, size)
    mask = np.zeros(size, bool)
    mask[targets] = True
    return S.reshape(E.select(mask, written, ravel(x)), shape)


# ---------------------------------------------------------------------------------------------
# the mixin

def _not_supported(name):
    def fn(*a, **k):
        raise NotImplementedError(f"numpy function {name} is not supported on traced values; "
                                  f"write it with supported numpy functions")
    return fn


class ArrayOps:
    """numpy's protocols, operators and methods for values whose operations go through `bind`."""
    __array_priority__ = 1000
    __hash__ = object.__hash__

    def __array_ufunc__(self, uf, method, *inputs, **kwargs):
        if method != "__call__":
            raise NotImplementedError(f"np.{uf.__name__}.{method} is not supported on traced "
                                      f"values; use the matching numpy function (e.g. np.sum)")
        if kwargs.get("out") is not None:
            raise NotImplementedError(f"np.{uf.__name__}(..., out=) is not supported: traced "
                                      f"values are immutable")
        fn = UFUNCS.get(uf)
        if fn is None:
            raise NotImplementedError(f"numpy ufunc np.{uf.__name__} has no autodiff_jit rule")
        return fn(*inputs)

    def __array_function__(self, func, types, args, kwargs):
        fn = FUNCTIONS.get(func)
        if fn is None:
            mod = getattr(func, "__module__", "numpy") or "numpy"
            name = f"{mod.replace('numpy.linalg', 'np.linalg').replace('numpy', 'np')}." \
                   f"{func.__name__}"
            name = re.sub(r"^np\._core\.\w+\.", "np.", name)
            raise NotImplementedError(f"numpy function {name} has no autodiff_jit rule; "
                                      f"write it with supported numpy functions "
                                      f"(see docs/api.md)")
        return fn(*args, **kwargs)

    # operators
    def __add__(self, o): return add(self, o)
    def __radd__(self, o): return add(o, self)
    def __sub__(self, o): return subtract(self, o)
    def __rsub__(self, o): return subtract(o, self)
    def __mul__(self, o): return multiply(self, o)
    def __rmul__(self, o): return multiply(o, self)
    def __truediv__(self, o): return divide(self, o)
    def __rtruediv__(self, o): return divide(o, self)
    def __pow__(self, o): return power(self, o)
    def __rpow__(self, o): return power(o, self)
    def __matmul__(self, o): return matmul(self, o)
    def __rmatmul__(self, o): return matmul(o, self)
    def __neg__(self): return UFUNCS[np.negative](self)
    def __pos__(self): return self
    def __abs__(self): return UFUNCS[np.absolute](self)
    def __lt__(self, o): return UFUNCS[np.less](self, o)
    def __le__(self, o): return UFUNCS[np.less_equal](self, o)
    def __gt__(self, o): return UFUNCS[np.greater](self, o)
    def __ge__(self, o): return UFUNCS[np.greater_equal](self, o)
    def __eq__(self, o): return UFUNCS[np.equal](self, o)  # noqa: E704
    def __ne__(self, o): return UFUNCS[np.not_equal](self, o)
    def __and__(self, o): return UFUNCS[np.logical_and](self, o)
    def __or__(self, o): return UFUNCS[np.logical_or](self, o)
    def __invert__(self): return UFUNCS[np.logical_not](self)

    def __getitem__(self, key):
        return getitem(self, key)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    # attributes and methods
    @property
    def ndim(self): return len(self.shape)

    @property
    def size(self): return aval_of(self).size

    @property
    def T(self): return transpose(self)

    @property
    def mT(self): return swapaxes(self, -1, -2)

    def sum(self, axis=None, dtype=None, keepdims=False): return sum_(self, axis, dtype, keepdims)
    def mean(self, axis=None, dtype=None, keepdims=False): return mean(self, axis, dtype, keepdims)
    def var(self, axis=None, ddof=0, keepdims=False): return var(self, axis, ddof=ddof, keepdims=keepdims)
    def std(self, axis=None, ddof=0, keepdims=False): return std(self, axis, ddof=ddof, keepdims=keepdims)
    def max(self, axis=None, keepdims=False): return amax(self, axis, keepdims=keepdims)
    def min(self, axis=None, keepdims=False): return amin(self, axis, keepdims=keepdims)
    def prod(self, axis=None, keepdims=False): return prod(self, axis, keepdims=keepdims)
    def argmax(self, axis=None): return argmax(self, axis)
    def argmin(self, axis=None): return argmin(self, axis)
    def cumsum(self, axis=None): return cumsum(self, axis)
    def dot(self, o): return dot(self, o)
    def clip(self, a_min=None, a_max=None): return clip(self, a_min, a_max)
    def ravel(self): return ravel(self)
    def flatten(self): return ravel(self)
    def copy(self): return self
    def astype(self, dtype, copy=True): return E.cast(self, dtype)
    def squeeze(self, axis=None): return squeeze(self, axis)
    def swapaxes(self, a, b): return swapaxes(self, a, b)

    def reshape(self, *shape, order="C"):
        return reshape(self, shape[0] if len(shape) == 1 else shape, order)

    def transpose(self, *axes):
        return transpose(self, axes[0] if len(axes) == 1 else (axes or None))
