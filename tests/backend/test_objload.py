"""The ELF loader a disk-cache hit maps object code with (backend/objload.py): same results as
MCJIT, W^X pages, MCJIT where it refuses, and a clean `Unsupported` (so MCJIT loads it instead) for anything it does
not handle -- never a crash."""
import ctypes
import math
import struct

import numpy as np
import pytest

from autodiff_jit.backend import engine, objload

pytestmark = pytest.mark.skipif(not objload.supported(), reason="objload: x86-64 Linux only")

# calls libm (exp), reads a constant pool (the 0.25 and 3.5), calls a registered symbol
IR = r"""
declare double @exp(double)
declare double @adj_test_objload_helper(double)
define void @adj_test_objload(double* %x, double* %out) {
  %v = load double, double* %x
  %e = call double @exp(double %v)
  %h = call double @adj_test_objload_helper(double %v)
  %a = fmul double %e, 2.5e-1
  %b = fadd double %a, 3.5
  %c = fadd double %b, %h
  store double %c, double* %out
  ret void
}
"""
HELPER = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double)(lambda v: 10.0 * v)
CALL = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


def _expected(v):
    return math.exp(v) * 0.25 + 3.5 + 10.0 * v


def _object():
    engine.add_symbol("adj_test_objload_helper", ctypes.cast(HELPER, ctypes.c_void_p).value)
    triple, layout = engine.triple_and_layout()
    text = f'target triple = "{triple}"\ntarget datalayout = "{layout}"\n' + IR
    _, addrs, obj = engine.compile_module(text, ["adj_test_objload"], want_object=True,
                                          unit=engine.CodeUnit())
    assert obj
    return obj


def _call(address, v):
    x, out = np.array([v]), np.zeros(1)
    CALL(address)(x.ctypes.data, out.ctypes.data)
    return float(out[0])


def _perms(address):
    with open("/proc/self/maps") as fh:
        for line in fh:
            span, perms = line.split()[:2]
            lo, hi = (int(p, 16) for p in span.split("-"))
            if lo <= address < hi:
                return perms
    raise AssertionError("address not mapped")


def test_loaded_code_computes_what_mcjit_code_computes():
    obj = _object()
    defined, owner = objload.load(obj, engine._resolve)
    address = defined["adj_test_objload"]
    for v in (0.0, -1.5, 2.0, 7.25):
        assert _call(address, v) == _expected(v)
    assert _perms(address).startswith("r-x")          # code: never writable
    assert isinstance(owner, objload.Mapping) and owner.size % 4096 == 0


def test_no_page_is_writable_and_executable():
    owners = [objload.load(_object(), engine._resolve)[1] for _ in range(3)]
    with open("/proc/self/maps") as fh:
        for line in fh:
            span, perms = line.split()[:2]
            lo = int(span.split("-")[0], 16)
            if any(o.address <= lo < o.address + o.size for o in owners):
                assert not ("w" in perms and "x" in perms), line


def _relocations(obj):
    """(file offset of each RELA entry's info field)"""
    (shoff,) = struct.unpack_from("<Q", obj, 40)
    (shnum,) = struct.unpack_from("<H", obj, 60)
    out = []
    for i in range(shnum):
        sh = objload._SHDR.unpack_from(obj, shoff + i * objload._SHDR.size)
        if sh[1] == objload._SHT_RELA:
            out += [sh[4] + k * 24 + 8 for k in range(sh[5] // 24)]
    return out


def test_unknown_relocation_type_is_unsupported(monkeypatch):
    obj = bytearray(_object())
    for at in _relocations(obj):
        info = struct.unpack_from("<Q", obj, at)[0]
        struct.pack_into("<Q", obj, at, (info & ~0xffffffff) | 9)   # R_X86_64_GOTPCREL
    with pytest.raises(objload.Unsupported, match="relocation type 9"):
        objload.load(bytes(obj), engine._resolve)


def test_what_objload_refuses_mcjit_loads(monkeypatch):
    def refuse(obj, resolve):
        raise objload.Unsupported("test")
    monkeypatch.setattr(objload, "load", refuse)
    addrs, owner = engine.map_object(_object(), ["adj_test_objload"])
    assert isinstance(owner, engine.CodeUnit)
    assert _call(addrs["adj_test_objload"], 1.0) == _expected(1.0)


def test_unresolved_symbol_is_unsupported(monkeypatch):
    obj = _object()
    monkeypatch.delitem(engine._symbols, "adj_test_objload_helper")
    with pytest.raises(objload.Unsupported, match="unresolved symbol adj_test_objload_helper"):
        objload.load(obj, engine._resolve)


def test_damaged_object_code_is_unsupported_not_a_crash():
    obj = _object()
    for n in (0, 10, 63, 64, 200, len(obj) // 2, len(obj) - 1):
        with pytest.raises(objload.Unsupported):
            objload.load(obj[:n], engine._resolve)
    with pytest.raises(objload.Unsupported):
        objload.load(b"\x7fELF" + b"\xff" * 200, engine._resolve)
    # not an object at all: not handed to MCJIT either (its parser can crash on such bytes)
    for bad in (obj[:10], obj[:63], b"\x7fELF" + b"\0" * 60):
        with pytest.raises(objload.Malformed):
            objload.load(bad, engine._resolve)
    with pytest.raises(RuntimeError, match="malformed"):
        engine.map_object(b"\x7fELF" + b"\0" * 60, ["f"])


def test_switched_off_loads_through_mcjit(monkeypatch):
    monkeypatch.setenv("AUTODIFF_JIT_OBJLOAD", "0")
    assert not objload.supported()
    addrs, owner = engine.map_object(_object(), ["adj_test_objload"])
    assert isinstance(owner, engine.CodeUnit)
    assert _call(addrs["adj_test_objload"], 0.5) == _expected(0.5)
