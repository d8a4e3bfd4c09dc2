"""The operators converted code calls (as `__ad.if_stmt(...)`, ...). Each decides at trace time:
on plain Python values (and tape Tensors, and numpy arrays) it does exactly what Python does;
on a traced condition or range bound it builds a `cond` / `while` op (regions.py).

State is passed as tuples of the current values of the variables a statement assigns, in the
order of `names`; a variable not bound yet is an `Undefined` marker, which raises a clear
error where it is used.
"""
from __future__ import annotations

import builtins
import operator

import numpy as np

from ..errors import TracingError
from ..trace import Tracer
from .regions import as_pred, traced_if, traced_while
from .undefined import NO_RETURN, Undefined
from .writes import (aug_name, aug_setitem, run_body, setitem, shared_arrays, write_call,
                     write_method, write_out)

slice = builtins.slice   # `a:b` in a rewritten `y[a:b] = v` (the user's `slice` may be shadowed)

__all__ = ["values", "if_stmt", "if_exp", "while_stmt", "for_stmt", "range_", "and_", "or_",
           "not_", "compare_chain", "return_value", "NO_RETURN", "Undefined", "TracedRange",
           "setitem", "aug_setitem", "aug_name", "write_call", "write_method",
           "write_out", "slice"]


def _traced(x) -> bool:
    return isinstance(x, Tracer)


def values(thunks, names):
    """The current value of each name (thunks read them), Undefined(name) for unbound ones."""
    out = []
    for thunk, name in zip(thunks, names):
        try:
            out.append(thunk())
        except NameError:
            out.append(Undefined(name))
    return tuple(out)


def return_value(v):
    return None if v is NO_RETURN else v


# ---------------------------------------------------------------------------------------------
# branches

def if_stmt(pred, true_fn, false_fn, state, names, out_names, loc):
    """if pred: <true_fn> else: <false_fn>; each takes `state` (values of `names`) and returns
    the values of `out_names`."""
    if _traced(pred):
        return traced_if(as_pred(pred, "if", loc), true_fn, false_fn, state, names, out_names,
                         loc, shared_arrays(state, state))
    return run_body(true_fn if pred else false_fn, state, state)


def if_exp(pred, true_fn, false_fn, state, names, loc):
    """true_value if pred else false_value, each a lambda over `state`."""
    if _traced(pred):
        return traced_if(as_pred(pred, "conditional expression", loc),
                         lambda *s: (true_fn(*s),), lambda *s: (false_fn(*s),), state, names,
                         ("<the value of the conditional expression>",), loc)[0]
    return run_body(true_fn if pred else false_fn, state, state)


# ---------------------------------------------------------------------------------------------
# boolean operators (lazy like Python's: later operands are thunks)

def and_(first, *rest):
    value = first
    for thunk in rest:
        if _traced(value):
            value = _combine(value, thunk(), np.logical_and)
        elif not value:
            return value
        else:
            value = thunk()
    return value


def or_(first, *rest):
    value = first
    for thunk in rest:
        if _traced(value):
            value = _combine(value, thunk(), np.logical_or)
        elif value:
            return value
        else:
            value = thunk()
    return value


def _combine(a, b, logical):
    """`a and b` / `a or b` with a traced `a`. On bool scalars this is the logical op (the
    value Python would give); other scalars select as Python does: a and b = b if a else a."""
    bool_b = isinstance(b, (bool, np.bool_)) or (_traced(b) and b.dtype == np.bool_)
    if a.shape == () and a.dtype == np.bool_ and bool_b:
        return logical(a, b)
    truth = as_pred(a, "`and`/`or`", None)
    return np.where(truth, b, a) if logical == np.logical_and else np.where(truth, a, b)


_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
            "==": operator.eq, "!=": operator.ne, "is": operator.is_,
            "is not": operator.is_not, "in": lambda a, b: a in b,
            "not in": lambda a, b: a not in b}


def compare_chain(left, ops, *thunks):
    """`left op0 b op1 c ...` as Python evaluates it (b, c, ... once each, lazily), with the
    links joined by `and_` (a traced link makes a logical_and)."""
    links = []
    prev = left

    def link(op, thunk):
        def value():
            nonlocal prev
            right = thunk()
            out = _COMPARE[op](prev, right)
            prev = right
            return out
        return value

    links = [link(op, th) for op, th in zip(ops, thunks)]
    return and_(links[0](), *links[1:])


def not_(x):
    if _traced(x):
        return np.logical_not(as_pred(x, "`not`", None))
    return not x


# ---------------------------------------------------------------------------------------------
# loops

def while_stmt(test_fn, body_fn, state, names, loc, read=()):
    """while test_fn(*state): state = body_fn(*state). Runs in Python while the test is a
    plain value; from the first traced test on, the rest of the loop is one `while` op.
    `read`: the values of the variables the loop reads but does not assign."""
    state = initial = tuple(state)
    while True:
        p = test_fn(*state)
        if _traced(p):
            return traced_while(test_fn, body_fn, state, names, loc,
                                shared_arrays(initial, state), read)
        if not p:
            return state
        state = tuple(run_body(body_fn, initial, state))


class TracedRange:
    """range(start, stop, step) with a traced bound: iterating it makes one loop op."""

    def __init__(self, start, stop, step):
        for v in (start, stop):
            if _traced(v) and (v.shape != () or v.dtype.kind not in "iu"):
                raise TypeError(f"range() bounds must be integer scalars, got a traced {v.aval}")
        if _traced(step):
            raise TracingError("range() with a traced step is not supported (the loop "
                               "direction must be known while tracing); make the step a "
                               "Python int")
        if int(step) == 0:
            raise ValueError("range() arg 3 must not be zero")
        self.start, self.stop, self.step = start, stop, int(step)


def range_(range_fn, *args):
    """`range(...)` in a converted `for`: Python's range unless a bound is traced."""
    if range_fn is not builtins.range or not any(_traced(a) for a in args):
        return range_fn(*args)
    if len(args) == 1:
        return TracedRange(0, args[0], 1)
    if len(args) in (2, 3):
        return TracedRange(*args[:2], args[2] if len(args) == 3 else 1)
    return range_fn(*args)  # Python's own error for a wrong number of arguments


def for_stmt(iterable, extra_test, body_fn, state, names, loc, read=()):
    """for item in iterable: state = body_fn(item, *state), stopping early when
    extra_test(*state) (the negated break/return flags) is false. `read`: the values of the
    variables the loop reads but does not assign."""
    state = initial = tuple(state)
    if isinstance(iterable, TracedRange):
        return _traced_for(iterable, extra_test, body_fn, state, names, loc,
                           shared_arrays(initial, state), read)
    for item in iterable:
        if extra_test is not None:
            go = extra_test(*state)
            if _traced(go):  # a break under a traced condition: later iterations run under cond
                state = traced_if(as_pred(go, "for", loc), lambda *s, item=item: body_fn(item, *s),
                                  lambda *s: s, state, names, names, loc)
                continue
            if not go:
                break
        state = tuple(run_body(body_fn, initial, state, item))
    return state


def _traced_for(rng, extra_test, body_fn, state, names, loc, shared, read=()):
    """A loop over a traced range: a `while` op over (index, *state)."""
    start = rng.start.astype(np.int64) if _traced(rng.start) else np.int64(int(rng.start))
    stop, step = rng.stop, rng.step

    def test(i, *s):
        more = i < stop if step > 0 else i > stop
        if extra_test is None:
            return more
        go = extra_test(*s)
        return np.logical_and(more, as_pred(go, "for", loc) if _traced(go) else bool(go))

    def body(i, *s):
        return (i + step,) + tuple(body_fn(i, *s))

    out = traced_while(test, body, (start,) + tuple(state), ("<the loop index>",) + tuple(names),
                       loc, shared, read)
    return out[1:]
