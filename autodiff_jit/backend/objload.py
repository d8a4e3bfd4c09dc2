"""Map object code into this process without LLVM: a small ELF loader for x86-64 Linux.

A disk-cache hit (cache.py) holds the object code MCJIT produced for a module. Loading it
through MCJIT costs importing llvmlite's LLVM library and creating an engine (~30-40 ms of a
new process's first call); what MCJIT does with it is simple, and done here instead:

* the allocated sections are copied into one anonymous mapping, in three page-aligned parts:
  code, read-only data, writable data;
* relocations are applied. MCJIT compiles with the JIT's (large) code model, so code refers to
  everything -- other sections, helper functions, C-API and BLAS symbols -- through 64-bit
  absolute relocations (R_X86_64_64); PC-relative ones (PC32/PLT32/PC64) are applied when
  they fit;
* the code part becomes read+execute and the read-only part read-only (W^X: no page is ever
  writable and executable at once).

Undefined symbols come from `resolve(name) -> address | None` (the engine's symbol table, then
the process's, as MCJIT resolves them). Anything this loader is not sure of -- another machine
or ELF flavour, a relocation type not listed above, a TLS or COMMON symbol, static
constructors, an unresolved symbol, mprotect refused (a hardened kernel) -- raises
`Unsupported`, and the caller loads the object through MCJIT instead (bytes that are no ELF
object or are cut short raise its subclass `Malformed`: no loader gets them). `.eh_frame` (unwind
tables, needed only by C++ exceptions and debuggers) is not loaded.
"""
from __future__ import annotations

import ctypes
import os
import struct
import sys

_PAGE = 4096   # protection granularity: a multiple of it works with any larger page size too


class Unsupported(Exception):
    """This object code cannot be loaded here by this loader (use MCJIT)."""


class Malformed(Unsupported):
    """Not an ELF object at all, or cut short: not for MCJIT either (LLVM's object parser
    can crash the process on such bytes), so the caller treats the code as unusable."""


# the hosts this loader handles: x86-64 Linux, 64-bit little-endian Python
HOST = (sys.platform.startswith("linux") and os.uname().machine in ("x86_64", "amd64")
        and sys.byteorder == "little" and ctypes.sizeof(ctypes.c_void_p) == 8)


def supported() -> bool:
    """True on HOST, unless $AUTODIFF_JIT_OBJLOAD is 0/false/no/off (then MCJIT loads)."""
    flag = os.environ.get("AUTODIFF_JIT_OBJLOAD", "1").strip().lower()
    return HOST and flag not in ("0", "false", "no", "off")


# ELF constants (System V gABI, x86-64 psABI)
_EM_X86_64, _ET_REL = 62, 1
_SHT_PROGBITS, _SHT_SYMTAB, _SHT_RELA, _SHT_NOBITS, _SHT_REL = 1, 2, 4, 8, 9
_SHT_INIT_ARRAY, _SHT_FINI_ARRAY, _SHT_PREINIT_ARRAY = 14, 15, 16
_SHF_WRITE, _SHF_ALLOC, _SHF_EXECINSTR, _SHF_TLS = 0x1, 0x2, 0x4, 0x400
_SHN_UNDEF, _SHN_LORESERVE, _SHN_ABS, _SHN_COMMON = 0, 0xff00, 0xfff1, 0xfff2
_STB_LOCAL, _STB_WEAK = 0, 2
_STT_TLS, _STT_GNU_IFUNC = 6, 10
_R_X86_64_64, _R_X86_64_PC32, _R_X86_64_PLT32, _R_X86_64_PC64 = 1, 2, 4, 24

_SHDR = struct.Struct("<IIQQQQIIQQ")   # name type flags addr offset size link info align entsize
_SYM = struct.Struct("<IBBHQQ")        # name info other shndx value size
_RELA = struct.Struct("<QQq")          # offset info addend

_PROT_READ, _PROT_WRITE, _PROT_EXEC = 1, 2, 4
_MAP_PRIVATE, _MAP_ANONYMOUS = 0x02, 0x20
_libc: dict = {}


def _c():
    if not _libc:
        libc = ctypes.CDLL(None, use_errno=True)
        mmap, mprotect, munmap = libc.mmap, libc.mprotect, libc.munmap
        mmap.restype = ctypes.c_void_p
        mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                         ctypes.c_int, ctypes.c_long]
        mprotect.restype = munmap.restype = ctypes.c_int
        mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        _libc.update(lib=libc, mmap=mmap, mprotect=mprotect, munmap=munmap)
    return _libc


def process_symbol(name: str) -> int | None:
    """Address of a symbol of the process's global scope (libc, libm, the interpreter), or None."""
    try:
        return ctypes.cast(getattr(_c()["lib"], name), ctypes.c_void_p).value
    except AttributeError:
        return None


class Mapping:
    """Memory holding loaded code; unmapped when garbage-collected. Whatever can call into the
    code must hold a reference to it."""

    def __init__(self, address: int, size: int):
        self.address, self.size = address, size

    def __del__(self):
        address, self.address = getattr(self, "address", None), None
        if address and _libc:
            _libc["munmap"](address, self.size)

    def __reduce__(self):
        raise TypeError("loaded machine code cannot be pickled or copied")


def load(obj: bytes, resolve) -> tuple[dict, Mapping]:
    """Load relocatable ELF object code; return ({defined global symbol: address}, owner)."""
    obj = bytes(obj)
    if len(obj) < 64 or obj[:4] != b"\x7fELF" or obj[4] != 2 or obj[5] != 1:
        raise Malformed("not 64-bit little-endian ELF")
    e_type, e_machine = struct.unpack_from("<HH", obj, 16)
    e_shoff, = struct.unpack_from("<Q", obj, 40)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", obj, 58)
    if e_type != _ET_REL or e_machine != _EM_X86_64 or e_shentsize != _SHDR.size:
        raise Unsupported("not an x86-64 relocatable object")
    try:
        shdrs = [_SHDR.unpack_from(obj, e_shoff + i * _SHDR.size) for i in range(e_shnum)]
        names = shdrs[e_shstrndx]
    except (struct.error, IndexError):
        raise Malformed("truncated section headers") from None

    def cstr(table, off):
        start = table[4] + off
        end = obj.index(b"\0", start)
        return obj[start:end].decode()

    # place the allocated sections: code | read-only data | writable data, each page-aligned
    placed: dict[int, int] = {}          # section index -> offset in the mapping
    parts = [[], [], []]
    for i, sh in enumerate(shdrs):
        kind, flags = sh[1], sh[2]
        if kind in (_SHT_INIT_ARRAY, _SHT_FINI_ARRAY, _SHT_PREINIT_ARRAY):
            raise Unsupported("static constructors")
        if not flags & _SHF_ALLOC or cstr(names, sh[0]) == ".eh_frame":
            continue
        if flags & _SHF_TLS or kind not in (_SHT_PROGBITS, _SHT_NOBITS):
            raise Unsupported(f"section type {kind:#x}")
        if flags & _SHF_WRITE and flags & _SHF_EXECINSTR:
            raise Unsupported("writable code")
        parts[0 if flags & _SHF_EXECINSTR else 2 if flags & _SHF_WRITE else 1].append(i)
    bounds, pos = [], 0
    for part in parts:
        start = pos
        for i in part:
            align = max(shdrs[i][8], 1)
            pos = (pos + align - 1) // align * align
            placed[i] = pos
            pos += shdrs[i][5]
        bounds.append((start, pos))
        pos = (pos + _PAGE - 1) // _PAGE * _PAGE
    size = max(pos, _PAGE)
    image = bytearray(size)
    for i, off in placed.items():
        sh = shdrs[i]
        if sh[1] == _SHT_PROGBITS:
            if sh[4] + sh[5] > len(obj):
                raise Malformed("truncated section")
            image[off:off + sh[5]] = obj[sh[4]:sh[4] + sh[5]]

    c = _c()
    base = c["mmap"](None, size, _PROT_READ | _PROT_WRITE, _MAP_PRIVATE | _MAP_ANONYMOUS, -1, 0)
    if base in (None, ctypes.c_void_p(-1).value):
        raise Unsupported(f"mmap failed (errno {ctypes.get_errno()})")
    owner = Mapping(base, size)
    try:
        symbols = _symbols(obj, shdrs, placed, base, cstr, resolve)
        for sh in shdrs:
            if sh[1] == _SHT_REL:
                raise Unsupported("REL relocations")
            if sh[1] == _SHT_RELA and sh[7] in placed:
                _relocate(obj, sh, image, placed[sh[7]], shdrs[sh[7]][5], base, symbols[1])
        ctypes.memmove(base, bytes(image), size)
        for (start, end), prot in zip(bounds, (_PROT_READ | _PROT_EXEC, _PROT_READ)):
            if end > start:
                lo = start // _PAGE * _PAGE
                if c["mprotect"](base + lo, end - lo, prot) != 0:
                    raise Unsupported(f"mprotect failed (errno {ctypes.get_errno()})")
    except (struct.error, IndexError, ValueError, UnicodeDecodeError) as exc:
        raise Malformed(f"malformed object code: {exc}") from None
    return symbols[0], owner


def _symbols(obj, shdrs, placed, base, cstr, resolve):
    """({global defined name: address}, [address of symbol i or None])."""
    tabs = [sh for sh in shdrs if sh[1] == _SHT_SYMTAB]
    if len(tabs) != 1:
        raise Unsupported("not one symbol table")
    tab = tabs[0]
    strtab = shdrs[tab[6]]
    exported, addrs = {}, []
    for k in range(tab[5] // _SYM.size):
        st_name, info, _other, shndx, value, _size = _SYM.unpack_from(obj, tab[4] + k * _SYM.size)
        bind, typ = info >> 4, info & 0xf
        name = cstr(strtab, st_name) if st_name else ""
        if typ in (_STT_TLS, _STT_GNU_IFUNC):
            raise Unsupported(f"symbol type {typ} ({name})")
        if shndx == _SHN_UNDEF:
            if k == 0:
                addr = 0
            else:
                addr = resolve(name)
                if not addr:
                    if bind != _STB_WEAK:
                        raise Unsupported(f"unresolved symbol {name}")
                    addr = 0
        elif shndx == _SHN_ABS:
            addr = value
        elif shndx >= _SHN_LORESERVE:   # COMMON and processor-specific indices
            raise Unsupported(f"symbol {name} in special section {shndx:#x}")
        elif shndx in placed:
            addr = base + placed[shndx] + value
        else:
            addr = None                  # in a section not loaded (.eh_frame, notes)
        if bind != _STB_LOCAL and name and shndx != _SHN_UNDEF and addr is not None:
            exported[name] = addr
        addrs.append(addr)
    return exported, addrs


def _relocate(obj, sh, image, target_off, target_size, base, sym_addrs):
    for k in range(sh[5] // _RELA.size):
        offset, info, addend = _RELA.unpack_from(obj, sh[4] + k * _RELA.size)
        sym, typ = info >> 32, info & 0xffffffff
        if offset + (4 if typ in (_R_X86_64_PC32, _R_X86_64_PLT32) else 8) > target_size:
            raise Unsupported("relocation outside its section")
        if sym >= len(sym_addrs) or sym_addrs[sym] is None:
            raise Unsupported("relocation against a symbol not loaded")
        s = sym_addrs[sym]
        at = target_off + offset
        place = base + at
        if typ == _R_X86_64_64:
            struct.pack_into("<Q", image, at, (s + addend) & 0xffffffffffffffff)
        elif typ in (_R_X86_64_PC32, _R_X86_64_PLT32):
            v = s + addend - place
            if not -2**31 <= v < 2**31:
                raise Unsupported("PC-relative target out of range")
            struct.pack_into("<i", image, at, v)
        elif typ == _R_X86_64_PC64:
            struct.pack_into("<q", image, at, s + addend - place)
        else:
            raise Unsupported(f"relocation type {typ}")
