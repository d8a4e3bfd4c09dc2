"""The public transformations: grad, value_and_grad, jit, make_ir, custom_vjp.

Each transformed function keeps a cache from call signature (argument structure, shapes,
dtypes, static values) to a `Specialization`: the traced IR, the adjoint IR, the optimized IR
and the executable built from it. Called on tracers (inside another transformation), it
inlines its IR into the enclosing trace instead, which is how grad(grad(f)) and
jit(grad(f)) compose.

Call path: a call whose signature was seen before goes straight to the executable through a
dict keyed by a cheap *call signature* (per argument: shape and dtype of an array, the type of
a scalar, the nesting of tuples/lists/dicts, static values), computed in one walk over the
arguments; the entry it finds knows the result structure already. Only a new signature takes
the general path (flatten, trace, compile). The cache is an LRU of `cache_size` entries; an
evicted entry's compiled code is freed (backend CodeUnits), and so is everything when the
transformed function is garbage-collected.

Pickling is by reference to the user's function (see `Transformed.__reduce__`): the receiver
compiles again on first call (from the disk cache, unless it is off).

Disk cache: `cache=None` (the default) means ad.config.cache (on unless AUTODIFF_JIT_CACHE=0),
read when a specialization is compiled; True, False or a directory path decide per function.
"""
from __future__ import annotations

import functools
import numbers
import operator
import pickle
import re
import sys
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from . import source, tree
from .callsig import (MISS, NO_SIG, STATIC, TREE, assembler, dynamic_order, fast_sig, matcher,
                      seq_sig, tree_sig)
from .ad import vjp_function
from .numpy.lists import routing_lists
from .config import check_cache_option, config
from .convert import converted
from .interpret import Interpreted as _Interpreted, eval_function
from .ir import AVal, Function, dtype_name, is_float
from .numpy import stop_gradient  # noqa: F401  (re-exported)
from .passes import dce, optimize
from .primitives import bind
from .primitives.core import leaf_aval as _leaf_aval
from .control.custom import custom_vjp_call_p
from .convert.writes import explain_numpy_write
from .errors import TracingError
from .trace import Trace, lifting_traces, max_level, no_lifting
from .capture import Guard, Stale, find_sources, liftable as _liftable

MODES = ("compiled", "interpret", "tape")

# Specializations kept per transformed function (least recently used evicted first): a
# compiled specialization holds about 0.2 MB, and real programs use a handful of shapes.
DEFAULT_CACHE_SIZE = 64


# ---------------------------------------------------------------------------------------------
# signatures

def _is_dynamic(leaf) -> bool:
    return isinstance(leaf, (np.ndarray, np.generic, bool, numbers.Number)) or \
        hasattr(leaf, "_adj_context") or hasattr(leaf, "__array_interface__")


def _as_array(leaf, aval: AVal):
    if isinstance(leaf, np.ndarray) and leaf.dtype == aval.dtype:
        return leaf
    return np.asarray(leaf, dtype=aval.dtype)


def _output(x):
    """Compiled/interpreted results: arrays, with 0-d results as numpy scalars (as numpy does)."""
    if isinstance(x, np.ndarray) and x.ndim == 0:
        return x[()]
    return x


def _tape_call(transformed, args, kwargs):
    from .tape import tape_call  # tape imports api: import on first use, then call directly
    global _tape_call
    _tape_call = tape_call
    return tape_call(transformed, args, kwargs)


# argument types that cannot hold a tracer (the tape-mode call skips the pytree walk for them)
_PLAIN_ARGS = frozenset({np.ndarray, float, int, np.float64, np.float32})


def _has_tape_tensor(args, kwargs) -> bool:
    """Any tape Tensor among the leaves (the tape context is the one at level 0)."""
    for leaf in tree.flatten((args, kwargs))[0]:
        ctx = getattr(leaf, "_adj_context", None)
        if ctx is not None and ctx.level == 0:
            return True
    return False


class _LeafIndex:
    """Stands in for a dynamic leaf to find which leaves an argument owns."""
    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index


# ---------------------------------------------------------------------------------------------
# specializations

@dataclass
class Specialization:
    """Everything built for one call signature."""
    traced: Function            # the function as traced (forward IR)
    ir: Function                # what runs: adjoint IR for grad, forward IR for jit
    optimized: Function | None = None
    executable: object = None
    out_treedef: object = None  # jit: structure of the result; grad: structure of aux
    n_aux: int = 0
    # grad: per differentiated argument, (indices of its dynamic leaves, its treedef)
    groups: list = field(default_factory=list)
    # tracers of enclosing traces the function closed over (then it is inlined, not compiled)
    captured: list = field(default_factory=list)
    uid: int = 0                # position in the owner's LRU order
    assemble: object = None     # flat results -> result structure (callsig.assembler)
    fast_sigs: list = field(default_factory=list)  # call signatures routed to it (call path)
    # what the function read from its environment (capture.Guard; None: nothing to check),
    # and the captured arrays passed in as its trailing hidden arguments
    guard: object = None
    hidden: tuple = ()


class Transformed:
    """A function transformed by grad / value_and_grad / jit."""

    def __init__(self, fun, kind, *, argnums=0, has_aux=False, mode="compiled",
                 static_argnums=(), cache=None, cache_size=DEFAULT_CACHE_SIZE,
                 convert=None):
        if not callable(fun):
            raise TypeError(f"{kind} expects a function, got {type(fun).__name__}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if cache_size is not None and (not isinstance(cache_size, numbers.Integral)
                                       or isinstance(cache_size, bool) or cache_size < 1):
            raise ValueError(f"cache_size must be a positive int (specializations kept) or None "
                             f"(no bound), got {cache_size!r}")
        if kind != "jit":
            nums = (argnums,) if isinstance(argnums, numbers.Integral) else tuple(argnums)
            if not nums or not all(isinstance(a, numbers.Integral) for a in nums):
                raise TypeError(f"argnums must be an int or a tuple of ints, got {argnums!r}")
            self.argnums_tuple = tuple(int(a) for a in nums)
        else:
            self.argnums_tuple = ()
        self.fun = fun
        self.kind = kind
        self.argnums = argnums
        self.has_aux = has_aux
        self.mode = mode
        self.cache = None if cache is None else check_cache_option(cache)
        if convert not in (None, True, False):
            raise TypeError(f"convert must be True, False or None (use ad.config.convert), "
                            f"got {convert!r}")
        self.convert = convert
        self.static_argnums = (static_argnums,) if isinstance(static_argnums, int) else \
            tuple(static_argnums)
        self.cache_size = cache_size
        self._cache: OrderedDict = OrderedDict()   # key -> Specialization
        self._lru: OrderedDict = OrderedDict()     # uid -> key, least recently used first
        self._fast: dict = {}   # call signature -> (entry, uid, matcher or None); empty
        # while debug_nans. _match: callsig.matcher of the pytree signature last registered
        # or hit (specialization _match_uid), tried before computing a signature.
        self._match, self._match_uid = None, 0
        self._static_pos: dict = {}                # number of positional args -> static indices
        self._uids = 0
        self._traces = self._compiles = 0   # builds (cache_info): guards tested against them
        self._positional = False   # some positional signature registered (worth computing)
        _LIVE.add(self)
        self._lock = threading.Lock()
        functools.update_wrapper(self, fun, updated=())
        self.__name__ = f"{kind}({getattr(fun, '__name__', 'fun')})"

    def _options(self):
        return dict(argnums=self.argnums, has_aux=self.has_aux, mode=self.mode,
                    static_argnums=self.static_argnums, cache=self.cache,
                    cache_size=self.cache_size, convert=self.convert)

    @property
    def _fun_name(self):
        name = getattr(self.fun, "__name__", "fun")
        for ch in "<>()":
            name = name.replace(ch, "_" if ch == "(" else "")
        return name

    # -- call --------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if self.mode == "tape":
            if self.kind == "jit":  # nothing to differentiate: tape mode just runs the function
                return self.fun(*args, **kwargs)
            if not kwargs:
                for a in args:   # (a loop: a generator in all() costs ~1 us of a tape call)
                    if type(a) not in _PLAIN_ARGS:
                        break
                else:
                    return _tape_call(self, args, kwargs)
            if not max_level(tree.flatten((args, kwargs))[0]):
                return _tape_call(self, args, kwargs)
            # called on traced values (jit, jacfwd, hessian of a tape-mode gradient): there is
            # no run-time tape inside a trace, so record the adjoint IR as the other modes do
            return self._call(args, kwargs)
        # Fast paths: a call signature seen before goes straight to its entry. Positional
        # floats/arrays have the cheapest signature; pytrees, keywords and static arguments
        # the one-walk signature of _signature.
        fast = self._fast
        if not kwargs and self._positional:
            hit = fast.get(tuple(map(fast_sig, args)))
            if hit is not None:
                try:
                    self._lru.move_to_end(hit[1])   # least recently used is evicted first
                except KeyError:  # evicted by another thread meanwhile: the entry still works
                    pass
                try:
                    return hit[0](*args)
                except Stale:   # something the function read from its environment changed
                    return self._call(args, kwargs)
        match = self._match   # generated for the last pytree structure seen (callsig.matcher)
        if match is not None:
            try:
                out = match(args, kwargs)
            except Stale:
                return self._call(args, kwargs)
            if out is not MISS:
                return out
        leaves = []
        try:
            if self.static_argnums or kwargs:
                hit = fast.get(self._signature(args, kwargs, leaves))
            else:   # (what _signature computes here, without its call)
                hit = fast.get((TREE, seq_sig(args, leaves), None))
        except TypeError:  # tracers, Tensors, array-likes, unhashable static values...
            hit = None
        if hit is not None:
            try:
                self._lru.move_to_end(hit[1])
            except KeyError:
                pass
            if hit[2] is not None:
                self._match = hit[2]
            try:
                return hit[0](*leaves)
            except Stale:
                pass
        return self._call(args, kwargs)

    def _touch(self, uid):
        try:
            self._lru.move_to_end(uid)
        except KeyError:  # evicted meanwhile by another thread: the entry still works
            pass

    def _signature(self, args, kwargs, leaves):
        """The call signature of (args, kwargs) (see tree_sig), collecting the dynamic leaves
        in the order of the general path's flattening."""
        static = self._static_pos.get(len(args))
        if static is None:
            n = len(args)
            static = self._static_pos[n] = frozenset(   # (as _split reads static_argnums)
                i % max(n, 1) for i in self.static_argnums if i < n)
        if static:
            sig = tuple([(STATIC, type(a), a) if i in static else tree_sig(a, leaves)
                         for i, a in enumerate(args)])
        else:
            sig = seq_sig(args, leaves)
        return (TREE, sig, (tuple(kwargs), seq_sig(kwargs.values(), leaves)) if kwargs
                else None)

    def _call(self, args, kwargs):
        if _has_tape_tensor(args, kwargs):
            # called on tape Tensors (inside a tape-mode grad, or torch-style code): compiled
            # code cannot see the tape, so the function runs on the Tensors and is recorded op
            # by op; gradients through it are exact (not the compiled adjoint, which tape mode
            # would otherwise see as a constant and give zeros)
            if self.kind == "jit":
                return self.fun(*args, **kwargs)
            return _tape_call(self, args, kwargs)
        self._check_argnums(args)
        dyn, key, rebuild = self._split(args, kwargs)
        spec = self._specialize(key, dyn, rebuild)
        if spec.executable is None:  # built inside an enclosing trace: record into it instead
            return self._run_inline(spec, dyn)
        avals = key[1]
        debug = config.debug_nans
        if not debug:   # (with debug_nans every call takes the checked path)
            self._register_fast(spec, avals, args, kwargs, dyn)
        arrays = [_as_array(x, a) for x, a in zip(dyn, avals)]
        arrays.extend(spec.hidden)
        outs = _run_checked(spec, arrays) if debug else spec.executable(arrays)
        return self._assemble(spec, [_output(o) for o in outs])

    def _register_fast(self, spec, avals, args, kwargs, dyn):
        """Route this call's signature to `spec` from now on (positional signature when every
        argument is a plain float/array, else the pytree signature)."""
        sig, perm, match = None, [], None
        if not kwargs and len(dyn) == len(args) and not self.static_argnums:
            sig = tuple(map(fast_sig, args))
            if NO_SIG in sig:
                sig = None
            else:
                self._positional = True
        if sig is None:
            leaves = []
            try:
                sig = self._signature(args, kwargs, leaves)
                hash(sig)
            except TypeError:
                return
            # the entry gets these leaves in the general path's order (dicts flatten in sorted
            # key order): where the signature walk put each, found by position (one object
            # passed twice is two leaves that later calls may fill with different values)
            perm = dynamic_order(args, kwargs, self._static_pos[len(args)])
            if len(perm) != len(dyn) or len(leaves) != len(dyn) or \
                    any(leaves[p] is not x for p, x in zip(perm, dyn)):
                return
            if not self.static_argnums:
                match = matcher(args, kwargs, perm, self._fast_entry(spec, avals), self._lru,
                                spec.uid)
        pick = operator.itemgetter(*perm) if perm != list(range(len(perm))) else None
        entry = self._fast_entry(spec, avals, pick)
        with self._lock:
            if spec.uid in self._lru:   # (not evicted by another thread meanwhile)
                self._fast[sig] = (entry, spec.uid, match)
                spec.fast_sigs.append(sig)
                if match is not None:
                    self._match, self._match_uid = match, spec.uid

    def _fast_entry(self, spec, avals, pick=None):
        """A call path for one call signature: the executable's raw positional entry
        (`call_raw`, returning the result or a tuple of results) when it has one, with the
        result assembly decided now rather than per call. Takes the dynamic leaves; holds no
        reference to the transformed function (so that garbage collection frees it at once).
        `pick(leaves)` reorders the leaves first (dict values walked in insertion order)."""
        exe = spec.executable
        n_results = len(spec.optimized.results)
        raw = getattr(exe, "call_raw", None)
        guard = spec.guard
        if guard is not None:   # checked on each call; the hidden arrays appended
            if raw is not None:
                raw = guard.wrap_raw(raw)
            else:
                exe = _guarded_exe(exe, guard, len(avals))
        groups = spec.groups
        if pick is not None:
            if raw is not None and self.kind == "grad" and not self.has_aux and \
                    len(groups) == 1 and n_results > 1 and \
                    isinstance(self.argnums, numbers.Integral):   # e.g. grad of a dict: one call
                build = tree.unflattener(groups[0][1])
                return lambda *leaves: build(raw(*pick(leaves)))
            inner = self._fast_entry(spec, avals)
            return lambda *leaves: inner(*pick(leaves))
        plain_grad = self.kind == "grad" and not self.has_aux and \
            all(td == "*" for _, td in groups)
        if raw is not None:
            if plain_grad and isinstance(self.argnums, numbers.Integral) and n_results == 1:
                return raw  # the gradient itself
            if plain_grad and not isinstance(self.argnums, numbers.Integral) and n_results > 1:
                return raw  # already the tuple of gradients
            if self.kind == "jit" and spec.out_treedef == "*" and n_results == 1:
                return raw
            if self.kind == "grad" and not self.has_aux and len(groups) == 1 and n_results > 1 \
                    and isinstance(self.argnums, numbers.Integral):
                build = tree.unflattener(groups[0][1])   # one pytree argument, e.g. a dict
                return lambda *args: build(raw(*args))
            run = (lambda *args: (raw(*args),)) if n_results == 1 else raw
        else:
            def run(*args):
                return [_output(o) for o in exe([_as_array(x, a) for x, a in zip(args, avals)])]
        if plain_grad and isinstance(self.argnums, numbers.Integral):
            return lambda *args: run(*args)[0]
        if plain_grad:
            return lambda *args: tuple(run(*args))
        if self.kind == "value_and_grad" and not self.has_aux and \
                all(td == "*" for _, td in groups) and n_results > 1:
            if isinstance(self.argnums, numbers.Integral):
                return lambda *args: tuple(run(*args))  # (value, gradient)

            def value_and_grads(*args):
                outs = run(*args)
                return outs[0], tuple(outs[1:])
            return value_and_grads
        if spec.assemble is None:
            spec.assemble = assembler(self.kind, self.has_aux, self.argnums, spec)
        assemble = spec.assemble
        return lambda *args: assemble(run(*args))

    def _check_argnums(self, args):
        for a in self.argnums_tuple:
            if not -len(args) <= a < len(args):
                raise TypeError(f"{self.kind}: argnums={self.argnums!r} but {self._fun_name} was "
                                f"called with {len(args)} positional argument(s)")

    def _split(self, args, kwargs):
        """Dynamic leaves, the cache key, and a function rebuilding (args, kwargs) from them."""
        static = {i % max(len(args), 1): args[i] for i in self.static_argnums if i < len(args)}
        dyn_args = tuple(None if i in static else a for i, a in enumerate(args))
        leaves, treedef = tree.flatten((dyn_args, kwargs))
        dyn_pos, dyn, statics = [], [], []
        for i, leaf in enumerate(leaves):
            if _is_dynamic(leaf):
                dyn_pos.append(i)
                dyn.append(leaf)
            else:
                statics.append((i, leaf))
        avals = tuple(_leaf_aval(x) for x in dyn)
        try:
            key = (treedef, avals, tuple(statics), tuple(sorted(static.items())))
            hash(key)
        except TypeError:
            raise TypeError(f"{self._fun_name}: non-array arguments must be hashable to be used "
                            f"as static values; got {[type(v).__name__ for _, v in statics]}") \
                from None

        def rebuild(values):
            full = list(leaves)
            for p, v in zip(dyn_pos, values):
                full[p] = v
            a, kw = tree.unflatten(treedef, full)
            a = list(a)
            for i, v in static.items():
                a[i] = v
            return a, kw

        return dyn, key, rebuild

    def _diff_positions(self, key, rebuild, n_dyn):
        """Indices (into the dynamic leaves) of the leaves that are differentiated, grouped by
        argnum, with the treedef of each differentiated argument."""
        args, _ = rebuild([_LeafIndex(i) for i in range(n_dyn)])
        groups = []
        for a in self.argnums_tuple:
            leaves, td = tree.flatten(args[a])
            idx = [leaf.index for leaf in leaves if isinstance(leaf, _LeafIndex)]
            if len(idx) != len(leaves) or not leaves:
                raise TypeError(f"{self.kind}: argument {a} of {self._fun_name} is not an array "
                                f"or a pytree of arrays (got {type(args[a]).__name__}); "
                                f"differentiate with respect to float arrays or scalars")
            groups.append((idx, td))
        for idx, _ in groups:
            for i in idx:
                aval = key[1][i]
                if not is_float(aval.dtype):
                    raise TypeError(
                        f"{self.kind} requires real floating-point inputs to differentiate, but "
                        f"an argument in argnums={self.argnums!r} of {self._fun_name} has dtype "
                        f"{dtype_name(aval.dtype)}; pass floats (e.g. 3.0 rather than 3, or "
                        f"x.astype(float)), or leave it out of argnums")
        return groups

    # -- building ----------------------------------------------------------------------------
    def _trace(self, key, rebuild, sources):
        """Trace the function on tracers of the key's avals. Captured arrays among `sources`
        (capture.find_sources) that the trace uses as operands become hidden arguments."""
        trace = Trace()
        trace.lift_ids = {id(s.value): s.value for s in sources if _liftable(s.value)}
        roots = [a if a.base is None else a.base for a in trace.lift_ids.values()]
        trace.lift_roots = {id(r): r for r in roots if isinstance(r, np.ndarray)}
        names = _arg_names(self.fun, key)
        tracers = [trace.new_arg(aval, names.get(i)) for i, aval in enumerate(key[1])]
        args, kwargs = rebuild(tracers)
        stack = lifting_traces()
        stack.append(trace)
        try:
            with routing_lists():  # np.array([traced, ...]): numpy/lists.py
                out = self._traced_fun()(*args, **kwargs)
        except (TypeError, ValueError, IndexError, NotImplementedError, NameError) as exc:
            raise source.locate(explain_numpy_write(exc) or exc)  # name the user's line
        finally:
            stack.pop()
        return trace, out

    def _traced_fun(self):
        """The function to trace: with its Python control flow converted (convert/) unless
        conversion is off for this function or in ad.config."""
        on = config.convert if self.convert is None else self.convert
        return converted(self.fun) if on else self.fun

    def _build(self, key, rebuild, lift=True):
        n_dyn = len(key[1])
        groups = self._diff_positions(key, rebuild, n_dyn) if self.kind != "jit" else []
        # make_ir (lift=False) gives a closed IR: captured arrays are constants there
        sources = find_sources(self.fun) if lift else []
        trace, out = self._trace(key, rebuild, sources)
        # a value the function itself changed while traced (a call counter) is its own
        # state, not an input: guarding it would trace again on every call
        sources = [s for s in sources if _unchanged(s)]
        n_aux, out_treedef = 0, None
        if self.kind == "jit":
            results, out_treedef = tree.flatten(out)
        else:
            if self.has_aux:
                if not (isinstance(out, (tuple, list)) and len(out) == 2):
                    raise TypeError(f"{self._fun_name} was transformed with has_aux=True, so it "
                                    f"must return a pair (value, aux); got {type(out).__name__}")
                out, aux = out
                aux_leaves, out_treedef = tree.flatten(aux)
                n_aux = len(aux_leaves)
            else:
                aux_leaves = []
            oa = _leaf_aval(out) if _is_dynamic(out) else None
            if oa is None or oa.shape != () or not is_float(oa.dtype):
                what = f"shape {oa.shape} and dtype {dtype_name(oa.dtype)}" if oa else \
                    f"a {type(out).__name__}"
                raise TypeError(f"{self.kind} requires a function with a scalar float output, "
                                f"but {self._fun_name} returned {what}; reduce it to a scalar "
                                f"(e.g. np.sum) before differentiating")
            results = [out] + aux_leaves
        traced = trace.to_function(self._fun_name, results)
        if self.kind == "jit":
            ir = traced
        else:
            wrt = [i for idx, _ in groups for i in idx]
            ir = vjp_function(traced, wrt, name=f"{self.kind}_{self._fun_name}", n_seeded=1)
            if self.kind == "grad":  # the value is not returned: let DCE drop what only it needs
                ir = ir.replace(results=ir.results[1:])
        spec = Specialization(traced, ir, out_treedef=out_treedef, n_aux=n_aux,
                              groups=groups, captured=trace.captured_outer,
                              hidden=tuple(trace.hidden))
        if sources:
            spec.guard = Guard(sources, trace.hidden)
        return spec

    def _specialize(self, key, dyn, rebuild) -> Specialization:
        """The cached specialization for `key`, built and compiled on first use. Called on
        tracers, or on a function that closes over tracers of an enclosing trace, the build
        is not compiled or cached (its executable stays None): it is to be inlined."""
        stale = None
        if not max_level(dyn):
            spec = self._cache.get(key)
            if spec is not None:
                if spec.guard is None or spec.guard.holds():
                    self._touch(spec.uid)
                    return spec
                stale = spec   # what it read from its environment changed: trace again
        spec = self._build(key, rebuild)
        self._traces += 1
        if max_level(dyn) or spec.captured:
            return spec
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached is not stale:
                return cached
            if cached is not None:
                self._evict(stale.uid)
            if stale is not None and stale.traced == spec.traced:
                # the same IR (e.g. only a captured array operand was rebound, which is a
                # hidden argument): the compiled code is reused
                spec.optimized, spec.executable = stale.optimized, stale.executable
            else:
                spec.optimized = optimize(spec.ir)
                spec.executable = _make_executable(spec.optimized, self.mode, self.cache)
                self._compiles += 1
            self._uids += 1
            spec.uid = self._uids
            self._cache[key] = spec
            self._lru[spec.uid] = key
            while self.cache_size is not None and len(self._lru) > self.cache_size:
                self._evict_oldest()
        return spec

    def _evict_oldest(self):
        """Drop the least recently used specialization (lock held): with it goes the last
        reference to its executable, whose compiled code is then freed."""
        self._evict(next(iter(self._lru)))

    def _evict(self, uid):
        """Drop one specialization and the call signatures routed to it (lock held)."""
        key = self._lru.pop(uid)
        spec = self._cache.pop(key)
        for sig in spec.fast_sigs:
            self._fast.pop(sig, None)
        spec.fast_sigs.clear()
        if self._match_uid == spec.uid:
            self._match = None

    def clear_cache(self) -> None:
        """Forget every specialization (their compiled code is freed once no call is running
        it); the next call specializes again (from the disk cache with cache=True)."""
        with self._lock:
            self._fast.clear()
            self._match = None
            self._cache.clear()
            self._lru.clear()

    def cache_info(self) -> dict:
        """{'size': specializations cached, 'max_size': cache_size, 'fast_signatures': call
        signatures routed straight to them, 'traces': times the function was traced,
        'compiles': executables built (a trace after a failed guard whose IR came out the
        same reuses the executable)}."""
        return {"size": len(self._cache), "max_size": self.cache_size,
                "fast_signatures": len(self._fast), "traces": self._traces,
                "compiles": self._compiles}

    def _run_inline(self, spec, dyn):
        """Record the (unoptimized) IR into the innermost enclosing trace."""
        inputs = list(dyn) + list(spec.hidden) + spec.captured
        outer = max((x._adj_context for x in inputs if hasattr(x, "_adj_context")),
                    key=lambda ctx: ctx.level)
        if outer.finished:
            raise TracingError(f"{self._fun_name} uses a traced value from a trace that has "
                               f"already finished; do not keep traced values in globals or "
                               f"closures across calls")
        # Record every equation, even those on constants only, so that nothing large is
        # computed (and embedded as a constant) at trace time.
        outs = eval_function(dce(spec.ir), inputs,
                             apply=lambda prim, *a, **p: outer.process(prim, a, p), locate=True)
        return self._assemble(spec, outs)

    def _assemble(self, spec: Specialization, outs):
        if spec.assemble is None:
            spec.assemble = assembler(self.kind, self.has_aux, self.argnums, spec)
        return spec.assemble(outs)

    # -- inspection ----------------------------------------------------------------------------
    def specialize(self, *args, **kwargs) -> Specialization:
        """Build (or fetch) the specialization for these arguments without running it."""
        self._check_argnums(args)
        dyn, key, rebuild = self._split(args, kwargs)
        spec = self._specialize(key, dyn, rebuild)
        if spec.executable is None:
            raise TypeError(f"{self._fun_name} closes over traced values here, so it has no "
                            f"compiled form of its own to inspect; inspect the enclosing function")
        return spec

    def ir(self, *args, **kwargs) -> Function:
        """The optimized IR that runs for these arguments."""
        return self.specialize(*args, **kwargs).optimized

    def llvm_ir(self, *args, **kwargs) -> str:
        """The LLVM IR module compiled for these arguments."""
        exe = self.specialize(*args, **kwargs).executable
        if not hasattr(exe, "llvm_ir"):
            raise ValueError(f"mode={self.mode!r} does not generate LLVM IR; use mode='compiled'")
        return exe.llvm_ir()

    def asm(self, *args, **kwargs) -> str:
        """Host assembly compiled for these arguments."""
        exe = self.specialize(*args, **kwargs).executable
        if not hasattr(exe, "asm"):
            raise ValueError(f"mode={self.mode!r} does not generate assembly; use mode='compiled'")
        return exe.asm()

    def __repr__(self):
        return f"<autodiff_jit {self.__name__} mode={self.mode}>"

    # -- pickling and copying ------------------------------------------------------------------
    def __reduce__(self):
        """Pickle by reference: the user's function (by qualified name when it is importable;
        a closure or lambda through cloudpickle when that is installed) and the options --
        never compiled code. The receiver specializes again on its first call (from the disk
        cache with cache=True)."""
        if _importable(self):   # a module-level decorated function: `@grad def f`
            return self.__qualname__
        if _importable(self.fun) or isinstance(self.fun, Transformed):
            return (_rebuild_transformed, (self.fun, self.kind, self._options()))
        try:
            import cloudpickle
        except ImportError:
            raise pickle.PicklingError(
                f"cannot pickle {self.__name__}: {getattr(self.fun, '__qualname__', self.fun)!r} "
                f"is not importable by name (a lambda, closure or local function); define it at "
                f"module level, or install cloudpickle to pickle it by value") from None
        return (_rebuild_transformed_cloudpickled,
                (cloudpickle.dumps(self.fun), self.kind, self._options()))

    def __deepcopy__(self, memo):
        """A fresh transformed function of the same function and options (compiled code is
        per process and is not copied: the copy specializes again on its first call)."""
        return Transformed(self.fun, self.kind, **self._options())

    def __copy__(self):
        return self.__deepcopy__(None)


def _importable(obj) -> bool:
    """True when pickle can store `obj` by module and qualified name."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        return False
    found = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found is obj


def _rebuild_transformed(fun, kind, options):
    return Transformed(fun, kind, **options)


def _rebuild_transformed_cloudpickled(payload, kind, options):
    return Transformed(pickle.loads(payload), kind, **options)


def _arg_names(fun, key) -> dict[int, str]:
    """Argument names for printing: the Python parameter names where a leaf is a whole
    positional argument."""
    import inspect
    try:
        params = list(inspect.signature(fun).parameters)
    except (TypeError, ValueError):
        return {}
    treedef = key[0]
    names, pos = {}, 0
    try:
        arg_defs = treedef[1][0][1]
    except (IndexError, TypeError):
        return {}
    for i, td in enumerate(arg_defs):
        n = tree.leaf_count(td)
        if n == 1 and td == "*" and i < len(params):
            names[pos] = params[i]
        pos += n
    return names


def _unchanged(source) -> bool:
    try:
        now = source.read()
    except Exception:   # deleted while traced
        return False
    return now is source.value


def _guarded_exe(exe, guard, n_args):
    """exe(arrays) with the guard checked and the hidden arrays appended (executables without
    a raw positional entry)."""
    holds, hidden = guard.holds, list(guard.hidden)

    def run(arrays):
        if holds():
            return exe(list(arrays[:n_args]) + hidden)
        raise Stale
    return run


def _run_checked(spec: Specialization, arrays):
    """A call with ad.config.debug_nans on. The interpreter checks equation by equation;
    compiled code runs as is and, only when a result holds a NaN or inf, the unoptimized IR
    (every equation with its source line) re-runs in the checking interpreter, which raises
    FloatingPointError at the equation that produced it."""
    from .interpret import checking_nans, run
    if isinstance(spec.executable, _Interpreted):
        with checking_nans():
            return spec.executable(arrays)
    outs = spec.executable(arrays)
    if any(np.asarray(o).dtype.kind == "f" and not np.all(np.isfinite(o)) for o in outs):
        with checking_nans():
            run(spec.ir, arrays)
    return outs


_LIVE: "weakref.WeakSet[Transformed]" = weakref.WeakSet()


def _drop_fast_paths(debug_nans: bool):
    """Turning debug_nans on sends every call through the checked path."""
    if debug_nans:
        for t in list(_LIVE):
            t._fast.clear()
            t._match = None


config._listeners.append(_drop_fast_paths)


def _make_executable(fn: Function, mode: str, cache=None):
    if mode == "interpret":
        return _Interpreted(fn)
    from .backend import compile_function
    if cache is None:
        cache = config.cache
    return compile_function(fn, cache=cache) if cache else compile_function(fn)


# ---------------------------------------------------------------------------------------------
# public decorators

def _decorator(kind):
    def transform(fun=None, argnums=0, *, has_aux=False, mode="compiled", static_argnums=(),
                  cache=None, cache_size=DEFAULT_CACHE_SIZE, convert=None):  # grad(f, 1)
        options = dict(argnums=argnums, has_aux=has_aux, mode=mode, static_argnums=static_argnums,
                       cache=cache, cache_size=cache_size, convert=convert)
        if fun is None:
            return lambda f: Transformed(f, kind, **options)
        return Transformed(fun, kind, **options)
    return transform


grad = _decorator("grad")
grad.__doc__ = """grad(fun, argnums=0, has_aux=False, mode="compiled", static_argnums=(), cache=None,
cache_size=64, convert=None)

The gradient of a scalar-valued `fun` with respect to the argument(s) in `argnums`, computed by
compiled adjoint code. Usable as `@grad`, `grad(f)` or `@grad(argnums=1)`. Returns gradients in
the structure of the differentiated arguments (a tuple of them when argnums is a tuple); with
has_aux=True, `fun` returns (value, aux) and the result is (gradients, aux).
Modes: "compiled" (LLVM), "interpret" (numpy interpreter of the same IR), "tape" (tape Tensors).
cache: compiled code is kept on disk, so another process with the same optimized IR, CPU and
versions skips lowering and LLVM. None (default): ad.config.cache (on unless
AUTODIFF_JIT_CACHE=0); True: the default directory ($AUTODIFF_JIT_CACHE_DIR or
~/.cache/autodiff_jit); a directory path; False: off for this function.
cache_size bounds the specializations (one per call signature) kept in memory, least recently
used evicted first, their compiled code freed; None for no bound. `clear_cache()` drops them all.
Transformed functions pickle by reference to `fun` (see docs/api.md, "Pickling").
convert: rewrite Python `if`/`while`/`for`/`and`/`or`/`not` on traced values into compiled
branches and loops (default None: ad.config.convert, on unless turned off).
"""

value_and_grad = _decorator("value_and_grad")
value_and_grad.__doc__ = """value_and_grad(fun, argnums=0, has_aux=False, mode="compiled",
static_argnums=(), cache=None, cache_size=64, convert=None)

Like `grad`, but returns (value, gradients), or ((value, aux), gradients) with has_aux=True.
"""


def jit(fun=None, *, mode="compiled", static_argnums=(), cache=None,
        cache_size=DEFAULT_CACHE_SIZE, convert=None):
    """Compile `fun` (no differentiation). Results keep `fun`'s output structure. Options as
    for `grad`; convert: rewrite Python control flow on traced values (default:
    ad.config.convert)."""
    options = dict(mode=mode, static_argnums=static_argnums, cache=cache, cache_size=cache_size,
                   convert=convert)
    if fun is None:
        return lambda f: Transformed(f, "jit", **options)
    return Transformed(fun, "jit", **options)


def make_ir(fun, *, static_argnums=(), convert=None):
    """make_ir(f)(*args) -> the IR Function traced from f on arguments shaped like args.
    For a function transformed by grad, this is its adjoint IR (unoptimized)."""
    def build(*args, **kwargs):
        t = fun if isinstance(fun, Transformed) else \
            Transformed(fun, "jit", static_argnums=static_argnums, convert=convert)
        dyn, key, rebuild = t._split(args, kwargs)
        return dce(t._build(key, rebuild, lift=False).ir)
    return build


# ---------------------------------------------------------------------------------------------
# custom_vjp

class custom_vjp:
    """A function with a user-defined VJP, as in JAX:

        @custom_vjp
        def f(x): ...
        def f_fwd(x): return f(x), residuals
        def f_bwd(residuals, g): return (cotangent_for_x,)
        f.defvjp(f_fwd, f_bwd)

    `nondiff_argnums` (JAX's): arguments at these positions are not differentiated (they may
    be any Python value, not traced ones); bwd receives them first, bwd(*nondiff, res, g),
    and returns cotangents for the other arguments only. Use functools.partial(custom_vjp,
    nondiff_argnums=(0,)) as the decorator. A cotangent whose shape is not its argument's
    raises ValueError (as in JAX), never broadcasts.
    """

    def __init__(self, fun, nondiff_argnums=()):
        self.fun = fun
        self.nondiff_argnums = tuple(sorted({int(i) for i in nondiff_argnums}))
        self.fwd = self.bwd = None
        self._tracing_fwd = threading.local()  # fwd may call the function itself (JAX idiom)
        functools.update_wrapper(self, fun, updated=())

    def defvjp(self, fwd, bwd):
        self.fwd, self.bwd = fwd, bwd
        return self

    def __call__(self, *args):
        if self.fwd is None:
            raise TypeError(f"custom_vjp function {self.fun.__name__} has no rule yet; "
                            f"call {self.fun.__name__}.defvjp(fwd, bwd)")
        if self.nondiff_argnums and not getattr(self._tracing_fwd, "active", False):
            return self._call_with_nondiff(args)
        leaves, in_tree = tree.flatten(args)
        if not any(hasattr(x, "_adj_context") for x in leaves) or \
                getattr(self._tracing_fwd, "active", False):
            return self.fun(*args)
        with no_lifting():   # fwd and bwd are closed functions: captured arrays are constants
            return self._bind(args, leaves, in_tree)

    def _bind(self, args, leaves, in_tree):
        avals = [_leaf_aval(x) for x in leaves]
        # forward: outputs then residuals
        trace = Trace()
        tracers = [trace.new_arg(a) for a in avals]
        self._tracing_fwd.active = True
        try:
            fwd = converted(self.fwd) if config.convert else self.fwd
            out, res = fwd(*tree.unflatten(in_tree, tracers))
        finally:
            self._tracing_fwd.active = False
        out_leaves, out_tree = tree.flatten(out)
        res_leaves, _ = tree.flatten(res)
        name = re.sub(r"\W", "", getattr(self.fun, "__name__", "")) or "custom"
        fwd_fn = trace.to_function(f"{name}_fwd", out_leaves + res_leaves)
        if trace.captured:
            raise TypeError(f"custom_vjp function {self.fun.__name__} closes over a traced value; "
                            f"pass it as an argument instead")
        # backward: residuals and output cotangents -> one cotangent per input leaf
        btrace = Trace(1)
        res_t = [btrace.new_arg(r.aval) for r in fwd_fn.results[len(out_leaves):]]
        ct_t = [btrace.new_arg(r.aval, "ct") for r in fwd_fn.results[:len(out_leaves)]]
        res_tree = tree.flatten(res)[1]
        bwd = converted(self.bwd) if config.convert else self.bwd
        cts = bwd(tree.unflatten(res_tree, res_t), tree.unflatten(out_tree, ct_t))
        if not isinstance(cts, tuple) or len(cts) != len(args):
            raise TypeError(f"the bwd rule of {self.fun.__name__} must return a tuple with one "
                            f"cotangent per argument ({len(args)}), got {cts!r}")
        ct_leaves = []
        for arg, ct in zip(args, cts):
            arg_leaves = tree.flatten(arg)[0]
            ct_l = [None] * len(arg_leaves) if ct is None else tree.flatten(ct)[0]
            if len(ct_l) != len(arg_leaves):
                raise ValueError(f"the bwd rule of {self.fun.__name__} returned a cotangent with "
                                 f"{len(ct_l)} leaves for an argument with {len(arg_leaves)}")
            for a, c in zip(arg_leaves, ct_l):
                aval = _leaf_aval(a)
                if c is not None and _leaf_aval(c).shape != aval.shape:
                    raise ValueError(
                        f"the bwd rule of {self.fun.__name__} must return a cotangent of each "
                        f"argument's shape: got shape {_leaf_aval(c).shape} for an argument of "
                        f"shape {aval.shape} (JAX raises here too; autodiff_jit does not "
                        f"broadcast cotangents)")
                ct_leaves.append(np.zeros(aval.shape, aval.dtype) if c is None else c)
        bwd_fn = btrace.to_function(f"{name}_bwd", ct_leaves)
        outs = bind(custom_vjp_call_p, *leaves, fwd=fwd_fn, bwd=bwd_fn,
                    num_outputs=len(out_leaves))
        return tree.unflatten(out_tree, outs[:len(out_leaves)])

    def _call_with_nondiff(self, args):
        """JAX's nondiff_argnums: a custom_vjp of the other arguments, closing over these."""
        nd = self.nondiff_argnums
        if nd[-1] >= len(args):
            raise TypeError(f"custom_vjp function {self.fun.__name__}: nondiff_argnums={nd} "
                            f"but it was called with {len(args)} arguments")
        static = [args[i] for i in nd]
        if any(hasattr(x, "_adj_context") for x in tree.flatten(static)[0]):
            raise TypeError(f"custom_vjp function {self.fun.__name__}: an argument in "
                            f"nondiff_argnums={nd} is a traced value; pass it as an ordinary "
                            f"argument (bwd may return None for its cotangent)")
        diff = [i for i in range(len(args)) if i not in nd]

        def full(dargs):
            out = list(args)
            for i, v in zip(diff, dargs):
                out[i] = v
            return out

        def fwd(*dargs):
            self._tracing_fwd.active = True  # fwd may call the function itself
            try:
                return self.fwd(*full(dargs))
            finally:
                self._tracing_fwd.active = False

        inner = custom_vjp(lambda *dargs: self.fun(*full(dargs)))
        inner.__name__ = getattr(self.fun, "__name__", "custom")
        inner.defvjp(fwd, lambda res, g: self.bwd(*static, res, g))
        return inner(*[args[i] for i in diff])
