"""Algebraic simplification and constant folding.

- identities: x+0, x-0, x*1, x/1, --x, x**1, reshape/transpose/broadcast/convert to the same
  type, stop_gradient (differentiation is over by the time passes run);
- zeros: x*0, where the 0 is a zero AD made (a broadcast of an `ir.ZeroCotangent` literal),
  becomes a zero of the output type (AD's symbolic-zero convention: a zero cotangent stays zero
  even where the primal is inf or NaN). A zero the user wrote (`np.zeros_like(x)`, `0 * y`, a
  uniform fold of user code) is a plain literal and left alone: numpy's inf*0 is nan, and so is
  ours;
- uniform folding: an elementwise or data-movement equation whose inputs each hold a single
  repeated value becomes `broadcast_to(literal)`, whatever its size (no large constant is made);
- folding: an equation whose inputs are all literals or constants, with a small output, is
  evaluated now and replaced by a constant;
- selects cut away: a slice of `select(c, a, b)` with a constant c uniform in the slice's
  window is a slice of a (or b);
- rescaling: `c2 * (c1 * v)` becomes `(c1 * c2) * v` only where that is bitwise the same for
  every v: c1 = +-2^a with a >= 0 and |c2| >= 1 (why no other pair: docs/design/passes.md;
  AD's `0.000390625 * (2.0 * v)` of a mean of squares is not such a pair and stays).
Rewrites only fire when the replacement has exactly the output's shape and dtype.
"""
from __future__ import annotations

import numpy as np

from ..ir import Eqn, Function, Lit, Var, ZeroCotangent, is_float
from ..primitives import get_primitive

_FOLD_MAX_SIZE = 64


def _scalar_value(atom, consts, producers):
    """The single value every element of `atom` holds, if that is known statically."""
    if isinstance(atom, Lit):
        return atom.value
    if atom in consts:
        arr = np.asarray(consts[atom])
        if arr.size and arr.size <= _FOLD_MAX_SIZE and np.all(arr == arr.flat[0]):
            return arr.flat[0]
        return None
    eqn = producers.get(id(atom))
    if eqn is not None and eqn.prim.name in ("broadcast_to", "reshape"):
        return _scalar_value(eqn.inputs[0], consts, producers)
    return None


def _zero_signs(atom, consts, producers):
    """The sign bits of a zero `atom` (a literal, a constant, a broadcast or reshape of one):
    True if all are set (-0.0), False if none, None if mixed or not known."""
    if isinstance(atom, Lit):
        return bool(np.signbit(atom.value))
    if atom in consts:
        bits = np.signbit(np.asarray(consts[atom]))
        return bool(bits.flat[0]) if bits.size and np.all(bits == bits.flat[0]) else None
    eqn = producers.get(id(atom))
    if eqn is not None and eqn.prim.name in ("broadcast_to", "reshape"):
        return _zero_signs(eqn.inputs[0], consts, producers)
    return None


def _keeps_every_value(zero, consts, producers, negative):
    """Whether x + zero (negative=True) or x - zero (False) is x for every x: any integer zero;
    a float zero only of the right sign, since -0.0 + 0.0 is +0.0 (numpy's `x + 0.0` turns
    -0.0 into 0.0) while x + -0.0 and x - 0.0 are exactly x."""
    if not is_float(zero.aval.dtype):
        return True
    return _zero_signs(zero, consts, producers) is negative


_UNIFORM_MOVES = ("reshape", "transpose", "broadcast_to", "slice", "concatenate")


def _uniform_result(eqn, vals, params):
    """The single value of every element of eqn's output when all its inputs are uniform
    (literals, one-valued constants, broadcasts of them), whatever the output's size; else None.
    Computed with the primitive's own numpy implementation on the scalars, so exactly numpy's
    value (an inf * 0 here is nan, as numpy's would be)."""
    prim = eqn.prim
    if eqn.regions or prim.multiple_results or not vals or any(v is None for v in vals):
        return None
    if prim.name == "broadcast_to" and isinstance(eqn.inputs[0], Lit):
        return None  # already the canonical form
    if prim.family in ("unary", "binary", "select"):
        out = eqn.outputs[0]
        return np.asarray(prim.impl(*vals, **params)).astype(out.dtype)[()]
    if prim.name in _UNIFORM_MOVES and all(v == vals[0] for v in vals):
        return vals[0]
    return None


def _symbolic_zero(atom, producers) -> bool:
    """Whether `atom` is a zero made by AD or by this pass: broadcast_to of a ZeroCotangent,
    possibly reshaped. The literal's type is the mark: user code's zeros (np.zeros_like(x) is a
    broadcast literal 0 too) are plain literals."""
    eqn = producers.get(id(atom)) if isinstance(atom, Var) else None
    while eqn is not None and eqn.prim.name == "reshape":
        eqn = producers.get(id(eqn.inputs[0])) if isinstance(eqn.inputs[0], Var) else None
    return (eqn is not None and eqn.prim.name == "broadcast_to"
            and isinstance(eqn.inputs[0], ZeroCotangent) and eqn.inputs[0].value == 0)


def _exact_rescale(inputs, vals, consts, producers, out):
    """(literal c1*c2, v) for `mul(c2, mul(c1, v))` (operands in either order) when the one
    rounding of (c1*c2)*v equals the two of c2*(c1*v) for every v: c1 = +-2^a, a >= 0 (so c1*v
    is exact unless it overflows) and |c2| >= 1 (so whenever c1*v overflows, the product does
    too), with c1*c2 finite; else None."""
    dt = out.dtype
    if dt.kind != "f":
        return None
    for k in (0, 1):
        c2, inner = vals[k], inputs[1 - k]
        prod = producers.get(id(inner)) if isinstance(inner, Var) else None
        if c2 is None or prod is None or prod.prim.name != "mul" or inner.aval != out.aval:
            continue
        inner_vals = [_scalar_value(i, consts, producers) for i in prod.inputs]
        for j in (0, 1):
            c1, v = inner_vals[j], prod.inputs[1 - j]
            if c1 is None or not isinstance(v, Var) or v.aval != out.aval:
                continue
            c1, c2v = dt.type(c1), dt.type(c2)
            mant, expo = np.frexp(c1)
            with np.errstate(over="ignore", invalid="ignore"):
                folded = c1 * c2v
                ok = (abs(mant) == 0.5 and expo >= 1 and np.isfinite(c2v) and abs(c2v) >= 1
                      and np.isfinite(folded))
            if ok:
                return Lit(folded, dt), v
    return None


def _sliced_select(atom, params, consts, producers, out):
    """For slice(select(c, a, b)) with a constant condition c that is all True (all False) in
    the slice's window: the operand a (b) to slice instead, or the literal itself (the
    gradient of a constant-mode np.pad: the cotangent's interior, no mask read); else None."""
    eqn = producers.get(id(atom))
    if eqn is None or eqn.prim.name != "select" or eqn.inputs[0] not in consts:
        return None
    cond = np.asarray(consts[eqn.inputs[0]])
    if cond.shape != atom.shape:
        return None
    window = get_primitive("slice").impl(cond, **params)
    if not (window.all() or not window.any()):
        return None
    picked = eqn.inputs[1] if window.all() else eqn.inputs[2]
    if isinstance(picked, Lit):
        return Lit(picked.value, out.dtype) if picked.dtype == out.dtype else None
    return picked if picked.aval == atom.aval else None


def simplify(fn: Function) -> Function:
    subst: dict[int, object] = {}
    consts = dict(fn.consts)
    producers: dict[int, Eqn] = {}
    eqns: list[Eqn] = []

    def sub(atom):
        return subst.get(id(atom), atom) if isinstance(atom, Var) else atom

    def same_type(atom, out):
        return atom.aval == out.aval

    def zeros(out):
        # a product with AD's zero contributes nothing: -0.0 (floats), so that adding it
        # later folds exactly (x + -0.0 is x; x + 0.0 is not, at x = -0.0)
        zero = np.float64(-0.0) if is_float(out.dtype) else 0
        return Eqn(get_primitive("broadcast_to"), [ZeroCotangent(zero, out.dtype)],
                   {"shape": out.shape},
                   [out])

    for eqn in fn.eqns:
        inputs = [sub(i) for i in eqn.inputs]
        params = {k: simplify(v) if isinstance(v, Function) else v
                  for k, v in eqn.params.items()} if eqn.regions else eqn.params
        name = eqn.prim.name
        out = eqn.outputs[0]
        vals = [_scalar_value(i, consts, producers) for i in inputs]
        replacement = None
        if name in ("add", "sub") and vals[1] == 0 and same_type(inputs[0], out) and \
                _keeps_every_value(inputs[1], consts, producers, negative=name == "add"):
            replacement = inputs[0]
        elif name == "add" and vals[0] == 0 and same_type(inputs[1], out) and \
                _keeps_every_value(inputs[0], consts, producers, negative=True):
            replacement = inputs[1]
        elif name in ("mul", "div") and vals[1] == 1 and same_type(inputs[0], out):
            replacement = inputs[0]
        elif name == "mul" and vals[0] == 1 and same_type(inputs[1], out):
            replacement = inputs[1]
        elif name == "mul" and (_symbolic_zero(inputs[0], producers) or
                                _symbolic_zero(inputs[1], producers)):
            new = zeros(out)
            eqns.append(new)
            producers[id(out)] = new
            continue
        elif name in ("reshape", "broadcast_to", "convert_element_type",
                      "stop_gradient") and same_type(inputs[0], out):
            replacement = inputs[0]
        elif name == "transpose" and params["perm"] == tuple(range(len(params["perm"]))):
            replacement = inputs[0]  # a square transpose keeps the type but is no identity
        elif name == "integer_pow" and params["y"] == 1:
            replacement = inputs[0]
        elif name == "slice":
            picked = _sliced_select(inputs[0], params, consts, producers, out)
            if isinstance(picked, Lit):
                new = Eqn(get_primitive("broadcast_to"), [picked], {"shape": out.shape}, [out],
                          eqn.loc)
                eqns.append(new)
                producers[id(out)] = new
                continue
            if picked is not None:
                inputs = [picked]
        elif name == "neg":
            prod = producers.get(id(inputs[0]))
            if prod is not None and prod.prim.name == "neg":
                replacement = prod.inputs[0]
        elif name == "unpermute":
            # partition's gradient: the kernel recomputes the placing from x, so the forward
            # need not store the permutation (and nothing is scattered)
            prod = producers.get(id(inputs[1]))
            if prod is not None and prod.prim.name == "partition" and \
                    prod.outputs[1] is inputs[1] and params["axis"] == prod.params["axis"]:
                new = Eqn(get_primitive("partition_grad"), [prod.inputs[0], inputs[0]],
                          dict(prod.params), [out], eqn.loc)
                eqns.append(new)
                producers[id(out)] = new
                continue
        if replacement is not None:
            subst[id(out)] = replacement
            continue
        if name == "mul":
            rescaled = _exact_rescale(inputs, vals, consts, producers, out)
            if rescaled is not None:
                inputs = list(rescaled)
                vals = [_scalar_value(i, consts, producers) for i in inputs]
        if eqn.prim.family == "binary":
            # a broadcast literal operand is just the literal (binary ops broadcast themselves)
            for k in (0, 1):
                other = inputs[1 - k]
                if vals[k] is not None and not isinstance(inputs[k], Lit) and \
                        other.shape == out.shape and inputs[k].dtype == out.dtype:
                    inputs[k] = Lit(vals[k], inputs[k].dtype)
        uniform = _uniform_result(eqn, vals, params)
        if uniform is not None:
            # moving AD's zero around (a broadcast or reshape of it) leaves AD's zero
            kind = ZeroCotangent if name in _UNIFORM_MOVES and all(
                isinstance(i, ZeroCotangent) or _symbolic_zero(i, producers)
                for i in inputs) else Lit
            if out.shape == ():
                subst[id(out)] = kind(uniform, out.dtype)
            else:
                new = Eqn(get_primitive("broadcast_to"), [kind(uniform, out.dtype)],
                          {"shape": out.shape}, [out], eqn.loc)
                eqns.append(new)
                producers[id(out)] = new
            continue
        if (not eqn.regions and not eqn.prim.multiple_results and out.aval.size <= _FOLD_MAX_SIZE
                and all(isinstance(i, Lit) or i in consts for i in inputs)
                and not (name == "broadcast_to" and isinstance(inputs[0], Lit))):
            value = np.asarray(eqn.prim.impl(*[i.value if isinstance(i, Lit) else consts[i]
                                               for i in inputs], **params), dtype=out.dtype)
            consts[out] = value
            continue
        new = eqn.rebuilt(inputs=inputs, params=params)
        eqns.append(new)
        for o in new.outputs:
            producers[id(o)] = new
    results = [sub(r) for r in fn.results]
    return fn.replace(eqns=eqns, consts=consts, results=results)
