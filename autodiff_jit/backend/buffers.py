"""numpy's data allocator inside tape-mode calls: large freed blocks kept for the next call.

A tape-mode gradient allocates the same large arrays on every call (activations, their
cotangents, weight gradients) and frees them before the next. glibc gives blocks above its
mmap threshold back to the kernel on free (and trims the heap top once a call's free memory
passes twice that threshold), so the next call's arrays start as fresh pages: one page fault
per 4 kB touched, a few microseconds each on a virtual machine. A 784-128-10 MLP's gradient
took 356 faults a call, a Rosenbrock n=1e6 gradient 5,600: a third to half of their time.

numpy lets a library choose the allocator of the arrays created in a context
(`PyDataMem_SetHandler`; an array remembers its handler and is freed through it
wherever it dies). This module's handler serves blocks of at least THRESHOLD bytes from a
cache of freed blocks of the same page-rounded size (the most recently freed first: its pages
are warm), caching what numpy frees up to `ad.config.buffer_cache_bytes` (the oldest blocks
are released first). Every block comes from numpy's default handler and goes back to it:
smaller requests are passed to it unchanged (its cache of tiny blocks), and so are misses (its
huge-page advice for blocks of 4 MiB and more). The four functions are LLVM IR (C calling
convention, a spin lock: numpy can free from any thread), support code cached on disk like
the thread pool's runtime. `push()` sets the handler in numpy's context variable for the
running context and returns what `pop()` resets it with (~0.3 us the pair), so arrays the
program allocates outside autodiff_jit's calls never go through it.

Blocks handed out are rounded up to whole pages and freed blocks are cached under the size
numpy passes to free, rounded the same way, so a cached block always holds the size it is
filed under (realloc rounds too). The cache is process memory that stays allocated until
`release()` or a smaller cap: `stats()` says how much.
"""
from __future__ import annotations

import contextvars
import ctypes
import os
import threading

from ..config import config
from . import engine

THRESHOLD = 1 << 16       # bytes: smaller blocks come from malloc's bins, which do not fault
PAGE = 4096
SLOTS = 256               # cached blocks at most (a call's distinct large arrays)
NAME = b"autodiff_jit_buffers"
RECIPE = f"buffers threshold={THRESHOLD} page={PAGE} slots={SLOTS} numpy-default"
_NAMES = ["adj_buf_malloc", "adj_buf_calloc", "adj_buf_realloc", "adj_buf_free",
          "adj_buf_set_cap", "adj_buf_stat", "adj_buf_reset_lock", "adj_buf_set_default"]
# adj_buf_stat(k): 0 bytes cached, 1 blocks cached, 2 hits, 3 misses, 4 stores, 5 releases
STAT_NAMES = ("cached_bytes", "cached_blocks", "hits", "misses", "stores", "releases")


def build_module() -> str:
    """LLVM IR text of the allocator (see the module docstring)."""
    from llvmlite import ir

    from .kernels import I1, I8, I8P, I32, I64, VOID, i64
    m = ir.Module(name="adj_buffers")
    m.triple, m.data_layout = engine.triple_and_layout()

    def glob(name, ty, init, align=8):
        g = ir.GlobalVariable(m, ty, name=name)
        g.linkage = "internal"
        g.initializer = init
        g.align = align
        return g
    arr_ty = ir.ArrayType(I64, SLOTS)
    lock = glob("lock", I32, ir.Constant(I32, 0), 64)
    ptrs = glob("ptrs", arr_ty, ir.Constant(arr_ty, None))       # block addresses, as i64
    sizes = glob("sizes", arr_ty, ir.Constant(arr_ty, None))     # 0: an empty slot
    ints = {n: glob(n, I64, i64(0)) for n in ("cursor", "cap") + STAT_NAMES}

    def decl(name, ret, args):
        return ir.Function(m, ir.FunctionType(ret, args), name=name)
    # numpy's default handler, which every block comes from and goes back to (its small-block
    # cache, its huge-page advice for blocks of 4 MiB and more): adj_buf_set_default stores
    # its context and functions here (addresses of this process: set at run time, never
    # written into the code, which the disk cache keeps)
    malloc_ty = ir.FunctionType(I8P, [I8P, I64])
    calloc_ty = ir.FunctionType(I8P, [I8P, I64, I64])
    realloc_ty = ir.FunctionType(I8P, [I8P, I8P, I64])
    free_ty = ir.FunctionType(VOID, [I8P, I8P, I64])
    dflt = {n: glob("default_" + n, ty, ir.Constant(ty, None)) for n, ty in (
        ("ctx", I8P), ("malloc", malloc_ty.as_pointer()), ("calloc", calloc_ty.as_pointer()),
        ("realloc", realloc_ty.as_pointer()), ("free", free_ty.as_pointer()))}

    def c_malloc(b, size):
        return b.call(b.load(dflt["malloc"]), [b.load(dflt["ctx"]), size])

    def c_calloc(b, n, size):
        return b.call(b.load(dflt["calloc"]), [b.load(dflt["ctx"]), n, size])

    def c_realloc(b, p, size):
        return b.call(b.load(dflt["realloc"]), [b.load(dflt["ctx"]), p, size])

    def c_free(b, p, size):
        b.call(b.load(dflt["free"]), [b.load(dflt["ctx"]), p, size])
    memset = decl("llvm.memset.p0i8.i64", VOID, [I8P, I8, I64, I1])
    umul = decl("llvm.umul.with.overflow.i64", ir.LiteralStructType([I64, I1]), [I64, I64])

    def define(name, ret, args):
        f = decl(name, ret, args)
        return f, ir.IRBuilder(f.append_basic_block("entry"))

    def get(b, n):
        return b.load(ints[n])

    def put(b, n, v):
        b.store(v, ints[n])

    def bump(b, n, v):
        put(b, n, b.add(get(b, n), v))

    def slot(b, arr, i):
        return b.gep(arr, [i64(0), i])

    def rounded(b, size):
        return b.and_(b.add(size, i64(PAGE - 1)), i64(-PAGE))

    def acquire(b):
        f = b.function
        spin, done = f.append_basic_block("lock.spin"), f.append_basic_block("lock.done")
        b.branch(spin)
        b.position_at_end(spin)
        old = b.atomic_rmw("xchg", lock, ir.Constant(I32, 1), "acquire")
        b.cbranch(b.icmp_unsigned("==", old, ir.Constant(I32, 0)), done, spin)
        b.position_at_end(done)

    def release_lock(b):
        b.store_atomic(ir.Constant(I32, 0), lock, "release", 4)

    def counted_loop(b, n, body, name):
        """for k in range(n): body(b, k, exit_block) (body may branch to exit_block)."""
        f = b.function
        head, bodyb, nxt, exit_ = (f.append_basic_block(f"{name}.{s}")
                                   for s in ("head", "body", "next", "exit"))
        k_slot = b.alloca(I64)
        b.store(i64(0), k_slot)
        b.branch(head)
        b.position_at_end(head)
        k = b.load(k_slot)
        b.cbranch(b.icmp_unsigned("<", k, i64(n)), bodyb, exit_)
        b.position_at_end(bodyb)
        body(b, k, nxt, exit_)
        b.position_at_end(nxt)
        b.store(b.add(k, i64(1)), k_slot)
        b.branch(head)
        b.position_at_end(exit_)

    def take(b, r):
        """Under the lock: the most recently cached block of size r, or null (into a slot)."""
        out = b.alloca(I8P)
        b.store(ir.Constant(I8P, None), out)

        def body(b, k, nxt, exit_):
            # slots cursor-1, cursor-2, ...: newest first
            i = b.urem(b.sub(b.add(get(b, "cursor"), i64(2 * SLOTS - 1)), k), i64(SLOTS))
            s = slot(b, sizes, i)
            found = b.function.append_basic_block("take.found")
            b.cbranch(b.icmp_unsigned("==", b.load(s), r), found, nxt)
            b.position_at_end(found)
            b.store(b.inttoptr(b.load(slot(b, ptrs, i)), I8P), out)
            b.store(i64(0), s)
            bump(b, "cached_bytes", b.sub(i64(0), r))
            bump(b, "cached_blocks", i64(-1))
            bump(b, "hits", i64(1))
            b.branch(exit_)
        counted_loop(b, SLOTS, body, "take")
        return b.load(out)

    def large_alloc(name, zero):
        args = [I8P, I64] if not zero else [I8P, I64, I64]
        f, b = define(name, I8P, args)
        if zero:
            prod = b.call(umul, [f.args[1], f.args[2]])
            bad, ok = f.append_basic_block("overflow"), f.append_basic_block("ok")
            b.cbranch(b.extract_value(prod, 1), bad, ok)
            b.position_at_end(bad)
            b.ret(ir.Constant(I8P, None))
            b.position_at_end(ok)
            size = b.extract_value(prod, 0)
        else:
            size = f.args[1]
        small, large = f.append_basic_block("small"), f.append_basic_block("large")
        b.cbranch(b.icmp_unsigned("<", size, i64(THRESHOLD)), small, large)
        b.position_at_end(small)
        b.ret(c_calloc(b, f.args[1], f.args[2]) if zero else c_malloc(b, size))
        b.position_at_end(large)
        r = rounded(b, size)
        acquire(b)
        p = take(b, r)
        got = b.icmp_unsigned("!=", b.ptrtoint(p, I64), i64(0))
        hit, miss = f.append_basic_block("hit"), f.append_basic_block("miss")
        # counted under the lock (a miss too), then released before malloc
        with b.if_then(b.not_(got)):
            bump(b, "misses", i64(1))
        release_lock(b)
        b.cbranch(got, hit, miss)
        b.position_at_end(hit)
        if zero:
            b.call(memset, [p, ir.Constant(I8, 0), size, ir.Constant(I1, 0)])
        b.ret(p)
        b.position_at_end(miss)
        # calloc of a fresh block: zero pages from the kernel, no memset
        b.ret(c_calloc(b, i64(1), r) if zero else c_malloc(b, r))

    large_alloc("adj_buf_malloc", zero=False)
    large_alloc("adj_buf_calloc", zero=True)

    f, b = define("adj_buf_realloc", I8P, [I8P, I8P, I64])
    size = f.args[2]
    big = b.icmp_unsigned(">=", size, i64(THRESHOLD))
    b.ret(c_realloc(b, f.args[1], b.select(big, rounded(b, size), size)))

    def evict(b, i):
        """Under the lock: free slot i's block, if any."""
        s = slot(b, sizes, i)
        n = b.load(s)
        with b.if_then(b.icmp_unsigned("!=", n, i64(0))):
            c_free(b, b.inttoptr(b.load(slot(b, ptrs, i)), I8P), n)
            b.store(i64(0), s)
            bump(b, "cached_bytes", b.sub(i64(0), n))
            bump(b, "cached_blocks", i64(-1))
            bump(b, "releases", i64(1))

    f, b = define("adj_buf_free", VOID, [I8P, I8P, I64])
    p, size = f.args[1], f.args[2]
    plain, large = f.append_basic_block("plain"), f.append_basic_block("large")
    b.cbranch(b.icmp_unsigned("<", size, i64(THRESHOLD)), plain, large)
    b.position_at_end(plain)
    c_free(b, p, size)
    b.ret_void()
    b.position_at_end(large)
    r = rounded(b, size)
    acquire(b)
    keep, drop = f.append_basic_block("keep"), f.append_basic_block("drop")
    b.cbranch(b.icmp_unsigned("<=", r, get(b, "cap")), keep, drop)
    b.position_at_end(drop)
    release_lock(b)
    c_free(b, p, r)
    b.ret_void()
    b.position_at_end(keep)
    # the ring's slot at cursor takes the block; its occupant, and then the oldest blocks
    # (cursor+1, cursor+2, ...), are released until the cap leaves room for it
    cur = get(b, "cursor")
    evict(b, cur)

    def make_room(b, k, nxt, exit_):
        full = b.icmp_unsigned(">", b.add(get(b, "cached_bytes"), r), get(b, "cap"))
        go = b.function.append_basic_block("room.evict")
        b.cbranch(full, go, exit_)
        b.position_at_end(go)
        evict(b, b.urem(b.add(b.add(cur, i64(1)), k), i64(SLOTS)))
        b.branch(nxt)
    counted_loop(b, SLOTS - 1, make_room, "room")
    b.store(b.ptrtoint(p, I64), slot(b, ptrs, cur))
    b.store(r, slot(b, sizes, cur))
    put(b, "cursor", b.urem(b.add(cur, i64(1)), i64(SLOTS)))
    bump(b, "cached_bytes", r)
    bump(b, "cached_blocks", i64(1))
    bump(b, "stores", i64(1))
    release_lock(b)
    b.ret_void()

    # cap: the byte budget; a smaller one releases the oldest blocks now (0: all of them)
    f, b = define("adj_buf_set_cap", VOID, [I64])
    acquire(b)
    put(b, "cap", f.args[0])

    def shrink(b, k, nxt, exit_):
        over = b.icmp_unsigned(">", get(b, "cached_bytes"), get(b, "cap"))
        go = b.function.append_basic_block("shrink.evict")
        b.cbranch(over, go, exit_)
        b.position_at_end(go)
        evict(b, b.urem(b.add(get(b, "cursor"), k), i64(SLOTS)))
        b.branch(nxt)
    counted_loop(b, SLOTS, shrink, "shrink")
    release_lock(b)
    b.ret_void()

    f, b = define("adj_buf_stat", I64, [I64])
    sw_default = f.append_basic_block("none")
    sw = b.switch(f.args[0], sw_default)
    for k, n in enumerate(STAT_NAMES):
        blk = f.append_basic_block(n)
        sw.add_case(i64(k), blk)
        b.position_at_end(blk)
        b.ret(b.load_atomic(ints[n], "monotonic", 8))
    b.position_at_end(sw_default)
    b.ret(i64(-1))

    f, b = define("adj_buf_set_default", VOID, [I8P, malloc_ty.as_pointer(),
                                                calloc_ty.as_pointer(), realloc_ty.as_pointer(),
                                                free_ty.as_pointer()])
    for arg, n in zip(f.args, ("ctx", "malloc", "calloc", "realloc", "free")):
        b.store(arg, dflt[n])
    b.ret_void()

    # after fork: the child has one thread, and a lock another thread of the parent held
    f, b = define("adj_buf_reset_lock", VOID, [])
    release_lock(b)
    b.ret_void()
    return str(m)


# ---------------------------------------------------------------------------------------------
# the handler: numpy's PyDataMem_Handler struct around the compiled functions

class _Allocator(ctypes.Structure):
    _fields_ = [("ctx", ctypes.c_void_p), ("malloc", ctypes.c_void_p),
                ("calloc", ctypes.c_void_p), ("realloc", ctypes.c_void_p),
                ("free", ctypes.c_void_p)]


class _Handler(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 127), ("version", ctypes.c_uint8),
                ("allocator", _Allocator)]


# numpy's C-API table slot (stable since numpy 1.22: numpy/__multiarray_api.h)
_SET_HANDLER = 304

_lock = threading.Lock()
_state: dict = {}


def _capsule_pointer(capsule, name):
    """The pointer a PyCapsule holds (PyCapsule_GetPointer; `name` None or bytes)."""
    get_ptr = ctypes.pythonapi.PyCapsule_GetPointer
    get_ptr.restype, get_ptr.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return get_ptr(capsule, name)


def handler_capsule(address):
    """A "mem_handler" capsule around the PyDataMem_Handler struct at `address`."""
    new = ctypes.pythonapi.PyCapsule_New
    new.restype, new.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p,
                                                   ctypes.c_void_p]
    return new(address, b"mem_handler", None)


def _numpy_api():
    """(PyDataMem_SetHandler from numpy's C-API table, numpy's _multiarray_umath), or None
    where numpy's allocator is not its default one (another library set its own)."""
    from numpy._core import _multiarray_umath as mu
    if not hasattr(mu, "get_handler_name") or mu.get_handler_name() != "default_allocator":
        return None
    table = ctypes.cast(_capsule_pointer(mu._ARRAY_API, None), ctypes.POINTER(ctypes.c_void_p))
    return ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.py_object)(table[_SET_HANDLER]), mu


def _handler_variable(set_handler, capsule):
    """numpy's context variable of the current handler (what PyDataMem_SetHandler sets),
    found by setting the handler in a throwaway context: setting and resetting it directly is
    ~0.1 us, against ~1 us for each ctypes call of SetHandler."""
    def probe():
        set_handler(capsule)
        return [var for var, value in contextvars.copy_context().items() if value is capsule]
    found = contextvars.Context().run(probe)
    return found[0] if len(found) == 1 else None


def _build(compile_support=None):
    """{"var": numpy's handler context variable, "capsule": the handler, control functions}
    (compiled once per process), or None where numpy has no usable handler API."""
    api = _numpy_api()
    if api is None:
        return None
    set_handler, mu = api
    if compile_support is None and SUPPORT_COMPILER[0] is not None:
        compile_support = SUPPORT_COMPILER[0]()
    if compile_support is None:
        _, addrs = engine.compile_module(build_module(), _NAMES)
    else:
        addrs = compile_support(RECIPE, build_module, _NAMES)
    handler = _Handler()
    handler.name = NAME
    handler.version = 1
    handler.allocator = _Allocator(None, addrs["adj_buf_malloc"], addrs["adj_buf_calloc"],
                                   addrs["adj_buf_realloc"], addrs["adj_buf_free"])
    capsule = handler_capsule(ctypes.addressof(handler))
    # Arrays allocated through the handler can be freed at any time, interpreter shutdown
    # included: the struct, the capsule and what holds the code (objload's mappings of support
    # code, or the process-wide MCJIT engine) are never freed.
    for obj in (handler, capsule, engine._permanent, engine._state.get("engine")):
        if obj is not None:
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
    fns = {"set_cap": ctypes.CFUNCTYPE(None, ctypes.c_int64)(addrs["adj_buf_set_cap"]),
           "stat": ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(addrs["adj_buf_stat"]),
           "reset_lock": ctypes.CFUNCTYPE(None)(addrs["adj_buf_reset_lock"])}
    var = _handler_variable(set_handler, capsule)
    if var is None:
        return None
    # numpy's default handler (the variable's value in a context that never set it)
    default = contextvars.Context().run(var.get)
    dflt = _Handler.from_address(_capsule_pointer(default, b"mem_handler")).allocator
    if not (dflt.malloc and dflt.calloc and dflt.realloc and dflt.free):
        return None
    ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 5)(addrs["adj_buf_set_default"])(
        dflt.ctx, dflt.malloc, dflt.calloc, dflt.realloc, dflt.free)
    fns["set_cap"](config.buffer_cache_bytes)
    # check once that arrays made under the handler are made by it
    token = var.set(capsule)
    try:
        import numpy as np
        named = mu.get_handler_name(np.empty(8))
    finally:
        var.reset(token)
    if named != NAME.decode():
        return None
    return {"var": var, "capsule": capsule, "default": default, "handler": handler, **fns}


# () -> the disk cache's `compile_support(recipe, build, names)` (or None), set by the tape
# package, which uses the cache: like the pool and mathlib, this module does not import the
# disk cache (None: compiled in every process)
SUPPORT_COMPILER: list = [None]


def _installed():
    with _lock:
        if not _state.get("tried"):
            try:
                _state["h"] = _build()
            except Exception as exc:   # noqa: BLE001 - no cache beats no tape mode
                import warnings
                warnings.warn(f"autodiff_jit: the buffer cache is unavailable ({exc}); tape "
                              f"mode allocates through numpy's default allocator",
                              RuntimeWarning, stacklevel=3)
                _state["h"] = None
            h = _state["h"]
            _FAST[:] = [h["var"], h["capsule"], h["default"]] if h else [None, None, None]
            _state["tried"] = True
    return _state["h"]


# [handler context variable, our capsule, numpy's default one] once built (push's fast path)
_FAST = [None, None, None]


def push():
    """Make the handler numpy's allocator in the running context; returns what pop() takes
    (None: nothing changed, with buffer_cache_bytes == 0 or no handler API)."""
    var = _FAST[0]
    if var is None:
        if _state.get("tried") or not config.buffer_cache_bytes or _installed() is None:
            return None
        var = _FAST[0]
    # only over numpy's default allocator: nested, ours is in place already, and an allocator
    # the program set for itself stays
    if not config.buffer_cache_bytes or var.get() is not _FAST[2]:
        return None
    return var.set(_FAST[1])


def pop(token) -> None:
    """Restore the allocator push() replaced."""
    if token is not None:
        _FAST[0].reset(token)


def stats() -> dict:
    """The cache's counters: bytes and blocks cached now; hits, misses (large blocks served
    from / not from the cache), stores and releases so far. Zeros before first use."""
    h = _state.get("h")
    if h is None:
        return {n: 0 for n in STAT_NAMES}
    return {n: int(h["stat"](k)) for k, n in enumerate(STAT_NAMES)}


def release() -> None:
    """Free every cached block (the cap stays)."""
    h = _state.get("h")
    if h is not None:
        h["set_cap"](0)
        h["set_cap"](config.buffer_cache_bytes)


def _on_cap_change(n: int) -> None:
    h = _state.get("h")
    if h is not None:
        h["set_cap"](n)


config._buffer_cache_listeners.append(_on_cap_change)


def _after_fork_in_child():
    h = _state.get("h")
    if h is not None:
        h["reset_lock"]()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
