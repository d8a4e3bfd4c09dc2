"""One process-wide LLVM JIT: target machine for the host CPU, the O3 pipeline, symbol lookup.

Everything that turns LLVM IR text into callable machine code goes through `compile_module`;
`compile_module(..., want_object=True)` also returns the object code MCJIT produced (captured
through the engine's object cache hook), which `load_object` maps back into this (or another)
process without running LLVM's optimizer or code generator (the disk cache, cache.py).
The engine is created lazily (importing autodiff_jit must stay cheap) and guarded by a lock,
because llvmlite's engine is not safe to mutate from several threads at once. llvmlite's
binding itself (LLVM's shared library, ~30 ms to import) is imported on first use too: on
x86-64 Linux a disk-cache hit maps its object code with objload.py and never needs it.

Symbols (`add_symbol`): the table of external C symbols JIT code may refer to is kept here
as well as in LLVM's, so that objload can resolve them without LLVM, and LLVM gets all of
them (and those of code objload mapped) when it is first initialized.

Code lifetime: support code (call-path wrapper, math helpers) lives in the process-wide engine
(or an objload mapping) for good. A compiled function's code goes into a `CodeUnit` of its own
(pass `unit=`): an MCJIT engine whose code memory and modules are freed when the unit is
garbage-collected, so callers keep the unit alive for as long as anything can call into its
code; `map_object` returns such an owner too (a unit, or the objload mapping).
"""
from __future__ import annotations

import functools
import itertools
import os
import re
import threading
import weakref

from . import objload

llvm = ffi = None            # llvmlite.binding and its ffi, once _binding() imported them
_lock = threading.RLock()
_state: dict = {}
_symbols: dict[str, int] = {}   # add_symbol's table, and what objload-mapped code defines


def _binding():
    global llvm, ffi
    if llvm is None:
        import llvmlite.binding as binding
        from llvmlite.binding import ffi as binding_ffi
        llvm, ffi = binding, binding_ffi
    return llvm


def _init():
    if _state:
        return _state
    _binding()
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    tm = _host_target_machine()
    engine = _new_engine(_host_target_machine())  # the engine owns its target machine
    for name, address in _symbols.items():   # registered before LLVM was needed
        llvm.add_symbol(name, address)
    _state.update(target_machine=tm, engine=engine, triple=llvm.get_process_triple(),
                  data_layout=str(tm.target_data), capture={})
    return _state


@functools.lru_cache(maxsize=None)
def _host_cpu() -> tuple[str, str]:
    """(CPU name, feature string) of the host: asked of LLVM once (~0.4 ms a time)."""
    _binding()
    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


def host_cpu_features() -> str:
    """The compile target's LLVM feature string ("+avx2,-avx512f,..."): kernels that pick a
    plan by the target's instructions ask here (the disk cache key includes it)."""
    return _host_cpu()[1]


def _host_target_machine():
    cpu, features = _host_cpu()
    return llvm.Target.from_default_triple().create_target_machine(
        cpu=cpu,
        features=features,
        opt=3,
        codemodel="jitdefault",
    )


def _new_engine(tm, context=None):
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly("", context), tm)
    # object cache hook: MCJIT reports every object it emits; compile_module(want_object=True)
    # names the modules whose object code it wants in _state["capture"]. getbuffer never
    # supplies code: cached objects are loaded explicitly (load_object).
    engine.set_object_cache(_notify_object, lambda module: None)
    return engine


_live_units: "weakref.WeakSet[CodeUnit]" = weakref.WeakSet()


class CodeUnit:
    """Machine code that can be freed: an MCJIT engine of its own (about half a millisecond to
    create), disposed -- code memory and modules -- when the unit is garbage-collected.
    Whatever can call into the code must hold a reference to its unit.
    Its modules are parsed into an LLVM context of its own, disposed with it: the global
    context keeps every type and constant ever created (a few kB per new shape)."""

    def __init__(self):
        with _lock:
            _init()
            self.context = llvm.create_context()
            self.engine = _new_engine(_host_target_machine(), self.context)
        _live_units.add(self)

    def __del__(self):
        engine, self.engine = getattr(self, "engine", None), None
        context, self.context = getattr(self, "context", None), None
        if engine is not None and _lock is not None:   # (None: interpreter shutdown)
            with _lock:   # disposal edits LLVM state other threads compile with
                engine.close()        # (its modules first: they live in the context)
                if context is not None:
                    context.close()

    def __reduce__(self):
        raise TypeError("compiled machine code cannot be pickled or copied; pickle or copy the "
                        "transformed function instead (it recompiles in the receiver)")


def live_units() -> int:
    """How many CodeUnits (MCJIT engines of compiled functions) are alive in this process."""
    return len(_live_units)


# Each engine's target machine builds its own code-generation tables on first use (about
# 0.7 MB on x86-64), so compiled functions share a unit, up to this many each; a unit is freed
# when all of its functions are.
FUNCTIONS_PER_UNIT = 16
_open_unit: dict = {}


def shared_unit() -> CodeUnit:
    """The CodeUnit the next compiled function should go into (a new one after
    FUNCTIONS_PER_UNIT functions, or when the last one has been freed)."""
    with _lock:
        ref, n = _open_unit.get("unit"), _open_unit.get("n", 0)
        unit = ref() if ref is not None else None
        if unit is None or n >= FUNCTIONS_PER_UNIT:
            unit, n = CodeUnit(), 0
        _open_unit.update(unit=weakref.ref(unit), n=n + 1)
        return unit


def _notify_object(module, buffer) -> None:
    want = _state.get("capture")
    name = getattr(module, "name", None)
    if want and name in want:
        want[name] = bytes(buffer)


def target_machine():
    with _lock:
        return _init()["target_machine"]


def triple_and_layout():
    """(target triple, data layout) to stamp on every module we build."""
    with _lock:
        s = _init()
        return s["triple"], s["data_layout"]


def add_symbol(name: str, address: int) -> None:
    """Make an external C symbol (e.g. a BLAS routine) resolvable from JIT code."""
    with _lock:
        _symbols[name] = address
        if _state:                  # (else _init registers it)
            llvm.add_symbol(name, address)


def _resolve(name: str, local: dict | None = None) -> int | None:
    """Address of an external symbol of object code, looked up as MCJIT does: `local` (an
    entry's own constants), the symbols registered here, then the process's global scope."""
    if local and name in local:
        return local[name]
    return _symbols.get(name) or objload.process_symbol(name)


def optimize(mod: "llvm.ModuleRef", speed_level: int = 3, loop_unrolling: bool = True) -> None:
    """Run the new-pass-manager O3 pipeline with loop vectorization on `mod` in place.
    loop_unrolling=False keeps the vectorizer's interleaving but no (full) unrolling: with static
    trip counts LLVM would otherwise fully unroll vector loops, at a large compile-time cost."""
    tm = target_machine()
    pto = llvm.create_pipeline_tuning_options(speed_level=speed_level)
    pto.loop_vectorization = True
    # No SLP (straight-line) vectorization: on AVX-512 targets LLVM 22's x86 back end folds
    # the select-shuffle-select that SLP makes of two scalar max/min tie rules into one masked
    # permute with the lanes' conditions crossed, a wrong result (the gradient of
    # np.maximum(x[0], 0.5 * x[1]) came out halved; tests/backend/test_miscompiles.py). Our
    # kernels vectorize as loops: turning SLP off measured no slower on any benchmark case.
    pto.slp_vectorization = False
    pto.loop_unrolling = loop_unrolling
    # A pass builder serves one run: each run registers instrumentation callbacks on it that
    # point into that run's stack frame (llvmlite's RunNewModulePassManager).
    pb = llvm.create_pass_builder(tm, pto)
    pm = pb.getModulePassManager()
    try:
        pm.run(mod, pb)
    finally:
        _free_pass_manager(pm)
        pb.close()
        pto.close()


def _free_pass_manager(pm) -> None:
    """Free a new-pass-manager pipeline. llvmlite 0.50's ModulePassManager inherits
    ObjectRef's no-op `_dispose` ahead of its NewPassManager mixin's, so `close()` alone
    never frees the pipeline and the pass state it keeps (about 130 kB per compiled
    function here: benchmarks/bench_memory.py --steps)."""
    if type(pm)._dispose is ffi.ObjectRef._dispose:
        ffi.lib.LLVMPY_DisposeNewModulePassManger(pm)
        pm.detach()
    else:   # an llvmlite whose close() frees it
        pm.close()


_NOVEC = re.compile(r'^(![0-9]+) = !{\s*!"adj\.novec\.[0-9]+"\s*}$', re.M)


def loop_metadata(llvm_ir: str) -> str:
    """Turn the placeholder nodes tagged by kernels.for_range into real loop IDs (distinct,
    self-referential) that disable vectorization of small loops."""
    if "adj.novec." not in llvm_ir:
        return llvm_ir
    return _NOVEC.sub(r'\1 = distinct !{\1, !{!"llvm.loop.vectorize.enable", i1 false}}', llvm_ir)


def parse_and_verify(llvm_ir: str, context=None) -> "llvm.ModuleRef":
    """Parse LLVM IR text (into `context`, default the global one); an invalid module becomes a
    Python exception that shows the IR."""
    llvm_ir = loop_metadata(llvm_ir)
    _binding()
    try:
        mod = llvm.parse_assembly(llvm_ir, context)
        mod.verify()
    except RuntimeError as exc:  # llvmlite reports parse/verify failures as RuntimeError
        from ..errors import BackendError
        raise BackendError(f"LLVM rejected the generated module: {exc}\n--- LLVM IR ---\n{llvm_ir}") from None
    return mod


_module_ids = itertools.count()


# Support modules that generated code declares but does not define (mathlib's huge-argument
# sin/cos/tan, the thread pool's runtime): the module that emits the declarations registers how to provide them, so the
# engine imports none of its users.
_PRELUDES: list = []   # (marker, ensure)


def register_prelude(marker: str, ensure) -> None:
    """Before IR text or object code containing `marker` is compiled or loaded, call
    `ensure(compile_support=None)` so that the symbols it declares exist (callers that want
    them from the disk cache call `ensure_preludes` with a support compiler first). ensure must
    be cheap after its first call and return at once if re-entered."""
    _PRELUDES.append((marker, ensure))


def ensure_preludes(code, compile_support=None) -> None:
    """Provide the support modules `code` (IR text or object code) declares, through
    `compile_support(recipe, build, names) -> addrs` (the disk cache's) if given."""
    for marker, ensure in _PRELUDES:
        if (marker if isinstance(code, str) else marker.encode()) in code:
            ensure(compile_support)



def compile_module(llvm_ir: str, names: list[str], loop_unrolling: bool = True,
                   want_object: bool = False, unit: CodeUnit | None = None):
    """Optimize and JIT-compile `llvm_ir` (into `unit`'s engine if given, else the process-wide
    one); return the optimized module (None with a unit: freed) and the addresses of `names`
    -- and, with want_object=True, a third item: the module's object code (bytes, or None if
    MCJIT did not report it), loadable by `load_object`."""
    ensure_preludes(llvm_ir)
    with _lock:
        s = _init()
        mod = _parsed_and_optimized(llvm_ir, loop_unrolling,
                                    None if unit is None else unit.context)
        tag = None
        if want_object:
            tag = f"adj.module.{next(_module_ids)}"
            mod.name = tag
            s["capture"][tag] = None
        ee = s["engine"] if unit is None else unit.engine
        try:
            ee.add_module(mod)
            ee.finalize_object()
            ee.run_static_constructors()
        finally:
            obj = s["capture"].pop(tag, None) if tag else None
        addrs = {n: ee.get_function_address(n) for n in names}
        if unit is not None:
            # the code stays in the unit's memory; its IR module is not needed for running it
            # (inspection re-optimizes the IR text), so free it now
            ee.remove_module(mod)
            mod.close()
            mod = None
    return (mod, addrs, obj) if want_object else (mod, addrs)


def load_object(obj: bytes, names: list[str], symbols: dict[str, int] | None = None,
                unit: CodeUnit | None = None) -> dict[str, int]:
    """Map object code produced by `compile_module(..., want_object=True)` into the engine
    (no LLVM optimization or code generation: relocation only). `symbols` are the external
    data symbols it refers to (name -> address, e.g. the constants of a cached function); they
    are registered first. Returns the addresses of `names`; a name the object does not define
    raises RuntimeError. `unit` as for compile_module. Without one (support code) the code
    stays for good -- mapped by objload where it can be, its global definitions then symbols
    other code can refer to."""
    ensure_preludes(obj)
    if unit is None:
        got = _objload(obj, names, symbols)
        if got is not None:
            addrs, owner, defined = got
            with _lock:
                _permanent.append(owner)
                for n, a in defined.items():
                    add_symbol(n, a)
            return addrs
    return _mcjit_load(obj, names, symbols, unit)


_permanent: list = []   # objload mappings of support code: never freed


def map_object(obj: bytes, names: list[str], symbols: dict[str, int] | None = None):
    """Like load_object, for code that can be freed: returns (addresses of `names`, owner),
    where the owner (an objload.Mapping, or where objload cannot load the code the CodeUnit
    MCJIT loaded it into) frees the code when garbage-collected."""
    ensure_preludes(obj)
    got = _objload(obj, names, symbols)
    if got is not None:
        return got[0], got[1]
    unit = shared_unit()
    return _mcjit_load(obj, names, symbols, unit), unit


def _objload(obj, names, symbols):
    """(addresses of names, owner, defined symbols) through objload, or None if it is switched
    off, not for this host, or unsure of this object."""
    if not objload.supported():
        return None
    with _lock:
        try:
            defined, owner = objload.load(obj, lambda n: _resolve(n, symbols))
        except objload.Malformed as exc:   # (MCJIT could crash on it)
            raise RuntimeError(f"object code is malformed: {exc}") from None
        except objload.Unsupported:
            return None
    addrs = {n: defined.get(n, 0) for n in names}
    missing = [n for n, a in addrs.items() if not a]
    if missing:
        raise RuntimeError(f"object code does not define {', '.join(missing)}")
    return addrs, owner, defined


def _mcjit_load(obj, names, symbols, unit):
    with _lock:
        s = _init()
        for name, address in (symbols or {}).items():
            llvm.add_symbol(name, address)
        ee = s["engine"] if unit is None else unit.engine
        ee.add_object_file(llvm.ObjectFileRef.from_data(bytes(obj)))
        ee.finalize_object()
        addrs = {n: ee.get_function_address(n) for n in names}
    missing = [n for n, a in addrs.items() if not a]
    if missing:
        raise RuntimeError(f"object code does not define {', '.join(missing)}")
    return addrs


def host_fingerprint() -> dict:
    """What machine code depends on besides its IR: target, host CPU, LLVM build (part of the
    disk-cache key). Where objload maps cached code (x86-64 Linux) it is found without
    loading LLVM, so that a cache hit never needs it: the CPU by /proc/cpuinfo's vendor,
    family, model, stepping, model name and feature flags (what LLVM's host detection reads
    from the same CPUID registers), LLVM by llvmlite's version and its shared library's size
    and modification time. Elsewhere: LLVM's own triple, host CPU name and features, version."""
    fast = _fast_host() if objload.HOST else None
    if fast is not None:
        return fast
    cpu, features = _host_cpu()
    return {"triple": llvm.get_process_triple(), "cpu": cpu, "features": features,
            "llvm": ".".join(map(str, llvm.llvm_version_info))}


_CPUINFO_FIELDS = ("vendor_id", "cpu family", "model", "model name", "stepping", "flags")


@functools.lru_cache(maxsize=None)
def _fast_host() -> dict | None:
    """host_fingerprint without LLVM, or None if the files it reads are not there."""
    import importlib.util
    try:
        fields = {}
        with open("/proc/cpuinfo", "rb") as fh:   # the first processor's block only
            for line in fh:
                if not line.strip():
                    break
                k, _, v = line.decode("latin-1").partition(":")
                if k.strip() in _CPUINFO_FIELDS:
                    fields[k.strip()] = " ".join(v.split())
        spec = importlib.util.find_spec("llvmlite")
        lib = [os.path.join(d, "binding", "libllvmlite.so")
               for d in (spec.submodule_search_locations or [])]
        st = os.stat(lib[0])
        import llvmlite              # (the package: its version only, not the binding)
    except (OSError, IndexError, AttributeError, ImportError):
        return None
    if set(fields) != set(_CPUINFO_FIELDS):
        return None
    return {"triple": f"{os.uname().machine}-linux", "cpu": "cpuinfo",
            "features": repr(sorted(fields.items())),
            "llvm": f"llvmlite-{llvmlite.__version__}/{st.st_size}/{st.st_mtime_ns}"}


def _parsed_and_optimized(llvm_ir: str, loop_unrolling: bool, context=None) -> "llvm.ModuleRef":
    mod = parse_and_verify(llvm_ir, context)
    s = _init()
    mod.triple = s["triple"]
    mod.data_layout = s["data_layout"]
    optimize(mod, loop_unrolling=loop_unrolling)
    return mod


def optimized_module(llvm_ir: str, loop_unrolling: bool = True) -> "llvm.ModuleRef":
    """Parse, verify and optimize `llvm_ir` like compile_module, without adding it to the
    engine (inspection of code loaded from the disk cache)."""
    with _lock:
        return _parsed_and_optimized(llvm_ir, loop_unrolling)


def assembly(mod: "llvm.ModuleRef") -> str:
    """Host assembly of an (optimized) module, for `.asm()` inspection."""
    with _lock:
        return _init()["target_machine"].emit_assembly(mod)
