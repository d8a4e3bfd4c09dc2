"""Loop passes: loop-invariant code motion, fusing a loop with its recording re-run, and
pruning dead loop carries.

- `licm`: an equation in a `scan` or `while` body whose inputs are all loop-invariant (the
  loop's const operands, literals, body constants, or other invariant results) moves out in
  front of the loop; its results enter the body as new const operands. Nested regions are
  processed first, so an invariant rises through every loop level it does not depend on.
  Branches of `cond` are not hoisted from (that would compute the untaken branch).
- `merge_recorded_loops`: reverse mode re-runs a loop to record what its adjoint needs
  (a `scan` whose body returns extra stacked outputs, or a `while` with record=True). When the
  plain run is still in the IR (its value is used), the plain run is replaced by the recording
  one, so the forward loop runs once.
- `prune_scan`: a scan carry or stacked output nobody reads, and that no needed result depends
  on, is removed (e.g. the cotangent accumulator of a const that needs no gradient).
`loop_passes(fn)` runs all three.
"""
from __future__ import annotations

import numpy as np

from ..ir import Eqn, Function, Lit, Var, free_vars
from .dce import dce

_LOOPS = ("scan", "while")


def _atom_key(a):
    return ("lit", a.dtype.str, repr(a.value)) if isinstance(a, Lit) else id(a)


def _map_regions(fn: Function, f) -> Function:
    """Apply f to every region Function of every equation of fn (one level)."""
    eqns = []
    for e in fn.eqns:
        if e.regions:
            e = e.rebuilt(params={k: f(v) if isinstance(v, Function) else v
                                  for k, v in e.params.items()})
        eqns.append(e)
    return fn.replace(eqns=eqns)


# ---------------------------------------------------------------------------------------------
# loop-invariant code motion

def _hoist(body: Function, n_lead: int, n_consts: int, outer_consts_in: list, outer_fn_consts,
           new_outer_eqns: list):
    """Split `body` (args: lead + consts + rest) into hoisted outer equations and a new body.
    Returns (new_body, extra outer operands)."""
    const_args = body.args[n_lead:n_lead + n_consts]
    outer_of: dict[int, object] = {id(a): o for a, o in zip(const_args, outer_consts_in)}
    for v, arr in body.consts.items():
        outer_of.setdefault(id(v), None)  # materialized on demand
    invariant = set(outer_of)
    kept, new_args, extra = [], [], []

    def outer_atom(a):
        if isinstance(a, Lit):
            return a
        o = outer_of[id(a)]
        if o is None:  # a body constant: give the outer function its own copy
            o = Var(a.aval)
            outer_fn_consts[o] = np.asarray(body.consts[a])
            outer_of[id(a)] = o
        return o

    for e in body.eqns:
        ins_inv = all(isinstance(i, Lit) or id(i) in invariant for i in e.inputs)
        regions_inv = all(all(id(v) in invariant for v in free_vars(r)) for r in e.regions)
        if ins_inv and regions_inv and e.inputs and e.outputs:
            outs = [Var(o.aval, o.hint) for o in e.outputs]
            new_outer_eqns.append(Eqn(e.prim, [outer_atom(i) for i in e.inputs], e.params, outs,
                                      e.loc))
            for inner, outer in zip(e.outputs, outs):
                outer_of[id(inner)] = outer
                invariant.add(id(inner))
                new_args.append(inner)   # the inner var is now defined as a body argument
                extra.append(outer)
        else:
            kept.append(e)
    if not new_args:
        return body, []
    # hoisted values only the hoisted equations used need not enter the loop
    used = {id(i) for e in kept for i in e.inputs if isinstance(i, Var)}
    for e in kept:
        used.update(id(v) for r in e.regions for v in free_vars(r))
    used.update(id(r) for r in body.results if isinstance(r, Var))
    pairs = [(a, o) for a, o in zip(new_args, extra) if id(a) in used]
    new_args, extra = [p[0] for p in pairs], [p[1] for p in pairs]
    args = body.args[:n_lead + n_consts] + new_args + body.args[n_lead + n_consts:]
    return Function(body.name, args, body.consts, kept, body.results), extra


def licm(fn: Function) -> Function:
    fn = _map_regions(fn, licm)
    consts = dict(fn.consts)
    eqns = []
    changed = False
    for e in fn.eqns:
        name = e.prim.name
        if name == "scan":
            p = dict(e.params)
            lead = 1 if p["dynamic_length"] else 0
            cin = e.inputs[lead:lead + p["n_consts"]]
            hoisted: list = []
            body, extra = _hoist(p["body"], 1, p["n_consts"], cin, consts, hoisted)
            if extra:
                eqns.extend(hoisted)
                p.update(body=body, n_consts=p["n_consts"] + len(extra))
                k = lead + len(cin)
                e = Eqn(e.prim, e.inputs[:k] + extra + e.inputs[k:], p, e.outputs, e.loc)
                changed = True
        elif name == "while":
            p = dict(e.params)
            nq, nb = p["n_cond_consts"], p["n_body_consts"]
            hoisted = []
            cond, extra_c = _hoist(p["cond"], 0, nq, e.inputs[:nq], consts, hoisted)
            body, extra_b = _hoist(p["body"], 0, nb, e.inputs[nq:nq + nb], consts, hoisted)
            if extra_c or extra_b:
                eqns.extend(hoisted)
                p.update(cond=cond, body=body, n_cond_consts=nq + len(extra_c),
                         n_body_consts=nb + len(extra_b))
                ins = (e.inputs[:nq] + extra_c + e.inputs[nq:nq + nb] + extra_b +
                       e.inputs[nq + nb:])
                e = Eqn(e.prim, ins, p, e.outputs, e.loc)
                changed = True
        eqns.append(e)
    return fn.replace(eqns=eqns, consts=consts) if changed else fn.replace(eqns=eqns)


# ---------------------------------------------------------------------------------------------
# fusing the plain forward run with the recording re-run

def _extends(plain: Eqn, rec: Eqn) -> bool:
    if plain.prim.name != rec.prim.name or len(plain.inputs) != len(rec.inputs):
        return False
    if [_atom_key(a) for a in plain.inputs] != [_atom_key(a) for a in rec.inputs]:
        return False
    pp, rp = plain.params, rec.params
    if plain.prim.name == "scan":
        if any(pp[k] != rp[k] for k in pp if k != "body"):
            return False
        pb, rb = pp["body"], rp["body"]
        if len(rb.results) <= len(pb.results):
            return False
        return rb.replace(results=rb.results[:len(pb.results)]).to_text(locations=False) == \
            pb.to_text(locations=False)
    if plain.prim.name == "while":
        if pp["record"] or not rp["record"]:
            return False
        return all(pp[k].to_text(locations=False) == rp[k].to_text(locations=False)
                   for k in ("cond", "body"))
    return False


def merge_recorded_loops(fn: Function) -> Function:
    fn = _map_regions(fn, merge_recorded_loops)
    eqns = list(fn.eqns)
    subst: dict[int, object] = {}
    for j, rec in enumerate(eqns):
        if rec is None or rec.prim.name not in _LOOPS:
            continue
        for i in range(j):
            plain = eqns[i]
            if plain is None or plain.prim.name != rec.prim.name:
                continue
            rec_s = Eqn(rec.prim, [subst.get(id(a), a) if isinstance(a, Var) else a
                                   for a in rec.inputs], rec.params, rec.outputs)
            if _extends(plain, rec_s):
                for a, b in zip(plain.outputs, rec.outputs):
                    subst[id(a)] = b
                eqns[i], eqns[j] = rec_s, None
                break
    if not subst:
        return fn

    def sub(a):
        while isinstance(a, Var) and id(a) in subst:
            a = subst[id(a)]
        return a

    out = []
    for e in eqns:
        if e is None:
            continue
        out.append(e.rebuilt(inputs=[sub(a) for a in e.inputs]))
    return fn.replace(eqns=out, results=[sub(r) for r in fn.results])


# ---------------------------------------------------------------------------------------------
# dead carries

def _deps(body: Function, results_needed: list[int]) -> set[int]:
    """ids of body args the given results depend on."""
    need = {id(body.results[k]) for k in results_needed if isinstance(body.results[k], Var)}
    for e in reversed(body.eqns):
        if any(id(o) in need for o in e.outputs):
            need.update(id(i) for i in e.inputs if isinstance(i, Var))
            for r in e.regions:
                need.update(id(v) for v in free_vars(r))
    return need


def prune_scan(fn: Function) -> Function:
    fn = _map_regions(fn, prune_scan)
    live = {id(r) for r in fn.results if isinstance(r, Var)}
    for e in fn.eqns:
        live.update(id(i) for i in e.inputs if isinstance(i, Var))
        for r in e.regions:
            live.update(id(v) for v in free_vars(r))
    eqns, changed = [], False
    for e in fn.eqns:
        if e.prim.name != "scan":
            eqns.append(e)
            continue
        p = e.params
        body, nk, nc = p["body"], p["n_consts"], p["n_carry"]
        n_out = len(e.outputs)
        needed = {k for k in range(n_out) if id(e.outputs[k]) in live}
        while True:  # carry k is needed if a needed result depends on carry argument k
            dep = _deps(body, sorted(needed))
            more = {k for k in range(nc) if id(body.args[1 + nk + k]) in dep} - needed
            if not more:
                break
            needed |= more
        if len(needed) == n_out or not needed:
            eqns.append(e)
            continue
        keep_c = [k for k in range(nc) if k in needed]
        keep_y = [k for k in range(nc, n_out) if k in needed]
        lead = 1 if p["dynamic_length"] else 0
        args = body.args
        new_body = dce(Function(body.name, args[:1 + nk] + [args[1 + nk + k] for k in keep_c] +
                            args[1 + nk + nc:], body.consts, body.eqns,
                            [body.results[k] for k in keep_c + keep_y]))
        ins = e.inputs
        new_ins = ins[:lead + nk] + [ins[lead + nk + k] for k in keep_c] + ins[lead + nk + nc:]
        params = dict(p, body=new_body, n_carry=len(keep_c))
        eqns.append(Eqn(e.prim, new_ins, params, [e.outputs[k] for k in keep_c + keep_y],
                        e.loc))
        changed = True
    return fn.replace(eqns=eqns) if changed else fn


def loop_passes(fn: Function) -> Function:
    return prune_scan(licm(merge_recorded_loops(fn)))


__all__ = ["licm", "merge_recorded_loops", "prune_scan", "loop_passes"]
