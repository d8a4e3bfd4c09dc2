"""The JIT engine: the optimizer frees what it allocates; compiled code is the same either way."""
import ctypes
import ctypes.util
import sys

import numpy as np
import pytest

from autodiff_jit.backend import engine

# a loop the O3 pipeline vectorizes: its passes and analyses allocate state worth freeing
_LOOP_IR = """
define void @axpy(double* noalias %x, double* noalias %y, i64 %n) {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %loop ]
  %px = getelementptr double, double* %x, i64 %i
  %py = getelementptr double, double* %y, i64 %i
  %vx = load double, double* %px
  %vy = load double, double* %py
  %m = fmul double %vx, 3.0
  %s = fadd double %m, %vy
  store double %s, double* %py
  %i1 = add i64 %i, 1
  %c = icmp slt i64 %i1, %n
  br i1 %c, label %loop, label %done
done:
  ret void
}
"""


def _heap_in_use():
    """Bytes glibc's malloc has handed out and not had back (None where unavailable)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if not hasattr(libc, "mallinfo2"):
        return None

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd


def _optimize_once():
    mod = engine.parse_and_verify(_LOOP_IR)
    mod.triple, mod.data_layout = engine.triple_and_layout()
    engine.optimize(mod, loop_unrolling=False)
    mod.close()


def test_optimizer_frees_its_pipeline():
    """Before the fix every optimize() kept its O3 pipeline and pass state (about 55 kB for
    this small module, 130 kB for a typical gradient); what remains is llvmlite's
    PassInstrumentationCallbacks (about 1.5 kB a pass builder), so the bound leaves room."""
    if _heap_in_use() is None:
        pytest.skip("needs glibc's mallinfo2 to count heap bytes")
    for _ in range(10):            # warm up: first-use tables, uniqued constants
        _optimize_once()
    runs = 60
    before = _heap_in_use()
    for _ in range(runs):
        _optimize_once()
    per_run = (_heap_in_use() - before) / runs
    assert per_run < 15_000, f"optimize() keeps {per_run:.0f} bytes per run"


def test_free_pass_manager_closes_it():
    import llvmlite.binding as llvm
    tm = engine.target_machine()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pb = llvm.create_pass_builder(tm, pto)
    pm = pb.getModulePassManager()
    engine._free_pass_manager(pm)
    assert pm.closed
    pb.close()
    pto.close()


def test_optimized_code_computes_the_same():
    unit = engine.CodeUnit()   # holds the machine code: alive while fn can be called
    _, addrs = engine.compile_module(_LOOP_IR.replace("@axpy", "@axpy_engine_test"),
                                     ["axpy_engine_test"], unit=unit)
    fn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(
        addrs["axpy_engine_test"])
    x, y = np.linspace(-1, 1, 37), np.linspace(2, 5, 37)
    want = 3.0 * x + y
    fn(x.ctypes.data, y.ctypes.data, len(x))
    np.testing.assert_array_equal(y, want)   # one multiply and one add per element: exact


def test_a_units_own_context_gives_the_same_machine_code():
    """A CodeUnit parses into an LLVM context of its own (freed with it); the object code is
    byte for byte what the same IR gives in the global context."""
    unit = engine.CodeUnit()
    text = _LOOP_IR.replace("@axpy", "@axpy_context_test")
    _, _, obj = engine.compile_module(text, ["axpy_context_test"], loop_unrolling=False,
                                      want_object=True, unit=unit)
    reference = engine.target_machine().emit_object(engine.optimized_module(text, False))
    assert obj == reference


def test_units_free_their_context():
    unit = engine.CodeUnit()
    engine.compile_module(_LOOP_IR.replace("@axpy", "@axpy_free_test"), ["axpy_free_test"],
                          unit=unit)
    context = unit.context
    assert not context.closed
    del unit          # (no reference cycle: freed at once)
    assert context.closed
