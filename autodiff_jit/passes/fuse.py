"""Fusion analysis: which values the backend stores in memory, and which equations it computes
inline inside the loop of the kernel that consumes them.

This is a pure analysis over a `Function` (it does not rewrite the IR). The backend emits one
loop nest per `Group`; inside that loop, every inlined equation is evaluated per element, so a
chain of elementwise operations (and elementwise producers feeding a reduction) becomes one loop
with no intermediate arrays.

Rules (each value `v` defined by an equation):

* view equations (reshape, transpose, broadcast_to, slice, stop_gradient-like identities) are
  index arithmetic: they are never stored, except when they are a function result;
* an elementwise equation is inlined into its consumer when: it is not a result, it has exactly
  one *effective* use (uses through view chains count; a view used twice counts twice; `x + x`,
  one elementwise consumer reading x directly at the same element, counts once), that
  consumer reads each element once ("streaming": elementwise ops, reductions, arg-reductions,
  cumsum, concatenate, the update operand of take_add), and no element of `v` would be computed
  twice (no broadcasting on the way, unless `v` is a scalar, which LLVM hoists out of loops);
  scatter_slice counts as a (padding) view;
* a dot_general with a short contraction (K <= INLINE_DOT_MAX_K elements, e.g. the d=10 batched
  matrix-vector products of the GMM) is computed inline like an elementwise value (K unrolled
  multiply-adds per element) under the same conditions; its operands are read many times, so they
  are stored, and a view operand that needs div/mod to index (a reshape of a transposed or sliced
  value) is stored too;
* everything else (reductions, big dot_generals, scans, scatters, gathers, region calls, values
  used twice, results) is stored: it is the root of a group.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Function, Lit, Var

# Primitive classes, by IR name (the backend's emitter table uses the same names).
VIEW_PRIMS = frozenset({"reshape", "transpose", "broadcast_to", "slice", "scatter_slice"})
ELEMENTWISE_FAMILIES = frozenset({"unary", "binary", "select"})
REDUCE_PRIMS = frozenset({"reduce_sum", "reduce_max", "reduce_min", "reduce_prod",
                          "argmax", "argmin"})
# consumers that read each element of the given operand exactly once (None: every operand)
INLINE_DOT_MAX_K = 15   # below the BLAS threshold (backend/dot.py BLAS_MIN_DIM)

STREAMING = {"reduce_sum": None, "reduce_max": None, "reduce_min": None, "reduce_prod": None,
             "argmax": None, "argmin": None, "cumsum": None, "concatenate": None,
             "scatter_slice": None, "take_add": (0,)}


def kind_of(eqn) -> str:
    """'view' | 'elementwise' | 'reduce' | 'other'."""
    name = eqn.prim.name
    if name in VIEW_PRIMS:
        return "view"
    if name in REDUCE_PRIMS:
        return "reduce"
    if eqn.prim.family in ELEMENTWISE_FAMILIES and not eqn.prim.multiple_results:
        return "elementwise"
    return "other"


def contraction_size(eqn) -> int:
    a = eqn.inputs[0]
    k = 1
    for ax in eqn.params["contract"][0]:
        k *= a.shape[ax]
    return k


def is_inline_dot(eqn) -> bool:
    """A dot_general cheap enough to compute per element inside its consumer's loop."""
    return eqn.prim.name == "dot_general" and contraction_size(eqn) <= INLINE_DOT_MAX_K \
        and all(isinstance(i, Var) or i.aval.size <= 1 for i in eqn.inputs)


def _needs_divmod(v, producer, stored) -> bool:
    """Whether indexing view `v` element by element needs div/mod: a reshape whose source is
    not laid out densely (a transpose, slice, broadcast... of something)."""
    e = producer.get(id(v))
    if e is None or id(v) in stored or kind_of(e) != "view":
        return False
    src = e.inputs[0]
    if e.prim.name == "reshape":
        se = producer.get(id(src)) if isinstance(src, Var) else None
        if se is not None and id(src) not in stored and kind_of(se) == "view":
            return se.prim.name != "reshape" or _needs_divmod(src, producer, stored)
        return False
    return isinstance(src, Var) and _needs_divmod(src, producer, stored)


def _streams(eqn, pos) -> bool:
    if kind_of(eqn) == "elementwise":
        return True
    ops = STREAMING.get(eqn.prim.name, ())
    return ops is None or pos in ops


def _replicates(eqn, pos) -> bool:
    """Whether the consumer reads some element of operand `pos` more than once."""
    a = eqn.inputs[pos]
    if kind_of(eqn) == "elementwise":
        return a.aval.size < eqn.outputs[0].aval.size
    if kind_of(eqn) == "view":  # broadcast_to; slices, reshapes, transposes, pads read once
        return eqn.prim.name == "broadcast_to" and a.aval.size < eqn.outputs[0].aval.size
    return False


@dataclass
class Group:
    """One kernel: `root` is the equation whose output(s) are stored; `eqns` lists the root and
    every equation computed inline in its loop (views included), in program order."""
    root: object
    eqns: list
    kind: str

    @property
    def outputs(self):
        return self.root.outputs

    def __repr__(self):
        names = ", ".join(e.prim.name for e in self.eqns)
        return f"Group({self.kind}: {names})"


@dataclass
class FusionPlan:
    groups: list
    stored: set = field(default_factory=set)   # id(Var) of equation outputs kept in memory
    inlined: set = field(default_factory=set)  # id(Var) computed inside a consumer's loop
    dead: set = field(default_factory=set)     # id(Var) nobody uses (not emitted)

    def is_stored(self, var) -> bool:
        return id(var) in self.stored


def plan(fn: Function) -> FusionPlan:
    """Group `fn`'s (top-level) equations into kernels."""
    order = {id(e): i for i, e in enumerate(fn.eqns)}
    producer: dict[int, object] = {}
    for e in fn.eqns:
        for o in e.outputs:
            producer[id(o)] = e
    users: dict[int, list] = {}
    for e in fn.eqns:
        for pos, a in enumerate(e.inputs):
            if isinstance(a, Var):
                users.setdefault(id(a), []).append((e, pos))
        for r in e.regions:  # values captured by regions: treat as an opaque use
            from ..ir import free_vars
            for v in free_vars(r):
                users.setdefault(id(v), []).append((e, -1))
    results = {id(r) for r in fn.results if isinstance(r, Var)}

    def effective_uses(v, rep=False):
        """(consumer eqn, operand position, replicated) through view chains; None for a use
        that forces storing (a result, a region capture)."""
        out = []
        if id(v) in results:
            out.append(None)
        for e, pos in users.get(id(v), ()):
            if pos >= 0 and kind_of(e) == "view":
                out.extend(effective_uses(e.outputs[0], rep or _replicates(e, pos)))
            elif pos < 0:
                out.append(None)
            else:
                out.append((e, pos, rep or _replicates(e, pos)))
        return out

    stored, inlined, dead = set(), set(), set()
    for e in fn.eqns:
        k = kind_of(e)
        for o in e.outputs:
            if id(o) not in results and not users.get(id(o)):
                dead.add(id(o))
            elif k == "view":
                if id(o) in results:
                    stored.add(id(o))
            elif k == "elementwise" or is_inline_dot(e):
                uses = effective_uses(o)
                if len(uses) > 1 and all(u is not None and u[0] is uses[0][0] and not u[2]
                                         and u[0].inputs[u[1]] is o for u in uses) \
                        and kind_of(uses[0][0]) == "elementwise":
                    uses = uses[:1]   # x + x: one consumer reading the same element (cached)
                ok = len(uses) == 1 and uses[0] is not None and _streams(uses[0][0], uses[0][1]) \
                    and (not uses[0][2] or o.aval.size <= 1)
                (inlined if ok else stored).add(id(o))
            else:
                stored.add(id(o))

    # dot operands are read many times: no div/mod chains per read
    for e in fn.eqns:
        if e.prim.name == "dot_general":
            for a in e.inputs:
                if isinstance(a, Var) and _needs_divmod(a, producer, stored):
                    stored.add(id(a))

    groups = []
    for e in fn.eqns:
        if not any(id(o) in stored for o in e.outputs):
            continue
        members, stack, seen = [e], list(e.inputs), set()
        while stack:
            a = stack.pop()
            if not isinstance(a, Var) or id(a) in seen or id(a) in stored:
                continue
            seen.add(id(a))
            p = producer.get(id(a))
            if p is None:
                continue
            members.append(p)
            stack.extend(p.inputs)
        members = sorted({id(m): m for m in members}.values(), key=lambda m: order[id(m)])
        groups.append(Group(e, members, kind_of(e)))
    return FusionPlan(groups, stored, inlined, dead)


def describe(fn: Function) -> str:
    """Human-readable kernel list, one line per group."""
    return "\n".join(repr(g) for g in plan(fn).groups)
