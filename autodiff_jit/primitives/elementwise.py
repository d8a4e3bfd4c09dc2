"""Elementwise primitives: unary math, binary arithmetic, comparisons, select, casts.

Binary primitives broadcast like numpy; their inputs share one dtype (the numpy layer inserts
`convert_element_type` first). A unary primitive's derivative is given once, as `deriv(x, y)`
(the factor that multiplies the incoming tangent or cotangent), and serves both VJP and JVP.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir import AVal, is_float
from .core import Primitive, aval_of, bind, register
from . import batching as B, shape as S
from .broadcast import broadcast_to_p
from .broadcast import shape_of, unbroadcast  # noqa: F401  (re-exported)

# numpy names bound at import: numpy has a module __getattr__, so Python 3.11 never
# specializes an `np.name` lookup (~40 ns each, several per tape node)
_ND = np.ndarray
_GENERIC = np.generic
_NP_MULTIPLY = np.multiply
_NP_SUBTRACT = np.subtract
_NP_NEGATIVE = np.negative
_NP_TRUE_DIVIDE = np.true_divide

# numpy's scalar types captured at import: while a trace runs, numpy/lists.py routes the
# np.float64/np.float32 attributes (subclasses whose constructor casts traced values)
_F64, _F32 = np.float64, np.float32


def _broadcast(name, *avals):
    try:
        return np.broadcast_shapes(*(a.shape for a in avals))
    except ValueError:
        shapes = " and ".join(str(a.shape) for a in avals)
        raise ValueError(f"{name}: shapes {shapes} cannot be broadcast together") from None


def _same_dtype(name, *avals):
    dts = {a.dtype for a in avals}
    if len(dts) != 1:
        raise TypeError(f"{name}: inputs have different dtypes {sorted(map(str, dts))}; "
                        f"insert convert_element_type first")
    return dts.pop()


# ---------------------------------------------------------------------------------------------
# dtype promotion for the numpy layer: Python scalars are weak (NEP 50), as in numpy 2

_PY_SCALARS = (bool, int, float)


def promote(*args, to_float=False):
    strong = [aval_of(a).dtype for a in args if not isinstance(a, _PY_SCALARS)]
    weak = [a for a in args if isinstance(a, _PY_SCALARS)]
    target = np.result_type(*strong, *weak) if strong else np.result_type(*weak)
    if to_float and not is_float(target):
        target = np.dtype(np.float64)
    if target == np.float16:
        target = np.dtype(np.float32)
    return [cast(a, target) for a in args]


def cast(x, dtype):
    dtype = np.dtype(dtype)
    if isinstance(x, _PY_SCALARS) or isinstance(x, _GENERIC):
        return dtype.type(x)
    if aval_of(x).dtype == dtype:
        return x
    return bind(convert_element_type, x, dtype=dtype)


def fit_cotangent(ct, var, prim_name):
    """Make a rule's cotangent match the input it belongs to (shape, then dtype); reverse mode,
    forward mode and the tape all apply it to what a rule returns."""
    aval = aval_of(ct)
    if aval.shape != var.shape:
        try:
            if np.broadcast_shapes(aval.shape, var.shape) != var.shape:
                raise ValueError
        except ValueError:
            raise ValueError(f"the VJP rule of '{prim_name}' returned a cotangent of shape "
                             f"{aval.shape} for an input of shape {var.shape}") from None
        ct = bind(broadcast_to_p, ct, shape=var.shape)
    return cast(ct, var.dtype)


# ---------------------------------------------------------------------------------------------
# fewer temporaries in tape backward (plain numpy values)
#
# A rule's intermediate results on numpy arrays are fresh arrays nobody else holds, so the
# next step of the same formula can write into them (`out=`) instead of allocating: on arrays
# of a few hundred KB and up each allocation costs page faults (glibc hands such blocks back
# to the system when they are freed), often more than the arithmetic itself.

def _is_fresh(t, *others):
    """t is an array this rule just computed: its own buffer, writable, none of the inputs."""
    return t.base is None and t.flags.writeable and all(t is not o for o in others)


_FRESH_MIN = 2048  # below this many elements a new array is cheaper than the checks


def mul_into_fresh(g, d, *inputs):
    """g * d for numpy arrays, written into d when d is a fresh result of the shape and dtype
    of the product (a unary rule's derivative factor, e.g. 1 - y*y for tanh)."""
    if d.size >= _FRESH_MIN and d.shape == g.shape and d.dtype == g.dtype and \
            _is_fresh(d, g, *inputs):
        return _NP_MULTIPLY(g, d, out=d)
    return g * d


# ---------------------------------------------------------------------------------------------
# batching (vmap; see batching.py)

def _broadcast_batch(prim, axis_size, vals, dims, **params):
    """Broadcasting n-ary ops (JAX's broadcast_batcher): batched operands with the output's
    rank and one batch axis d stay put, an unbatched operand whose trailing axes span d gets a
    unit axis there (a reshape); otherwise batch axes move first and batched operands are padded
    to the output rank, so numpy broadcasting lines the examples up."""
    rank = max(B.example_ndim(v, d) for v, d in zip(vals, dims))
    batched = {d for d in dims if d is not None}
    d = next(iter(batched))
    if len(batched) == 1 and all(B.example_ndim(v, dd) == rank
                                 for v, dd in zip(vals, dims) if dd is not None):
        new = []
        for v, dd in zip(vals, dims):
            if dd is None:
                shape = tuple(aval_of(v).shape)
                at = d - (rank - len(shape))
                if at > 0:
                    v = S.reshape(v, shape[:at] + (1,) + shape[at:])
            new.append(v)
        return bind(prim, *new, **params), d
    new = []
    for v, dd in zip(vals, dims):
        if dd is not None:
            v = S.moveaxis(v, dd, 0)
            shape = aval_of(v).shape
            if len(shape) - 1 < rank:
                v = S.reshape(v, shape[:1] + (1,) * (rank + 1 - len(shape)) + shape[1:])
        new.append(v)
    return bind(prim, *new, **params), 0


# ---------------------------------------------------------------------------------------------
# unary

def _unary(name, np_fn, deriv=None, *, float_only=True, torch_name=None):
    def shape_rule(x):
        if float_only and not is_float(x.dtype):
            raise TypeError(f"{name} needs a float input, got {x.dtype}")
        return x

    def impl(x):
        return np_fn(x)

    vjp = jvp = None
    if deriv is not None:
        def vjp(g, y, x):
            d = deriv(x, y)
            if type(d) is _ND and type(g) is _ND:
                return (mul_into_fresh(g, d, x, y),)
            return (g * d,)

        def jvp(t, y, x):
            return None if t[0] is None else t[0] * deriv(x, y)

    prim = Primitive(name, shape_rule, impl, vjp=vjp, jvp=jvp, differentiable=deriv is not None,
                     torch_name=torch_name, family="unary", batch=B.unary)
    return register(prim)


def _sq(x):
    return x * x


neg = _unary("neg", _NP_NEGATIVE, lambda x, y: -1.0, float_only=False)
exp = _unary("exp", np.exp, lambda x, y: y)
log = _unary("log", np.log, lambda x, y: 1.0 / x)
log1p = _unary("log1p", np.log1p, lambda x, y: 1.0 / (x + 1.0))
expm1 = _unary("expm1", np.expm1, lambda x, y: y + 1.0)
sqrt = _unary("sqrt", np.sqrt, lambda x, y: 0.5 / y)
sin = _unary("sin", np.sin, lambda x, y: np.cos(x))
cos = _unary("cos", np.cos, lambda x, y: -np.sin(x))
tan = _unary("tan", np.tan, lambda x, y: 1.0 + y * y)


def _one_minus_sq(x, y):
    """1 - y*y (tanh's derivative); on a numpy array in the one fresh buffer y*y gives."""
    t = y * y
    if type(t) is _ND and t is not y:
        return _NP_SUBTRACT(1.0, t, out=t)
    return 1.0 - t


tanh = _unary("tanh", np.tanh, _one_minus_sq)
sinh = _unary("sinh", np.sinh, lambda x, y: np.cosh(x))
cosh = _unary("cosh", np.cosh, lambda x, y: np.sinh(x))
arcsin = _unary("arcsin", np.arcsin, lambda x, y: 1.0 / np.sqrt(1.0 - x * x), torch_name="AsinBackward0")
arccos = _unary("arccos", np.arccos, lambda x, y: -1.0 / np.sqrt(1.0 - x * x), torch_name="AcosBackward0")
arctan = _unary("arctan", np.arctan, lambda x, y: 1.0 / (1.0 + x * x), torch_name="AtanBackward0")
abs_ = _unary("abs", np.abs, lambda x, y: np.sign(x), float_only=False)
# Piecewise-constant functions: derivative zero almost everywhere, so no rule.
sign = _unary("sign", np.sign, float_only=False)
floor = _unary("floor", np.floor)
ceil = _unary("ceil", np.ceil)
round_ = _unary("round", np.round)
logical_not = register(Primitive(
    "logical_not", lambda x: AVal(x.shape, np.bool_), np.logical_not, differentiable=False,
    family="unary", batch=B.unary))


def _integer_pow_rule(x, *, y):
    if not isinstance(y, int):
        raise TypeError(f"integer_pow needs an int exponent, got {y!r}")
    return x


def _integer_pow_deriv(x, y):
    if y == 0:
        return None
    if y == 1:
        return 1.0
    if y == 2:
        return 2.0 * x
    return float(y) * integer_pow(x, y - 1)


def _integer_pow_vjp(g, out, x, *, y):
    if y == 2 and type(x) is _ND and type(g) is _ND:
        return (mul_into_fresh(g, 2.0 * x, x, out),)   # (_integer_pow_deriv's 2x, inlined)
    d = _integer_pow_deriv(x, y)
    if type(d) is _ND and type(g) is _ND:
        return (mul_into_fresh(g, d, x, out),)  # (2x for y = 2: one buffer, not two)
    return (None if d is None else g * d,)


def _integer_pow_jvp(t, out, x, *, y):
    d = _integer_pow_deriv(x, y)
    return None if d is None or t[0] is None else t[0] * d


def _integer_pow_impl(x, *, y):
    if y >= 0:
        return np.power(x, y)
    x = np.asarray(x)  # a Python float (tape-mode forward mode) has no dtype
    return np.power(x, float(y)).astype(x.dtype, copy=False)


integer_pow_p = register(Primitive(
    "integer_pow", _integer_pow_rule, _integer_pow_impl,
    vjp=_integer_pow_vjp, jvp=_integer_pow_jvp, torch_name="PowBackward0", family="unary",
    batch=B.unary))


def integer_pow(x, y: int):
    return bind(integer_pow_p, x, y=int(y))


convert_element_type = register(Primitive(
    "convert_element_type", lambda x, *, dtype: AVal(x.shape, dtype),
    lambda x, *, dtype: np.asarray(x).astype(dtype),
    vjp=lambda g, out, x, *, dtype: (cast(g, aval_of(x).dtype) if is_float(aval_of(x).dtype) else None,),
    jvp=lambda t, out, x, *, dtype: None if t[0] is None else cast(t[0], dtype),
    torch_name="ToCopyBackward0", family="unary", batch=B.unary))


# ---------------------------------------------------------------------------------------------
# binary arithmetic

_BOTH = (True, True)


def _product_partial(g, other, shape):
    """sum(g * other) down to `shape`: the partial of a * b for the factor of that shape, on
    numpy arrays. A factor broadcast along leading axes only (a per-feature scale, GMM's
    Qdiags[None] * xc) gets it as one contraction over the leading axes, which reads g and
    `other` once instead of writing their product and summing it (2-3x faster)."""
    if shape == g.shape:
        return g * other
    t = tuple(shape)
    while t and t[0] == 1:
        t = t[1:]
    if other.shape == g.shape and g.shape[g.ndim - len(t):] == t and g.dtype == other.dtype \
            and g.dtype.kind == "f" and g.flags.c_contiguous and other.flags.c_contiguous:
        m = 1
        for d in t:
            m *= d
        n = g.size // m if m else 0
        if n > 1:
            return np.einsum("ij,ij->j", g.reshape(n, m), other.reshape(n, m)).reshape(shape)
    return unbroadcast(g * other, shape)


def _binary(name, np_fn, da=None, db=None, *, torch_name=None, out_dtype=None,
            float_only=False, symmetric=False, db_scale=None, product=False, linear=False):
    """A broadcasting binary primitive. `da(g, out, a, b)` / `db(g, out, a, b)` are the two
    partials applied to an output cotangent or tangent `g` (at the broadcast shape), one formula
    each, shared by the VJP and the JVP rules.

    The VJP rule takes `needs=(bool, bool)`: which cotangents are wanted (default both). A
    partial nobody needs (the `100.0` in `100.0 * t`, seen by tape mode) is neither computed nor
    reduced to its input's shape; its cotangent is None.

    symmetric: da(g, out, x, x) == db(g, out, x, x), so `x * x` computes its partial once and
    gives both inputs that one value. db_scale: db is `db_scale * g`, so a broadcast `b` gets
    db_scale times g summed down to b's shape (one pass over the small result, not over g).
    product: da is `g * b` and db is `g * a` (mul), so on numpy arrays of different shapes
    each partial is `_product_partial` (a contraction when the factor is broadcast).
    linear: da is g itself (add, sub), so on numpy arrays the rule needs no call to it and
    sums g down only for a broadcast input."""
    def shape_rule(a, b):
        dt = _same_dtype(name, a, b)
        if float_only and not is_float(dt):
            raise TypeError(f"{name} needs float inputs, got {dt}")
        return AVal(_broadcast(name, a, b), out_dtype or dt)

    vjp = jvp = None
    if da is not None:
        def vjp(g, out, a, b, needs=_BOTH):
            if linear and type(g) is _ND and type(a) is _ND and \
                    type(b) is _ND:
                # tape mode's arrays: what the general path below computes, with fewer calls
                gs = g.shape
                ca = cb = None
                if needs[0]:
                    ca = g if a.shape == gs else unbroadcast(g, a.shape)
                if needs[1]:
                    if b.shape == gs:
                        cb = db(g, out, a, b)
                    elif db_scale is not None:
                        cb = db_scale * unbroadcast(g, b.shape)
                    else:
                        cb = unbroadcast(db(g, out, a, b), b.shape)
                return ca, cb
            if product and type(g) is _ND and type(a) is _ND and \
                    type(b) is _ND and a.shape != b.shape:
                return (_product_partial(g, b, a.shape) if needs[0] else None,
                        _product_partial(g, a, b.shape) if needs[1] else None)
            ca = da(g, out, a, b) if needs[0] else None
            if symmetric and a is b and needs[0]:
                cb = ca if needs[1] else None
            elif db_scale is not None and needs[1] and shape_of(b) != shape_of(g):
                return unbroadcast(ca, shape_of(a)), \
                    db_scale * unbroadcast(g, shape_of(b))
            else:
                cb = db(g, out, a, b) if needs[1] else None
            tg = type(g)
            if tg is type(a) is type(b):  # tape mode's common cases, without shape_of calls
                if tg is _ND:
                    if g.shape == a.shape == b.shape:
                        return ca, cb
                elif tg is _F64 or tg is _F32:  # numpy scalars: all 0-d
                    return ca, cb
            sa, sb = shape_of(a), shape_of(b)
            if sa == sb == shape_of(g):  # nothing was broadcast
                return ca, cb
            return unbroadcast(ca, sa), unbroadcast(cb, sb)

        def jvp(t, out, a, b):
            ta, tb = t
            result = None
            if ta is not None:
                result = da(ta, out, a, b)
            if tb is not None:
                part = db(tb, out, a, b)
                result = part if result is None else result + part
            return result

    prim = Primitive(name, shape_rule, np_fn, vjp=vjp, jvp=jvp, differentiable=vjp is not None,
                     torch_name=torch_name, family="binary", batch=_broadcast_batch)
    return register(prim)


def _pow_da(g, out, a, b):
    return g * b * np.power(a, b - 1.0)


def _pow_db(g, out, a, b):
    # d/db a**b = log(a) a**b; defined as 0 where a == 0 (the limit for b > 0) to avoid 0*-inf.
    safe_log = np.log(select(a == 0, np.ones_like(a), a))
    return g * out * safe_log


def _pairwise(a, b, out_shape):
    """For a ufunc of two numpy arrays broadcast "pairwise" with a short last axis (2-4; GMM's and
    k-means' x[:, None, :] - means[None, :, :], (n, 1, d) against (1, k, d)): (the operand to
    copy out, the first of the trailing axes to merge), else None. numpy runs its inner loop
    once per d elements there (5000 calls of 2 for n = 1000, k = 5, d = 2). The other operand
    has the result's extent on those axes and is C-contiguous, so once the first is copied
    out over them both merge them into one axis of k * d: 64 -> ~20 us there."""
    nd = len(out_shape)
    for full, part in ((b, a), (a, b)):
        sf = full.shape
        j = nd - 1
        while j > 0 and sf[j - 1] == out_shape[j - 1]:
            j -= 1
        if sf[j:] == out_shape[j:] and j <= nd - 2 and part.shape[j:] != out_shape[j:] and \
                full.flags.c_contiguous and math.prod(out_shape[j:]) >= 8:
            return part, j
    return None


def _pairwise_binary(ufunc):
    """`ufunc` with _pairwise's case as one merged inner loop: the same elementwise results,
    C order, as numpy gives them (`impl_nd` of add, sub and mul, for tape mode)."""
    def impl(a, b):
        if type(a) is _ND and type(b) is _ND and a.ndim >= 3 and a.ndim == b.ndim and \
                a.shape != b.shape and a.dtype == b.dtype and a.shape[-1] <= 4:
            out_shape = tuple(x if x == y or y == 1 else y if x == 1 else -1
                              for x, y in zip(a.shape, b.shape))
            case = _pairwise(a, b, out_shape) if -1 not in out_shape and \
                math.prod(out_shape) >= 4096 else None
            if case is not None:
                part, j = case
                tail = out_shape[j:]
                m = math.prod(tail)
                wide = part   # copied out by np.repeat (chunk copies: ~8x a broadcast copy)
                for ax in range(j, len(out_shape)):
                    if wide.shape[ax] != out_shape[ax]:
                        wide = np.repeat(wide, out_shape[ax], axis=ax)
                a2, b2 = (wide, b) if part is a else (a, wide)
                return ufunc(a2.reshape(a2.shape[:j] + (m,)),
                             b2.reshape(b2.shape[:j] + (m,))).reshape(out_shape)
        return ufunc(a, b)
    impl.__name__ = ufunc.__name__
    return impl


add = _binary("add", np.add, lambda g, out, a, b: g,
              lambda g, out, a, b: g, linear=True)
sub = _binary("sub", _NP_SUBTRACT, lambda g, out, a, b: g,
              lambda g, out, a, b: -g,
              db_scale=-1.0, linear=True)
mul = _binary("mul", _NP_MULTIPLY, lambda g, out, a, b: g * b,
              lambda g, out, a, b: g * a,
              symmetric=True, product=True)
# tape mode's binary fast path calls impl_nd for operands of 3 or more dimensions (the scalar
# and matrix graphs keep the bare ufunc, no Python frame in between)
for _prim, _ufunc in ((add, np.add), (sub, _NP_SUBTRACT), (mul, _NP_MULTIPLY)):
    _prim.impl_nd = _pairwise_binary(_ufunc)


def _div_db(g, out, a, b):
    """-g out / b (d(a/b)/db = -a/b^2 = -out/b), on numpy arrays in one fresh buffer."""
    t = g * out
    if type(t) is _ND and type(b) in (_ND, _F64, _F32) and \
            t.dtype == b.dtype and _is_fresh(t, g, out, a, b):
        np.divide(t, b, out=t)
        return _NP_NEGATIVE(t, out=t)
    return -t / b


div = _binary("div", _NP_TRUE_DIVIDE, lambda g, out, a, b: g / b, _div_db, float_only=True)


def _c_pow(a, b):
    """C's pow elementwise. numpy's power loop takes sqrt when the exponent is a scalar (or
    broadcast) 0.5, so hand it a full exponent array; the numpy layer maps a constant
    scalar 0.5 to sqrt itself, as numpy does."""
    b = np.asarray(b)
    if b.ndim == 0 or 0 in b.strides:
        b = np.array(np.broadcast_to(b, np.broadcast_shapes(np.shape(a), b.shape)))
    return np.power(a, b)


pow_ = _binary("pow", _c_pow, _pow_da, _pow_db, float_only=True)
def _balanced(mine, other):
    """The partial of max/min (and fmax/fmin) for the operand `mine`: g where it is the result,
    halved where the other operand is too (a tie); 0 elsewhere, NaN results included.
    JAX's `_balanced_eq` rule for lax.max/min (autograd's `balanced_eq`, torch.maximum)."""
    def partial(g, out, a, b):
        x, y = (a, b) if mine == 0 else (b, a)
        return select(x == out, select(y == out, g * 0.5, g), 0.0)
    return partial


maximum = _binary("maximum", np.maximum, _balanced(0, 1), _balanced(1, 0),
                  torch_name="MaximumBackward0")
minimum = _binary("minimum", np.minimum, _balanced(0, 1), _balanced(1, 0),
                  torch_name="MinimumBackward0")
# numpy's NaN-ignoring fmax/fmin: where one operand is NaN the other is the result and gets g
fmax = _binary("fmax", np.fmax, _balanced(0, 1), _balanced(1, 0), torch_name="FmaxBackward0")
fmin = _binary("fmin", np.fmin, _balanced(0, 1), _balanced(1, 0), torch_name="FminBackward0")

# C's fmod (the remainder of truncated division, exact); JAX's rem rule: d/da = 1,
# d/db = -trunc(a / b).
fmod = _binary("fmod", np.fmod, lambda g, out, a, b: g,
               lambda g, out, a, b: -g * _trunc(a / b), torch_name="FmodBackward0")


def _trunc(q):
    return select(q < 0, np.ceil(q), np.floor(q))


lt = _binary("lt", np.less, out_dtype=np.bool_)
le = _binary("le", np.less_equal, out_dtype=np.bool_)
gt = _binary("gt", np.greater, out_dtype=np.bool_)
ge = _binary("ge", np.greater_equal, out_dtype=np.bool_)
eq = _binary("eq", np.equal, out_dtype=np.bool_)
ne = _binary("ne", np.not_equal, out_dtype=np.bool_)
logical_and = _binary("logical_and", np.logical_and, out_dtype=np.bool_)
logical_or = _binary("logical_or", np.logical_or, out_dtype=np.bool_)
logical_xor = _binary("logical_xor", np.logical_xor, out_dtype=np.bool_)


# ---------------------------------------------------------------------------------------------
# select (np.where)

def _select_rule(c, a, b):
    if c.dtype != np.bool_:
        raise TypeError(f"select: condition must be bool, got {c.dtype}")
    dt = _same_dtype("select", a, b)
    return AVal(_broadcast("select", c, a, b), dt)


def _select_vjp(g, out, c, a, b):
    zero = np.zeros((), aval_of(g).dtype)[()]
    return (None, unbroadcast(select(c, g, zero), aval_of(a).shape),
            unbroadcast(select(c, zero, g), aval_of(b).shape))


def _select_jvp(t, out, c, a, b):
    _, ta, tb = t
    if ta is None and tb is None:
        return None
    dt = aval_of(out).dtype
    ta = np.zeros((), dt)[()] if ta is None else ta
    tb = np.zeros((), dt)[()] if tb is None else tb
    return S.broadcast_to(select(c, ta, tb), aval_of(out).shape)


select_p = register(Primitive("select", _select_rule, np.where, vjp=_select_vjp, jvp=_select_jvp,
                              torch_name="WhereBackward0", family="select",
                              batch=_broadcast_batch))


def select(c, a, b):
    """np.where(c, a, b) with numpy promotion of a and b."""
    a, b = promote(a, b)
    return bind(select_p, c, a, b)


# Identity on values whose derivative is zero: the gradient does not flow through it.
stop_gradient_p = register(Primitive(
    "stop_gradient", lambda x: x, lambda x: x, differentiable=False, family="unary",
    batch=B.unary))
