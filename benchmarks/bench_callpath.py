"""Per-call overhead of the ways to call a JIT-compiled entry point from Python.

    PYTHONPATH=. python benchmarks/bench_callpath.py

Case A: gradient of f(x, y, z) = x*x*y + y*z**3 + x*z  -> 3 floats in, 3 floats out.
Case B: x: float64[10] -> (2*x, sum(x*x))                -> 1 array in, array + float out.
Numbers are the median over repeats of the mean time per call, in microseconds.
Case C: through the public API, the gradient of sum(w*w*b) + sum(sin(b)) (4-element arrays)
called positionally, as a tuple pytree, as a dict of parameters, with a keyword argument and
with a static argument, and reading an array from a global (guarded, passed as a hidden
argument); timed round-robin (fastest of 9 rounds, less an empty lambda), in
compiled and interpret mode, as this thread's CPU time (time.thread_time: on a shared machine
other processes' load then does not count). `--api` runs only case C.
"""
from __future__ import annotations

import ctypes
import statistics
import sys
import time
import timeit

import numpy as np
from llvmlite import ir

import autodiff_jit as ad
from autodiff_jit.backend import callpath as cp
from autodiff_jit.backend import engine

F64 = ir.DoubleType()
PF64 = F64.as_pointer()
I64 = ir.IntType(64)


def emit_grad3(mod, name="grad3", packed=False):
    """void grad3(double x, double y, double z, double* gx, double* gy, double* gz) (or packed ABI)."""
    if packed:
        pp = ir.IntType(8).as_pointer().as_pointer()
        fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [pp, pp]), name=name)
        b = ir.IRBuilder(fn.append_basic_block())
        ins, outs = fn.args
        slot = lambda base, i: b.bitcast(b.load(b.gep(base, [ir.Constant(I64, i)])), PF64)
        x, y, z = (b.load(slot(ins, i)) for i in range(3))
        gx, gy, gz = (slot(outs, i) for i in range(3))
    else:
        fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [F64] * 3 + [PF64] * 3), name=name)
        b = ir.IRBuilder(fn.append_basic_block())
        x, y, z, gx, gy, gz = fn.args
    c = lambda v: ir.Constant(F64, v)
    zz = b.fmul(z, z)
    b.store(b.fadd(b.fmul(b.fmul(x, y), c(2.0)), z), gx)             # 2xy + z
    b.store(b.fadd(b.fmul(x, x), b.fmul(zz, z)), gy)                 # x^2 + z^3
    b.store(b.fadd(b.fmul(b.fmul(y, zz), c(3.0)), x), gz)            # 3yz^2 + x
    b.ret_void()
    return fn


def emit_arr10(mod, name="arr10", n=10):
    """void arr10(double* x, double* out, double* s): out = 2x, *s = sum(x*x)."""
    fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [PF64] * 3), name=name)
    x, out, s = fn.args
    b = ir.IRBuilder(fn.append_basic_block())
    acc = ir.Constant(F64, 0.0)
    for i in range(n):  # fully unrolled: n is small and fixed
        v = b.load(b.gep(x, [ir.Constant(I64, i)]))
        b.store(b.fmul(v, ir.Constant(F64, 2.0)), b.gep(out, [ir.Constant(I64, i)]))
        acc = b.fadd(acc, b.fmul(v, v))
    b.store(acc, s)
    b.ret_void()
    return fn


def new_module():
    mod = ir.Module(name="bench_callpath")
    mod.triple, mod.data_layout = engine.triple_and_layout()
    return mod


def per_call_us(fn, *args, number=200_000, repeat=11):
    fn(*args)
    times = timeit.repeat(lambda: fn(*args), number=number, repeat=repeat)
    # The lambda adds one Python call; subtract a no-op lambda measured the same way.
    base = timeit.repeat(lambda: None, number=number, repeat=repeat)
    return (statistics.median(times) - statistics.median(base)) / number * 1e6


def main():
    sig3 = cp.EntrySignature([cp.scalar()] * 3, [cp.scalar()] * 3, name="grad3")
    sig3p = cp.EntrySignature([cp.scalar()] * 3, [cp.scalar()] * 3, abi="packed", name="grad3p")
    sig10 = cp.EntrySignature([cp.array(10)], [cp.array(10), cp.scalar()], name="arr10")

    # Entries compiled on their own (wrappers compiled separately, call through a pointer) ...
    mod = new_module()
    emit_grad3(mod)
    emit_grad3(mod, "grad3p", packed=True)
    emit_arr10(mod)
    _, addr = engine.compile_module(str(mod), ["grad3", "grad3p", "arr10"])
    # ... and entries with the wrapper in the same module (what codegen would do: LLVM inlines the entry).
    mod2 = new_module()
    w3 = cp.add_python_wrapper(mod2, emit_grad3(mod2, "grad3_in"), sig3)
    w10 = cp.add_python_wrapper(mod2, emit_arr10(mod2, "arr10_in"), sig10)
    _, addr2 = engine.compile_module(str(mod2), [w3, w10])

    print(f"capi available: {cp.capi_available()}\n")
    x, y, z = 1.0, 2.0, 3.0
    rows = []

    # ---- Case A: 3 scalars in, 3 scalars out -------------------------------------------------
    def py_grad3(x, y, z):
        return (2 * x * y + z, x * x + z ** 3, 3 * y * z * z + x)

    raw = ctypes.CFUNCTYPE(None, ctypes.c_double, ctypes.c_double, ctypes.c_double,
                           ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)(addr["grad3"])
    outbuf = np.empty(3)
    p0, p1, p2 = (outbuf.ctypes.data + 8 * i for i in range(3))

    def ctypes_reused_out(x, y, z):
        # Not reentrant/thread-safe: one output buffer shared by all calls.
        raw(x, y, z, p0, p1, p2)
        return (outbuf[0], outbuf[1], outbuf[2])

    cbuf = (ctypes.c_double * 3)()
    q0, q1, q2 = (ctypes.addressof(cbuf) + 8 * i for i in range(3))

    def ctypes_reused_cbuf(x, y, z):
        raw(x, y, z, q0, q1, q2)
        return (cbuf[0], cbuf[1], cbuf[2])

    case_a = [
        ("pure Python function (reference)", py_grad3),
        ("ctypes: raw call, int out-pointers, no results", lambda x, y, z: raw(x, y, z, p0, p1, p2)),
        ("ctypes: make_ctypes_caller (Structure for outs)", cp.make_caller(addr["grad3"], sig3, "ctypes")),
        ("ctypes: reused np.empty(3) out buffer", ctypes_reused_out),
        ("ctypes: reused (c_double*3) out buffer", ctypes_reused_cbuf),
        ("ctypes: packed ABI", cp.make_caller(addr["grad3p"], sig3p, "ctypes")),
        ("capi: make_caller (wrapper in its own module)", cp.make_caller(addr["grad3"], sig3, "capi")),
        ("capi: packed ABI", cp.make_caller(addr["grad3p"], sig3p, "capi")),
        ("capi: wrapper in the entry's module (inlined)", cp.wrap_compiled(addr2[w3], sig3)),
    ]
    print("Case A: grad of 3-scalar polynomial, f(1.0, 2.0, 3.0)")
    for label, fn in case_a:
        us = per_call_us(fn, x, y, z)
        rows.append(("A", label, us))
        print(f"  {label:52s} {us:6.3f} us")
    capi3 = case_a[-1][1]
    for label, args in (("capi: ints instead of floats (PyFloat_AsDouble)", (1, 2, 3)),
                        ("capi: np.float64 args", (np.float64(1), np.float64(2), np.float64(3)))):
        us = per_call_us(capi3, *args)
        print(f"  {label:52s} {us:6.3f} us")

    # ---- Case B: float64[10] in, float64[10] + scalar out ---------------------------------------
    xs = np.arange(10.0)
    raw10 = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)(addr["arr10"])
    ndp = np.ctypeslib.ndpointer(np.float64, ndim=1, shape=(10,), flags="C_CONTIGUOUS")
    raw10_ndp = ctypes.CFUNCTYPE(None, ndp, ndp, ctypes.c_void_p)(addr["arr10"])

    def np_ref(x):
        return 2 * x, float(x @ x)

    def via_ctypes_data(x):
        out, s = np.empty(10), ctypes.c_double()
        raw10(x.ctypes.data, out.ctypes.data, ctypes.byref(s))
        return out, s.value

    def via_array_interface(x):
        out, s = np.empty(10), ctypes.c_double()
        raw10(x.__array_interface__["data"][0], out.__array_interface__["data"][0], ctypes.byref(s))
        return out, s.value

    def via_ndpointer(x):
        out, s = np.empty(10), ctypes.c_double()
        raw10_ndp(x, out, ctypes.byref(s))
        return out, s.value

    case_b = [
        ("numpy expression (reference)", np_ref),
        ("ctypes: arr.ctypes.data", via_ctypes_data),
        ("ctypes: arr.__array_interface__['data'][0]", via_array_interface),
        ("ctypes: np.ctypeslib.ndpointer argtypes", via_ndpointer),
        ("ctypes: make_ctypes_caller (with checks)", cp.make_caller(addr["arr10"], sig10, "ctypes")),
        ("capi: make_caller (wrapper in its own module)", cp.make_caller(addr["arr10"], sig10, "capi")),
        ("capi: wrapper in the entry's module (inlined)", cp.wrap_compiled(addr2[w10], sig10)),
    ]
    print("\nCase B: x float64[10] -> (2*x, sum(x*x))")
    for label, fn in case_b:
        us = per_call_us(fn, xs, number=100_000)
        rows.append(("B", label, us))
        print(f"  {label:52s} {us:6.3f} us")
    capi10 = case_b[-1][1]
    for label, arg in (("capi: non-contiguous input (Python fallback)", np.arange(20.0)[::2]),
                       ("capi: list input (Python fallback)", list(range(10)))):
        us = per_call_us(capi10, arg, number=50_000)
        print(f"  {label:52s} {us:6.3f} us")


# ---- Case C: the public API, by call style ------------------------------------------------------
def round_robin_us(cases, number, repeat=9):
    """{label: us per call}: cases timed round-robin (so that load from other processes hits
    them alike) in thread CPU time, the fastest round of each, less an empty lambda's time."""
    cases = [("(empty lambda)", lambda: None)] + list(cases)
    for _, fn in cases:
        fn()
    best = {label: float("inf") for label, _ in cases}
    for _ in range(repeat):
        for label, fn in cases:
            t = timeit.timeit(fn, number=number, timer=time.thread_time)
            best[label] = min(best[label], t / number * 1e6)
    base = best.pop("(empty lambda)")
    return {label: t - base for label, t in best.items()}


def loss(w, b):
    return np.sum(w * w * b) + np.sum(np.sin(b))


def loss_tuple(p):
    w, b = p
    return loss(w, b)


def loss_dict(p):
    return loss(p["w"], p["b"])


def loss_static(w, b, k):
    return loss(w, b) * k


B_GLOBAL = np.linspace(1.0, 2.0, 4)


def loss_captured(w):
    # reads a global array (a hidden argument) and a global function: two guarded values
    return loss(w, B_GLOBAL)


def cases(mode="compiled"):
    w, b = np.linspace(0.1, 1.0, 4), np.linspace(1.0, 2.0, 4)
    g_pos = ad.grad(loss, argnums=(0, 1), mode=mode)
    g_tuple = ad.grad(loss_tuple, mode=mode)
    g_dict = ad.grad(loss_dict, mode=mode)
    g_kw = ad.grad(loss, mode=mode)
    g_static = ad.grad(loss_static, argnums=(0, 1), static_argnums=2, mode=mode)
    g_cap = ad.grad(loss_captured, mode=mode)
    params = {"w": w, "b": b}
    return [
        ("positional g(w, b)", lambda: g_pos(w, b)),
        ("tuple pytree g((w, b))", lambda: g_tuple((w, b))),
        ("dict pytree g({'w':..,'b':..})", lambda: g_dict(params)),
        ("keyword g(w, b=b)", lambda: g_kw(w, b=b)),
        ("static g(w, b, 3)", lambda: g_static(w, b, 3)),
        ("captured global g(w)", lambda: g_cap(w)),
    ]


def api_main():
    print("Case C: grad through the public API, by call style")
    for mode in ("compiled", "interpret"):
        got = round_robin_us(cases(mode), number=20_000 if mode == "compiled" else 2_000)
        pos = got["positional g(w, b)"]
        for label, us in got.items():
            print(f"  {mode:9s} {label:34s} {us:8.2f} us   {us / pos:5.2f}x positional")


if __name__ == "__main__":
    if "--api" not in sys.argv:
        main()
        print()
    api_main()
