"""Dead-code elimination: drop equations whose outputs are never used (all primitives are
pure) and constants nobody reads. Region bodies are cleaned recursively."""
from __future__ import annotations

from ..ir import Function, Var, free_vars


def dce(fn: Function) -> Function:
    live = {id(r) for r in fn.results if isinstance(r, Var)}
    kept = []
    for eqn in reversed(fn.eqns):
        if not any(id(o) in live for o in eqn.outputs):
            continue
        if eqn.regions:
            eqn = eqn.rebuilt(params={k: dce(v) if isinstance(v, Function) else v
                                      for k, v in eqn.params.items()})
        kept.append(eqn)
        live.update(id(i) for i in eqn.inputs if isinstance(i, Var))
        for region in eqn.regions:
            live.update(id(v) for v in free_vars(region))
    consts = {v: c for v, c in fn.consts.items() if id(v) in live}
    if len(kept) == len(fn.eqns) and len(consts) == len(fn.consts) and \
            all(a is b for a, b in zip(kept[::-1], fn.eqns)):
        return fn  # nothing was dead: keep the function (and its identity, for its regions)
    return fn.replace(eqns=kept[::-1], consts=consts)
