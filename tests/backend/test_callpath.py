"""Python callables for compiled entry points: results equal numpy; bad input is a TypeError, never a crash."""
import gc
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llvmlite import ir

from autodiff_jit.backend import callpath as cp
from autodiff_jit.backend import engine

F64, F32, I64 = ir.DoubleType(), ir.FloatType(), ir.IntType(64)
METHODS = ["capi", "generic", "ctypes"]


def _module():
    mod = ir.Module(name="test_callpath")
    mod.triple, mod.data_layout = engine.triple_and_layout()
    return mod


def _c(v, ty=F64):
    return ir.Constant(ty, v)


def emit_grad3(mod, name, packed=False, ty=F64):
    """Gradient of x*x*y + y*z**3 + x*z: (2xy + z, x^2 + z^3, 3yz^2 + x)."""
    pt = ty.as_pointer()
    if packed:
        pp = ir.IntType(8).as_pointer().as_pointer()
        fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [pp, pp]), name=name)
        b = ir.IRBuilder(fn.append_basic_block())
        slot = lambda base, i: b.bitcast(b.load(b.gep(base, [ir.Constant(I64, i)])), pt)
        x, y, z = (b.load(slot(fn.args[0], i)) for i in range(3))
        gx, gy, gz = (slot(fn.args[1], i) for i in range(3))
    else:
        fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [ty] * 3 + [pt] * 3), name=name)
        b = ir.IRBuilder(fn.append_basic_block())
        x, y, z, gx, gy, gz = fn.args
    zz = b.fmul(z, z)
    b.store(b.fadd(b.fmul(b.fmul(x, y), _c(2.0, ty)), z), gx)
    b.store(b.fadd(b.fmul(x, x), b.fmul(zz, z)), gy)
    b.store(b.fadd(b.fmul(b.fmul(y, zz), _c(3.0, ty)), x), gz)
    b.ret_void()
    return fn


def grad3_ref(x, y, z):
    zz = z * z
    return ((x * y) * 2.0 + z, x * x + zz * z, (y * zz) * 3.0 + x)


def emit_arr(mod, name, shape, ty=F64):
    """void f(T* x, T* out, T* s, T* w): out = 2x (same shape), *s = sum(x*x), *w = x[0] (or 0 if empty)."""
    n = int(np.prod(shape))
    pt = ty.as_pointer()
    fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [pt] * 4), name=name)
    x, out, s, w = fn.args
    b = ir.IRBuilder(fn.append_basic_block())
    acc = _c(0.0, ty)
    for i in range(n):
        v = b.load(b.gep(x, [ir.Constant(I64, i)]))
        b.store(b.fmul(v, _c(2.0, ty)), b.gep(out, [ir.Constant(I64, i)]))
        acc = b.fadd(acc, b.fmul(v, v))
    b.store(acc, s)
    b.store(b.load(x) if n else _c(0.0, ty), w)
    b.ret_void()
    return fn


_compiled = {}


def _entries():
    """Compile every test entry once (one module keeps the tests fast)."""
    if not _compiled:
        mod = _module()
        emit_grad3(mod, "grad3")
        emit_grad3(mod, "grad3_packed", packed=True)
        emit_grad3(mod, "grad3_f32", ty=F32)
        emit_arr(mod, "arr10", (10,))
        emit_arr(mod, "arr23", (2, 3))
        emit_arr(mod, "arr10_f32", (10,), ty=F32)
        names = ["grad3", "grad3_packed", "grad3_f32", "arr10", "arr23", "arr10_f32"]
        _compiled.update(engine.compile_module(str(mod), names)[1])
    return _compiled


SIG3 = cp.EntrySignature([cp.scalar()] * 3, [cp.scalar()] * 3, name="grad3")
SIG3P = cp.EntrySignature([cp.scalar()] * 3, [cp.scalar()] * 3, abi="packed", name="grad3p")
SIG3F = cp.EntrySignature([cp.scalar("f4")] * 3, [cp.scalar("f4")] * 3, name="grad3f")


def arr_sig(shape, dtype="f8"):
    return cp.EntrySignature([cp.array(shape, dtype)],
                             [cp.array(shape, dtype), cp.scalar(dtype), cp.scalar(dtype)], name="arr")


@pytest.fixture(params=METHODS)
def method(request):
    if request.param in ("capi", "generic") and not cp.capi_available():
        pytest.skip("C-API wrapper unavailable here")
    return request.param


def test_capi_available_on_cpython():
    if sys.implementation.name == "cpython":
        assert cp.capi_available(), cp._capi_init()["reason"]


def test_auto_picks_capi():
    f = cp.make_caller(_entries()["grad3"], SIG3)
    assert type(f).__name__ == ("builtin_function_or_method" if cp.capi_available() else "function")


# ---- scalars -------------------------------------------------------------------------------

@pytest.mark.parametrize("sig,entry", [(SIG3, "grad3"), (SIG3P, "grad3_packed")])
def test_scalar_results(method, sig, entry):
    f = cp.make_caller(_entries()[entry], sig, method)
    assert f(1.0, 2.0, 3.0) == (7.0, 28.0, 55.0)
    r = f(0.5, -1.25, 4.0)
    assert r == grad3_ref(0.5, -1.25, 4.0)
    assert all(type(v) is np.float64 for v in r)  # 0-d results are numpy scalars


_prop_callers = []


@settings(max_examples=200, deadline=None)
@given(st.tuples(*[st.floats(-1e6, 1e6, allow_nan=False)] * 3))
def test_scalar_results_property(xyz):
    if not _prop_callers:  # build once: a capi caller compiles a small module
        _prop_callers.extend(cp.make_caller(_entries()["grad3"], SIG3, m)
                             for m in (METHODS if cp.capi_available() else ["ctypes"]))
    for f in _prop_callers:
        assert f(*xyz) == grad3_ref(*xyz)


def test_scalar_accepts_number_like(method):
    f = cp.make_caller(_entries()["grad3"], SIG3, method)
    expect = grad3_ref(1.0, 2.0, 3.0)
    assert f(1, 2, 3) == expect                                        # ints
    assert f(-1, 2, 3) == grad3_ref(-1.0, 2.0, 3.0)                    # -1.0 is also the error sentinel
    assert f(np.float64(1), np.float32(2), np.int64(3)) == expect      # numpy scalars
    assert f(np.array(1.0), 2.0, 3.0) == expect                        # 0-d array

    class Num:
        def __float__(self):
            return 3.0
    assert f(1.0, 2.0, Num()) == expect


def test_float32_scalars(method):
    f = cp.make_caller(_entries()["grad3_f32"], SIG3F, method)
    x, y, z = (np.float32(v) for v in (1.5, 2.0, -0.5))
    expect = tuple(float(v) for v in grad3_ref(x, y, z))  # numpy float32 arithmetic, same op order
    assert f(1.5, 2.0, -0.5) == expect


@pytest.mark.parametrize("bad", [("a", 1.0, 2.0), (1.0, None, 2.0), (1.0, 2.0, [3.0]), (1.0, 2.0, 1j),
                                 (1.0, 2.0), (1.0, 2.0, 3.0, 4.0), (), (b"1", 2.0, 3.0)])
def test_scalar_bad_input_is_type_error(method, bad):
    f = cp.make_caller(_entries()["grad3"], SIG3, method)
    with pytest.raises(TypeError):
        f(*bad)
    assert f(1.0, 2.0, 3.0) == (7.0, 28.0, 55.0)  # still usable afterwards


def test_keyword_arguments_rejected(method):
    f = cp.make_caller(_entries()["grad3"], SIG3, method)
    with pytest.raises(TypeError):
        f(1.0, 2.0, z=3.0)


def test_exception_from_float_conversion_propagates(method):
    class Bad:
        def __float__(self):
            raise ZeroDivisionError("boom")
    f = cp.make_caller(_entries()["grad3"], SIG3, method)
    with pytest.raises(ZeroDivisionError):  # the original exception, not a crash or a SystemError
        f(1.0, Bad(), 3.0)


# ---- arrays --------------------------------------------------------------------------------

def _arr_ref(x):
    x = np.asarray(x, dtype=np.float64)
    return 2 * x, float(np.sum(x * x)), float(x.flat[0])


def _check_arr(res, x, dtype=np.float64):
    out, s, w = res
    ref_out, ref_s, ref_w = _arr_ref(x)
    assert type(out) is np.ndarray and out.dtype == dtype and out.flags.c_contiguous
    np.testing.assert_array_equal(out, ref_out.astype(dtype))
    assert s == pytest.approx(ref_s, rel=1e-6) and w == ref_w
    assert type(s) is np.dtype(dtype).type


@pytest.mark.parametrize("shape,entry", [((10,), "arr10"), ((2, 3), "arr23")])
def test_array_results(method, shape, entry):
    f = cp.make_caller(_entries()[entry], arr_sig(shape), method)
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape) - 2.5
    res = f(x)
    _check_arr(res, x)
    assert res[0].shape == shape
    assert f(x)[0] is not res[0]  # a fresh output array per call


@pytest.mark.parametrize("make", [
    lambda: np.arange(20.0)[::2],                         # non-contiguous
    lambda: np.arange(10.0).astype(">f8"),                # byte-swapped
    lambda: np.arange(10, dtype=np.float32),              # other float dtype
    lambda: np.arange(10),                                # ints
    lambda: list(range(10)),                              # list
    lambda: np.arange(10.0).view(type("Sub", (np.ndarray,), {})),  # ndarray subclass
    lambda: np.frombuffer(bytes(4) + np.arange(10.0).tobytes(), dtype=np.float64, offset=4),  # misaligned
])
def test_array_inputs_are_coerced(method, make):
    f = cp.make_caller(_entries()["arr10"], arr_sig(10), method)
    x = make()
    _check_arr(f(x), x)


def test_float32_arrays(method):
    f = cp.make_caller(_entries()["arr10_f32"], arr_sig(10, "f4"), method)
    x = np.linspace(-1, 1, 10, dtype=np.float32)
    _check_arr(f(x), x, dtype=np.float32)


@pytest.mark.parametrize("bad", [np.arange(9.0), np.zeros((2, 5)), np.zeros((10, 1)), np.float64(1.0),
                                 np.array(1.0), np.zeros((0,)), np.zeros((10, 0)),
                                 "abcdefghij", np.arange(10) + 1j, None, [[1.0], [2.0, 3.0]],
                                 np.array(["a"] * 10), np.empty(10, dtype=object)])
def test_array_bad_input_is_type_error(method, bad):
    f = cp.make_caller(_entries()["arr10"], arr_sig(10), method)
    with pytest.raises(TypeError):
        f(bad)
    with pytest.raises(TypeError):
        f()
    with pytest.raises(TypeError):
        f(np.zeros(10), np.zeros(10))
    _check_arr(f(np.ones(10)), np.ones(10))


def test_refcounts_are_balanced(method):
    f = cp.make_caller(_entries()["arr10"], arr_sig(10), method)
    x = np.arange(10.0)
    gc.collect()
    before = sys.getrefcount(x)
    for _ in range(1000):
        out, s, w = f(x)
    assert sys.getrefcount(x) == before
    assert sys.getrefcount(out) == 2   # only `out` (and getrefcount's argument) hold it
    del out, s, w
    g = cp.make_caller(_entries()["grad3"], SIG3, method)
    r = g(1.0, 2.0, 3.0)
    assert sys.getrefcount(r) == 2
    assert all(sys.getrefcount(v) == 3 for v in r)  # the tuple, the loop binding and the argument


def test_errors_do_not_leak_or_crash(method):
    f = cp.make_caller(_entries()["arr10"], arr_sig(10), method)
    for _ in range(2000):
        with pytest.raises(TypeError):
            f(np.arange(9.0))


# ---- signatures and in-module wrappers -----------------------------------------------------

def test_single_and_zero_outputs(method):
    mod = _module()
    # void one(double x, double* y): y = x + 1 ; void none(double x): nothing
    fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [F64, F64.as_pointer()]), name="one")
    b = ir.IRBuilder(fn.append_basic_block())
    b.store(b.fadd(fn.args[0], _c(1.0)), fn.args[1])
    b.ret_void()
    fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [F64]), name="none")
    ir.IRBuilder(fn.append_basic_block()).ret_void()
    _, addrs = engine.compile_module(str(mod), ["one", "none"])
    one = cp.make_caller(addrs["one"], cp.EntrySignature(["f8"], ["f8"], name="one"), method)
    assert one(2.0) == 3.0
    none = cp.make_caller(addrs["none"], cp.EntrySignature(["f8"], [], name="none"), method)
    assert none(2.0) is None


def test_wrapper_in_same_module():
    if not cp.capi_available():
        pytest.skip("C-API wrapper unavailable here")
    mod = _module()
    w3 = cp.add_python_wrapper(mod, emit_grad3(mod, "g3"), SIG3)
    wa = cp.add_python_wrapper(mod, emit_arr(mod, "a10", (10,)), arr_sig(10))
    _, addrs = engine.compile_module(str(mod), [w3, wa])
    f3 = cp.wrap_compiled(addrs[w3], SIG3)
    assert f3(1.0, 2.0, 3.0) == (7.0, 28.0, 55.0)
    with pytest.raises(TypeError):
        f3("x", 2.0, 3.0)
    fa = cp.wrap_compiled(addrs[wa], arr_sig(10))
    x = np.linspace(0, 1, 10)
    _check_arr(fa(x), x)
    _check_arr(fa(x[::-1]), x[::-1])


def test_callers_survive_gc(method):
    f = cp.make_caller(_entries()["grad3"], SIG3, method)
    gc.collect()
    assert f(1.0, 2.0, 3.0) == (7.0, 28.0, 55.0)
    del f
    gc.collect()  # the fast/fallback cycle is collectable without crashing


def test_signature_validation():
    with pytest.raises(TypeError):
        cp.array(3, np.int32)
    with pytest.raises(ValueError):
        cp.EntrySignature([cp.scalar()], [cp.scalar()], abi="weird")
    with pytest.raises(ValueError):
        cp.make_caller(_entries()["grad3"], SIG3, method="nope")


def test_zero_dim_array_input(method):
    mod = _module()
    emit_arr(mod, "arr0d", ())
    _, addrs = engine.compile_module(str(mod), ["arr0d"])
    f = cp.make_caller(addrs["arr0d"], arr_sig(()), method)
    for x in (np.array(1.5), 1.5, np.float64(1.5)):
        out, s, w = f(x)
        assert out.shape == () and float(out) == 3.0 and s == 2.25 and w == 1.5
    with pytest.raises(TypeError):
        f(np.ones(1))
