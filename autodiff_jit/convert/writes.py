"""`y[key] = v` in converted code, where `y` is a plain numpy array and `v` is traced (or a
tape Tensor that requires grad).

numpy cannot hold a traced value (`y = np.zeros(3); y[0] = x[1]` raises "setting an array
element with a sequence"), so the rewrite turns the statement into `y = __ad.setitem(v, y,
key)`: when the value is traced, `y` is replaced by a traced copy of its current contents,
and the write is recorded on that.

Replacing the array is only right when nothing else can see it: a view (`r = y[:2]`), another
name, a list or a global holding the same array would keep the old contents and give wrong
results. So the array is replaced only when it owns its data and the only references to it
are the converted function's own variable and the loop and branch state the runtime passes
around (counted exactly, by reference count); otherwise the write is refused with the fix.

Both branches of a traced `if` are traced on the same arrays, so there even a plain write
(`y[0] = 1.0`, `y += 1.0`: aug_name) into an array from before the `if` replaces it by a copy
under the same rule. shared_arrays tells traced loops and branches (regions.py) which arrays
of their state something else may see.

numpy's functions that write into their first argument, as statements (`np.add.at(y, i, v)`,
np.put, np.put_along_axis, np.putmask, np.place, np.copyto, np.fill_diagonal), the methods
`y.fill(v)` and `y.put(i, v)`, and a statement `f(..., out=y)` are rewritten the same way
(`y = __ad.write_call(np.add.at, y, __ad.call, i, v)`: write_call, write_method, write_out)
and follow the same rule.
"""
from __future__ import annotations

import operator
import sys
import threading

import numpy as np

from ..errors import ArrayConversion, TracingError
from ..numpy.indexing import count_free_shape
from ..primitives import shape as S
from ..trace import Tracer

_held = threading.local()      # .levels: (initial, containers, traced) of the bodies now running


def run_body(fn, initial, state, *lead, held=(), traced=False):
    """fn(*lead, *state) for a loop or branch body. `initial` is the state the statement
    started from: the values of the enclosing function's variables, which cannot change while
    the body runs. While it runs, the references to an array that those variables, `initial`,
    `state`, the call's argument tuple and the containers in `held` hold are known to be the
    runtime's own. `traced`: the body is a branch of a traced `if`, traced whichever way the
    condition goes, so it must not change the arrays of `initial` in place (see _promoted)."""
    stack = getattr(_held, "levels", None)
    if stack is None:
        stack = _held.levels = []
    args = lead + tuple(state)
    containers = {id(t): t for t in (initial, state, args) + tuple(held)}
    stack.append((initial, tuple(containers.values()), traced))
    try:
        return fn(*args)
    finally:
        stack.pop()


def _runtime_refs(target) -> int:
    """References to `target` that running loops and branches hold (see run_body)."""
    n = 0
    for initial, containers, _ in getattr(_held, "levels", ()):
        n += sum(v is target for v in initial)                  # the enclosing variables
        n += sum(v is target for t in containers for v in t)    # the containers themselves
    return n


def _before_traced_branch(target) -> bool:
    """Whether `target` is an array from before a traced `if` whose branch is running: the
    other branch is traced on the same array, so this one must not change it."""
    return any(traced and any(v is target for v in initial)
               for initial, _, traced in getattr(_held, "levels", ()))


def _refcount(target) -> int:
    return sys.getrefcount(target)


def _probe(value, target, key) -> int:
    return _refcount(target) - _runtime_refs(target)   # the frames of setitem(value, target, key)


def _call_probe(fn, target, run, *args, **kwargs) -> int:
    return _refcount(target) - _runtime_refs(target)   # the frames of write_call, write_out


def _calibrate(probe) -> tuple[int, bool]:
    """(references to `y` inside `probe`'s function (setitem, write_call) when the caller's
    variable is all that holds it, whether loop and branch bodies hold exactly the
    references run_body counts). Measured, so that they hold on every Python version; where
    the second does not, writes inside loops and branches are refused rather than risked."""
    a = np.empty(0)
    base = probe(None, a, None)
    state = (a,)
    in_body = run_body(lambda a: probe(None, a, None), state, state)
    in_loop = run_body(lambda i, a: probe(None, a, None), state, (a,), 0)
    in_branch = run_body(lambda a: probe(None, a, None), state, tuple([a]), held=((a,),),
                         traced=True)
    return base, in_body == base == in_loop == in_branch


_BASE_REFS, _BODIES_COUNTED = _calibrate(_probe)
_CALL_BASE_REFS, _CALL_BODIES_COUNTED = _calibrate(_call_probe)


_ARRAY_TYPES: dict = {}     # tape mode's Tensor -> how to make one of a numpy array


def register_array_type(cls, from_numpy):
    """Let values of `cls` that require grad (tape Tensors) replace a numpy array they are
    written into, as traced values do; `from_numpy(array)` makes the replacement."""
    _ARRAY_TYPES[cls] = from_numpy


def _first_traced(value):
    """The first traced value (or Tensor that requires grad) in `value`, or None."""
    if isinstance(value, Tracer):
        return value if hasattr(value._adj_context, "eqns") else None
    if type(value) in _ARRAY_TYPES:
        return value if value.requires_grad else None
    if isinstance(value, (list, tuple)):
        for v in value:
            t = _first_traced(v)
            if t is not None:
                return t
    return None


_IN_BRANCH = "a branch of an `if` whose condition is traced"
_IN_LOOP = "a loop whose condition is traced"


def _refuse(why, context=None, call=None):
    """The refusal of a write into an array others see; `context`: where a write of a plain
    value is refused too (_IN_BRANCH, _IN_LOOP); `call`: the function writing (write_call),
    when it is not a `y[key] = v` statement."""
    if call is not None:
        what = (f"{call}, in {context}, writes into a numpy array from before it" if context
                else f"{call} writes a traced value into a numpy array")
    else:
        what = (f"y[key] = v (or y += v, np.add.at(y, ...), f(..., out=y), ...), in "
                f"{context}, writes into a numpy array from before it" if context
                else "y[key] = v writes a traced value into a numpy array")
    return TracingError(
        f"{what}, and {why}, so it cannot be replaced by a "
        f"{'traced ' if context is None or context.startswith(_IN_LOOP) else ''}copy without changing what other "
        f"references to it see. Create "
        f"the array from a traced value instead: np.zeros_like(x, shape=...) (or ones_like, "
        f"full_like), or build the result with np.stack/np.concatenate/np.where.")


_SHARED = "another name, a view of it, or a container still refers to it"
_A_VIEW = "it is a view of another array (or of a buffer)"


def refuse_loop_write(array, name, where=""):
    """The error for a traced loop (at `where`) writing into `array`, one of shared_arrays,
    bound to `name` before the loop."""
    if isinstance(array, Tracer):
        return TracingError(
            f"the loop{where}, whose condition is traced, changes the array '{name}' in place "
            f"(y[key] = v, y += v, np.add.at(y, ...), ...) and then binds '{name}' to another "
            f"array; other names for the array from before the loop, or views of it, would "
            f"see the first pass's changes only, which a traced loop cannot give. Write into "
            f"a copy (start the body with {name} = {name}.copy()), or change it in place only")
    return _refuse(_A_VIEW if array.base is not None else _SHARED, _IN_LOOP + where)


def _outside_refs(a, initial, state) -> int:
    """References to `a` beyond the enclosing variables (`initial`), `state` and running
    loops and branches; called as shared_arrays and _calibrate do."""
    refs = _refcount(a)
    containers = (initial,) if state is initial else (initial, state)
    return refs - sum(v is a for v in initial) - sum(v is a for t in containers for v in t) \
        - _runtime_refs(a)


def shared_arrays(initial, state) -> set:
    """ids of the arrays (numpy or traced) in `state` (a loop's variables, `initial` their
    values where the statement began) that something else may see: a view, or an array
    another name, a view or a container refers to. A traced loop carries a traced copy of
    each, so it must not write into a numpy one of these (other references would keep the
    old contents), nor write into a traced one and then rebind its name (they would see the
    first pass's writes only)."""
    out = set()
    for a in state:
        if (type(a) is np.ndarray and a.base is not None) or \
                (isinstance(a, Tracer) and a._parent is not None):
            out.add(id(a))
        elif (type(a) is np.ndarray or isinstance(a, Tracer)) and (
                sum(v is a for v in state) > 1 or     # two of the variables hold it
                _outside_refs(a, initial, state) > _LOOP_REFS):
            out.add(id(a))
    return out


def _loop_refs_calibration() -> int:
    a = np.empty(0)
    state = (a,)
    for v in state:
        return _outside_refs(v, state, state)


_LOOP_REFS = _loop_refs_calibration()


def _traced_copy(target: np.ndarray, like):
    """The array's current contents as a value of `like`'s trace (a constant there), or as a
    Tensor that does not require grad."""
    if type(like) in _ARRAY_TYPES:
        return _ARRAY_TYPES[type(like)](target.copy())
    return like._adj_context.process(S.broadcast_to_p, (target.copy(),),
                                     {"shape": target.shape})


def _promoted(target, value, refs, key=None, call=None):
    """`target` itself, or a traced copy of it when a traced value is written into it (or at
    a traced key: `y[x > 0] = 1.0`), or a plain copy when a plain value is written into an
    array from before a traced `if` (both branches are traced on that array: writing it in
    place would show one branch's writes to the other, and after the `if`, on both paths)."""
    if type(target) is not np.ndarray:
        return target
    like = _first_traced(value)
    if like is None:
        like = _first_traced(key if isinstance(key, tuple) else (key,))
    in_branch = like is None and _before_traced_branch(target)
    if like is None and not in_branch:
        return target
    context = _IN_BRANCH if in_branch else None
    if target.base is not None:
        raise _refuse(_A_VIEW, context, call)
    held = _runtime_refs(target)
    if refs > _BASE_REFS + held or (held and not _BODIES_COUNTED):
        raise _refuse(_SHARED, context, call)
    return target.copy() if in_branch else _traced_copy(target, like)


def setitem(value, target, key):
    """`target[key] = value` (arguments in Python's evaluation order); returns the target,
    which is a new traced array when a traced value went into a numpy array."""
    refs = _refcount(target)    # first, as _probe does: an argument list being built holds one
    target = _promoted(target, value, refs, key)
    if type(target) in _ARRAY_TYPES and _first_traced(value) is not None and \
            isinstance(value, (list, tuple)):
        value = np.array(value)     # a list of Tensors (routed: numpy/lists.py)
    target[key] = value
    return target


_INPLACE = {"+=": operator.iadd, "-=": operator.isub, "*=": operator.imul,
            "/=": operator.itruediv, "//=": operator.ifloordiv, "%=": operator.imod,
            "**=": operator.ipow, "@=": operator.imatmul, "&=": operator.iand,
            "|=": operator.ior, "^=": operator.ixor, "<<=": operator.ilshift,
            ">>=": operator.irshift}


def aug_setitem(target, key, op, value_fn):
    """`target[key] op= value`: read, combine in place, write back, as Python does."""
    refs = _refcount(target)
    if type(target) is np.ndarray and \
            _first_traced(key if isinstance(key, tuple) else (key,)) is not None:
        target = _promoted(target, None, refs, key)     # numpy cannot even read at a traced key
    mask = key[0] if isinstance(key, tuple) and len(key) == 1 else key
    if isinstance(target, Tracer) and isinstance(mask, Tracer) and mask.dtype == np.bool_:
        return _aug_at_traced_mask(target, mask, op, value_fn())
    current = target[key]
    value = value_fn()
    promoted = _promoted(target, value, refs, key)
    if promoted is not target:
        target, current = promoted, promoted[key]
    target[key] = _INPLACE[op](current, value)
    return target


def aug_name(target, op, value):
    """`y op= v` on a name, in converted code: what Python does (numpy arrays change in
    place), except that an array from before a traced `if` is copied first (see _promoted);
    a traced value into a numpy array gets numpy's `out=` error, as without the rewrite."""
    refs = _refcount(target)
    if type(target) is np.ndarray and _before_traced_branch(target):
        target = _promoted(target, None, refs)
    return _INPLACE[op](target, value)


def _is_numpy(fn) -> bool:
    """Whether `fn` is one of numpy's functions, ufuncs or ufunc methods (numpy/lists.py's
    routed wrappers answer as the function they wrap)."""
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, np.ufunc) or isinstance(fn, np.ufunc):
        return True
    module = getattr(fn, "__module__", None) or ""
    return module == "numpy" or module.startswith("numpy.")


_FIRST_ARG_WRITERS = (np.put, np.put_along_axis, np.putmask, np.place, np.copyto,
                      np.fill_diagonal)


def _writer_name(fn):
    """'np.add.at', 'np.put', ... when fn is one of numpy's functions that write into their
    first argument; None otherwise."""
    for f in (fn, getattr(fn, "__wrapped__", None)):    # a routed wrapper keeps numpy's
        owner = getattr(f, "__self__", None)
        if isinstance(owner, np.ufunc) and getattr(f, "__name__", None) == "at":
            return f"np.{owner.__name__}.at"
        if any(f is w for w in _FIRST_ARG_WRITERS):
            return f"np.{f.__name__}"
    return None


def _promoted_for_call(target, args, kwargs, refs, call):
    """`target` (an array the call `call` writes into) or its traced (or plain: _promoted)
    copy, by setitem's rule; `refs`: its reference count in write_call / write_out, less
    the references `args` and `kwargs` hold."""
    refs -= sum(v is target for v in args) + sum(v is target for v in kwargs.values())
    refs += _BASE_REFS - _CALL_BASE_REFS    # as _promoted counts them (setitem's frames)
    if _runtime_refs(target) and not _CALL_BODIES_COUNTED:
        refs = sys.maxsize      # refused rather than risked (see _calibrate)
    return _promoted(target, (args, tuple(kwargs.values())), refs, call=call)


def _as_numpy(values):
    """values with each tape Tensor (one that does not require grad: nothing was promoted)
    as its numpy array: numpy itself would dispatch to the Tensor's __array_function__,
    whose implementations cannot write into a numpy array; for `y[key] = t` numpy takes
    the Tensor's values, and so does this."""
    return [np.asarray(v) if type(v) in _ARRAY_TYPES else v for v in values]


def write_call(fn, target, run, *args, **kwargs):
    """The statement `fn(target, *args, **kwargs)`; returns the target, or, when fn is one
    of numpy's functions that write into their first argument (np.add.at, np.put, ...) and
    a traced value goes into a numpy array that nothing else sees, the traced copy the
    write went into (setitem's rule, and its refusal otherwise). Any other fn is called as
    `run(fn, ...)`: as the converted code calls functions (core.call, core.call_writes)."""
    refs = _refcount(target)    # first, as _call_probe does
    name = _writer_name(fn)
    if name is None:
        run(fn, target, *args, **kwargs)
        return target
    if type(target) is np.ndarray:
        target = _promoted_for_call(target, args, kwargs, refs, f"{name}(y, ...)")
        if type(target) is np.ndarray and _ARRAY_TYPES:
            args, kwargs = _as_numpy(args), dict(zip(kwargs, _as_numpy(kwargs.values())))
    fn(target, *args, **kwargs)
    return target


def write_method(method, target, run, *args, **kwargs):
    """The statement `target.method(*args, **kwargs)`: for a numpy array's .fill / .put, as
    write_call; for anything else `run(target.method, ...)`, as converted code calls it."""
    refs = _refcount(target)    # first, as _call_probe does
    if type(target) is not np.ndarray:
        run(getattr(target, method), *args, **kwargs)
        return target
    target = _promoted_for_call(target, args, kwargs, refs, f"y.{method}(...)")
    if type(target) is np.ndarray and _ARRAY_TYPES:
        args, kwargs = _as_numpy(args), dict(zip(kwargs, _as_numpy(kwargs.values())))
    getattr(target, method)(*args, **kwargs)
    return target


def write_out(fn, target, run, *args, **kwargs):
    """The statement `fn(*args, out=target, **kwargs)`: as write_call when fn is one of
    numpy's (the output a traced copy when a traced result goes into a numpy array nothing
    else sees; an argument that is the output itself reads the copy: the same values),
    `run(fn, ...)` otherwise."""
    refs = _refcount(target)    # first, as _call_probe does
    if not _is_numpy(fn):
        run(fn, *args, out=target, **kwargs)
        return target
    if type(target) is np.ndarray:
        new = _promoted_for_call(target, args, kwargs, refs,
                                 f"np.{getattr(fn, '__name__', '')}(..., out=y)")
        if new is not target:
            args = tuple(new if a is target else a for a in args)
            target = new
        elif _ARRAY_TYPES:
            args, kwargs = _as_numpy(args), dict(zip(kwargs, _as_numpy(kwargs.values())))
    fn(*args, out=target, **kwargs)
    return target


def _aug_at_traced_mask(target, mask, op, value):
    """`y[mask] op= v` for a traced mask: numpy reads y[mask] first, whose length is not known
    while tracing; when v does not depend on it (a scalar, or one value per selected row) it
    is the same as combining everywhere and keeping the combined values where the mask is
    True. The in-place op keeps numpy's casting check; the write through `...` keeps views."""
    rest = target.shape[mask.ndim:]
    vshape = count_free_shape(np.shape(value), rest)
    if vshape is None:
        raise NotImplementedError(
            f"y[mask] {op} v with a traced mask needs a v that does not depend on how many "
            f"elements the mask selects: a scalar, or one value per selected element of shape "
            f"{rest} (got shape {np.shape(value)}); otherwise write y = np.where(mask, ..., y)")
    value = np.reshape(value, (1,) * mask.ndim + vshape) if vshape else value
    combined = _INPLACE[op](target.copy(), value)
    target[...] = np.where(np.reshape(mask, mask.shape + (1,) * len(rest)), combined, target)
    return target


def explain_numpy_write(exc):
    """numpy's own error for a traced value written into a numpy array (`buf[0] = x[0]` on a
    global, a view or an array the rewrite does not reach) explained, or None."""
    cause = exc.__cause__ or exc.__context__
    if not (isinstance(exc, ValueError) and "setting an array element" in str(exc) and
            isinstance(cause, (TracingError, ArrayConversion))):
        return None
    err = TracingError(
        "y[key] = v writes a traced value into a numpy array, which cannot hold one. Inside "
        "grad/jit, `y = np.zeros(n); y[0] = v` works when y is the function's own local array "
        "(no view of it or other name for it); here it is not (a global, a captured or "
        "argument array, a view, or conversion is off). Create the array from a traced value "
        "instead: np.zeros_like(x, shape=...) (or ones_like, full_like), or build the result "
        "with np.stack/np.concatenate/np.where.")
    err.__cause__ = exc
    return err.with_traceback(exc.__traceback__)   # so source.locate finds the user's line


__all__ = ["explain_numpy_write", "setitem", "aug_setitem", "aug_name", "write_call",
           "write_method", "write_out", "run_body", "register_array_type", "shared_arrays",
           "refuse_loop_write"]
