"""Tracing: run a Python function on `Tracer`s and record what it does as an IR Function.

A `Trace` is the recording context. Tracers carry it explicitly (`_adj_context`), so nested
traces (grad of grad, a jitted function called inside another) are told apart by `level`:
`bind` hands an operation to the innermost trace among its arguments, and that trace lifts
values of outer traces in as captured inputs.
"""
from __future__ import annotations

import threading

import numpy as np

from . import source
from .errors import TracingError
from .ir import AVal, Eqn, Function, Lit, Var, verify
from .numpy import ArrayOps
from .primitives import aval_of


_level_lock = threading.Lock()
_last_level = [0]  # levels only grow, so a trace made later (an inner one) is always higher


def _fresh_level(at_least: int = 0) -> int:
    with _level_lock:
        _last_level[0] = max(_last_level[0] + 1, at_least)
        return _last_level[0]


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

    # values in
    def new_arg(self, aval: AVal, hint: str | None = None) -> "Tracer":
        var = Var(aval, hint)
        self.args.append(var)
        return Tracer(self, var)

    def atom(self, x):
        """The IR operand for any value an operation received."""
        if isinstance(x, Tracer):
            if x._adj_context is self:
                return x.var
            if x._adj_context.level < self.level:
                return self._capture(x)
            raise TracingError(f"a traced value ({x.aval}) escaped from an inner trace; do not "
                               f"store traced values in globals or closures across calls")
        ctx = getattr(x, "_adj_context", None)
        if ctx is not None:  # a tape Tensor used inside a traced function: its value is a constant
            x = x.data
        if isinstance(x, (bool, int, float, np.generic)) or (isinstance(x, np.ndarray) and x.ndim == 0):
            arr = np.asarray(x)
            if arr.dtype == np.float16:
                arr = arr.astype(np.float32)
            return Lit(arr.item(), arr.dtype)
        return self._const(np.asarray(x))

    def _const(self, arr: np.ndarray) -> Var:
        # Keyed by the array the function used (kept alive, so its id stays unique): a captured
        # array used twice, or by the forward and again by its adjoint, is one constant.
        var = self._const_ids.get(id(arr))
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
        args = self.args + [v for v, _ in self.captured.values()]
        return verify(Function(name, args, self.consts, self.eqns, res))

    @property
    def captured_outer(self) -> list["Tracer"]:
        return [t for _, t in self.captured.values()]


class Tracer(ArrayOps):
    """A stand-in for a numpy array while a function is traced."""
    __slots__ = ("_adj_context", "var")

    def __init__(self, trace: Trace, var: Var):
        self._adj_context = trace
        self.var = var

    @property
    def aval(self) -> AVal:
        return self.var.aval

    @property
    def shape(self):
        return self.var.aval.shape

    @property
    def dtype(self):
        return self.var.aval.dtype

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
        raise self._control_flow_error("float()")

    def _static_int_error(self, what):
        return TracingError(
            f"{what} of a traced value ({self.aval}) needs its run-time value, which is not "
            f"known while tracing. If it is an argument used as a size, a shape or in range(), "
            f"mark it static: grad/jit(f, static_argnums=...). For a value-dependent choice use "
            f"np.where(cond, a, b) or autodiff_jit.cond; for a data-dependent loop, "
            f"autodiff_jit.fori_loop or autodiff_jit.while_loop.")

    def __int__(self):
        raise self._static_int_error("int()")

    def __index__(self):
        raise self._static_int_error("Use as a Python int (range(), a shape, an index)")

    def item(self):
        raise self._control_flow_error(".item()")

    def tolist(self):
        raise self._control_flow_error(".tolist()")

    def __array__(self, dtype=None, copy=None):
        raise TracingError(
            f"np.array()/np.asarray() of a traced value ({self.aval}) needs its run-time value, "
            f"which is not known while tracing (numpy's np.array asks each element for its "
            f"value and offers no hook for traced ones; np.mean([a, b]) and other functions "
            f"given a list convert it the same way). To build an array from traced values use "
            f"autodiff_jit.numpy.array([a, b]) (nested lists too), np.stack([a, b]) or "
            f"np.concatenate; for "
            f"a value-dependent choice use np.where(cond, a, b) or autodiff_jit.cond (loops: "
            f"autodiff_jit.while_loop); to read a number out, return it from the function.")

    def __setitem__(self, key, value):
        # x[key] = v records a pure update and rebinds this tracer to its result. Like numpy,
        # every name for this object sees the new value; unlike numpy, views taken earlier
        # (y = x[1:]) keep the old values.
        from .numpy import setitem
        new = setitem(self, key, value)
        if not isinstance(new, Tracer) or new._adj_context is not self._adj_context:
            raise TracingError("x[key] = v: the new value belongs to another trace")
        self.var = new.var


def max_level(values) -> int:
    lvl = 0
    for v in values:
        ctx = getattr(v, "_adj_context", None)
        if ctx is not None:
            lvl = max(lvl, ctx.level)
    return lvl


__all__ = ["Trace", "Tracer", "max_level", "aval_of"]
