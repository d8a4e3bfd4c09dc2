"""Region inlining: every custom_vjp_call becomes the equations of its `fwd` region.

Not part of the optimization pipeline (the interpreter and the transforms run custom_vjp_call
as one op); the backend applies it before fusion planning (backend/lower.py), and the loop
emitters apply it to region bodies (backend/lower_control.py)."""
from __future__ import annotations

from ..ir import Eqn, Function, Var


def inline_calls(fn: Function) -> Function:
    """Replace every custom_vjp_call by the equations of its `fwd` region (fresh Vars)."""
    if not any(e.prim.name == "custom_vjp_call" for e in fn.eqns):
        return fn
    consts = dict(fn.consts)
    eqns = []
    subst: dict[int, object] = {}

    def sub(a, m):
        if isinstance(a, Var):
            a = m.get(id(a), a)
            return subst.get(id(a), a) if isinstance(a, Var) else a
        return a

    for e in fn.eqns:
        if e.prim.name != "custom_vjp_call":
            eqns.append(Eqn(e.prim, [sub(i, {}) for i in e.inputs], e.params, e.outputs, e.loc))
            continue
        region = inline_calls(e.params["fwd"])
        m: dict[int, object] = {}
        for ra, a in zip(region.args, e.inputs):
            m[id(ra)] = sub(a, {})
        for c, v in region.consts.items():
            nc = Var(c.aval, c.hint)
            consts[nc] = v
            m[id(c)] = nc
        for re_ in region.eqns:
            outs = [Var(o.aval, o.hint) for o in re_.outputs]
            eqns.append(Eqn(re_.prim, [sub(i, m) for i in re_.inputs], re_.params, outs,
                            re_.loc))
            for o, n in zip(re_.outputs, outs):
                m[id(o)] = n
        for o, r in zip(e.outputs, region.results):
            subst[id(o)] = sub(r, m)
    results = [sub(r, {}) for r in fn.results]
    return Function(fn.name, fn.args, consts, eqns, results)
