"""Common-subexpression elimination: an equation identical to an earlier one (same primitive,
same operands, same params) reuses the earlier outputs; equal small constants are merged."""
from __future__ import annotations

import numpy as np

from ..ir import Function, Lit, Var

_MERGE_CONST_SIZE = 1024  # bigger constants are compared by identity only


def _param_key(v):
    if isinstance(v, Function):
        return ("fn", id(v))
    if isinstance(v, np.dtype):
        return ("dtype", v.str)
    return v


def cse(fn: Function) -> Function:
    subst: dict[int, object] = {}
    seen_consts: dict[tuple, Var] = {}
    consts = {}
    for var, val in fn.consts.items():
        arr = np.asarray(val)
        key = (arr.dtype.str, arr.shape, arr.tobytes()) if arr.size <= _MERGE_CONST_SIZE else \
            ("id", id(val))
        if key in seen_consts:
            subst[id(var)] = seen_consts[key]
        else:
            seen_consts[key] = var
            consts[var] = val

    def sub(atom):
        return subst.get(id(atom), atom) if isinstance(atom, Var) else atom

    def atom_key(atom):
        return ("lit", atom.dtype.str, repr(atom.value)) if isinstance(atom, Lit) else id(atom)

    table: dict[tuple, list] = {}
    eqns = []
    for eqn in fn.eqns:
        inputs = [sub(i) for i in eqn.inputs]
        params = {k: cse(v) if isinstance(v, Function) else v for k, v in eqn.params.items()} \
            if eqn.regions else eqn.params
        key = (eqn.prim.name, tuple(atom_key(i) for i in inputs),
               tuple(sorted((k, _param_key(v)) for k, v in params.items())))
        if key in table and not eqn.regions:
            for o, prev in zip(eqn.outputs, table[key]):
                subst[id(o)] = prev
            continue
        table[key] = eqn.outputs
        eqns.append(eqn.rebuilt(inputs=inputs, params=params))
    return fn.replace(eqns=eqns, consts=consts, results=[sub(r) for r in fn.results])
