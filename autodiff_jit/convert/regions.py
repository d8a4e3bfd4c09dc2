"""Traced branches and loops of converted code: the `cond` and `while` ops they become.

A converted `if` on a traced condition traces both branches, each once, on fresh tracers for
the traced values it reads, and binds one `cond` op (only the taken branch runs, forward and
backward). Its outputs are the variables either branch assigns:

* equal plain values on both paths (the same Python number, the same object) stay plain, so
  `n = 3` in both branches keeps `range(n)` static;
* arrays and numbers become outputs of the op; a Python number meeting an array takes the
  array's dtype (and shape), dtypes promote as numpy's do;
* a variable bound on one path only is `Undefined(name, why)`: an error where it is used.

A converted `while` (and a `for` over a traced range) with a traced test is a `while_loop`
over the variables its body assigns; a Python number carried by the loop becomes an array,
promoted once when the body changes its dtype (`s = 0` then `s = s + x`).
"""
from __future__ import annotations

import hashlib
import weakref

import numpy as np

from .. import tree
from ..config import config
from ..control.flow import CarryTypeError, _while_regions
from ..errors import TracingError
from ..ir import AVal, Function, Var
from ..primitives import aval_of, bind
from ..control.loops import cond_p, while_p
from ..trace import Tracer
from .astutil import RET_VALUE
from .undefined import Undefined
from .inplace import LoopReads, no_writes, root, trace_branch, update_in_place
from .writes import refuse_loop_write

_WEAK = (bool, int, float)


def _where(loc):
    return f" at {loc}" if loc else ""


def as_pred(p, what, loc):
    """A traced condition as a bool scalar (a numeric scalar means `!= 0`, as in Python)."""
    if p.shape != ():
        raise TracingError(f"the condition of the {what}{_where(loc)} is a traced array of "
                           f"shape {p.shape}: its truth value is ambiguous; reduce it with "
                           f"np.any(...) or np.all(...), or use np.where for an elementwise "
                           f"choice")
    return p if p.dtype == np.bool_ else p != 0


def _numeric(x) -> bool:
    if isinstance(x, Tracer) or type(x) in _WEAK:
        return True
    if isinstance(x, (np.ndarray, np.generic)):
        return x.dtype.kind in "biuf"
    return False


def _is_dynamic(value) -> bool:
    leaves, _ = tree.flatten(value)
    return bool(leaves) and all(_numeric(x) for x in leaves)


def _same_plain(a, b) -> bool:
    """Whether two values without tracers are the same plain value (kept static)."""
    if a is b:
        return True
    la, ta = tree.flatten(a)
    lb, tb = tree.flatten(b)
    if ta != tb:
        return False
    for x, y in zip(la, lb):
        if isinstance(x, Tracer) or isinstance(y, Tracer):
            return False
        if x is y:
            continue
        if type(x) is not type(y) or not isinstance(x, _WEAK + (str, bytes)) or x != y:
            return False
    return True


def _leaf_aval(x) -> AVal:
    if type(x) is bool:
        return AVal((), np.bool_)
    if type(x) is int:
        return AVal((), np.int64)
    if type(x) is float:
        return AVal((), np.float64)
    return aval_of(x)


def _describe(value) -> str:
    if isinstance(value, Undefined):
        return "unassigned"
    leaves, td = tree.flatten(value)
    if not leaves or not all(_numeric(x) for x in leaves):
        return f"a {type(value).__name__}"
    text = ", ".join(str(_leaf_aval(x)) for x in leaves)
    return text if td == "*" else f"({text})"


def _cast(x, aval: AVal):
    """x as a value of `aval` (dtype promotion, a Python number broadcast)."""
    if isinstance(x, Tracer):
        return x if x.dtype == aval.dtype else x.astype(aval.dtype)
    if aval.shape != () and np.shape(x) == ():
        return np.full(aval.shape, x, dtype=aval.dtype)
    return np.asarray(x, dtype=aval.dtype)


def _unify(x, y):
    """The aval both of two leaves become, or None when they cannot meet."""
    ax, ay = _leaf_aval(x), _leaf_aval(y)
    if ax == ay:
        return ax
    wx, wy = type(x) in _WEAK, type(y) in _WEAK
    if ax.shape == ay.shape or (wx and ax.shape == ()) or (wy and ay.shape == ()):
        shape = ay.shape if wx and ax.shape == () else ax.shape
        dt = np.result_type(x if wx else ax.dtype, y if wy else ay.dtype)
        try:
            return AVal(shape, dt)
        except TypeError:
            return None
    return None


def _zeros_like(value):
    return tree.tree_map(lambda x: np.zeros(_leaf_aval(x).shape, _leaf_aval(x).dtype), value)


# ---------------------------------------------------------------------------------------------
# if

def traced_if(pred, true_fn, false_fn, state, names, out_names, loc, shared=frozenset()):
    """One `cond` op for `if pred` with both branches traced; returns the `out_names` values.

    A traced input a branch changes in place (`y[0] = v` on an array from before the `if`)
    is updated in place after it, so that other names for it and views of it see the change
    as in numpy; a variable both branches leave bound to the same array from before the `if`
    stays bound to it. `shared`: the ids of the arrays of `state` that others may see
    (writes.shared_arrays): a variable bound to one of them on one path only is marked."""
    before = _NumpyContents(state)
    branch = f"branch of the `if`{_where(loc)}, whose condition is traced,"
    both = "both branches are traced, so the other one would see the change too"
    t_trace, explicit, t_ins, t_changed, t_outs = trace_branch(true_fn, state)
    before.check(f"the true {branch}", both)
    f_trace, _, f_ins, f_changed, f_outs = trace_branch(false_fn, state,
                                                         (t_outs, t_trace._keepalive))
    before.check(f"the false {branch}", both)
    # a traced scalar changed in place (`s += 1` on s = x[0]) is a new value, as numpy's
    # immutable scalars are: only arrays are updated in place after the `if`
    changed = sorted(j for j in t_changed | f_changed if explicit[j].ndim > 0)
    rebound = {id(explicit[j]) for j in t_changed | f_changed if explicit[j].ndim == 0}
    t_outer = {id(t): k for k, t in t_ins.items()}   # stand-in -> the id of its input
    results = [None] * len(out_names)
    f_outer = {id(t): k for k, t in f_ins.items()}
    kept = {}  # output index -> the traced input both branches leave it bound to
    mixed = {}  # output index -> id of the shared input it stays bound to on one path only
    dyn = []  # (index, treedef, true leaves, false leaves)
    for k, (name, a, b) in enumerate(zip(out_names, t_outs, f_outs)):
        key = t_outer.get(id(a))
        if key is not None and f_ins[key] is b and key not in rebound:
            kept[k] = key
            continue
        before = ({t_outer.get(id(a)), f_outer.get(id(b))} & set(shared)) - rebound - {None}
        if before:
            mixed[k] = before.pop()
        if a is not b and any(type(v) is np.ndarray and id(v) in shared for v in (a, b)):
            raise TracingError(_rebound_numpy(name, f"the `if`{_where(loc)} (whose condition "
                                                    f"is traced)"))
        ua, ub = isinstance(a, Undefined), isinstance(b, Undefined)
        if ua and ub:
            results[k] = a
            continue
        if (ua or ub) and name == RET_VALUE:  # the flag __ad_ret says which value is real
            a, b = (_zeros_like(b), b) if ua else (a, _zeros_like(a))
        elif ua or ub:
            which = "false" if ua else "true"
            results[k] = Undefined(name, f"is assigned only in the {which} branch of the `if`"
                                         f"{_where(loc)}, whose condition is traced, so it has "
                                         f"no value on the other path; assign it before the "
                                         f"`if` or in both branches")
            continue
        if _same_plain(a, b):
            results[k] = a
            continue
        la, ta = tree.flatten(a)
        lb, tb = tree.flatten(b)
        if ta != tb or not _is_dynamic(a) or not _is_dynamic(b):
            raise TracingError(
                f"variable '{name}' is {_describe(a)} after the true branch and {_describe(b)} "
                f"after the false branch of the `if`{_where(loc)}, whose condition is traced; "
                f"branches may only assign arrays or numbers of the same structure")
        dyn.append((k, ta, la, lb))
    if dyn or changed:
        t_res, f_res, out_avals = [], [], []
        for k, _, la, lb in dyn:
            for x, y in zip(la, lb):
                aval = _unify(x, y)
                if aval is None:
                    raise TracingError(
                        f"variable '{out_names[k]}' is {_describe(x)} after the true branch "
                        f"and {_describe(y)} after the false branch of the `if`{_where(loc)}, "
                        f"whose condition is traced; both branches must give it the same "
                        f"shape")
                t_res.append(_cast(x, aval))
                f_res.append(_cast(y, aval))
                out_avals.append(aval)
        for j in changed:   # the input's value after each branch
            t_res.append(t_ins[id(explicit[j])])
            f_res.append(f_ins[id(explicit[j])])
        outs = _bind_cond(pred, explicit, t_trace, t_res, f_trace, f_res)
        pos = 0
        for k, td, la, _ in dyn:
            results[k] = tree.unflatten(td, outs[pos:pos + len(la)])
            if k in mixed:
                before = next(x for x in explicit if id(x) == mixed[k])
                no_writes((results[k], root(before)), out_names[k],
                          f"the `if`{_where(loc)} (whose condition is traced)")
            pos += len(la)
        for j, new in zip(changed, outs[pos:]):
            update_in_place(explicit[j], new, f"a branch of the `if`{_where(loc)}, whose "
                                              f"condition is traced,")
    by_id = {id(x): x for x in tree.flatten(list(state))[0] if isinstance(x, Tracer)}
    for k, key in kept.items():
        results[k] = by_id[key]
    return tuple(results)


class _NumpyContents:
    """The contents of the numpy arrays in a traced `if`'s or loop's state, to catch a branch
    or body that changes one in place other than by `y[key] = v` / `y op= v` (np.copyto,
    y.fill, out=): that change happens once, while the code is traced (both branches are
    traced, one after the other; a loop's body once), not when and as often as it runs."""

    _COPY_MAX = 1 << 20   # bytes: smaller arrays are copied (put back on a refusal)

    def __init__(self, state):
        leaves, _ = tree.flatten(list(state))
        # weak references: writes.py counts the references to an array a branch writes into;
        # a digest, not a copy, of a large array (a captured data set costs no second copy)
        self._arrays = [(weakref.ref(a), _digest(a),
                         a.copy() if a.nbytes <= self._COPY_MAX else None)
                        for a in {id(v): v for v in leaves if type(v) is np.ndarray}.values()]

    def restore(self) -> tuple[bool, bool]:
        """Put back what changed (small arrays): (whether anything had, whether all of it
        is back)."""
        changed, back = False, True
        for ref, digest, old in self._arrays:
            a = ref()
            if a is not None and _digest(a) != digest:
                changed = True
                if old is not None:
                    a[...] = old
                else:
                    back = False
        return changed, back

    def check(self, where, why):
        changed, back = self.restore()
        if changed:
            raise TracingError(
                f"{where} changes a numpy array from before it in place other than by "
                f"`y[key] = v` or `y op= v` (np.copyto, y.fill, out=, ...), which happens "
                f"while the code is traced: {why}"
                f"{'' if back else ' (the array, a large one, keeps that change)'}; write "
                f"`y[...] = v` (or `y op= v`) instead, or make a new array "
                f"(y = np.where(mask, v, y))")


def _digest(a: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(a).reshape(-1).view(np.uint8),
                           digest_size=16).digest()


def _rebound_numpy(name, what):
    return (f"'{name}' is, after {what}, the numpy array it was bound to before on one path and "
            f"a new array on another, and other names or views refer to that numpy array, "
            f"which cannot follow the new one; bind '{name}' to a copy before the statement "
            f"({name} = {name}.copy()), or create the array from a traced value "
            f"(np.zeros_like(x, shape=...))")


def _bind_cond(pred, explicit, t_trace, t_res, f_trace, f_res):
    t_fn = t_trace.to_function("true_branch", t_res)
    f_fn = f_trace.to_function("false_branch", f_res)
    ne = len(explicit)
    t_cap, f_cap = t_fn.args[ne:], f_fn.args[ne:]

    def with_args(fn, before, after):  # branch args: (*explicit, *captured_true, *captured_false)
        pads_b = [Var(a.aval) for a in before]
        pads_a = [Var(a.aval) for a in after]
        return Function(fn.name, fn.args[:ne] + pads_b + fn.args[ne:] + pads_a, fn.consts,
                        fn.eqns, fn.results)

    return bind(cond_p, pred, *explicit, *t_trace.captured_outer, *f_trace.captured_outer,
                true=with_args(t_fn, [], f_cap), false=with_args(f_fn, t_cap, []))


# ---------------------------------------------------------------------------------------------
# while

class LoopStateError(CarryTypeError, TracingError):
    """A converted loop's variable changed in a way the loop op cannot carry (a TracingError,
    and a CarryTypeError so that while_loop's checks re-raise it)."""
    captured = True


class _Retry(Exception):
    """Raised from inside a loop body's trace: restart with `state[index] = value`."""

    def __init__(self, index, value):
        super().__init__(index)
        self.index, self.value = index, value


def traced_while(test_fn, body_fn, state, names, loc, shared=frozenset(), read=()):
    """while test_fn(*state): state = body_fn(*state), as one `while` op. `shared`: the ids
    of the arrays of `state` that others may see (writes.shared_arrays); `read`: the values
    the loop reads but does not assign."""
    state = list(state)
    shared = {i: v for i, v in enumerate(state) if id(v) in shared}
    before = _NumpyContents(state + list(read))
    del read
    for _ in range(4 * len(state) + 1):
        try:
            out = _while_op(test_fn, body_fn, state, names, loc, shared)
        except _Retry as r:
            before.restore()
            state[r.index] = r.value
            continue
        before.check(f"the body of the loop{_where(loc)}, whose condition is traced, is "
                     f"traced once, and", "it would run once, not once per pass")
        return out
    raise TracingError(f"the loop{_where(loc)}: its variables' types do not settle")


def _strong(value):
    """Python numbers as numpy values of numpy's default dtypes (a carry needs a dtype)."""
    return tree.tree_map(lambda x: np.asarray(x) if type(x) in _WEAK else x, value)


def _while_op(test_fn, body_fn, state, names, loc, shared):
    """The loop op. A variable whose array the body changes in place and leaves it bound
    to (`y[i] = v`) is, for a traced array, updated in place after the loop (other names
    and views of it see the change, as in numpy); a numpy array others see is refused."""
    dyn = [i for i, v in enumerate(state) if not isinstance(v, Undefined) and _is_dynamic(v)]
    in_place = {}  # index -> whether the body kept the variable bound to the array it changed
    unchanged = set()  # indices the body leaves bound to their array, unchanged
    init = [_strong(state[i]) for i in dyn]
    in_avals = [[_leaf_aval(x) for x in tree.flatten(v)[0]] for v in init]
    local = set()  # variables first bound inside the loop: no value after it

    def merge(carry):
        full = list(state)
        for i, v in zip(dyn, carry):
            full[i] = v
        return full

    def cond_fun(carry):
        p = test_fn(*merge(carry))
        if isinstance(p, Tracer):
            return as_pred(p, "while", loc)
        return np.bool_(bool(p))

    def body_fun(carry):
        starts = {i: (v, v._ir) for i, v in zip(dyn, carry) if isinstance(v, Tracer)}
        out = list(body_fn(*merge(carry)))
        in_place.clear()
        unchanged.clear()
        unchanged.update(i for i, (v, ir) in starts.items() if out[i] is v and v._ir is ir)
        for i, (v, ir) in starts.items():
            # a traced scalar changed in place (`s += x[i]`) is a new value, as numpy's
            # immutable scalars are (a 0-d numpy array is not one)
            if v._ir is not ir and (v.ndim > 0 or isinstance(state[i], np.ndarray)):
                in_place[i] = out[i] is v
                if i in shared and not (in_place[i] and isinstance(shared[i], Tracer)):
                    raise LoopStateError(str(refuse_loop_write(shared[i], names[i],
                                                               _where(loc))))
        new = []
        for i, (name, v) in enumerate(zip(names, out)):
            if i in dyn:
                new.append(_carried(i, name, v, in_avals[dyn.index(i)], state[i], loc))
            elif isinstance(state[i], Undefined):
                if isinstance(v, Undefined):
                    continue
                if name == RET_VALUE:  # bound by a `return` in the loop: carry it
                    raise _Retry(i, _zeros_like(v))
                local.add(i)
            elif not _same_plain(state[i], v):
                raise LoopStateError(
                    f"variable '{name}' is {_describe(state[i])} before the loop{_where(loc)} "
                    f"and {_describe(v)} after its body, but the loop's condition is traced, so "
                    f"it can only carry arrays and numbers; give it an array value before the "
                    f"loop")
        return tuple(new)

    reads = LoopReads([(i, state[i]) for i in dyn if isinstance(state[i], Tracer)])

    def seen_inside(captured):
        for indices in reads.sharing():   # each is carried on its own through the loop
            if any(i in in_place for i in indices):
                raise LoopStateError(
                    f"the loop{_where(loc)}, whose condition is traced, changes in place an "
                    f"array that its variables "
                    f"{', '.join(repr(names[i]) for i in indices)} all refer to (the same "
                    f"array, or views of one); a traced loop carries each variable on its own, "
                    f"so change it through one name only in the loop")
        for i in sorted(reads.read(captured)):
            if i in in_place:   # another name for it, or a view, read inside the loop
                raise LoopStateError(
                    f"the loop{_where(loc)}, whose condition is traced, changes the array "
                    f"'{names[i]}' in place (y[key] = v, y += v, np.add.at(y, ...), ...), "
                    f"and reads or writes it inside the loop through another name or a view "
                    f"of it taken before the loop, which would see its value from before the "
                    f"loop; use '{names[i]}' itself inside the loop (take the view there)")

    try:
        outs = _bind_while(cond_fun, body_fun, init, seen_inside)
    finally:
        reads.restore()
    full = merge(outs)
    for i, kept in in_place.items():
        if kept and isinstance(state[i], Tracer):
            update_in_place(state[i], full[i], f"the loop{_where(loc)}, whose condition is "
                                                f"traced,")
            full[i] = state[i]
    for i in dyn:
        if i in shared and type(state[i]) is np.ndarray and i not in unchanged:
            raise LoopStateError(_rebound_numpy(names[i], f"the loop{_where(loc)} (whose "
                                                          f"condition is traced)"))
        if i in unchanged and isinstance(state[i], Tracer):
            full[i] = state[i]      # the body leaves it bound to the same, unchanged array
        elif i not in in_place and i in shared and isinstance(state[i], Tracer):
            # bound to a new array after one pass or more, to the one from before after none
            no_writes((full[i], root(state[i])), names[i],
                      f"the loop{_where(loc)} (whose condition is traced)")
    for i in local:
        full[i] = Undefined(names[i], f"is assigned only inside the loop{_where(loc)}, whose "
                                      f"condition is traced, so it has no value after the loop; "
                                      f"assign it before the loop")
    return tuple(full)


def _bind_while(cond_fun, body_fun, init, seen_inside=None):
    """while_loop's op, bound even when no carry is traced: the test is (converted code only
    gets here on a traced test), so there is no plain-Python loop to fall back to.
    `seen_inside(values)`: given the outer traced values the test and body read."""
    leaves, in_tree = tree.flatten(tuple(init))
    cond_r, body_r = _while_regions(cond_fun, body_fun, leaves, in_tree)
    if seen_inside is not None:
        seen_inside(cond_r.captured + body_r.captured)
    outs = bind(while_p, *cond_r.captured, *body_r.captured, *leaves,
                cond=cond_r.consts_first(), body=body_r.consts_first(),
                n_cond_consts=len(cond_r.captured), n_body_consts=len(body_r.captured),
                record=False, stash=(), max_steps=config.max_loop_steps)
    return tree.unflatten(in_tree, outs)


def _carried(i, name, v, in_avals, before, loc):
    """The body's new value of carried variable `name`, cast to the carry's type, or a restart
    with a promoted initial value when the body widens it (Python would just rebind)."""
    if isinstance(v, Undefined) or not _is_dynamic(v):
        raise LoopStateError(f"variable '{name}' is {_describe(before)} before the loop"
                             f"{_where(loc)} and {_describe(v)} after its body")
    leaves, td = tree.flatten(v)
    _, td_in = tree.flatten(before)
    if td != td_in or len(leaves) != len(in_avals):
        raise LoopStateError(f"variable '{name}' changes structure in the loop{_where(loc)}: "
                             f"{_describe(before)} before, {_describe(v)} after the body")
    out, widened = [], False
    for x, a in zip(leaves, in_avals):
        ax = _leaf_aval(x)
        if ax == a:
            out.append(x)
            continue
        if type(x) in _WEAK and np.can_cast(np.result_type(a.dtype, x), a.dtype):
            out.append(_cast(x, a))  # a Python number fits the carry's dtype
            continue
        meet = _unify(x, np.zeros(a.shape, a.dtype)) if ax.shape == a.shape or \
            type(x) in _WEAK else None
        if meet is None or meet.shape != a.shape:
            raise LoopStateError(f"variable '{name}' is {a} before the loop{_where(loc)} and "
                                 f"{ax} after its body; a loop with a traced condition keeps "
                                 f"each variable's shape")
        if meet.dtype == a.dtype:  # the carry is already the wider type: the value fits
            out.append(_cast(x, a))
            continue
        widened = True
        out.append(x)
    if widened:  # restart with the initial value already of the wider dtype
        new_before = tree.unflatten(td_in, [
            _cast(b, _unify(x, np.zeros(a.shape, a.dtype)) or a)
            for b, x, a in zip(tree.flatten(before)[0], leaves, in_avals)])
        raise _Retry(i, new_before)
    return tree.unflatten(td, out)


__all__ = ["traced_if", "traced_while", "as_pred", "LoopStateError"]
