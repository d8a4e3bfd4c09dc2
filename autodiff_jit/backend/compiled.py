"""`compile_function(fn) -> CompiledFunction`: lower, compile once, call fast.

Call path: when every input and output is float32/float64 (the common case), the module gets a
small 'packed' entry (void entry(void** ins, void** outs)) called by callpath's *generic*
METH_FASTCALL wrapper (compiled once per process, driven by a per-function descriptor: it checks
dtype/shape/contiguity of each ndarray and allocates outputs with PyArray_New); anything its
checks reject goes through callpath's Python fallback, which makes inputs contiguous. Otherwise
(int/bool arrays) a ctypes call passes data pointers.

Intermediates: see lower.py. A large arena is one numpy buffer per thread (threading.local), so
concurrent calls never share scratch memory.
"""
from __future__ import annotations

import ctypes
import itertools
import threading
import warnings

import numpy as np

from ..ir import Function
from . import callpath, engine
from .lower import LoweringError, lower_function

_counter = itertools.count()
_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))


class CompiledFunction:
    """Native code for one IR Function: `exe(list_of_arrays) -> list_of_arrays`."""

    def __init__(self, fn: Function, *, transform_ir=None, method: str = "auto"):
        self.fn = fn
        name = f"adj_{_safe(fn.name)}_{next(_counter)}"
        low = lower_function(fn, name)
        self.lowered = low
        self._keepalive = low.keepalive
        self.arena_words = (low.arena_bytes + 7) // 8 if low.arena_arg else 0
        in_avals = list(low.in_avals) + ([_ArenaAval(self.arena_words)] if low.arena_arg else [])
        all_float = all(a.dtype in _FLOATS for a in list(low.in_avals) + list(low.out_avals))
        if method == "auto":
            method = "capi" if all_float and callpath.capi_available() else "ctypes"
        if method == "capi" and not all_float:
            method = "ctypes"
        self.method = method
        packed = None
        if method == "capi":
            # 0-d values cross as scalars: Python/numpy floats in, numpy scalars out.
            self.sig = callpath.EntrySignature(
                inputs=tuple(_arg_spec(a) for a in in_avals),
                outputs=tuple(_arg_spec(a) for a in low.out_avals),
                name=fn.name, abi="packed")
            entry_fn = low.module.globals[low.entry]
            packed = callpath.add_packed_entry(low.module, entry_fn, len(in_avals),
                                               name + "_packed")
        self._text = str(low.module)
        text = transform_ir(self._text) if transform_ir else self._text
        names = [low.entry] + ([packed] if packed else [])
        self._mod, addrs = engine.compile_module(text, names, loop_unrolling=False)
        self.address = addrs[low.entry]
        if method == "capi":
            self._native = callpath.wrap_packed(addrs[packed], self.sig)
        else:
            self._native = _ctypes_caller(self.address, low, self.arena_words)
        self._local = threading.local()
        self._call = self._make_call()

    # -- calling -----------------------------------------------------------------------------
    def _arena(self):
        a = getattr(self._local, "arena", None)
        if a is None:
            a = self._local.arena = np.empty(self.arena_words, np.float64)
        return a

    def _make_call(self):
        native = self._native
        plan = self.lowered.result_plan
        n_out = len(self.lowered.out_avals)
        arena = self.arena_words > 0 and self.method == "capi"
        simple = all(p[0] == "out" and p[1] == j for j, p in enumerate(plan)) and n_out == len(plan)
        get_arena = self._arena
        # call_raw(*args): positional arguments straight to native code; returns the single
        # result, or a tuple of results. The API's fast path calls it directly.
        self.call_raw = None
        if simple and self.method == "capi":
            self.call_raw = (lambda *a: native(*a, get_arena())) if arena else native
        if simple and n_out == 1 and not arena:
            return lambda arrays: [native(*arrays)]
        if simple and n_out > 1 and not arena:
            return lambda arrays: list(native(*arrays))

        def call(arrays):
            outs = native(*arrays, get_arena()) if arena else native(*arrays)
            if n_out == 1:
                outs = (outs,)
            res, used = [], set()
            for p in plan:
                k = p[0]
                if k == "out":
                    o = outs[p[1]]
                    res.append(o if p[1] not in used else o.copy())
                    used.add(p[1])
                elif k == "arg":
                    res.append(np.array(arrays[p[1]], copy=True))
                else:
                    res.append(p[1].copy())
            return res
        return call

    def __call__(self, arrays):
        return self._call(arrays)

    # -- inspection --------------------------------------------------------------------------
    def llvm_ir(self, optimized: bool = False) -> str:
        """The LLVM IR module as generated (or after the O3 pipeline with optimized=True)."""
        return str(self._mod) if optimized else self._text

    def asm(self) -> str:
        return engine.assembly(self._mod)

    def __repr__(self):
        return f"<CompiledFunction {self.fn.name} via {self.method}>"


def _arg_spec(aval):
    return callpath.scalar(aval.dtype) if aval.shape == () else callpath.array(aval.shape, aval.dtype)


class _ArenaAval:
    def __init__(self, words):
        self.shape = (words,)
        self.dtype = np.dtype(np.float64)


def _safe(name):
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)[:40]


def _ctypes_caller(address, low, arena_words):
    n_in = len(low.in_avals)
    n_args = n_in + (1 if low.arena_arg else 0) + len(low.out_avals)
    proto = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * n_args))
    cfn = proto(address)
    in_avals = low.in_avals
    out_avals = low.out_avals
    local = threading.local()

    def native(*arrays):
        if len(arrays) != n_in:
            raise TypeError(f"expected {n_in} arrays, got {len(arrays)}")
        keep = []
        ptrs = []
        for x, a in zip(arrays, in_avals):
            x = np.asarray(x, dtype=a.dtype, order="C")
            if x.shape != a.shape:
                raise TypeError(f"argument of shape {x.shape}, expected {a.shape}")
            keep.append(x)
            ptrs.append(x.ctypes.data)
        if low.arena_arg:
            ar = getattr(local, "arena", None)
            if ar is None:
                ar = local.arena = np.empty(arena_words, np.float64)
            ptrs.append(ar.ctypes.data)
        outs = [np.empty(a.shape, a.dtype) for a in out_avals]
        ptrs += [o.ctypes.data for o in outs]
        cfn(*ptrs)
        return outs[0] if len(outs) == 1 else tuple(outs)
    return native


def compile_function(fn: Function, **options):
    """Compile `fn`; if some primitive has no LLVM emitter yet, warn and run the interpreter."""
    try:
        return CompiledFunction(fn, **options)
    except (LoweringError, NotImplementedError) as exc:
        warnings.warn(f"autodiff_jit: falling back to the interpreter for {fn.name}: {exc}",
                      RuntimeWarning, stacklevel=2)
        from ..api import _Interpreted
        return _Interpreted(fn)
