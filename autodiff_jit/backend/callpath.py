"""Call a compiled entry point from Python with as little overhead as possible.

Entry-point ABI (what generated code must export), selected by `EntrySignature.abi`:

  'args'   (default)  void entry(in_0, ..., in_{n-1}, out_0*, ..., out_{m-1}*)
             scalar input  -> passed by value (double / float)
             array input   -> pointer to element 0 of a C-contiguous, aligned, native-endian buffer
             any output    -> pointer to storage the caller owns (one element for a scalar output,
                              a C-contiguous buffer for an array output)
  'packed'            void entry(void** ins, void** outs)
             every slot is a pointer; scalar inputs are passed as a pointer to the value.

Two mechanisms turn such an address into a Python callable:

  'capi'   (fast, default) a METH_FASTCALL CPython function generated in LLVM IR, like numba's
           wrappers: it unboxes floats (reading `ob_fval` directly for exact floats, otherwise
           PyFloat_AsDouble), checks ndarray inputs by reading the PyArrayObject struct (exact type,
           dtype number, byte order, C-contiguous+aligned flags, ndim and shape), allocates array
           outputs with PyArray_New, calls the entry and boxes the results. Anything the fast checks
           reject (lists, non-contiguous or wrong-dtype arrays, subclasses, wrong arity) is handed to
           a Python fallback that coerces or raises TypeError, then calls the fast path again.
  'ctypes' (portable) a generated Python function around a ctypes CFUNCTYPE.

`make_caller(address, sig)` picks 'capi' when the interpreter/numpy layout self-check passes.
Code generators that already hold an `ir.Module` can instead put the wrapper next to the entry with
`add_python_wrapper` (no second compile; LLVM may inline the entry), then call `wrap_compiled`.
"""
from __future__ import annotations

import ctypes
import itertools
import sys
import threading
import weakref
from dataclasses import dataclass

import numpy as np

from . import engine

ir = None   # llvmlite.ir, imported by _ir() when IR is built: calling compiled code needs none

# --------------------------------------------------------------------------------------------
# Signatures
# --------------------------------------------------------------------------------------------

_FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


@dataclass(frozen=True)
class Arg:
    """One input or output: a scalar (shape ()) or an array of a fixed shape. dtype is float64/float32."""
    kind: str                 # 'scalar' | 'array'
    dtype: np.dtype
    shape: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.kind not in ("scalar", "array"):
            raise ValueError(f"Arg kind must be 'scalar' or 'array', not {self.kind!r}")
        if self.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"entry arguments must be float64 or float32, not {self.dtype}")
        if self.kind == "scalar" and self.shape:
            raise ValueError("a scalar Arg has shape ()")
        if any(s < 0 for s in self.shape):
            raise ValueError(f"negative dimension in shape {self.shape}")

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def scalar(dtype=np.float64) -> Arg:
    return Arg("scalar", dtype)


def array(shape, dtype=np.float64) -> Arg:
    shape = (shape,) if isinstance(shape, int) else shape
    return Arg("array", dtype, tuple(shape))


def _as_arg(a) -> Arg:
    return a if isinstance(a, Arg) else scalar(a)  # a bare dtype means a scalar of that dtype


@dataclass(frozen=True)
class EntrySignature:
    """Inputs and outputs of an entry point (see the module docstring for the ABI).

    Results come back as a single value when there is one output, else as a tuple; scalar outputs
    are Python floats, array outputs fresh numpy arrays.
    """
    inputs: tuple
    outputs: tuple
    abi: str = "args"         # 'args' | 'packed'
    name: str = "entry"       # __name__ of the Python callable, used in error messages

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(_as_arg(a) for a in self.inputs))
        object.__setattr__(self, "outputs", tuple(_as_arg(a) for a in self.outputs))
        if self.abi not in ("args", "packed"):
            raise ValueError(f"abi must be 'args' or 'packed', not {self.abi!r}")


# --------------------------------------------------------------------------------------------
# Python-side coercion, shared by both mechanisms (this is the slow path)
# --------------------------------------------------------------------------------------------

def _coerce_scalar(x, sig: EntrySignature, i: int) -> float:
    # float() would parse strings; PyFloat_AsDouble (the fast path) does not, so neither do we.
    if isinstance(x, (str, bytes, bytearray)):
        raise TypeError(f"{sig.name}(): argument {i} must be a real number, not {type(x).__name__}")
    try:
        return float(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{sig.name}(): argument {i} must be a real number, not {type(x).__name__}") from exc


def _coerce_array(x, spec: Arg, sig: EntrySignature, i: int) -> np.ndarray:
    try:
        a = np.asarray(x)
    except Exception as exc:  # ragged lists etc.
        raise TypeError(f"{sig.name}(): argument {i} cannot be converted to an array: {exc}") from exc
    if a.dtype.kind not in "biuf" or not np.can_cast(a.dtype, spec.dtype, casting="same_kind"):
        raise TypeError(f"{sig.name}(): argument {i} must be a {spec.dtype} array, got dtype {a.dtype}")
    if a.shape != spec.shape:
        raise TypeError(f"{sig.name}(): argument {i} must have shape {spec.shape}, got {a.shape}")
    if (type(a) is not np.ndarray or a.dtype != spec.dtype or not a.dtype.isnative
            or not (a.flags.c_contiguous and a.flags.aligned)):
        # A fresh copy is always exact-type, native, aligned and C-contiguous (keeps 0-d as 0-d).
        a = np.array(a, dtype=spec.dtype, order="C", copy=True, subok=False)
    return a


def _coerce_all(args, sig: EntrySignature) -> list:
    if len(args) != len(sig.inputs):
        raise TypeError(f"{sig.name}() takes {len(sig.inputs)} positional arguments but {len(args)} were given")
    return [_coerce_scalar(x, sig, i) if s.kind == "scalar" else _coerce_array(x, s, sig, i)
            for i, (x, s) in enumerate(zip(args, sig.inputs))]


# --------------------------------------------------------------------------------------------
# Mechanism 1: ctypes
# --------------------------------------------------------------------------------------------

_CT = {np.dtype(np.float64): ctypes.c_double, np.dtype(np.float32): ctypes.c_float}


def make_ctypes_caller(address: int, sig: EntrySignature):
    """A generated Python function around a ctypes CFUNCTYPE (works on any Python with ctypes).

    Straight-line source is generated per signature because loops and per-argument dispatch in the
    hot path cost more than the ctypes call itself. Array data pointers are read with
    `arr.ctypes.data` (cheapest of the numpy routes, see benchmarks/bench_callpath.py).
    """
    n_in, n_out = len(sig.inputs), len(sig.outputs)
    ns = {"_np_empty": np.empty, "_ndarray": np.ndarray, "_coerce_all": _coerce_all, "_sig": sig,
          "_ptrs_in": ctypes.c_void_p * max(n_in, 1),
          "_ptrs_out": ctypes.c_void_p * max(n_out, 1), "_addressof": ctypes.addressof}
    params = ", ".join(f"x{i}" for i in range(n_in))
    lines = [f"def _caller({params}):"]

    # Cheap exact checks; anything unusual takes the shared coercion path.
    checks = []
    for i, s in enumerate(sig.inputs):
        if s.kind == "scalar":
            checks.append(f"type(x{i}) is not float")
        else:
            ns[f"_dt{i}"], ns[f"_sh{i}"] = s.dtype, s.shape
            ns[f"_st{i}"] = np.empty(s.shape, s.dtype).strides
            # dtype identity excludes byte-swapped dtypes; C strides imply contiguity.
            checks.append(f"type(x{i}) is not _ndarray or x{i}.dtype is not _dt{i} or x{i}.shape != _sh{i} "
                          f"or x{i}.strides != _st{i}")
    if checks:
        lines.append(f"    if {' or '.join('(' + c + ')' for c in checks)}:")
        tup = params + ("," if n_in == 1 else "")
        lines.append(f"        {tup} = _coerce_all(({tup}), _sig)")

    argtypes, call_in, call_out = [], [], []
    for i, s in enumerate(sig.inputs):
        if s.kind == "scalar":
            if sig.abi == "args":
                argtypes.append(_CT[s.dtype])
                call_in.append(f"x{i}")
            else:
                ns[f"_ct{i}"] = _CT[s.dtype]
                lines.append(f"    b{i} = _ct{i}(x{i})")
                call_in.append(f"_addressof(b{i})")
        else:
            argtypes.append(ctypes.c_void_p)
            call_in.append(f"x{i}.ctypes.data")
    results = []
    # All scalar outputs share one ctypes Structure: one allocation per call instead of one per output.
    scalar_outs = [(f"o{j}", _CT[s.dtype]) for j, s in enumerate(sig.outputs) if s.kind == "scalar"]
    if scalar_outs:
        ns["_Outs"] = type(f"{sig.name}_outs", (ctypes.Structure,), {"_fields_": scalar_outs})
        lines.append("    so = _Outs()")
        lines.append("    sa = _addressof(so)")
    for j, s in enumerate(sig.outputs):
        if s.kind == "scalar":
            off = getattr(ns["_Outs"], f"o{j}").offset
            call_out.append(f"sa + {off}" if off else "sa")
            ns[f"_box{j}"] = s.dtype.type  # numpy scalars, as the C-API path returns
            results.append(f"_box{j}(so.o{j})")
        else:
            ns[f"_osh{j}"], ns[f"_odt{j}"] = s.shape, s.dtype
            lines.append(f"    o{j} = _np_empty(_osh{j}, _odt{j})")
            call_out.append(f"o{j}.ctypes.data")
            results.append(f"o{j}")
        argtypes.append(ctypes.c_void_p)

    if sig.abi == "args":
        ns["_cfunc"] = ctypes.CFUNCTYPE(None, *argtypes)(address)
        lines.append(f"    _cfunc({', '.join(call_in + call_out)})")
    else:
        ns["_cfunc"] = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)(address)
        lines.append(f"    _cfunc(_ptrs_in({', '.join(call_in)}), _ptrs_out({', '.join(call_out)}))")
    if n_out == 0:
        lines.append("    return None")
    elif n_out == 1:
        lines.append(f"    return {results[0]}")
    else:
        lines.append(f"    return ({', '.join(results)})")
    exec("\n".join(lines), ns)  # noqa: S102 -- source is built from the signature only
    fn = ns["_caller"]
    fn.__name__ = fn.__qualname__ = sig.name  # any string, so not spliced into the source
    fn.__wrapped_address__ = address
    return fn


# --------------------------------------------------------------------------------------------
# Mechanism 2: CPython C-API wrapper generated in LLVM IR
# --------------------------------------------------------------------------------------------

METH_FASTCALL = 0x0080
NPY_ARRAY_C_CONTIGUOUS = 0x0001
NPY_ARRAY_ALIGNED = 0x0100

_i8 = _i32 = _i64 = _i8p = _f64 = _f32 = None   # LLVM types, set by _ir()


def _ir():
    """Import llvmlite.ir and make the LLVM types (once). Every function that builds IR calls
    it first: a disk-cache hit, which only calls the generic wrapper, never imports it."""
    global ir, _i8, _i32, _i64, _i8p, _f64, _f32
    if ir is None:
        from llvmlite import ir as llvm_ir
        _i8, _i32, _i64 = llvm_ir.IntType(8), llvm_ir.IntType(32), llvm_ir.IntType(64)
        _i8p = _i8.as_pointer()
        _f64, _f32 = llvm_ir.DoubleType(), llvm_ir.FloatType()
        ir = llvm_ir


def _llty(dt: np.dtype) -> ir.Type:
    return _f64 if dt == np.float64 else _f32


class _Layout:
    """Struct offsets of the running interpreter/numpy, derived rather than hard-coded.

    PyObject_HEAD is `object.__basicsize__` bytes with ob_type as its last field (true for release,
    Py_TRACE_REFS and free-threaded builds). PyArrayObject and PyArray_Descr (numpy/ndarraytypes.h)
    continue right after it; `_check_layout` verifies every offset against live objects.
    """

    def __init__(self):
        h = object.__basicsize__
        p = ctypes.sizeof(ctypes.c_void_p)
        self.ob_type = h - p
        self.float_val = h                      # PyFloatObject.ob_fval
        self.arr_data = h                       # char *data
        self.arr_nd = h + p                     # int nd
        self.arr_dims = h + 2 * p               # npy_intp *dimensions
        self.arr_descr = h + 5 * p              # after strides, base
        self.arr_flags = h + 6 * p              # int flags
        self.descr_byteorder = h + p + 2        # after typeobj, kind, type
        self.descr_type_num = h + p + 4         # after _former_flags


_OBJECT_SYMBOLS = {"PyFloat_Type": float, "PyArray_Type": np.ndarray, "Py_None": None}

_capi_lock = threading.Lock()
_generic_lock = threading.Lock()
_capi: dict = {}      # filled by _capi_init(): layout, type addresses, 'ok' or 'reason'
_counter = itertools.count()


def _read(addr: int, ctype):
    return ctype.from_address(addr).value


def _check_layout(L: _Layout) -> str | None:
    """Return None if the offsets match live objects, else why the C-API path is unavailable."""
    if sys.implementation.name != "cpython":
        return "not CPython"
    if float.__basicsize__ != L.float_val + 8:
        return "unexpected PyFloatObject layout"
    x = 1.25
    if _read(id(x) + L.float_val, ctypes.c_double) != 1.25 or _read(id(x) + L.ob_type, ctypes.c_void_p) != id(float):
        return "PyFloatObject offsets do not match"
    a = np.zeros((3, 4))
    v = np.zeros((3, 4), dtype=">f4")[:, ::2]
    for arr in (a, v):
        base = id(arr)
        if (_read(base + L.ob_type, ctypes.c_void_p) != id(np.ndarray)
                or _read(base + L.arr_data, ctypes.c_void_p) != arr.ctypes.data
                or _read(base + L.arr_nd, ctypes.c_int) != arr.ndim
                or _read(base + L.arr_descr, ctypes.c_void_p) != id(arr.dtype)):
            return "PyArrayObject offsets do not match"
        dims = _read(base + L.arr_dims, ctypes.c_void_p)
        step = ctypes.sizeof(ctypes.c_ssize_t)
        if [_read(dims + step * k, ctypes.c_ssize_t) for k in range(arr.ndim)] != list(arr.shape):
            return "PyArrayObject dimensions do not match"
        flags = _read(base + L.arr_flags, ctypes.c_int)
        if (bool(flags & NPY_ARRAY_C_CONTIGUOUS) != arr.flags.c_contiguous
                or bool(flags & NPY_ARRAY_ALIGNED) != arr.flags.aligned):
            return "PyArrayObject flags do not match"
        d = id(arr.dtype)
        if (_read(d + L.descr_type_num, ctypes.c_int) != arr.dtype.num
                or chr(_read(d + L.descr_byteorder, ctypes.c_char)[0]) != arr.dtype.byteorder):
            return "PyArray_Descr offsets do not match"
    if sys.byteorder != "little":
        return "big-endian host"  # the byte-order check below assumes '>' means swapped
    return None


_DESCRS: dict = {}  # dtype objects whose addresses generated code embeds: kept alive here


def _capi_init() -> dict:
    with _capi_lock:
        if _capi:
            return _capi
        L = _Layout()
        reason = _check_layout(L)
        if reason is None:
            try:
                api = ctypes.pythonapi
                syms = {}
                for n in ("PyFloat_AsDouble", "PyFloat_FromDouble", "PyErr_Occurred", "PyTuple_New",
                          "PyTuple_SetItem", "Py_DecRef", "Py_IncRef"):
                    syms[n] = ctypes.cast(getattr(api, n), ctypes.c_void_p).value
                # Python 3.10 has PyObject_Vectorcall only as a header inline; the exported
                # PyObject_VectorcallDict (3.9+) takes the same arguments, and with a NULL last
                # argument (no keywords, as the wrappers always pass) makes the same call.
                vc = getattr(api, "PyObject_Vectorcall", None)
                syms["PyObject_Vectorcall"] = ctypes.cast(
                    vc if vc is not None else api.PyObject_VectorcallDict, ctypes.c_void_p).value
                # PyArray_New comes from numpy's C-API table (slot 93, stable since numpy 1.0).
                get_ptr = api.PyCapsule_GetPointer
                get_ptr.restype, get_ptr.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
                core = np._core if hasattr(np, "_core") else np.core  # numpy 2.x / 1.x
                table = get_ptr(core._multiarray_umath._ARRAY_API, None)
                slot = ctypes.sizeof(ctypes.c_void_p)
                syms["PyArray_New"] = ctypes.c_void_p.from_address(table + 93 * slot).value
                # PyArray_Scalar (slot 60) boxes a 0-d result as a numpy scalar (np.float64 /
                # np.float32), so dtypes survive and results match the other modes' types.
                syms["PyArray_Scalar"] = ctypes.c_void_p.from_address(table + 60 * slot).value
                # the objects the generic wrapper compares with or returns, by name, so its
                # machine code holds no address of this process (it can be cached on disk)
                for n, obj in _OBJECT_SYMBOLS.items():
                    syms[n] = id(obj)
                for n, addr in syms.items():
                    engine.add_symbol("adj_capi_" + n, addr)  # prefixed: never shadows other symbols
                new_ex = api.PyCFunction_NewEx
                new_ex.restype = ctypes.py_object
                new_ex.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.c_void_p]
                _capi.update(new_ex=new_ex)
            except (AttributeError, OSError, ValueError) as exc:
                reason = f"C-API symbol lookup failed: {exc}"
        if reason is None:
            # PyTupleObject.ob_item follows the PyVarObject header (the generic wrapper's self)
            items = tuple.__basicsize__
            t = (float, np.ndarray)
            if (_read(id(t) + items, ctypes.c_void_p) != id(float)
                    or _read(id(t) + items + ctypes.sizeof(ctypes.c_void_p), ctypes.c_void_p)
                    != id(np.ndarray)):
                reason = "PyTupleObject layout does not match"
            _capi.update(tuple_items=items)
        _capi.update(layout=L, ok=reason is None, reason=reason)
        return _capi


def capi_available() -> bool:
    """True when the generated C-API wrapper can be used in this interpreter."""
    return _capi_init()["ok"]


def _declare(module: ir.Module, name: str, ret, args) -> ir.Function:
    full = "adj_capi_" + name
    if full in module.globals:
        return module.globals[full]
    fn = ir.Function(module, ir.FunctionType(ret, args), name=full)
    fn.attributes.add("nounwind")
    return fn


def _entry_type(sig: EntrySignature) -> ir.FunctionType:
    if sig.abi == "packed":
        return ir.FunctionType(ir.VoidType(), [_i8p.as_pointer(), _i8p.as_pointer()])
    params = [_llty(s.dtype) if s.kind == "scalar" else _llty(s.dtype).as_pointer() for s in sig.inputs]
    params += [_llty(s.dtype).as_pointer() for s in sig.outputs]
    return ir.FunctionType(ir.VoidType(), params)


def _unbox_double(b, obj, tp, float_type, float_offset, as_double, err_occurred, fail, tag):
    """Emit: the double held by Python object `obj` (whose type pointer is `tp`). An exact float
    is read directly from its ob_fval (no call; only there, other objects may be smaller);
    anything else goes through PyFloat_AsDouble (ints, numpy scalars, __float__/__index__
    objects), and an exception it sets branches to `fail`."""
    fn = b.function
    exact = fn.append_basic_block(f"{tag}.float")
    generic = fn.append_basic_block(f"{tag}.generic")
    check = fn.append_basic_block(f"{tag}.check_err")
    done = fn.append_basic_block(f"{tag}.done")
    b.cbranch(b.icmp_unsigned("==", tp, float_type), exact, generic)
    b.position_at_end(exact)
    p = b.gep(obj, [ir.Constant(_i64, float_offset)], inbounds=True)
    fast = b.load(b.bitcast(p, _f64.as_pointer()))
    b.branch(done)
    b.position_at_end(generic)
    slow = b.call(as_double, [obj])
    b.cbranch(b.fcmp_ordered("==", slow, ir.Constant(_f64, -1.0)), check, done)
    b.position_at_end(check)
    b.cbranch(b.icmp_unsigned("!=", b.call(err_occurred, []), ir.Constant(_i8p, None)), fail, done)
    b.position_at_end(done)
    v = b.phi(_f64)
    v.add_incoming(fast, exact)
    v.add_incoming(slow, generic)
    v.add_incoming(slow, check)
    return v


def _declare_capi(m):
    """Declarations of the CPython/numpy C-API functions the generated wrappers call, in the
    order both wrappers unpack them."""
    objp, i64p = _i8p, _i64.as_pointer()
    return (_declare(m, "PyFloat_AsDouble", _f64, [objp]),
            _declare(m, "PyArray_Scalar", objp, [_i8p, objp, objp]),
            _declare(m, "PyErr_Occurred", objp, []),
            _declare(m, "PyTuple_New", objp, [_i64]),
            _declare(m, "PyTuple_SetItem", _i32, [objp, _i64, objp]),
            _declare(m, "PyObject_Vectorcall", objp, [objp, objp.as_pointer(), _i64, objp]),
            _declare(m, "Py_DecRef", ir.VoidType(), [objp]),
            _declare(m, "Py_IncRef", ir.VoidType(), [objp]),
            _declare(m, "PyArray_New", objp, [objp, _i32, i64p, _i32, i64p, _i8p, _i32, _i32, objp]))


def add_python_wrapper(module: ir.Module, entry, sig: EntrySignature, name: str | None = None) -> str:
    """Emit `PyObject* name(PyObject* self, PyObject* const* args, Py_ssize_t nargs)` into `module`.

    `entry` is an `ir.Function` of the same module (LLVM may then inline it) or the integer address of
    an already compiled entry. `self` must be the Python fallback made by `wrap_compiled`: on any
    failed fast check the wrapper returns `self(*args)`. Returns the wrapper's symbol name.
    """
    _ir()
    st = _capi_init()
    if not st["ok"]:
        raise RuntimeError(f"C-API wrapper unavailable: {st['reason']}")
    L = st["layout"]
    name = name or f"adj_pywrap_{next(_counter)}"
    objp = _i8p
    m = module
    (as_double, to_scalar, err_occurred, tuple_new, tuple_set, vectorcall, decref, incref,
     arr_new) = _declare_capi(m)

    fn = ir.Function(m, ir.FunctionType(objp, [objp, objp.as_pointer(), _i64]), name=name)
    self_obj, args, nargs = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    slow = fn.append_basic_block("slow")
    fail = fn.append_basic_block("fail")          # return NULL, exception already set

    def const_ptr(addr):
        return ir.Constant(_i64, addr).inttoptr(objp)

    def field(obj, offset, ty):
        p = b.gep(obj, [ir.Constant(_i64, offset)], inbounds=True)
        return b.load(b.bitcast(p, ty.as_pointer()))

    def guard(cond, label):
        # Continue in a fresh block when `cond` holds, otherwise divert to the Python fallback.
        ok = fn.append_basic_block(label)
        b.cbranch(cond, ok, slow)
        b.position_at_end(ok)

    float_type, ndarray_type = const_ptr(id(float)), const_ptr(id(np.ndarray))
    guard(b.icmp_signed("==", nargs, ir.Constant(_i64, len(sig.inputs))), "nargs_ok")

    # Unbox inputs.
    in_vals = []
    for i, s in enumerate(sig.inputs):
        obj = b.load(b.gep(args, [ir.Constant(_i64, i)], inbounds=True))
        tp = field(obj, L.ob_type, objp)
        if s.kind == "scalar":
            v = _unbox_double(b, obj, tp, float_type, L.float_val, as_double, err_occurred, fail,
                              f"in{i}")
            in_vals.append(v if s.dtype == np.float64 else b.fptrunc(v, _f32))
        else:
            guard(b.icmp_unsigned("==", tp, ndarray_type), f"in{i}_is_ndarray")
            descr = field(obj, L.arr_descr, objp)
            flags = field(obj, L.arr_flags, _i32)
            want = NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED
            conds = [
                b.icmp_signed("==", field(descr, L.descr_type_num, _i32), ir.Constant(_i32, s.dtype.num)),
                b.icmp_unsigned("!=", field(descr, L.descr_byteorder, _i8), ir.Constant(_i8, ord(">"))),
                b.icmp_signed("==", b.and_(flags, ir.Constant(_i32, want)), ir.Constant(_i32, want)),
                b.icmp_signed("==", field(obj, L.arr_nd, _i32), ir.Constant(_i32, len(s.shape))),
            ]
            cond = conds[0]
            for c in conds[1:]:
                cond = b.and_(cond, c)
            guard(cond, f"in{i}_ok")
            if s.shape:
                # Only once nd is known to match: 0-d arrays have dimensions == NULL.
                dims = field(obj, L.arr_dims, _i64.as_pointer())
                dconds = [b.icmp_signed("==", b.load(b.gep(dims, [ir.Constant(_i64, k)], inbounds=True)),
                                        ir.Constant(_i64, d)) for k, d in enumerate(s.shape)]
                cond = dconds[0]
                for c in dconds[1:]:
                    cond = b.and_(cond, c)
                guard(cond, f"in{i}_shape_ok")
            in_vals.append(b.bitcast(field(obj, L.arr_data, _i8p), _llty(s.dtype).as_pointer()))

    # Outputs. `slots` holds every PyObject we own so one cleanup path can release them.
    n_out = len(sig.outputs)
    slots = b.alloca(objp, ir.Constant(_i64, max(n_out, 1)), name="slots")
    for j in range(n_out):
        b.store(ir.Constant(objp, None), b.gep(slots, [ir.Constant(_i64, j)]))
    cleanup = fn.append_basic_block("cleanup")
    out_ptrs = []
    for j, s in enumerate(sig.outputs):
        if s.kind == "scalar":
            out_ptrs.append(b.alloca(_llty(s.dtype), name=f"out{j}"))
            continue
        nd = len(s.shape)
        dims_g = ir.GlobalVariable(m, ir.ArrayType(_i64, max(nd, 1)), name=f"{name}_dims{j}")
        dims_g.global_constant, dims_g.linkage = True, "private"
        dims_g.initializer = ir.Constant(ir.ArrayType(_i64, max(nd, 1)), list(s.shape) or [0])
        arr = b.call(arr_new, [ndarray_type, ir.Constant(_i32, nd), b.bitcast(dims_g, _i64.as_pointer()),
                               ir.Constant(_i32, s.dtype.num), ir.Constant(_i64.as_pointer(), None),
                               ir.Constant(_i8p, None), ir.Constant(_i32, 0), ir.Constant(_i32, 0),
                               ir.Constant(objp, None)])
        b.store(arr, b.gep(slots, [ir.Constant(_i64, j)]))
        ok = fn.append_basic_block(f"out{j}_ok")
        b.cbranch(b.icmp_unsigned("==", arr, ir.Constant(objp, None)), cleanup, ok)
        b.position_at_end(ok)
        out_ptrs.append(b.bitcast(field(arr, L.arr_data, _i8p), _llty(s.dtype).as_pointer()))

    # Call the entry.
    fnty = _entry_type(sig)
    # An instruction (not a constant expression) because llvmlite's call() needs `.function_type`.
    callee = entry if isinstance(entry, ir.Function) else b.inttoptr(ir.Constant(_i64, int(entry)), fnty.as_pointer())
    if sig.abi == "args":
        call_args = in_vals + out_ptrs
    else:
        ins = b.alloca(_i8p, ir.Constant(_i64, max(len(in_vals), 1)), name="ins")
        outs = b.alloca(_i8p, ir.Constant(_i64, max(n_out, 1)), name="outs")
        for i, (s, v) in enumerate(zip(sig.inputs, in_vals)):
            if s.kind == "scalar":
                box = b.alloca(v.type)
                b.store(v, box)
                v = box
            b.store(b.bitcast(v, _i8p), b.gep(ins, [ir.Constant(_i64, i)]))
        for j, p in enumerate(out_ptrs):
            b.store(b.bitcast(p, _i8p), b.gep(outs, [ir.Constant(_i64, j)]))
        call_args = [ins, outs]
    params = callee.function_type.args
    adapted = []
    for a, t in zip(call_args, params):
        if isinstance(t, ir.PointerType) and not isinstance(a.type, ir.PointerType):
            box = b.alloca(a.type)  # a scalar passed by value to an entry that takes a pointer
            b.store(a, box)
            a = box
        adapted.append(b.bitcast(a, t) if a.type != t and isinstance(t, ir.PointerType) else a)
    call_args = adapted
    b.call(callee, call_args)

    # Box results.
    for j, s in enumerate(sig.outputs):
        if s.kind != "scalar":
            continue
        descr = const_ptr(id(_DESCRS.setdefault(s.dtype, np.dtype(s.dtype))))
        boxed = b.call(to_scalar, [b.bitcast(out_ptrs[j], _i8p), descr, ir.Constant(objp, None)])
        b.store(boxed, b.gep(slots, [ir.Constant(_i64, j)]))
        ok = fn.append_basic_block(f"box{j}_ok")
        b.cbranch(b.icmp_unsigned("==", boxed, ir.Constant(objp, None)), cleanup, ok)
        b.position_at_end(ok)
    if n_out == 0:
        none = const_ptr(id(None))
        b.call(incref, [none])
        b.ret(none)
    elif n_out == 1:
        b.ret(b.load(slots))
    else:
        tup = b.call(tuple_new, [ir.Constant(_i64, n_out)])
        ok = fn.append_basic_block("tuple_ok")
        b.cbranch(b.icmp_unsigned("==", tup, ir.Constant(objp, None)), cleanup, ok)
        b.position_at_end(ok)
        for j in range(n_out):  # PyTuple_SetItem steals the reference; cannot fail on a fresh tuple
            b.call(tuple_set, [tup, ir.Constant(_i64, j), b.load(b.gep(slots, [ir.Constant(_i64, j)]))])
        b.ret(tup)

    # Error: drop what we allocated (Py_DecRef ignores NULL) and propagate the exception.
    b.position_at_end(cleanup)
    for j in range(n_out):
        b.call(decref, [b.load(b.gep(slots, [ir.Constant(_i64, j)]))])
    b.branch(fail)
    b.position_at_end(fail)
    b.ret(ir.Constant(objp, None))

    # Slow path: self(*args) -- the Python fallback coerces/validates and calls us again.
    b.position_at_end(slow)
    b.ret(b.call(vectorcall, [self_obj, args, nargs, ir.Constant(objp, None)]))
    return name


# --------------------------------------------------------------------------------------------
# The generic C-API wrapper: compiled once per process, driven by a per-function descriptor
# --------------------------------------------------------------------------------------------
#
# Generating (and LLVM-optimizing) a wrapper per compiled function costs ~8 ms of LLVM time, more
# than the whole kernel of a small function. The generic wrapper does the same checks and
# allocations in loops over a descriptor (an int64 numpy array):
#
#   D[0] = address of the entry, 'packed' ABI: void entry(void** ins, void** outs)
#   D[1] = n_in, D[2] = n_out, then one 4-word record per input, then per output:
#          [kind (0: f64 scalar, 1: f32 scalar, 2: array), numpy type number, ndim,
#           offset in D of the dims (arrays) / address of the dtype (scalar outputs)]
#   followed by the dims.
#
# Its `self` is the tuple (fallback, D): the fallback gets the arguments when a check fails.

_KIND = {("scalar", np.dtype(np.float64)): 0, ("scalar", np.dtype(np.float32)): 1}


def _descriptor(entry_address: int, sig: EntrySignature) -> np.ndarray:
    recs, dims = [], []
    base = 3 + 4 * (len(sig.inputs) + len(sig.outputs))
    for j, s in enumerate(list(sig.inputs) + list(sig.outputs)):
        if s.kind == "scalar":
            extra = id(_DESCRS.setdefault(s.dtype, np.dtype(s.dtype))) if j >= len(sig.inputs) else 0
            recs += [_KIND[("scalar", s.dtype)], s.dtype.num, 0, extra]
        else:
            recs += [2, s.dtype.num, len(s.shape), base + len(dims)]
            dims += list(s.shape)
    return np.array([entry_address, len(sig.inputs), len(sig.outputs)] + recs + dims, np.int64)


GENERIC_WRAPPER = "adj_generic_py"   # the generic wrapper's symbol


def _generic_wrapper(compile_support=None) -> int:
    """Address of the generic METH_FASTCALL wrapper (built and compiled on first use, through
    `compile_support(recipe, build, names) -> addrs` if given: the disk cache's, which can load
    it without building its IR; see generic_wrapper_recipe)."""
    st = _capi_init()
    with _capi_lock:
        if "generic" in st:
            return st["generic"]
    if not st["ok"]:
        raise RuntimeError(f"C-API wrapper unavailable: {st['reason']}")
    with _generic_lock:   # one definition of its symbol in the engine, whatever the threads
        if "generic" not in st:
            names = [GENERIC_WRAPPER]
            if compile_support is None:
                _, addrs = engine.compile_module(generic_wrapper_ir(), names)
            else:
                addrs = compile_support(generic_wrapper_recipe(), generic_wrapper_ir, names)
            with _capi_lock:
                st["generic"] = addrs[GENERIC_WRAPPER]
    return st["generic"]


def generic_wrapper_recipe() -> str:
    """What, besides this module's source and the host (which a disk-cache key holds anyway),
    decides the text generic_wrapper_ir() returns: the interpreter's struct offsets. The IR
    names the Python objects it uses (float, ndarray, None) and the C-API functions by symbol
    (bound by _capi_init), so it holds no address of this process."""
    st = _capi_init()
    return (f"generic-wrapper layout={sorted(vars(st['layout']).items())} "
            f"tuple_items={st['tuple_items']}")


def _object_symbol(m: ir.Module, name: str):
    """The address of one of _OBJECT_SYMBOLS' Python objects, as an external global of `m`."""
    full = "adj_capi_" + name
    if full not in m.globals:
        ir.GlobalVariable(m, _i8, name=full)
    return m.globals[full]


def generic_wrapper_ir() -> str:
    """LLVM IR text of the generic wrapper (see the comment above _descriptor)."""
    _ir()
    st = _capi_init()
    L = st["layout"]
    m = ir.Module(name="adj_generic_wrapper")
    m.triple, m.data_layout = engine.triple_and_layout()
    objp = _i8p
    i64p = _i64.as_pointer()
    (as_double, to_scalar, err_occurred, tuple_new, tuple_set, vectorcall, decref, incref,
     arr_new) = _declare_capi(m)
    entry_ty = ir.FunctionType(ir.VoidType(), [_i8p.as_pointer(), _i8p.as_pointer()]).as_pointer()

    fn = ir.Function(m, ir.FunctionType(objp, [objp, objp.as_pointer(), _i64]), name=GENERIC_WRAPPER)
    self_obj, args, nargs = fn.args
    entry_block = fn.append_basic_block("entry")
    b = ir.IRBuilder(entry_block)
    slow = fn.append_basic_block("slow")
    fail = fn.append_basic_block("fail")
    cleanup = fn.append_basic_block("cleanup")
    c64 = lambda v: ir.Constant(_i64, v)  # noqa: E731
    null = ir.Constant(objp, None)

    def field(obj, offset, ty):
        p = b.gep(obj, [c64(offset)], inbounds=True)
        return b.load(b.bitcast(p, ty.as_pointer()))

    def guard(cond, label):
        ok = fn.append_basic_block(label)
        b.cbranch(cond, ok, slow)
        b.position_at_end(ok)

    def loop(n, body, label):
        """for k in range(n): body(k) -- n is an i64 value."""
        pre = b.block
        head = fn.append_basic_block(label + ".head")
        bb = fn.append_basic_block(label + ".body")
        done = fn.append_basic_block(label + ".done")
        b.branch(head)
        b.position_at_end(head)
        k = b.phi(_i64)
        k.add_incoming(c64(0), pre)
        b.cbranch(b.icmp_signed("<", k, n), bb, done)
        b.position_at_end(bb)
        body(k)
        k.add_incoming(b.add(k, c64(1)), b.block)
        b.branch(head)
        b.position_at_end(done)

    fallback = field(self_obj, st["tuple_items"], objp)
    darr = field(self_obj, st["tuple_items"] + 8, objp)
    D = b.bitcast(field(darr, L.arr_data, _i8p), i64p)

    def word(idx):
        return b.load(b.gep(D, [idx if not isinstance(idx, int) else c64(idx)], inbounds=True))

    n_in, n_out = word(1), word(2)
    n_all = b.add(n_in, n_out)
    ptrs = b.alloca(_i8p, n_all, name="ptrs")
    vals = b.alloca(_f64, n_all, name="vals")
    slots = b.alloca(objp, b.add(n_out, c64(1)), name="slots")
    loop(n_out, lambda j: b.store(null, b.gep(slots, [j])), "zero")
    guard(b.icmp_signed("==", nargs, n_in), "nargs_ok")
    float_type = _object_symbol(m, "PyFloat_Type")
    ndarray_type = _object_symbol(m, "PyArray_Type")

    def rec(k, f):
        return word(b.add(c64(3 + f), b.mul(k, c64(4))))

    def one_input(i):
        obj = b.load(b.gep(args, [i], inbounds=True))
        tp = field(obj, L.ob_type, objp)
        kind = rec(i, 0)
        slot = b.gep(vals, [i])
        is_arr = fn.append_basic_block("in.array")
        is_sc = fn.append_basic_block("in.scalar")
        nxt = fn.append_basic_block("in.next")
        b.cbranch(b.icmp_signed("==", kind, c64(2)), is_arr, is_sc)
        # scalar: exact float read directly, anything else through PyFloat_AsDouble
        b.position_at_end(is_sc)
        v = _unbox_double(b, obj, tp, float_type, L.float_val, as_double, err_occurred, fail, "in")
        is64 = fn.append_basic_block("in.f64")
        is32 = fn.append_basic_block("in.f32")
        b.cbranch(b.icmp_signed("==", kind, c64(0)), is64, is32)
        b.position_at_end(is64)
        b.store(v, slot)
        b.branch(nxt)
        b.position_at_end(is32)
        b.store(b.fptrunc(v, _f32), b.bitcast(slot, _f32.as_pointer()))
        b.branch(nxt)
        # array: exact ndarray, dtype number, native byte order, C-contiguous + aligned, shape
        b.position_at_end(is_arr)
        guard(b.icmp_unsigned("==", tp, ndarray_type), "in.is_ndarray")
        descr = field(obj, L.arr_descr, objp)
        flags = field(obj, L.arr_flags, _i32)
        want = ir.Constant(_i32, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED)
        nd = rec(i, 2)
        cond = b.and_(b.icmp_signed("==", b.sext(field(descr, L.descr_type_num, _i32), _i64),
                                    rec(i, 1)),
                      b.icmp_unsigned("!=", field(descr, L.descr_byteorder, _i8),
                                      ir.Constant(_i8, ord(">"))))
        cond = b.and_(cond, b.icmp_signed("==", b.and_(flags, want), want))
        cond = b.and_(cond, b.icmp_signed("==", b.sext(field(obj, L.arr_nd, _i32), _i64), nd))
        guard(cond, "in.ok")
        dims = field(obj, L.arr_dims, i64p)
        doff = rec(i, 3)

        def check_dim(k):
            d = b.load(b.gep(dims, [k], inbounds=True))
            guard(b.icmp_signed("==", d, word(b.add(doff, k))), "in.dim_ok")
        loop(nd, check_dim, "dims")
        b.store(field(obj, L.arr_data, _i8p), b.gep(ptrs, [i]))
        b.branch(nxt)
        b.position_at_end(nxt)

    def in_ptr_fix(i):
        # scalar inputs point at their value slot
        kind = rec(i, 0)
        sc = fn.append_basic_block("fix.scalar")
        nx = fn.append_basic_block("fix.next")
        b.cbranch(b.icmp_signed("<", kind, c64(2)), sc, nx)
        b.position_at_end(sc)
        b.store(b.bitcast(b.gep(vals, [i]), _i8p), b.gep(ptrs, [i]))
        b.branch(nx)
        b.position_at_end(nx)

    loop(n_in, one_input, "ins")
    loop(n_in, in_ptr_fix, "insp")

    def one_output(j):
        k = b.add(n_in, j)
        kind = rec(k, 0)
        arr_b = fn.append_basic_block("out.array")
        sc_b = fn.append_basic_block("out.scalar")
        nxt = fn.append_basic_block("out.next")
        b.cbranch(b.icmp_signed("==", kind, c64(2)), arr_b, sc_b)
        b.position_at_end(sc_b)
        b.store(b.bitcast(b.gep(vals, [k]), _i8p), b.gep(ptrs, [k]))
        b.branch(nxt)
        b.position_at_end(arr_b)
        dims = b.gep(D, [rec(k, 3)], inbounds=True)
        arr = b.call(arr_new, [ndarray_type, b.trunc(rec(k, 2), _i32), dims, b.trunc(rec(k, 1), _i32),
                               ir.Constant(i64p, None), ir.Constant(_i8p, None), ir.Constant(_i32, 0),
                               ir.Constant(_i32, 0), null])
        b.store(arr, b.gep(slots, [j]))
        ok = fn.append_basic_block("out.ok")
        b.cbranch(b.icmp_unsigned("==", arr, null), cleanup, ok)
        b.position_at_end(ok)
        b.store(field(arr, L.arr_data, _i8p), b.gep(ptrs, [k]))
        b.branch(nxt)
        b.position_at_end(nxt)
    loop(n_out, one_output, "outs")

    entry = b.inttoptr(word(0), entry_ty)
    b.call(entry, [ptrs, b.gep(ptrs, [n_in])])

    def box(j):
        k = b.add(n_in, j)
        sc_b = fn.append_basic_block("box.scalar")
        nxt = fn.append_basic_block("box.next")
        b.cbranch(b.icmp_signed("<", rec(k, 0), c64(2)), sc_b, nxt)
        b.position_at_end(sc_b)
        descr = b.inttoptr(rec(k, 3), objp)
        boxed = b.call(to_scalar, [b.bitcast(b.gep(vals, [k]), _i8p), descr, null])
        b.store(boxed, b.gep(slots, [j]))
        ok = fn.append_basic_block("box.ok")
        b.cbranch(b.icmp_unsigned("==", boxed, null), cleanup, ok)
        b.position_at_end(ok)
        b.branch(nxt)
        b.position_at_end(nxt)
    loop(n_out, box, "box")

    one = fn.append_basic_block("ret.one")
    many = fn.append_basic_block("ret.many")
    none_b = fn.append_basic_block("ret.none")
    sw = b.switch(n_out, many)
    sw.add_case(c64(0), none_b)
    sw.add_case(c64(1), one)
    b.position_at_end(none_b)
    none = _object_symbol(m, "Py_None")
    b.call(incref, [none])
    b.ret(none)
    b.position_at_end(one)
    b.ret(b.load(slots))
    b.position_at_end(many)
    tup = b.call(tuple_new, [n_out])
    ok = fn.append_basic_block("tuple_ok")
    b.cbranch(b.icmp_unsigned("==", tup, null), cleanup, ok)
    b.position_at_end(ok)
    loop(n_out, lambda j: b.call(tuple_set, [tup, j, b.load(b.gep(slots, [j]))]), "tset")
    b.ret(tup)

    b.position_at_end(cleanup)
    loop(n_out, lambda j: b.call(decref, [b.load(b.gep(slots, [j]))]), "dec")
    b.branch(fail)
    b.position_at_end(fail)
    b.ret(null)
    b.position_at_end(slow)
    b.ret(b.call(vectorcall, [fallback, args, nargs, null]))
    return str(m)


_GENERIC_DEF: list = []   # the one PyMethodDef of the generic wrapper (must stay alive)


def wrap_packed(entry_address: int, sig: EntrySignature, owner=None, compile_support=None):
    """A builtin Python callable for a compiled 'packed' entry (void entry(void** ins,
    void** outs)), through the generic C-API wrapper: nothing is compiled per function.
    `owner` (e.g. the engine.CodeUnit of the entry) is kept alive as long as the callable;
    `compile_support` as for _generic_wrapper (used once per process)."""
    st = _capi_init()
    addr = _generic_wrapper(compile_support)
    if not _GENERIC_DEF:
        _GENERIC_DEF.append(_PyMethodDef(b"adj_compiled", addr, METH_FASTCALL, None))
    holder = []

    def fallback(*args):
        return holder[0]()(*_coerce_all(args, sig))

    # the wrapper reads items 0 and 1; item 2 only keeps the owner alive
    self_obj = (fallback, _descriptor(entry_address, sig), owner)
    fast = st["new_ex"](ctypes.addressof(_GENERIC_DEF[0]), self_obj, None)
    holder.append(weakref.ref(fast))   # no cycle: freed by reference counting, not a GC pass
    return fast


def add_packed_entry(module: ir.Module, entry, n_in: int, name: str,
                     fnty: ir.FunctionType | None = None) -> str:
    """Add `void name(i8** ins, i8** outs)` calling `entry` (an ir.Function of `module`, or an
    address with its 'args' ABI type `fnty`): the ABI of the generic wrapper. Pointer
    parameters get the slot's pointer, by-value scalars the value it points at."""
    _ir()
    fnty = fnty or entry.function_type
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [_i8p.as_pointer()] * 2), name=name)
    fn.attributes.add("nounwind")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ins, outs = fn.args
    vals = []
    for k, t in enumerate(fnty.args):
        base, pos = (ins, k) if k < n_in else (outs, k - n_in)
        p = b.load(b.gep(base, [ir.Constant(_i64, pos)], inbounds=True))
        vals.append(b.bitcast(p, t) if isinstance(t, ir.PointerType)
                    else b.load(b.bitcast(p, t.as_pointer())))
    callee = entry if isinstance(entry, ir.Function) else \
        b.inttoptr(ir.Constant(_i64, int(entry)), fnty.as_pointer())
    b.call(callee, vals)
    b.ret_void()
    return name


def make_generic_caller(address: int, sig: EntrySignature):
    """The generic wrapper around the entry at `address` ('args' entries get a small compiled
    adapter to the packed ABI)."""
    if sig.abi != "packed":
        _ir()
        mod = ir.Module(name="adj_packed_adapter")
        mod.triple, mod.data_layout = engine.triple_and_layout()
        name = add_packed_entry(mod, address, len(sig.inputs), f"adj_packed_{next(_counter)}",
                                _entry_type(sig))
        _, addrs = engine.compile_module(str(mod), [name])
        address = addrs[name]
    return wrap_packed(address, sig)


class _PyMethodDef(ctypes.Structure):
    _fields_ = [("ml_name", ctypes.c_char_p), ("ml_meth", ctypes.c_void_p),
                ("ml_flags", ctypes.c_int), ("ml_doc", ctypes.c_char_p)]


def wrap_compiled(wrapper_address: int, sig: EntrySignature):
    """Turn the compiled address of an `add_python_wrapper` function into a builtin Python callable."""
    st = _capi_init()
    holder = {}

    def fallback(*args):
        # Reached only when a fast check failed: coerce (or raise TypeError), then retry the fast path,
        # whose checks the coerced values always pass.
        return holder["fast"](*_coerce_all(args, sig))

    mdef = _PyMethodDef(sig.name.encode(), wrapper_address, METH_FASTCALL, None)
    # self = fallback: the wrapper calls it on the slow path, and the function object keeps it alive.
    fast = st["new_ex"](ctypes.addressof(mdef), fallback, None)
    fallback._adj_keepalive = mdef  # the PyMethodDef must outlive the builtin that points at it
    holder["fast"] = fast           # cycle fast -> fallback -> holder -> fast; builtins are GC-tracked
    return fast


def make_capi_caller(address: int, sig: EntrySignature):
    """Compile a C-API wrapper for an already compiled entry at `address` and return it as a builtin."""
    _ir()
    mod = ir.Module(name="adj_pywrap")
    mod.triple, mod.data_layout = engine.triple_and_layout()
    name = add_python_wrapper(mod, address, sig)
    _, addrs = engine.compile_module(str(mod), [name])
    return wrap_compiled(addrs[name], sig)


def make_caller(address: int, sig: EntrySignature, method: str = "auto"):
    """Fastest available Python callable for the entry at `address` ('auto' | 'capi' | 'generic'
    | 'ctypes'; 'generic' is the compiled-once wrapper the backend uses, slightly slower per call
    than 'capi' but with nothing compiled per signature)."""
    if method == "auto":
        method = "capi" if capi_available() else "ctypes"
    if method == "capi":
        return make_capi_caller(address, sig)
    if method == "generic":
        return make_generic_caller(address, sig)
    if method == "ctypes":
        return make_ctypes_caller(address, sig)
    raise ValueError(f"method must be 'auto', 'capi', 'generic' or 'ctypes', not {method!r}")
