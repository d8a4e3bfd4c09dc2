"""Tracing: run a Python function on `Tracer`s and record what it does as an IR Function.

A `Trace` is the recording context. Tracers carry it explicitly (`_adj_context`), so nested
traces (grad of grad, a jitted function called inside another) are told apart by `level`:
`bind` hands an operation to the innermost trace among its arguments, and that trace lifts
values of outer traces in as captured inputs.
"""
from __future__ import annotations

import operator
import threading

import numpy as np

from . import source
from .errors import TracerArrayConversionError, TracingError
from .ir import AVal, Eqn, Function, Lit, Var, verify
from .numpy import ArrayOps
from .primitives import aval_of


_level_lock = threading.Lock()
_last_level = [0]  # levels only grow, so a trace made later (an inner one) is always higher


def _fresh_level(at_least: int = 0) -> int:
    with _level_lock:
        _last_level[0] = max(_last_level[0] + 1, at_least)
        return _last_level[0]


_lifting = threading.local()   # .stack: the traces lifting captured arrays, outermost first


def lifting_traces() -> list:
    """This thread's traces that pass captured arrays in as hidden arguments (api pushes one
    while it traces the user's function)."""
    stack = getattr(_lifting, "stack", None)
    if stack is None:
        stack = _lifting.stack = []
    return stack


_BARRIER = object()   # on the lifting stack: traces made above it lift nothing


class no_lifting:
    """Traces made inside see captured arrays as constants (custom_vjp's closed fwd/bwd)."""

    def __enter__(self):
        lifting_traces().append(_BARRIER)

    def __exit__(self, *exc):
        lifting_traces().pop()


def _liftable_view(arr: np.ndarray) -> bool:
    return arr.ndim > 0 and arr.dtype.isnative and arr.dtype.kind in "fiub" and \
        arr.dtype != np.float16


def _same_bytes(arr: np.ndarray, frozen: np.ndarray) -> bool:
    return arr.shape == frozen.shape and arr.dtype == frozen.dtype and \
        arr.tobytes() == frozen.tobytes()


class Trace:
    """The recording context of one function being traced. `level` orders nested traces:
    by default a fresh level above every trace made before."""

    def __init__(self, level: int | None = None):
        self.level = _fresh_level() if level is None else _fresh_level(level)
        self.finished = False
        self.args: list[Var] = []
        self.consts: dict[Var, np.ndarray] = {}
        self._const_ids: dict[int, Var] = {}
        self._keepalive: list = []  # arrays whose id() keys _const_ids
        self.eqns: list[Eqn] = []
        self.captured: dict[int, tuple[Var, "Tracer"]] = {}
        # Captured arrays passed in as arguments rather than frozen (set by api): id -> the
        # array; `lifted` maps the id of each one used to (its argument Var, the array, its
        # value when first used)
        self.lift_ids: dict[int, np.ndarray] = {}
        self.lift_roots: dict[int, np.ndarray] = {}   # the arrays owning their memory
        self.lifted: dict[int, tuple[Var, np.ndarray, np.ndarray]] = {}
        self._lift_tracers: dict[Var, "Tracer"] = {}
        self.hidden: list[np.ndarray] = []   # to_function: the arrays its hidden args take

    # values in
    def new_arg(self, aval: AVal, hint: str | None = None) -> "Tracer":
        var = Var(aval, hint)
        self.args.append(var)
        return Tracer(self, var)

    def atom(self, x):
        """The IR operand for any value an operation received."""
        if isinstance(x, Tracer):
            if x._adj_context is self:
                return x._ir
            if x._adj_context.level < self.level:
                return self._capture(x)
            raise TracingError(f"a traced value ({x.aval}) escaped from an inner trace; do not "
                               f"store traced values in globals or closures across calls")
        if isinstance(x, Lit):  # a literal built on purpose (AD's ZeroCotangent)
            return x
        ctx = getattr(x, "_adj_context", None)
        if ctx is not None:  # a tape Tensor used inside a traced function: its value is a constant
            x = x.data
        if isinstance(x, (bool, int, float, np.generic)) or (isinstance(x, np.ndarray) and x.ndim == 0):
            arr = np.asarray(x)
            if arr.dtype == np.float16:
                arr = arr.astype(np.float32)
            return Lit(arr.item(), arr.dtype)
        if type(x) is np.ndarray and _lifting.__dict__.get("stack"):
            lifted = self._lift(x)
            if lifted is not None:
                return lifted
        return self._const(np.asarray(x))

    def _lift(self, arr: np.ndarray):
        """The hidden argument standing for a captured array (None: a constant), in this trace
        or, for a region traced inside the function (a loop body), in the function's trace."""
        for owner in reversed(_lifting.stack):
            if owner is _BARRIER:
                return None
            if id(arr) not in owner.lift_ids and arr.base is not None and \
                    id(arr.base) in owner.lift_roots and _liftable_view(arr):
                # a view of a captured array made while tracing (X.T, X[:, 0]): the view
                # itself is passed in, so it shows the array's contents at call time
                owner.lift_ids[id(arr)] = arr
            if id(arr) in owner.lift_ids:
                if owner is self:
                    return self._lifted_var(arr)
                if owner.level < self.level and not owner.finished:
                    var = owner._lifted_var(arr)
                    if var is None:
                        return None
                    outer = owner._lift_tracers.get(var)
                    if outer is None:
                        outer = owner._lift_tracers[var] = Tracer(owner, var)
                    return self._capture(outer)
                return None
        return None

    def _lifted_var(self, arr: np.ndarray):
        entry = self.lifted.get(id(arr))
        if entry is None:
            snapshot = np.array(arr, copy=True)
            entry = self.lifted[id(arr)] = (Var(AVal(arr.shape, arr.dtype), "captured"), arr,
                                            snapshot)
        elif not _same_bytes(arr, entry[2]):
            return None   # written while traced: this use is a constant of its current value
        return entry[0]

    def _const(self, arr: np.ndarray) -> Var:
        # Keyed by the array the function used (kept alive, so its id stays unique): a captured
        # array used twice, or by the forward and again by its adjoint, is one constant.
        var = self._const_ids.get(id(arr))
        if var is not None and arr.flags.writeable and not _same_bytes(arr, self.consts[var]):
            var = None   # written since its last use in this trace: that use keeps the old value
        if var is None:
            self._keepalive.append(arr)
            frozen = arr
            if arr.flags.writeable:  # the user may change theirs later; ours is a read-only copy
                frozen = np.array(arr, copy=True)
                frozen.flags.writeable = False
            var = Var(AVal(frozen.shape, frozen.dtype))
            self.consts[var] = frozen
            self._const_ids[id(arr)] = var
            self._const_ids[id(frozen)] = var
            self._keepalive.append(frozen)
        return var

    def _capture(self, outer: "Tracer") -> Var:
        entry = self.captured.get(id(outer))
        if entry is None:
            entry = (Var(outer.aval, "captured"), outer)
            self.captured[id(outer)] = entry
        return entry[0]

    # operations
    def process(self, prim, args, params):
        inputs = [self.atom(a) for a in args]
        out_avals = prim.abstract_eval([i.aval for i in inputs], params)
        outs = [Var(a) for a in out_avals]
        self.eqns.append(Eqn(prim, inputs, params, outs, source.here()))
        tracers = [Tracer(self, v) for v in outs]
        return tracers if prim.multiple_results else tracers[0]

    def to_function(self, name: str, results) -> Function:
        res = [self.atom(r) for r in results]
        self.finished = True
        hidden = []
        for var, arr, snapshot in self.lifted.values():
            if _same_bytes(arr, snapshot):
                hidden.append(var)
                self.hidden.append(arr)
            else:  # the function wrote into it while traced: a constant of its first value
                snapshot.flags.writeable = False
                self.consts[var] = snapshot
        args = self.args + hidden + [v for v, _ in self.captured.values()]
        return verify(Function(name, args, self.consts, self.eqns, res))

    @property
    def captured_outer(self) -> list["Tracer"]:
        return [t for _, t in self.captured.values()]


class Tracer(ArrayOps):
    """A stand-in for a numpy array while a function is traced.

    numpy's aliasing is kept: an operation numpy answers with a new array gives a new Tracer
    (so `y = x.copy(); y[0] = v` leaves x alone), and one numpy answers with a view (basic
    slices, reshape, transpose, ...) gives a view Tracer that remembers its parent and how it
    was derived: `y[k] = v` on a view writes through to the array it views, and a view read
    after its base was written is derived again. Whether an operation is a view is decided
    by numpy itself, on a layout stand-in (an uninitialised uint8 array of the root's shape).

    Internal attribute names start with `_` so that none shadows an ndarray method (x.var()).
    """
    __slots__ = ("_adj_context", "_own_ir", "_parent", "_np_op", "_seen", "_layout_arr",
                 "_no_writes")

    def __init__(self, trace: Trace, var: Var):
        self._adj_context = trace
        self._own_ir = var
        self._parent = None      # the Tracer this one is a view of
        self._np_op = None       # parent -> this view, as numpy calls (works on arrays too)
        self._seen = None        # the parent's value this view was derived from
        self._layout_arr = None  # numpy layout stand-in (made on demand)
        # why this array may not be written in place (a traced `if` left its name bound to the
        # array from before it on one path only, and other names see that one), or None
        self._no_writes = None

    @property
    def _ir(self) -> Var:
        """The IR value this tracer stands for now (a view re-derives after its base changed)."""
        parent = self._parent
        if parent is not None:
            current = parent._ir
            if current is not self._seen:
                self._own_ir = self._np_op(parent)._ir
                self._seen = current
        return self._own_ir

    def _alias(self) -> "Tracer":
        """A new array object with the same value (what numpy's copying operations return)."""
        return Tracer(self._adj_context, self._ir)

    def _layout(self) -> np.ndarray:
        if self._layout_arr is None:
            self._layout_arr = np.empty(self.shape, np.uint8)
        return self._layout_arr

    def _track_view(self, result, np_op):
        """`result` = np_op(self): a view of self if numpy makes np_op(array) a view."""
        if not isinstance(result, Tracer) or result._adj_context is not self._adj_context:
            return result
        if result is self:
            result = self._alias()
        try:
            layout = np_op(self._layout())
        except Exception:  # e.g. a key holding traced values: an advanced index, a copy
            return result
        if isinstance(layout, np.ndarray) and np.may_share_memory(layout, self._layout()):
            result._parent, result._np_op = self, np_op
            result._seen, result._layout_arr = self._ir, layout
        return result

    def _root_positions(self):
        """(root, flat positions in the root of this tracer's elements) for a view, else None."""
        if self._parent is None:
            return None
        root = self._parent
        while root._parent is not None:
            root = root._parent
        base, mine = root._layout(), self._layout_arr
        offset = mine.__array_interface__["data"][0] - base.__array_interface__["data"][0]
        flat = np.arange(max(base.size, 1), dtype=np.int64)
        positions = np.lib.stride_tricks.as_strided(
            flat[offset:], mine.shape, tuple(s * flat.itemsize for s in mine.strides))
        return root, np.array(positions), mine.flags.writeable

    @property
    def aval(self) -> AVal:
        return self._own_ir.aval

    @property
    def shape(self):
        return self._own_ir.aval.shape

    @shape.setter
    def shape(self, value):
        raise AttributeError(f"setting .shape (an in-place reshape) of a traced value is not "
                             f"supported; write `x = x.reshape({value!r})`")

    @property
    def dtype(self):
        return self._own_ir.aval.dtype

    def __repr__(self):
        return f"Tracer<{self.aval}>"

    def _control_flow_error(self, what):
        return TracingError(
            f"{what} of a traced value ({self.aval}) needs its run-time value, which is not "
            f"known while tracing. grad/jit rewrite Python `if`/`while`/`for` on traced values "
            f"into compiled branches and loops, but not here (an assert, bool(), code that is "
            f"not rewritten, or convert=False). Use "
            f"np.where(cond, a, b) or autodiff_jit.cond; instead of `while`, "
            f"autodiff_jit.while_loop; to read a number out, return it from the function.")

    def __bool__(self):
        raise self._control_flow_error("bool() (an `if`, `while`, `and`/`or` or assert)")

    def __float__(self):
        raise TracingError(f"{self._control_flow_error('float()')} To convert a traced value "
                           f"to floats, x.astype(float) (as jnp's).")

    def _static_int_error(self, what):
        return TracingError(
            f"{what} of a traced value ({self.aval}) needs its run-time value, which is not "
            f"known while tracing. If it is an argument used as a size, a shape or in range(), "
            f"mark it static: grad/jit(f, static_argnums=...). For a value-dependent choice use "
            f"np.where(cond, a, b) or autodiff_jit.cond; for a data-dependent loop, "
            f"autodiff_jit.fori_loop or autodiff_jit.while_loop.")

    def __int__(self):
        raise TracingError(f"{self._static_int_error('int()')} To convert a traced value to "
                           f"integers (e.g. indices), x.astype(int) or np.int64(x) (as jnp's; "
                           f"the gradient through an integer cast is zero).")

    def __index__(self):
        raise self._static_int_error("Use as a Python int (range(), a shape, an index)")

    def item(self):
        raise self._control_flow_error(".item()")

    def tolist(self):
        raise self._control_flow_error(".tolist()")

    def __array__(self, dtype=None, copy=None):
        raise TracerArrayConversionError(
            f"np.array()/np.asarray() of a traced value ({self.aval}) needs its run-time value, "
            f"which is not known while tracing. Lists of traced values work when numpy is "
            f"called through the numpy module while grad/jit trace (np.array([a, b]), "
            f"np.mean([a, b]), np.r_[a, b], np.int64(a)); this call reached numpy another "
            f"way (`from numpy import array`, a reference kept from before the trace, a ufunc "
            f"given a list, or code outside the traced call). Write np.array([a, b]) with "
            f"`import numpy as np`, autodiff_jit.numpy.array([a, b]) (nested lists too), "
            f"np.stack([a, b]) or np.concatenate; for a value-dependent choice use "
            f"np.where(cond, a, b) or autodiff_jit.cond (loops: autodiff_jit.while_loop); to "
            f"read a number out, return it from the function.")

    # x += v and friends are in place in numpy: every name for x, and every view of it, sees
    # the new value (a plain `x = x + v` would leave them the old one)
    def _check_writable(self):
        root = self
        while root._parent is not None:
            root = root._parent
        for t in (self, root):
            if t._no_writes is not None:
                raise TracingError(t._no_writes)

    def _inplace(self, op, other):
        if self.shape == () and self._parent is None:
            # a 0-d value that views nothing stands for a numpy scalar (x[0], np.sum(x)),
            # which is immutable: s += v rebinds s to s + v, and other names keep the old one
            return op(self, other)
        self._check_writable()
        new = op(self, other)
        if new.dtype != self.dtype and not np.can_cast(new.dtype, self.dtype, "same_kind"):
            raise TypeError(f"Cannot cast ufunc output from dtype('{new.dtype}') to "
                            f"dtype('{self.dtype}') with casting rule 'same_kind' (numpy's "
                            f"in-place rule); write x = x {op.__name__} v instead")
        if self._parent is not None:
            self[...] = new
        else:
            from .primitives import elementwise as E
            self._own_ir = E.cast(new, self.dtype)._ir
        return self

    def __iadd__(self, o): return self._inplace(operator.add, o)
    def __isub__(self, o): return self._inplace(operator.sub, o)
    def __imul__(self, o): return self._inplace(operator.mul, o)
    def __itruediv__(self, o): return self._inplace(operator.truediv, o)
    def __ipow__(self, o): return self._inplace(operator.pow, o)
    def __imatmul__(self, o): return self._inplace(operator.matmul, o)
    def __iand__(self, o): return self._inplace(operator.and_, o)
    def __ior__(self, o): return self._inplace(operator.or_, o)
    def __ixor__(self, o): return self._inplace(operator.xor, o)

    def __setitem__(self, key, value):
        # x[key] = v records a pure update and rebinds this tracer (every name for it sees the
        # new value, as in numpy); on a view it updates the root array the view looks into,
        # and every view of that root is derived again when next read
        from .numpy import setitem, setitem_positions
        self._check_writable()
        view = self._root_positions()
        if view is None:
            new = setitem(self, key, value)
            target = self
        else:
            target, positions, writeable = view
            if not writeable:
                raise ValueError("assignment destination is read-only")
            if any(isinstance(k, Tracer) for k in (key if isinstance(key, tuple) else (key,))):
                # a traced key: the view's new value, written back over the whole view
                new = setitem_positions(target, positions, setitem(self, key, value))
            else:
                new = setitem_positions(target, positions[key], value)
        if not isinstance(new, Tracer) or new._adj_context is not target._adj_context:
            raise TracingError("x[key] = v: the new value belongs to another trace")
        target._own_ir = new._ir


def max_level(values) -> int:
    lvl = 0
    for v in values:
        ctx = getattr(v, "_adj_context", None)
        if ctx is not None:
            lvl = max(lvl, ctx.level)
    return lvl


__all__ = ["Trace", "Tracer", "max_level", "aval_of", "no_lifting"]
