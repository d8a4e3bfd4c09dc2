"""`compile_function(fn) -> CompiledFunction`: lower, compile once, call fast.

Call path: when every input and output is float32/float64 (the common case), the module gets a
small 'packed' entry (void entry(void** ins, void** outs)) called by callpath's *generic*
METH_FASTCALL wrapper (compiled once per process, driven by a per-function descriptor: it checks
dtype/shape/contiguity of each ndarray and allocates outputs with PyArray_New); anything its
checks reject goes through callpath's Python fallback, which makes inputs contiguous. Otherwise
(int/bool arrays) a ctypes call passes data pointers.

Disk cache (`cache=True | path`, see cache.py; the api passes ad.config.cache, on by default):
the key is computed from the optimized IR before lowering; a hit maps stored object code into
the engine (no lowering, no LLVM passes) and builds the same call path from the stored
metadata. Whatever goes wrong in the cache (key, read, load, store) ends in a compile.

Code lifetime: each CompiledFunction's code goes into an `engine.CodeUnit` (an MCJIT engine
shared by a few functions). The Python callables into its code (the C-API builtin, the ctypes
caller) hold the unit, so the machine code is freed once nothing can call into it any more.
What only compilation needs (the llvmlite IR objects, the fusion plan) is dropped after it.

Intermediates: see lower.py. A large arena is one numpy buffer per thread (threading.local), so
concurrent calls never share scratch memory.
"""
from __future__ import annotations

import ctypes
import importlib
import itertools
import threading
import warnings

import numpy as np

from ..interpret import Interpreted
from ..ir import AVal, Function
from . import cache as disk, callpath, engine, status
from .lowered import PRELUDE_MODULES, PROFILE_KERNELS, Lowered, LoweringError

_counter = itertools.count()
_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))


class CompiledFunction:
    """Native code for one IR Function: `exe(list_of_arrays) -> list_of_arrays`."""

    def __init__(self, fn: Function, *, transform_ir=None, method: str = "auto", cache=None):
        self.fn = fn
        self.cache_key = None
        self.cache_status = None      # None (no cache asked) | 'hit' | 'miss' | 'uncacheable'
        self._mod = None
        self._unit = None             # what owns the machine code (engine.CodeUnit / objload)
        self._cache_dir = None
        store = None
        if cache:
            store = disk.resolve_dir(cache)
            if transform_ir is not None or PROFILE_KERNELS:
                # injected IR / per-function profile counters: the code is not a function of
                # the IR text alone
                disk._count("uncacheable")
                self.cache_status, store = "uncacheable", None
            else:
                try:
                    self.cache_key = disk.key(fn, method)
                except Exception as exc:  # noqa: BLE001 - a cache problem never fails a compile
                    disk._count("errors")
                    disk._warn_once(store, "key failed", exc)
                    self.cache_status, store = "uncacheable", None
            if store is not None:
                got = disk.read(store, self.cache_key)
                self._cache_dir = store
                if got is not None and self._load_entry(*got):
                    disk._count("hits")
                    self.cache_status = "hit"
                    return
                disk._count("misses")
                self.cache_status = "miss"
        self._unit = engine.shared_unit()
        if store is not None:
            name = disk.new_name(disk.symbol_prefix(self.cache_key))
        else:
            name = f"adj_{_safe(fn.name)}_{next(_counter)}"
        from .lower import lower_function   # here: a cache hit needs none of the lowerers
        low = lower_function(fn, name)
        self.lowered = low
        self._keepalive = low.keepalive
        self.arena_words = (low.arena_bytes + 7) // 8 if low.arena_arg else 0
        in_avals = list(low.in_avals) + ([_ArenaAval(self.arena_words)] if low.arena_arg else []) \
            + ([_ArenaAval(status.WORDS)] if low.status_arg else [])
        all_float = all(a.dtype in _FLOATS for a in list(low.in_avals) + list(low.out_avals))
        if method == "auto":
            method = "capi" if all_float and callpath.capi_available() else "ctypes"
        if method == "capi" and not all_float:
            method = "ctypes"
        self.method = method
        packed = None
        if method == "capi":
            # 0-d values cross as scalars: Python/numpy floats in, numpy scalars out.
            self.sig = self._signature(in_avals, low.out_avals)
            entry_fn = low.module.globals[low.entry]
            packed = callpath.add_packed_entry(low.module, entry_fn, len(in_avals),
                                               name + "_packed")
        self._text = str(low.module)
        consts = None
        if store is not None:
            # constants by symbol instead of by this process's addresses (see cache.py)
            reloc = disk.relocatable_ir(self._text, low.keepalive, name)
            if reloc is None:
                disk._count("uncacheable")
                self.cache_status, store = "uncacheable", None
            else:
                self._text, consts = reloc
                for sym, arr in consts:
                    engine.add_symbol(sym, arr.ctypes.data)
        text = transform_ir(self._text) if transform_ir else self._text
        names = [low.entry] + ([packed] if packed else [])
        self._ensure_support(text)
        if store is not None:
            self._mod, addrs, obj = engine.compile_module(text, names, loop_unrolling=False,
                                                          want_object=True, unit=self._unit)
        else:
            self._mod, addrs = engine.compile_module(text, names, loop_unrolling=False,
                                                     unit=self._unit)
        self.address = addrs[low.entry]
        if not PROFILE_KERNELS:   # kernel_profile reads the plan; nothing else needs these
            low.module = low.plan = None
        if method == "capi":
            self._native = callpath.wrap_packed(addrs[packed], self.sig, owner=self._unit,
                                                compile_support=self._support_compiler())
        else:
            self._native = _ctypes_caller(self.address, low, self.arena_words, self._unit)
        self._local = threading.local()
        self._call = self._make_call()
        if store is not None and obj:
            try:
                self._store_entry(disk, store, name, packed, obj, consts)
            except Exception as exc:  # noqa: BLE001 - the function works: only not stored
                disk._count("errors")
                disk._warn_once(store, "store failed", exc)

    # -- disk cache (cache.py) ---------------------------------------------------------------
    # Support code (the generic call wrapper, sin/cos/tan's huge-argument module) is compiled
    # once per process, by the first function that needs it: through that function's cache
    # directory, else (quietly) the default one (cache.support_dir).
    def _support_compiler(self):
        return disk.support_compiler(disk.support_dir(self._cache_dir),
                                     warn=self._cache_dir is not None)

    def _ensure_support(self, code):
        """Compile or load (through the disk cache) the support modules `code` (IR text or
        object code) refers to, before it is compiled or mapped: their providers are imported
        (a cache hit may not have imported them) and register their engine preludes."""
        for marker, module in PRELUDE_MODULES.items():
            if (marker if isinstance(code, str) else marker.encode()) in code:
                importlib.import_module("." + module, __package__)
        engine.ensure_preludes(code, self._support_compiler())

    def _signature(self, in_avals, out_avals):
        return callpath.EntrySignature(
            inputs=tuple(_arg_spec(a) for a in in_avals),
            outputs=tuple(_arg_spec(a) for a in out_avals),
            name=self.fn.name, abi="packed")

    def _store_entry(self, disk, store, name, packed, obj, consts):
        low = self.lowered
        blobs = [obj, disk.compress(self._text)]
        plan = []
        for p in low.result_plan:
            plan.append([p[0], p[1]] if p[0] in ("out", "arg")
                        else [p[0], disk.array_record(p[1], blobs)])
        meta = {
            "name": name, "entry": low.entry, "packed": packed, "method": self.method,
            "in_avals": [[list(a.shape), a.dtype.str] for a in low.in_avals],
            "out_avals": [[list(a.shape), a.dtype.str] for a in low.out_avals],
            "arena_bytes": int(low.arena_bytes), "arena_arg": bool(low.arena_arg),
            "status_arg": bool(low.status_arg),
            "result_plan": plan,
            "consts": [[sym, disk.array_record(arr, blobs)] for sym, arr in consts],
            "blas": disk.blas_symbols(self._text),
            "blas_id": disk.blas_id() if disk.blas_symbols(self._text) else None,
            "fn": self.fn.name,
        }
        disk.write(store, self.cache_key, meta, blobs)

    def _load_entry(self, meta, blobs) -> bool:
        """Set up from a cache entry; False if it cannot be used here (then: recompile)."""
        try:
            stored = meta["name"]
            obj, text = blobs[0], disk.decompress(blobs[1])
            name = stored if disk._claim(stored) else \
                disk.new_name(stored.rpartition("_")[0])
            if name != stored:  # already defined in this process: rename (same length)
                obj, text = disk.patch_names(obj, text, stored, name)
            rn = lambda s: None if s is None else name + s[len(stored):]  # noqa: E731
            entry, packed, method = rn(meta["entry"]), rn(meta["packed"]), meta["method"]
            av = lambda r: AVal(tuple(r[0]), np.dtype(r[1]))  # noqa: E731
            in_avals = [av(r) for r in meta["in_avals"]]
            out_avals = [av(r) for r in meta["out_avals"]]
            plan = [(k, v) if k in ("out", "arg") else (k, disk.array_from(v, blobs))
                    for k, v in meta["result_plan"]]
            consts = [(rn(sym), disk.array_from(rec, blobs)) for sym, rec in meta["consts"]]
            if len(in_avals) != len(self.fn.args) or \
                    any(a != v.aval for a, v in zip(in_avals, self.fn.args)):
                return False
            if method == "capi" and (packed is None or not callpath.capi_available()):
                method = "ctypes"
            if not disk.register_blas(meta["blas"], meta["blas_id"]):
                return False
            if b"adj_lapack_" in obj:
                from . import lapack
                if not lapack.register_used(text):
                    return False
            names = [entry] + ([packed] if method == "capi" else [])
            self._ensure_support(obj)
            # objload (no LLVM) where it can, else MCJIT in a CodeUnit
            addrs, self._unit = engine.map_object(obj, names,
                                                  {s: a.ctypes.data for s, a in consts})
        except Exception:  # noqa: BLE001 - an unusable entry is a miss
            disk._count("corrupt")
            return False
        low = Lowered(None, entry, in_avals, out_avals, plan, meta["arena_bytes"],
                      meta["arena_arg"], [a for _, a in consts], None, self.fn, None,
                      meta.get("status_arg", False))
        self.lowered = low
        self._keepalive = low.keepalive
        self._text = text
        self.arena_words = (low.arena_bytes + 7) // 8 if low.arena_arg else 0
        self.method = method
        self.address = addrs[entry]
        if method == "capi":
            in_sig = list(in_avals) + ([_ArenaAval(self.arena_words)] if low.arena_arg else []) \
                + ([_ArenaAval(status.WORDS)] if low.status_arg else [])
            self.sig = self._signature(in_sig, out_avals)
            self._native = callpath.wrap_packed(addrs[packed], self.sig, owner=self._unit,
                                                compile_support=self._support_compiler())
        else:
            self._native = _ctypes_caller(self.address, low, self.arena_words, self._unit)
        self._local = threading.local()
        self._call = self._make_call()
        return True

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
        local, words = self._local, self.arena_words

        def get_arena():   # not the bound method: no cycle, so freeing needs no gc pass
            a = getattr(local, "arena", None)
            if a is None:
                a = local.arena = np.empty(words, np.float64)
            return a
        if self.lowered.status_arg:   # the wrapper passes the arena, then the status words
            native = _status_checked(native, self.fn, get_arena if arena else None)
            arena = False
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
        """The LLVM IR module as generated (or after the O3 pipeline with optimized=True).
        Loaded from the disk cache, the optimized module is rebuilt on demand from the stored
        IR (same pipeline, same result as the one the cached object was generated from)."""
        return str(self._optimized()) if optimized else self._text

    def asm(self) -> str:
        return engine.assembly(self._optimized())

    def _optimized(self):
        if self._mod is None:
            self._mod = engine.optimized_module(self._text, loop_unrolling=False)
        return self._mod

    def __repr__(self):
        return f"<CompiledFunction {self.fn.name} via {self.method}>"

    def __reduce__(self):
        raise TypeError("a CompiledFunction (machine code in this process) cannot be pickled or "
                        "copied; pickle or copy the transformed function (grad/jit) instead, "
                        "which recompiles in the receiver")


def _status_checked(native, fn, get_arena=None):
    """`native` given this thread's status words (status.py) as its last input, then checked:
    a reported error raises what numpy raises (LinAlgError), or what the interpreter raises on
    the same inputs (IndexError, the while_loop RuntimeError), run only on that error path."""
    thread_words, raise_reported, n_args = status.thread_words, status.raise_reported, len(fn.args)

    def call(*args):
        w, iw = thread_words()
        out = native(*args, get_arena(), w) if get_arena is not None else native(*args, w)
        if iw[0]:
            raise_reported(iw, lambda: Interpreted(fn)(list(args[:n_args])))
        return out
    return call


def _arg_spec(aval):
    return callpath.scalar(aval.dtype) if aval.shape == () else callpath.array(aval.shape, aval.dtype)


class _ArenaAval:
    def __init__(self, words):
        self.shape = (words,)
        self.dtype = np.dtype(np.float64)


def _safe(name):
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)[:40]


def _ctypes_caller(address, low, arena_words, owner=None):
    n_in = len(low.in_avals)
    n_status = 1 if low.status_arg else 0   # the status words: one more array argument
    n_args = n_in + (1 if low.arena_arg else 0) + n_status + len(low.out_avals)
    proto = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * n_args))
    cfn = proto(address)
    in_avals = low.in_avals
    out_avals = low.out_avals
    local = threading.local()

    def native(*arrays, _owner=owner):   # _owner: keeps the code alive while callable
        if n_status:
            *arrays, words = arrays
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
        if n_status:
            ptrs.append(words.ctypes.data)
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
        return Interpreted(fn)
