"""On-disk compile cache: `compile_function(fn, cache=True | path)` (the api passes
ad.config.cache unless a function says otherwise: on by default).

One file per key, `<dir>/<key>.adjc`, holding everything a later process needs to skip both
lowering and LLVM (optimization and code generation):

* the object code MCJIT produced for the module (captured through the engine's object cache
  hook, `engine.compile_module(..., want_object=True)`), loaded back with
  `engine.map_object` (relocation only, well under a millisecond): on x86-64 Linux by
  objload.py, without importing LLVM at all, elsewhere (or when objload is unsure) by MCJIT;
* the call metadata: entry / packed-entry symbol names, chosen call method, arena size and
  whether the caller passes it, input/output shapes and dtypes, the result plan (with the
  arrays of literal/constant results);
* the constant arrays the code reads. Generated code addresses constants by their address in
  the compiling process (`inttoptr (i64 <addr> ...)`), which means nothing to another process:
  for a cacheable compile the IR text is rewritten (`relocatable_ir`) so that each constant
  is an external global `@<prefix>_k<i>`; the loading process binds those symbols to its own
  copies of the stored arrays;
* the LLVM IR text as generated (zlib), for `.llvm_ir()` and, re-optimized on demand,
  `.llvm_ir(optimized=True)` / `.asm()`.

Key (`key()`): a 256-bit BLAKE2b hash of the optimized IR's text (source-location comments
left out, large constants summarized) and the bytes of every constant, the call method asked
for, the host
(`engine.host_fingerprint`: target, CPU model and features, LLVM build), the llvmlite, numpy,
Python, autodiff_jit versions, `FORMAT_VERSION` and a fingerprint of the
lowering's source files (so that editing the backend never serves stale code). The BLAS ABI
(symbol scheme, integer width) is stored in entries that call BLAS and checked on load.

Symbols: `<prefix>_<gen>` with prefix `adj_c<first 20 hex digits of the key>` and a 6-hex-digit
generation. MCJIT's symbol table is process-wide, so loading an entry whose names are already
defined here (same function compiled or loaded twice in one process) patches the generation
in the object code (same length: the ELF string table is rewritten in place) before loading.

Files are written to a temporary name and `os.replace`d, so readers never see a partial
entry; every entry carries a BLAKE2b hash of its content: a truncated/corrupt/foreign file is
ignored (counted in `stats()["corrupt"]`) and overwritten by the recompiled entry. A directory
that cannot be created or written is used read-only (one RuntimeWarning per directory).
Whatever fails in the cache, the function is compiled: a cache problem never fails a call.

Size: a hit touches its entry (modification time = last use); a write checks, now and then
(`_maybe_prune`: about once per tenth of the cap written), whether the directory is over
ad.config.cache_max_bytes, and `prune` then deletes the least recently used entries down to
LOW_WATER of it. Clearing the cache = deleting the directory (or `clear(path)`).

Support code (the call path's generic wrapper, sin/cos/tan's huge-argument module, the thread
pool's runtime: compiled
once per process, the same for every function) goes through `support_compiler` in
`support_dir()` whatever the function's `cache=` says: keyed on a recipe string plus
environment(), so a hit maps its object code without building its IR.
"""
from __future__ import annotations

import functools
import marshal
import os
import re
import struct
import sys
import threading
import time
import warnings
import zlib
from pathlib import Path

import numpy as np

from ..config import config
from ..ir import Function, print_function
from . import engine

try:   # hashlib.blake2b is this very type; importing it directly skips hashlib's loading of
    from _blake2 import blake2b as _blake2b   # OpenSSL (~5 ms of a process's first compile)
except ImportError:   # a Python built without its own hashes
    from hashlib import blake2b as _blake2b

FORMAT_VERSION = 4      # bump when the entry layout or the lowering's output changes
                        # (4: 0-d constant results stay 0-d)
SUFFIX = ".adjc"
_MAGIC = b"ADJCACH1"
_GEN_DIGITS = 6

_lock = threading.Lock()
_stats = {"hits": 0, "misses": 0, "stores": 0, "corrupt": 0, "write_errors": 0,
          "uncacheable": 0, "evicted": 0, "errors": 0,
          "helper_hits": 0, "helper_misses": 0, "helper_stores": 0}
_warned_dirs: set = set()
_gens: dict[str, int] = {}            # name prefix -> next free generation in this process
_fingerprint: dict = {}


# ---------------------------------------------------------------------------------------------
# statistics

def stats() -> dict:
    """Counters of this process: hits (entries loaded), misses (compiled: no usable entry),
    stores (entries written), corrupt (unreadable entries ignored), write_errors,
    uncacheable (functions whose code cannot be cached, e.g. kernel profiling on),
    evicted (entries deleted to keep the directory under ad.config.cache_max_bytes),
    errors (anything else that went wrong in the cache: the function was compiled);
    helper_*: the same for support code (support_compiler: the generic call wrapper,
    sin/cos/tan's huge-argument module, the thread pool's runtime; once per process each)."""
    with _lock:
        return dict(_stats)


def reset_stats() -> None:
    with _lock:
        for k in _stats:
            _stats[k] = 0


def _count(name, n=1):
    with _lock:
        _stats[name] += n


# ---------------------------------------------------------------------------------------------
# directory

def default_dir() -> Path:
    """$AUTODIFF_JIT_CACHE_DIR, else $XDG_CACHE_HOME/autodiff_jit, else ~/.cache/autodiff_jit."""
    env = os.environ.get("AUTODIFF_JIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "autodiff_jit"


def resolve_dir(cache) -> Path:
    """The directory meant by a `cache=` option: True -> default_dir(), a str/PathLike -> it."""
    if cache is True:
        return default_dir()
    if isinstance(cache, (str, os.PathLike)):
        return Path(os.fspath(cache)).expanduser()
    raise TypeError(f"cache= must be True, False/None or a directory path, not {cache!r}")


def clear(cache=True) -> int:
    """Delete every entry (and stale temporary file) of a cache directory; returns the count."""
    d = resolve_dir(cache)
    n = 0
    if d.is_dir():
        for p in d.iterdir():
            if p.suffix == SUFFIX or p.name.endswith(".tmp"):
                try:
                    p.unlink()
                    n += 1
                except OSError:
                    pass
    return n


def _warn_once(d: Path, what: str, exc: BaseException) -> None:
    with _lock:
        if str(d) in _warned_dirs:
            return
        _warned_dirs.add(str(d))
    warnings.warn(f"autodiff_jit: compile cache directory {d} is not usable ({what}: {exc}); "
                  f"compiling without it (point AUTODIFF_JIT_CACHE_DIR at a writable directory, "
                  f"or switch the cache off: AUTODIFF_JIT_CACHE=0 / ad.config.cache = False)",
                  RuntimeWarning, stacklevel=4)


# ---------------------------------------------------------------------------------------------
# key

def _hasher():
    """The hash of keys and checksums: BLAKE2b with a 32-byte digest."""
    return _blake2b(digest_size=32)


def _canonical(env: dict) -> bytes:
    """`env` (str keys; str/int/float/bool values) as bytes that depend on its items only."""
    return repr(sorted(env.items())).encode()


def _sources_fingerprint() -> str:
    """Hash of the names, sizes and modification times of the files whose code decides what
    lowering emits: the rule Python's own bytecode cache trusts to tell whether a module
    changed (so whenever this misses an edit, Python runs the old code too), at the cost of a
    few stat calls instead of reading and hashing ~0.4 MB of source in every new process."""
    if "src" not in _fingerprint:
        root = Path(__file__).resolve().parent
        h = _hasher()
        for p in sorted(root.glob("*.py")) + [root.parent / "passes" / "fuse.py"]:
            try:
                st = p.stat()
                h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
            except OSError:
                h.update(p.name.encode() + b"\0?")
        _fingerprint["src"] = h.hexdigest()
    return _fingerprint["src"]


def environment(**override) -> dict:
    """Everything besides the IR that the cached machine code depends on (see `key`).
    Keyword overrides are for tests."""
    if "env" not in _fingerprint:
        import llvmlite

        from .._version import __version__
        host = engine.host_fingerprint()
        _fingerprint["env"] = {
            "format": FORMAT_VERSION, "autodiff_jit": __version__,
            "llvmlite": llvmlite.__version__, "numpy": np.__version__,
            "python": f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}",
            "sources": _sources_fingerprint(), **host}
    env = dict(_fingerprint["env"])
    env.update(override)
    return env


def key(fn, method: str = "auto", **override) -> str:
    """Hex digest (64 digits) identifying the machine code of `fn` (an optimized IR Function) on this host.
    `override` replaces environment items (cpu=, features=, llvmlite=, autodiff_jit=,
    format=, ...) -- for tests."""
    h = _hasher()
    h.update(_canonical(environment(**override)))
    h.update(b"\0method=" + str(method).encode() + b"\0")
    h.update(_forced_codegen().encode())
    # the IR's text with large constants summarized (same code from another line: same key),
    # then every constant's bytes: printing a captured 10^5-element array in full costs ~50 ms
    h.update(print_function(fn, full_consts=False, locations=False).encode())
    _hash_arrays(h, fn)
    return h.hexdigest()


def _forced_codegen() -> str:
    """Code generation forced against the host's features (vecsort.FORCE, set by tests and
    benchmarks to compare sort plans): part of the key, so a forced plan never loads another
    plan's machine code. Read only if vecsort is imported (else nothing forced it)."""
    vecsort = sys.modules.get(f"{__package__}.vecsort")
    force = getattr(vecsort, "FORCE", None)
    return "" if force is None else f"sort_plan={force}\0"


def _hash_arrays(h, fn) -> None:
    """Feed `h` the bytes of every constant of `fn` and of its regions, and of any array held
    in an equation's parameters (whose repr numpy abbreviates), in a fixed walk order."""
    for value in fn.consts.values():
        _hash_array(h, np.asarray(value))
    for eqn in fn.eqns:
        for name, value in eqn.params.items():
            if isinstance(value, Function):   # a region
                _hash_arrays(h, value)
            else:
                for arr in _arrays_in(value):
                    h.update(b"\0param=" + name.encode())
                    _hash_array(h, arr)


def _arrays_in(value):
    if isinstance(value, (np.ndarray, np.generic)):
        yield np.asarray(value)
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _arrays_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _arrays_in(v)


def _hash_array(h, arr: np.ndarray) -> None:
    arr = np.asarray(arr)
    h.update(f"\0{arr.dtype.str}{arr.shape}{arr.nbytes}\0".encode())
    if arr.dtype.hasobject:   # (not compiled code's kind of data, but never a silent collision)
        h.update(repr(arr.tolist()).encode())
    else:
        h.update(np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data)


def symbol_prefix(k: str) -> str:
    return "adj_c" + k[:20]


def new_name(prefix: str) -> str:
    """`<prefix>_<gen>` with a generation not yet used in this process."""
    with _lock:
        g = _gens.get(prefix, 0)
        if g >= 16 ** _GEN_DIGITS:
            raise RuntimeError(f"too many loads of {prefix}")
        _gens[prefix] = g + 1
    return f"{prefix}_{g:0{_GEN_DIGITS}x}"


def _claim(name: str) -> bool:
    """Reserve an exact stored name if its generation is still free here."""
    prefix, _, gen = name.rpartition("_")
    g = int(gen, 16)
    with _lock:
        if _gens.get(prefix, 0) <= g:
            _gens[prefix] = g + 1
            return True
    return False


# ---------------------------------------------------------------------------------------------
# constants: absolute addresses -> external symbols

_INTTOPTR = re.compile(r"inttoptr \(i64 (-?\d+) to ([^()]*?)\)")


def relocatable_ir(text: str, arrays, name: str):
    """Rewrite `inttoptr (i64 <addr> to T*)` constants that point at the data of `arrays`
    (the lowering's keepalive list) into references to external globals `<name>_k<i>`.
    Returns (new text, [(symbol, array)]), or None if the text holds any other absolute
    address/inttoptr (then the code is not cacheable)."""
    by_addr = {}
    for a in arrays:
        if isinstance(a, np.ndarray) and a.flags.c_contiguous:
            by_addr.setdefault(int(a.ctypes.data), a)
    used: dict[int, tuple] = {}
    bad = []

    def sub(m):
        addr = int(m.group(1))
        arr = by_addr.get(addr)
        if arr is None:
            bad.append(addr)
            return m.group(0)
        if addr not in used:
            used[addr] = (f"{name}_k{len(used)}", arr)
        sym = used[addr][0]
        return f'bitcast ([{max(arr.nbytes, 1)} x i8]* @"{sym}" to {m.group(2)})'

    new = _INTTOPTR.sub(sub, text)
    if bad or "inttoptr" in new:
        return None
    decls = "".join(f'@"{sym}" = external global [{max(arr.nbytes, 1)} x i8]\n'
                    for sym, arr in used.values())
    return _insert_globals(new, decls), list(used.values())


def _insert_globals(text: str, decls: str) -> str:
    """Put global declarations after the module header (before the first definition)."""
    if not decls:
        return text
    lines = text.split("\n")
    at = 0
    while at < len(lines) and (lines[at].startswith(";") or lines[at].startswith("target ")
                               or not lines[at].strip()):
        at += 1
    lines.insert(at, decls)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# support code: modules compiled once per process, the same for every function

def support_dir(directory=None):
    """Where support code is cached -- the call path's generic wrapper (~0.1-0.2 s of LLVM, the
    bulk of a new process's first compile), sin/cos/tan's huge-argument module (~0.3 s) and the
    thread pool's runtime (pool.py, ~0.06-0.1 s, needed by any split loop): the
    function's cache directory if it has one, else default_dir() (support code is cached even
    for cache=False functions: it is the same for every function), unless
    $AUTODIFF_JIT_SUPPORT_CACHE is 0/false/no/off (None: compiled in every process)."""
    if directory is not None:
        return directory
    flag = os.environ.get("AUTODIFF_JIT_SUPPORT_CACHE", "1").strip().lower()
    return None if flag in ("0", "false", "no", "off") else default_dir()


def support_compiler(directory, warn: bool = True):
    """The `compile_support(recipe, build, names, loop_unrolling=True) -> addrs` that callpath's
    generic wrapper and mathlib.ensure_huge_functions take, through the disk cache in
    `directory` (None: None, they compile directly). `recipe` is a string that decides (with
    the sources and host in environment()) the IR text `build()` returns, so a hit neither
    builds nor optimizes IR: it maps the stored object code. The module must hold no address
    of the compiling process (name such objects by symbol). warn=False: an unwritable directory
    is used read-only without a warning (the default directory, not asked for)."""
    if directory is None:
        return None
    return functools.partial(compile_support, Path(directory), warn=warn)


def compile_support(d: Path, recipe: str, build, names, loop_unrolling: bool = True,
                    warn: bool = True):
    """See support_compiler. Counted in stats()["helper_*"]."""
    h = _hasher()
    h.update(_canonical(environment()))
    h.update(f"\0support\0{list(names)}\0{loop_unrolling}\0".encode() + recipe.encode())
    k = h.hexdigest()
    got = read(d, k)
    if got is not None:
        try:
            addrs = engine.load_object(got[1][0], list(names))
            _count("helper_hits")
            return addrs
        except Exception:  # noqa: BLE001 - an unusable entry is a miss
            _count("corrupt")
    _count("helper_misses")
    text = build()
    if _INTTOPTR.search(text) or re.search(r"inttoptr i64 -?\d", text):
        # an address of this process in the code (a builder broke the rule): compile, not stored
        _count("uncacheable")
        return engine.compile_module(text, list(names), loop_unrolling)[1]
    _, addrs, obj = engine.compile_module(text, list(names), loop_unrolling, want_object=True)
    if obj:
        write(d, k, {"support": recipe, "names": list(names)}, [obj], "helper_stores", warn=warn)
    return addrs


_BLAS_DECL = re.compile(r'declare [^@\n]*@"?(adj_([sd])(gemm|gemv))"?\(')


def blas_symbols(text: str) -> list[str]:
    """BLAS routines (`adj_dgemm`, ...) the module calls: they are registered with the JIT by
    blas.py during lowering, which a cache hit skips."""
    return sorted({m.group(1) for m in _BLAS_DECL.finditer(text)})


def blas_id() -> str:
    """The BLAS ABI generated code was built against (symbol scheme, integer width). Not part
    of the key (looking BLAS up costs ~40 ms): stored in entries that call BLAS, checked on load."""
    from . import blas   # here: BLAS is looked up only for entries that call it
    try:
        info = blas.info()
    except Exception:  # noqa: BLE001 - a broken lookup means "no BLAS"
        return "none"
    return f"{info['scheme']}/ilp64={info['ilp64']}" if info["path"] else "none"


def register_blas(names, stored_id) -> bool:
    """Register the BLAS symbols an entry calls; False if this process's BLAS differs."""
    if not names:
        return True
    from . import blas
    if not blas.available() or blas_id() != stored_id:
        return False
    for n in names:
        routine = n[-4:]
        dtype = np.float64 if n[4] == "d" else np.float32
        (blas.gemm_symbol if routine == "gemm" else blas.gemv_symbol)(dtype)
    return True


# ---------------------------------------------------------------------------------------------
# entries: MAGIC | digest(body) | body;  body = u32 len | meta | blobs
# meta is a marshal'ed dict (built in, nothing to import; entries are per Python version: the
# version is part of every key, and one unreadable on load is a miss like any corrupt entry)

def _pack(meta: dict, blobs: list[bytes]) -> bytes:
    offs, pos = [], 0
    for b in blobs:
        offs.append([pos, len(b)])
        pos += len(b)
    meta = dict(meta, blobs=offs)
    j = marshal.dumps(meta)
    body = struct.pack("<I", len(j)) + j + b"".join(blobs)
    return _MAGIC + _hasher_of(body) + body


def _hasher_of(data) -> bytes:
    h = _hasher()
    h.update(data)
    return h.digest()


def _unpack(data: bytes):
    if len(data) < len(_MAGIC) + 36 or not data.startswith(_MAGIC):
        raise ValueError("not a cache entry")
    digest = data[len(_MAGIC):len(_MAGIC) + 32]
    body = memoryview(data)[len(_MAGIC) + 32:]
    if _hasher_of(body) != digest:
        raise ValueError("checksum mismatch")
    (n,) = struct.unpack_from("<I", body, 0)
    meta = marshal.loads(bytes(body[4:4 + n]))
    if not isinstance(meta, dict):
        raise ValueError("not a cache entry")
    base = 4 + n
    blobs = [bytes(body[base + o:base + o + ln]) for o, ln in meta["blobs"]]
    return meta, blobs


def array_record(arr: np.ndarray, blobs: list) -> dict:
    arr = np.asarray(arr)   # (not ascontiguousarray: it makes a 0-d array 1-d)
    blobs.append(arr.tobytes())   # C order whatever the layout
    return {"dtype": arr.dtype.str, "shape": list(arr.shape), "blob": len(blobs) - 1}


def array_from(rec: dict, blobs) -> np.ndarray:
    dt = np.dtype(rec["dtype"])
    shape = tuple(rec["shape"])
    out = np.empty(shape, dt)        # fresh, aligned, writable, C-contiguous
    raw = blobs[rec["blob"]]
    if len(raw) != out.nbytes:
        raise ValueError("array size mismatch")
    out.reshape(-1).view(np.uint8)[:] = np.frombuffer(raw, np.uint8)
    return out


def entry_path(d: Path, k: str) -> Path:
    return d / (k + SUFFIX)


def read(d: Path, k: str):
    """(meta, blobs) of the entry for key `k`, or None (missing or unusable: counted)."""
    p = entry_path(d, k)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        _count("corrupt")
        return None
    try:
        meta, blobs = _unpack(data)
        if meta.get("format") != FORMAT_VERSION or meta.get("key") != k:
            raise ValueError("format/key mismatch")
    except Exception:  # noqa: BLE001 - any malformed entry is a miss
        _count("corrupt")
        return None
    _touch(p)
    return meta, blobs


def _touch(p: Path) -> None:
    """Mark an entry used now (its modification time is what eviction orders by). A
    read-only directory, or an entry deleted meanwhile by another process, is fine."""
    try:
        os.utime(p)
    except OSError:
        pass


def write(d: Path, k: str, meta: dict, blobs: list[bytes], counter: str = "stores",
          warn: bool = True) -> bool:
    """Atomically store an entry (temp file + os.replace); False (with a one-time warning per
    directory, unless warn=False) if the directory cannot be written."""
    data = _pack(dict(meta, format=FORMAT_VERSION, key=k), blobs)
    tmp = None
    try:
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".{k}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, entry_path(d, k))
    except OSError as exc:      # read-only, full, not a directory, ...
        _count("write_errors")
        if tmp is not None:
            try:
                tmp.unlink()
            except OSError:
                pass
        if warn:
            _warn_once(d, "write failed", exc)
        return False
    _count(counter)
    _maybe_prune(d, len(data))
    return True


# ---------------------------------------------------------------------------------------------
# size cap: least recently used entries go first

CHECKS_PER_CAP = 10     # a write of n bytes checks the directory's size with chance 10 n / cap
LOW_WATER = 0.8         # a check that finds the directory over its cap prunes it to 80%
STALE_TMP_SECONDS = 3600  # temporary files older than this are a crashed writer's leftovers


def _maybe_prune(d: Path, nbytes: int) -> None:
    """After a write: with probability CHECKS_PER_CAP * nbytes / cap, scan the directory and
    prune it if it is over ad.config.cache_max_bytes. So a scan comes about every tenth of
    the cap written, whichever processes wrote it (no shared state to keep consistent), and
    the directory stays within about a tenth over its cap; a scan costs a stat per entry."""
    cap = config.cache_max_bytes
    if cap is None:
        return
    chance = CHECKS_PER_CAP * nbytes / cap
    if chance < 1 and int.from_bytes(os.urandom(4), "little") >= chance * 2 ** 32:
        return
    try:
        prune(d, cap)
    except Exception as exc:  # noqa: BLE001 - pruning never fails a compile
        _count("errors")
        _warn_once(d, "pruning failed", exc)


def _entries(d: Path):
    """[(mtime_ns, size, path)] of the entries in `d`; stale temporary files are deleted.
    Files that vanish meanwhile (another process pruning or clearing) are skipped."""
    out, now = [], None
    with os.scandir(d) as it:
        for e in it:
            try:
                if e.name.endswith(SUFFIX):
                    st = e.stat(follow_symlinks=False)
                    out.append((st.st_mtime_ns, st.st_size, e.path))
                elif e.name.endswith(".tmp"):
                    st = e.stat(follow_symlinks=False)
                    if now is None:
                        now = time.time_ns()
                    if now - st.st_mtime_ns > STALE_TMP_SECONDS * 10 ** 9:
                        os.unlink(e.path)
            except FileNotFoundError:
                continue
    return out


def size(cache=True) -> int:
    """Bytes the entries of a cache directory take (0 if it does not exist)."""
    try:
        return sum(s for _, s, _ in _entries(resolve_dir(cache)))
    except FileNotFoundError:
        return 0


def prune(cache=True, max_bytes=None) -> int:
    """If the entries of a cache directory (`cache=` as for grad: True or a path) take more
    than `max_bytes` (default: ad.config.cache_max_bytes), delete the least recently used
    (oldest modification time: a hit touches its entry) until they take at most LOW_WATER of
    it. Returns how many were deleted. Safe while other processes read, write or prune: a
    reader that loses an entry recompiles it."""
    d = resolve_dir(cache)
    cap = config.cache_max_bytes if max_bytes is None else int(max_bytes)
    if cap is None:
        return 0
    try:
        entries = _entries(d)
    except FileNotFoundError:
        return 0
    total = sum(s for _, s, _ in entries)
    if total <= cap:
        return 0
    n = 0
    for _, nbytes, path in sorted(entries):
        if total <= LOW_WATER * cap:
            break
        try:
            os.unlink(path)
            n += 1
        except FileNotFoundError:   # someone else got it first
            pass
        total -= nbytes
    _count("evicted", n)
    return n


def patch_names(obj: bytes, text: str, old: str, new: str):
    """Rename every symbol `old*` to `new*` (same length) in object code and IR text."""
    assert len(old) == len(new)
    return obj.replace(old.encode(), new.encode()), text.replace(old, new)


def compress(text: str) -> bytes:
    return zlib.compress(text.encode(), 1)


def decompress(blob: bytes) -> str:
    return zlib.decompress(blob).decode()
