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
* a cheap elementwise value used more than once is *recomputed* at each use instead of stored
  when some use reads it at a shifted/strided/permuted index (a slice or pad view with a non-zero
  start or a step, a transpose: that consumer could never share a loop iteration with a store of
  it), every use streams (no result, no region capture, no broadcast), and its inline tree
  (itself plus the producers computed inside it) costs at most RECOMPUTE_MAX_FLOPS simple
  operations per element (no transcendental, pow, dot, gather or pad view: it reads its stored
  inputs at affine indices). The Rosenbrock gradient's `200*(x[1:]-x[:-1]**2)`, read at i and
  i-1 by the scatter-add loop, is thus never written to memory;
* a cheap elementwise value (at most BOUNDED_MAX_FLOPS per element) read by consumers that
  read each element a bounded number of times (BOUNDED_READS: convolve) and otherwise
  streaming ones is computed inside each of them instead of stored;
* everything else (reductions, big dot_generals, scans, scatters, gathers, region calls, values
  used twice, results) is stored: it is the root of a group.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir import Function, Var

# Primitive classes, by IR name (the backend's emitter table uses the same names).
VIEW_PRIMS = frozenset({"reshape", "transpose", "broadcast_to", "slice", "scatter_slice"})
ELEMENTWISE_FAMILIES = frozenset({"unary", "binary", "select"})
REDUCE_PRIMS = frozenset({"reduce_sum", "reduce_max", "reduce_min", "reduce_prod",
                          "argmax", "argmin"})
# consumers that read each element of the given operand exactly once (None: every operand)
INLINE_DOT_MAX_K = 15   # short contractions fused into their consumer (no stored product)

# recompute rule: the largest per-element cost (sum of _FLOPS over the inline tree, counted once
# per path) of a multi-use value that is recomputed at each use instead of stored
RECOMPUTE = True
RECOMPUTE_MAX_FLOPS = 8
RECOMPUTE_MAX_USES = 4
MAX_INLINE_DEPTH = 200   # operations in one inlined chain before a value is stored
_FLOPS = {"add": 1, "sub": 1, "mul": 1, "neg": 1, "abs": 1, "sign": 2, "maximum": 1,
          "minimum": 1, "fmax": 2, "fmin": 2, "select": 1, "lt": 1, "le": 1, "gt": 1, "ge": 1,
          "eq": 1, "ne": 1,
          "logical_and": 1, "logical_or": 1, "logical_xor": 1, "logical_not": 1,
          "floor": 1, "ceil": 1, "round": 1, "stop_gradient": 0, "convert_element_type": 1,
          "div": 4, "sqrt": 4}
# views whose index is an affine function of the consumer's (no compare/select, no gather)
_AFFINE_VIEWS = frozenset({"reshape", "transpose", "broadcast_to", "slice"})

# consumers that read each element of an operand a bounded number of times: convolve (at most
# SHORT_TAPS times for a short kernel or few outputs, else once, into a contiguous copy). A
# cheap elementwise operand (at most BOUNDED_MAX_FLOPS per element) is computed inside each
# of them rather than stored (the cotangent 2 * y of a squared convolution, read by the two
# convolutions of its gradient: one pass over memory less)
BOUNDED_READS = frozenset({"convolve"})
BOUNDED_MAX_FLOPS = 2
STREAMING = {"reduce_sum": None, "reduce_max": None, "reduce_min": None, "reduce_prod": None,
             "argmax": None, "argmin": None, "cumsum": None, "cumprod": None,
             "concatenate": None,
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


def _eqn_flops(eqn):
    """Per-element cost of an elementwise equation (None: not cheap, never recomputed)."""
    name = eqn.prim.name
    if name == "integer_pow":
        y = abs(int(eqn.params["y"]))
        c = max(y.bit_length() - 1 + bin(y).count("1") - 1, 0)
        return c + (4 if eqn.params["y"] < 0 else 0)
    return _FLOPS.get(name)


def _shifting_view(eqn) -> bool:
    """Whether a view reads its operand at an index other than the consumer's own (same
    linear position): a slice/pad with a non-zero start or a step, a transpose."""
    name = eqn.prim.name
    if name in ("slice", "scatter_slice"):
        return any(s != 0 for s in eqn.params["start"]) or any(s != 1 for s in eqn.params["step"])
    return name == "transpose"


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
class Nest:
    """Groups sharing one loop over axis `depth - 1` (extent `extent`) of their iteration spaces
    (the axes before it are fixed by the enclosing nests). `items` (Groups and inner Nests, in
    execution order) run one after another inside that loop, for each value of the axis."""
    depth: int
    extent: int
    items: list

    def groups(self):
        for it in self.items:
            if isinstance(it, Nest):
                yield from it.groups()
            else:
                yield it

    def __repr__(self):
        return f"Nest[{self.extent}]({', '.join(map(repr, self.items))})"


@dataclass
class FusionPlan:
    groups: list
    stored: set = field(default_factory=set)   # id(Var) of equation outputs kept in memory
    inlined: set = field(default_factory=set)  # id(Var) computed inside a consumer's loop
    dead: set = field(default_factory=set)     # id(Var) nobody uses (not emitted)
    schedule: list = None   # Groups and Nests, in execution order (see loop_nests)

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

    def shifted_use(v):
        """Whether some use of v (through view chains) reads it at a shifted index."""
        for e, pos in users.get(id(v), ()):
            if pos >= 0 and kind_of(e) == "view":
                if _shifting_view(e) or shifted_use(e.outputs[0]):
                    return True
        return False

    def tree_flops(v, budget):
        """Per-element cost of computing v inline (v's producer and the non-stored producers
        under it, once per path), or None if over `budget` or not cheap/affine."""
        e = producer.get(id(v))
        if e is None or id(v) in stored:
            return 0
        k = kind_of(e)
        if k == "view":
            if e.prim.name not in _AFFINE_VIEWS:
                return None
            c = 4 if _needs_divmod(v, producer, stored) else 0   # a div/mod per read
        elif k == "elementwise":
            c = _eqn_flops(e)
            if c is None:
                return None
        else:
            return None
        for a in e.inputs:
            if isinstance(a, Var):
                sub = tree_flops(a, budget - c)
                if sub is None:
                    return None
                c += sub
            if c > budget:
                return None
        return c

    def recompute(o, uses):
        """The cost-model rule: recompute cheap multi-use o at each (shifted) use."""
        if not RECOMPUTE or len(uses) > RECOMPUTE_MAX_USES or o.aval.size <= 1:
            return False
        if any(u is None or u[2] or not _streams(u[0], u[1]) for u in uses):
            return False
        if not shifted_use(o):
            return False
        return tree_flops(o, RECOMPUTE_MAX_FLOPS) is not None

    def bounded(o, uses):
        """The bounded-reads rule: cheap o, some of whose uses are BOUNDED_READS consumers
        and the others streaming, computed inside each."""
        if not RECOMPUTE or len(uses) > RECOMPUTE_MAX_USES or o.aval.size <= 1:
            return False
        if any(u is None or u[2] or not (_streams(u[0], u[1])
                                         or u[0].prim.name in BOUNDED_READS) for u in uses):
            return False
        return any(u[0].prim.name in BOUNDED_READS for u in uses) and \
            tree_flops(o, BOUNDED_MAX_FLOPS) is not None

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
                if not ok and len(uses) > 1 and k == "elementwise" and recompute(o, uses):
                    ok = True
                if not ok and k == "elementwise" and bounded(o, uses):
                    ok = True
                (inlined if ok else stored).add(id(o))
            else:
                stored.add(id(o))

    # a long chain of inlined values (a Python loop of 3000 np.tanh) is stored every
    # MAX_INLINE_DEPTH steps: a kernel body stays a size LLVM compiles quickly, and every
    # walk over a body (here and in the lowering) stays far below Python's recursion limit
    depth: dict[int, int] = {}
    for e in fn.eqns:
        d = 1 + max((depth.get(id(a), 0) for a in e.inputs if isinstance(a, Var)), default=0)
        for o in e.outputs:
            if id(o) in inlined and d > MAX_INLINE_DEPTH:
                inlined.discard(id(o))
                stored.add(id(o))
            elif id(o) not in stored:   # inlined, or a view read through
                depth[id(o)] = d

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
    p = FusionPlan(groups, stored, inlined, dead)
    p.schedule = loop_nests(p, producer) if NESTS else list(groups)
    return p


# ---------------------------------------------------------------------------------------------
# loop nests: groups sharing loops
#
# A group's kernel iterates over a static shape (its output for elementwise/view roots, its
# input for reductions). Groups whose spaces have the same extent along axis 0 can share the
# loop over that axis (horizontal fusion of independent kernels, and vertical fusion of a
# producer with consumers that read it at the same axis-0 index: the producer's element row is
# complete when the consumer's body runs). Inside a nest the same applies to axis 1, and so on.
# A reduction over axis 0 ("cross" reduction) accumulates across the nest's iterations: its
# output is initialised before the loop and complete only after it.

NESTS = True
MAX_CANDIDATES = 4   # nests tried per group (most recent first)
# groups per nest: one loop body stays a size LLVM optimizes in linear time (an unrolled Python
# loop of 1000 steps would otherwise become one body of thousands of kernels)
MAX_NEST_MEMBERS = 48
_NEST_PRIMS = frozenset({"reduce_sum", "reduce_max", "reduce_min", "reduce_prod"})


def space(g):
    """The iteration shape of group `g`'s kernel if it can be a nest member, else None."""
    r = g.root
    name = r.prim.name
    if any(e.prim.name in ("scatter_slice", "take") for e in g.eqns):
        return None
    if name in _NEST_PRIMS:
        x = r.inputs[0]
        return x.shape if isinstance(x, Var) and x.aval.size > 0 else None
    if kind_of(r) in ("elementwise", "view"):
        return r.outputs[0].shape
    return None


def _dot_axis_map(eqn, pos):
    """For each output axis of a dot_general, the axis of operand `pos` it indexes (or None)."""
    a, bv = eqn.inputs
    (ac, bc), (ab, bb) = eqn.params["contract"], eqn.params["batch"]
    af = [i for i in range(len(a.shape)) if i not in ac and i not in ab]
    bf = [i for i in range(len(bv.shape)) if i not in bc and i not in bb]
    if pos == 0:
        return list(ab) + af + [None] * len(bf)
    return list(bb) + [None] * len(af) + bf


def _reshape_axis(src, dst, j):
    """The axis of `src` that axis j of its reshape `dst` indexes identically, or None."""
    lead = int(np.prod(dst[:j], dtype=np.int64))
    acc = 1
    for k, n in enumerate(src):
        if acc == lead and n == dst[j]:
            return k
        acc *= n
        if acc > lead:
            return None
    return None


def _operand_axes(eqn, pos, m):
    """Axis map through `eqn`: `m[i]` is the axis of eqn's output that the i-th loop index
    (of the enclosing nests) selects; returns the same for operand `pos` (None: lost)."""
    a, out = eqn.inputs[pos], eqn.outputs[0]
    name = eqn.prim.name
    k = kind_of(eqn)
    res = []
    for j in m:
        r = None
        if j is None or j >= len(out.shape if name not in _NEST_PRIMS else a.shape):
            pass
        elif name in _NEST_PRIMS:
            r = j   # the root reduction: the loop indexes its input
        elif k == "elementwise" or name == "broadcast_to":
            jj = j - (len(out.shape) - len(a.shape))
            if jj >= 0 and a.shape[jj] == out.shape[j]:
                r = jj
        elif name == "reshape":
            r = _reshape_axis(a.shape, out.shape, j)
        elif name == "transpose":
            r = eqn.params["perm"][j]
        elif name == "slice":
            if eqn.params["start"][j] == 0 and eqn.params["step"][j] == 1 and \
                    a.shape[j] == out.shape[j]:
                r = j
        elif name == "dot_general":
            r = _dot_axis_map(eqn, pos)[j]
        res.append(r)
    return res


def _reads(g, d, stored, producer):
    """{id(stored var): True if every read of it in g's body is at an index whose first d
    axes are the loop indices of the enclosing d nests}."""
    out = {}
    ident = list(range(d))

    def walk(e, m):
        for pos, a in enumerate(e.inputs):
            if not isinstance(a, Var):
                continue
            am = _operand_axes(e, pos, m)
            p = producer.get(id(a))
            if id(a) in stored or p is None:
                out[id(a)] = out.get(id(a), True) and am == ident
            else:
                walk(p, am)
    walk(g.root, ident)
    return out


def _complete_in_nest(g, d) -> bool:
    """Whether g's output element rows (first d axes fixed) are complete after its body ran
    for that prefix (false for cross reductions, which need the whole loop)."""
    if g.root.prim.name in _NEST_PRIMS:
        return all(a >= d for a in g.root.params["axes"])
    return True


def loop_nests(p: FusionPlan, producer) -> list:
    return _schedule(list(p.groups), 1, p.stored, producer)


def _contract(anc, n, me):
    """Update the ancestor bitmasks `anc` in place for node `me` merged into node `n` (no
    cycle: the caller checked that no path n -> x -> me leaves the pair): the merged node has
    both ancestor sets, and whoever depended on either depends on it and on all of them."""
    pair = (1 << n) | (1 << me)
    merged = (anc.get(n, 0) | anc.pop(me, 0)) & ~pair
    anc[n] = merged
    for x, m in anc.items():
        if m & pair:
            anc[x] = (m & ~(1 << me)) | (1 << n) | merged


def _schedule(items, d, stored, producer):
    """Partition `items` (groups in a valid order) into nests over axis d-1; returns the new
    item list (Groups and Nests) in a valid execution order."""
    index = {id(g): i for i, g in enumerate(items)}
    made_by = {}
    for g in items:
        for o in g.root.outputs:
            made_by[id(o)] = g
    reads = [_reads(g, d, stored, producer) for g in items]
    deps = [{index[id(made_by[v])] for v in r if v in made_by} for r in reads]
    # union-find style: node id per item
    node = list(range(len(items)))
    members = {i: [i] for i in range(len(items))}
    extent = {}
    for i, g in enumerate(items):
        sp = space(g)
        if sp is not None and len(sp) >= d and sp[d - 1] > 1:
            extent[i] = sp[d - 1]

    def ancestors():
        """anc[node] = bitmask of nodes it (transitively) depends on, over the merged graph."""
        ndeps = {}
        for i in range(len(items)):
            ndeps.setdefault(node[i], set()).update(node[j] for j in deps[i] if node[j] != node[i])
        anc = {}
        for root in ndeps:   # depth-first, post-order, with an explicit stack (no recursion)
            stack = [root]
            while stack:
                n = stack[-1]
                if n in anc:
                    stack.pop()
                    continue
                todo = [q for q in ndeps.get(n, ()) if q not in anc]
                if todo:
                    stack.extend(todo)
                    continue
                m = 0
                for q in ndeps.get(n, ()):
                    m |= (1 << q) | anc[q]
                anc[n] = m
                stack.pop()
        return anc

    anc = ancestors()
    for i in range(len(items)):
        if i not in extent:
            continue
        g = items[i]
        # the few most recent compatible nests first
        cands = sorted({node[j] for j in range(i) if j in extent and extent[j] == extent[i]
                        and len(members[node[j]]) < MAX_NEST_MEMBERS},
                       reverse=True)[:MAX_CANDIDATES]
        for n in cands:
            ok = True
            for v, same in reads[i].items():
                pg = made_by.get(v)
                if pg is None or node[index[id(pg)]] != n:
                    continue
                if not same or not _complete_in_nest(pg, d):
                    ok = False
                    break
            if not ok:
                continue
            # no path n -> x -> i through a node x outside the nest
            me = node[i]
            a_i = anc.get(me, 0)
            if any((a_i >> x) & 1 and (anc.get(x, 0) >> n) & 1 for x in anc if x != n
                   and x != me):
                continue
            for j in members.pop(me):
                node[j] = n
                members[n].append(j)
            _contract(anc, n, me)
            break
    # execution order: Kahn over merged nodes, by first member's position
    import heapq
    ndeps = {}
    for i in range(len(items)):
        ndeps.setdefault(node[i], set()).update(node[j] for j in deps[i] if node[j] != node[i])
    users = {}
    for n, ds in ndeps.items():
        for q in ds:
            users.setdefault(q, set()).add(n)
    left = {n: len(ds) for n, ds in ndeps.items()}
    heap = [n for n, c in left.items() if c == 0]
    heapq.heapify(heap)
    out = []
    while heap:
        n = heapq.heappop(heap)
        ms = sorted(members[n])
        if len(ms) == 1:
            out.append(items[ms[0]])
        else:
            inner = _schedule([items[j] for j in ms], d + 1, stored, producer)
            out.append(Nest(d, extent[ms[0]], inner))
        for u in users.get(n, ()):
            left[u] -= 1
            if left[u] == 0:
                heapq.heappush(heap, u)
    assert len(out) == len(members), "loop nest schedule has a cycle"
    return out


def describe(fn: Function) -> str:
    """Human-readable kernel list, one line per group."""
    return "\n".join(repr(g) for g in plan(fn).groups)
