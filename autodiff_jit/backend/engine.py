"""One process-wide LLVM JIT: target machine for the host CPU, the O3 pipeline, symbol lookup.

Everything that turns LLVM IR text into callable machine code goes through `compile_module`.
The engine is created lazily (importing autodiff_jit must stay cheap) and guarded by a lock,
because llvmlite's engine is not safe to mutate from several threads at once.
"""
from __future__ import annotations

import re
import threading

import llvmlite.binding as llvm

_lock = threading.RLock()
_state: dict = {}


def _init():
    if _state:
        return _state
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_default_triple()
    tm = target.create_target_machine(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        opt=3,
        codemodel="jitdefault",
    )
    backing = llvm.parse_assembly("")
    engine = llvm.create_mcjit_compiler(backing, tm)
    _state.update(target_machine=tm, engine=engine, triple=llvm.get_process_triple(),
                  data_layout=str(tm.target_data))
    return _state


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
        _init()
        llvm.add_symbol(name, address)


def optimize(mod: "llvm.ModuleRef", speed_level: int = 3, loop_unrolling: bool = True) -> None:
    """Run the new-pass-manager O3 pipeline with loop and SLP vectorization on `mod` in place.
    loop_unrolling=False keeps the vectorizer's interleaving but no (full) unrolling: with static
    trip counts LLVM would otherwise fully unroll vector loops, at a large compile-time cost."""
    tm = target_machine()
    pto = llvm.create_pipeline_tuning_options(speed_level=speed_level)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_unrolling = loop_unrolling
    pb = llvm.create_pass_builder(tm, pto)
    pm = pb.getModulePassManager()
    pm.run(mod, pb)


_NOVEC = re.compile(r'^(![0-9]+) = !{\s*!"adj\.novec\.[0-9]+"\s*}$', re.M)


def loop_metadata(llvm_ir: str) -> str:
    """Turn the placeholder nodes tagged by kernels.for_range into real loop IDs (distinct,
    self-referential) that disable vectorization of small loops."""
    if "adj.novec." not in llvm_ir:
        return llvm_ir
    return _NOVEC.sub(r'\1 = distinct !{\1, !{!"llvm.loop.vectorize.enable", i1 false}}', llvm_ir)


def parse_and_verify(llvm_ir: str) -> "llvm.ModuleRef":
    """Parse LLVM IR text; an invalid module becomes a Python exception that shows the IR."""
    llvm_ir = loop_metadata(llvm_ir)
    try:
        mod = llvm.parse_assembly(llvm_ir)
        mod.verify()
    except RuntimeError as exc:  # llvmlite reports parse/verify failures as RuntimeError
        from ..errors import BackendError
        raise BackendError(f"LLVM rejected the generated module: {exc}\n--- LLVM IR ---\n{llvm_ir}") from None
    return mod


def compile_module(llvm_ir: str, names: list[str], loop_unrolling: bool = True
                   ) -> tuple["llvm.ModuleRef", dict[str, int]]:
    """Optimize and JIT-compile `llvm_ir`; return the optimized module and the addresses of `names`."""
    mod = parse_and_verify(llvm_ir)
    with _lock:
        s = _init()
        mod.triple = s["triple"]
        mod.data_layout = s["data_layout"]
        optimize(mod, loop_unrolling=loop_unrolling)
        s["engine"].add_module(mod)
        s["engine"].finalize_object()
        s["engine"].run_static_constructors()
        addrs = {n: s["engine"].get_function_address(n) for n in names}
    return mod, addrs


def assembly(mod: "llvm.ModuleRef") -> str:
    """Host assembly of an (optimized) module, for `.asm()` inspection."""
    with _lock:
        return _init()["target_machine"].emit_assembly(mod)
