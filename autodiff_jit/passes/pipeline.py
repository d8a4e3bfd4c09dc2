"""The order in which passes run. Each pass is a pure Function -> Function; the verifier runs
after every one, so a broken rewrite is caught at the pass that made it."""
from __future__ import annotations

from ..ir import Function, verify
from .cse import cse
from .dce import dce
from .licm import licm, merge_recorded_loops, prune_scan
from .simplify import simplify

# merge_loops runs before licm so that a loop's forward and its recording re-run become one
# loop before invariants are hoisted out of it.
PIPELINE = (("simplify", simplify), ("cse", cse), ("merge_loops", merge_recorded_loops),
            ("licm", licm), ("prune_scan", prune_scan), ("dce", dce))
_MAX_ROUNDS = 4


def _size(fn: Function) -> tuple[int, int]:
    return sum(1 for _ in fn.all_eqns()), len(fn.consts)


def optimize(fn: Function, passes=PIPELINE) -> Function:
    """Run the pipeline until the function stops shrinking (at most a few rounds)."""
    for _ in range(_MAX_ROUNDS):
        before = _size(fn)
        for name, p in passes:
            fn = p(fn)
            try:
                verify(fn)
            except Exception as exc:
                raise type(exc)(f"after pass '{name}': {exc}") from None
        if _size(fn) == before:
            break
    return fn
