"""Traced branches of converted code, and arrays they change in place.

Each branch of a traced `if` runs on stand-ins in a fresh trace for the traced values of its
state: one stand-in for one array however many names hold it, and for a view of another
traced input, the same view of that input's stand-in, so the branch sees writes through
either name. A branch (or a traced loop's body) that changes an input array in place
(`y[0] = v`, `y += v`) makes the op output the array's new value, and update_in_place gives
it to the array from before the statement, as numpy's in-place writes do: every other name
for it and every view of it sees the change.
"""
from __future__ import annotations

from .. import tree
from ..errors import TracingError
from ..primitives import bind
from ..primitives.elementwise import convert_element_type
from ..trace import Trace, Tracer
from .writes import run_body


def trace_branch(fn, state, held=()):
    """Run fn(*state) in a fresh trace, traced inputs replaced by stand-ins in it (the same
    array twice by one stand-in; a view of another input by that view of its stand-in, so
    that the branch sees writes through either). `held`: containers of the other branch's
    results (references run_body counts). Returns the trace, the traced inputs (the op's
    operands), the stand-ins of every traced value of `state` by id, the indices of the
    inputs the branch changed in place, and the branch's results."""
    trace = Trace()
    leaves, td = tree.flatten(list(state))
    outer = {id(x): x for x in leaves if isinstance(x, Tracer)}
    explicit, stand_in = [], {}

    def stand_in_for(x):
        if id(x) not in stand_in:
            parent = x._parent
            while parent is not None and id(parent) not in outer:
                parent = parent._parent
            if parent is None:
                explicit.append(x)
                stand_in[id(x)] = trace.new_arg(x.aval)
            else:   # the same view of the parent's stand-in
                stand_in[id(x)] = _view_of(x, stand_in_for(parent), parent)
        return stand_in[id(x)]

    args = tuple(tree.unflatten(td, [stand_in_for(x) if isinstance(x, Tracer) else x
                                     for x in leaves]))
    del leaves   # the arrays' references are counted (writes.py): only in state and args
    # the trace's constants keep the arrays they were made of alive (a read before a write)
    outs = tuple(run_body(fn, state, args, held=(trace._keepalive, stand_in.values()) +
                          tuple(held), traced=True))
    changed = {j for j, x in enumerate(explicit) if stand_in[id(x)]._ir is not trace.args[j]}
    return trace, explicit, stand_in, changed, outs


def _view_of(view: Tracer, base: Tracer, outer_base: Tracer) -> Tracer:
    """`view` (a view of outer_base, through views between) derived from `base` instead."""
    chain = []
    t = view
    while t is not outer_base:
        chain.append(t._np_op)
        t = t._parent
    for np_op in reversed(chain):
        base = base._track_view(np_op(base), np_op)
    return base


def update_in_place(outer: Tracer, new: Tracer, what: str):
    """outer takes new's value, as numpy's in-place writes do: every name for it and every
    view of it sees the change. `what`: the statement, for the error."""
    outer._check_writable()
    if outer._adj_context is not new._adj_context:
        raise TracingError(f"{what} changes in place an array of an enclosing traced "
                           f"function; write into a copy (y = y.copy()) and return it instead")
    if outer._parent is not None:
        outer[...] = new          # a view: writes through to the array it views
    else:
        outer._own_ir = new._ir


def no_writes(values, name, what):
    """Mark `values`, the new array bound to `name` after `what` (a traced `if` or loop) and
    the array it was bound to before, which other names see, where the name stays bound to
    that one on another path: a write in place into either would have to reach the other
    on that path only, so it is refused."""
    why = (f"'{name}' is, after {what}, the array it was bound to before on one path and a "
           f"new array on another, and other names or views refer to the array from before; "
           f"a write in place into either would have to reach the other on one path only. "
           f"Write into a copy ({name} = {name}.copy() after the statement) or build the new "
           f"value out of place (np.where(...))")
    for v in values:
        if isinstance(v, Tracer):
            v._no_writes = why


def root(t: Tracer) -> Tracer:
    """The array a traced view looks into (t itself when it is not a view)."""
    while t._parent is not None:
        t = t._parent
    return t


class LoopReads:
    """Which traced arrays from before a traced loop its test and body read through another
    name or a view (which would see the value from before the loop, not the carried one).

    While they are traced, each such array stands for a copy of itself (an equation of the
    enclosing trace, the same value, so reads stay right); the values derived from that copy
    in the enclosing trace while the loop is traced, and the ones the loop captures, are the
    reads. `values`: (variable index, its traced value before the loop)."""

    def __init__(self, values):
        self.arrays = {}    # id(root) -> [root, its var, the copy's var, variable indices]
        for i, v in values:
            r = root(v)
            if r.ndim == 0:     # scalars are not changed in place (see regions)
                continue
            entry = self.arrays.get(id(r))
            if entry is None:
                copy = bind(convert_element_type, r, dtype=r.dtype)
                entry = self.arrays[id(r)] = [r, r._own_ir, copy._ir, []]
                r._own_ir = copy._ir
            entry[3].append(i)
        self.marks = {id(e[0]._adj_context): (e[0]._adj_context, len(e[0]._adj_context.eqns))
                      for e in self.arrays.values()}

    def read(self, captured) -> set:
        """Indices of the variables whose array from before the loop the loop read, or wrote
        through another name; restores the arrays."""
        tainted = {e[2]: e[3] for e in self.arrays.values()}
        for trace, mark in self.marks.values():
            for eqn in trace.eqns[mark:]:
                hit = [tainted[v] for v in eqn.inputs if v in tainted]
                for out in eqn.outputs:
                    if hit:
                        tainted[out] = hit[0]
        found = set()
        for c in captured:
            found.update(tainted.get(c._ir, ()))
        for r, _, copy, indices in self.arrays.values():
            if r._own_ir is not copy:     # written inside the loop through another name
                found.update(indices)
        self.restore()
        return found

    def sharing(self) -> list:
        """Lists of the indices of variables whose arrays are one array or views of one."""
        return [e[3] for e in self.arrays.values() if len(e[3]) > 1]

    def restore(self):
        for r, var, copy, _ in self.arrays.values():
            if r._own_ir is copy:
                r._own_ir = var
        self.arrays = {}


__all__ = ["trace_branch", "update_in_place", "no_writes", "root", "LoopReads"]
