"""The thread pool compiled loops run on: its runtime module (LLVM IR over pthreads, support
code compiled once and cached on disk), its counters and the hooks that follow
`ad.config.num_threads` and fork.

parallel.py splits loops into chunks and calls `adj_parallel_for`; this module provides it. It
imports no emitter and builds IR only when the runtime is compiled (a process that maps
cached code loads it from the disk cache), so a disk hit of split code stays light.
"""
from __future__ import annotations

import ctypes
import os
import threading

from ..config import config
from . import engine

RUNTIME_SYMBOL = "adj_parallel_for"     # what generated code declares (the prelude marker)


# ---------------------------------------------------------------------------------------------
# the pool: LLVM IR over pthreads, compiled once per process
#
# One 64-bit word `task` is the whole hand-off: generation (high 32 bits) | chunk count n
# (16 bits) | next chunk (low 16 bits). The caller writes the task (function, env), resets
# `done`, then stores a new word (next generation, n, 0); every thread, the caller included,
# claims a chunk with a compare-and-swap on the word (which fails once its generation moved on,
# so a late worker can never take a chunk of another region) and counts it in `done` when it
# has run; the caller returns when done == n. A worker whose generation is seen spins up to
# `spin` rounds of the CPU's pause instruction on the word (a region following soon -- the next
# loop of the same gradient, the next call -- starts without a wake-up), then sleeps on a
# condition variable. Its own budget shrinks to a quarter after each region in which it found
# no chunk left (it came too late: no free core, so spinning would only take CPU from the
# caller) and grows back as it takes chunks. The caller signals only when some worker is
# asleep (`sleepers`: the seq_cst store of the word and load of the count, against the
# worker's seq_cst increment and re-check, mean one of the two always sees the other).

_SYNC_BYTES = 128   # >= sizeof(pthread_mutex_t) / sizeof(pthread_cond_t) on Linux and macOS
SPIN = 1 << 13      # pause rounds a worker (or the caller waiting for the last chunk) spins
MAX_TASK_CHUNKS = 0xFFFF     # chunks one word can count (MAX_CHUNKS is far below)


def chunk_type():
    """LLVM type of a chunk function: void (env, chunk index)."""
    from llvmlite import ir

    from .kernels import I8P, I64, VOID
    return ir.FunctionType(VOID, [I8P, I64])


def build_runtime_module() -> str:
    """LLVM IR text of the pool: adj_parallel_for, the worker loop, start/set/reset helpers."""
    # imported here: a process that maps the runtime from the disk cache builds no IR
    from llvmlite import ir

    from .kernels import I8, I8P, I32, I64, VOID, i64
    chunk_ty = chunk_type()
    m = ir.Module(name="adj_parallel")
    m.triple, m.data_layout = engine.triple_and_layout()
    sync_ty = ir.ArrayType(I8, _SYNC_BYTES)

    def glob(name, ty, init):
        g = ir.GlobalVariable(m, ty, name=name)
        g.linkage = "internal"
        g.initializer = init
        g.align = 64     # each on its own cache line (the task word is hammered by spinners)
        return g
    zero_sync = ir.Constant(sync_ty, None)
    mu, region = glob("mu", sync_ty, zero_sync), glob("region", sync_ty, zero_sync)
    cv_work, cv_idle = glob("cv_work", sync_ty, zero_sync), glob("cv_idle", sync_ty, zero_sync)
    ints = {n: glob(n, I64, i64(0)) for n in ("task", "done", "sleepers", "threads", "spawned",
                                               "worker_chunks", "sleeps")}
    ints["spin"] = glob("spin", I64, i64(SPIN))
    task_fn = glob("task_fn", chunk_ty.as_pointer(), ir.Constant(chunk_ty.as_pointer(), None))
    task_env = glob("task_env", I8P, ir.Constant(I8P, None))

    def decl(name, ret, args):
        return ir.Function(m, ir.FunctionType(ret, args), name=name)
    p_init = decl("pthread_mutex_init", I32, [I8P, I8P])
    p_lock = decl("pthread_mutex_lock", I32, [I8P])
    p_trylock = decl("pthread_mutex_trylock", I32, [I8P])
    p_unlock = decl("pthread_mutex_unlock", I32, [I8P])
    c_init = decl("pthread_cond_init", I32, [I8P, I8P])
    c_wait = decl("pthread_cond_wait", I32, [I8P, I8P])
    c_bcast = decl("pthread_cond_broadcast", I32, [I8P])
    s_yield = decl("sched_yield", I32, [])
    worker_ty = ir.FunctionType(I8P, [I8P])
    p_create = decl("pthread_create", I32, [I8P, I8P, worker_ty.as_pointer(), I8P])
    p_detach = decl("pthread_detach", I32, [I64])
    arch = m.triple.split("-")[0]
    # the CPU's spin-wait hint, as an intrinsic (inline asm would need the asm parser)
    if arch in ("x86_64", "i386", "i686"):
        pause_fn, pause_args = decl("llvm.x86.sse2.pause", VOID, []), []
    elif arch in ("aarch64", "arm64"):
        pause_fn, pause_args = decl("llvm.aarch64.hint", VOID, [I32]), [ir.Constant(I32, 1)]
    else:
        pause_fn = None

    def sp(b, g):
        return b.bitcast(g, I8P)

    def get(b, n, order="monotonic"):
        return b.load_atomic(ints[n], order, 8)

    def put(b, n, v, order="monotonic"):
        b.store_atomic(v, ints[n], order, 8)

    def add(b, n, v, order="monotonic"):
        return b.atomic_rmw("add", ints[n], i64(v), order)

    def gen_of(b, w):
        return b.lshr(w, i64(32))

    def pause(b):
        if pause_fn is not None:
            b.call(pause_fn, pause_args)

    def while_loop(b, cond, body, name):
        f = b.function
        head, bodyb, exit_ = (f.append_basic_block(f"{name}.{s}") for s in ("head", "body", "exit"))
        b.branch(head)
        b.position_at_end(head)
        b.cbranch(cond(b), bodyb, exit_)
        b.position_at_end(bodyb)
        body(b)
        b.branch(head)
        b.position_at_end(exit_)

    def take_chunks(b, gen, w, claimed=None):
        """Claim and run chunks of generation `gen` until none is left (w: an i64 slot of the
        entry block; claimed: a worker's count of the chunks it ran, else None)."""
        f = b.function
        b.store(b.load_atomic(ints["task"], "acquire", 8), w)
        head, claim, run, exit_ = (f.append_basic_block(f"take.{s}")
                                   for s in ("head", "claim", "run", "exit"))
        b.branch(head)
        b.position_at_end(head)
        cur = b.load(w)
        idx = b.and_(cur, i64(0xFFFF))
        n = b.and_(b.lshr(cur, i64(16)), i64(0xFFFF))
        left = b.and_(b.icmp_unsigned("<", idx, n), b.icmp_unsigned("==", gen_of(b, cur), gen))
        b.cbranch(left, claim, exit_)
        b.position_at_end(claim)
        res = b.cmpxchg(ints["task"], cur, b.add(cur, i64(1)), "acq_rel", "acquire")
        b.store(b.extract_value(res, 0), w)
        b.cbranch(b.extract_value(res, 1), run, head)
        b.position_at_end(run)
        b.call(b.load(task_fn), [b.load(task_env), idx])
        if claimed is not None:
            add(b, "worker_chunks", 1)
            b.store(b.add(b.load(claimed), i64(1)), claimed)
        add(b, "done", 1, "release")
        b.store(b.load_atomic(ints["task"], "acquire", 8), w)
        b.branch(head)
        b.position_at_end(exit_)

    def spin_while(b, busy, name, k, limit):
        """Spin (pause) while busy(b) and fewer than `limit` rounds have passed (k: an i64 slot
        of the entry block: allocas in a loop would grow the stack at every region)."""
        b.store(i64(0), k)

        def cond(b):
            return b.and_(b.icmp_signed("<", b.load(k), limit), busy(b))

        def body(b):
            pause(b)
            b.store(b.add(b.load(k), i64(1)), k)
        while_loop(b, cond, body, name)

    # void adj_par_init(): (re)initialise the synchronisation objects (also after fork)
    f = ir.Function(m, ir.FunctionType(VOID, []), name="adj_par_init")
    b = ir.IRBuilder(f.append_basic_block())
    null = ir.Constant(I8P, None)
    for g in (mu, region):
        b.call(p_init, [sp(b, g), null])
    for g in (cv_work, cv_idle):
        b.call(c_init, [sp(b, g), null])
    for n in ("done", "sleepers", "spawned"):
        put(b, n, i64(0))
    b.ret_void()

    # void adj_par_set_threads(i64): non-taking workers wait on cv_idle for a change
    f = ir.Function(m, ir.FunctionType(VOID, [I64]), name="adj_par_set_threads")
    b = ir.IRBuilder(f.append_basic_block())
    b.call(p_lock, [sp(b, mu)])
    put(b, "threads", f.args[0])
    b.call(c_bcast, [sp(b, cv_idle)])
    b.call(p_unlock, [sp(b, mu)])
    b.ret_void()

    # void adj_par_set_spin(i64): pause rounds before sleeping (tests; 0 = sleep at once)
    f = ir.Function(m, ir.FunctionType(VOID, [I64]), name="adj_par_set_spin")
    b = ir.IRBuilder(f.append_basic_block())
    put(b, "spin", f.args[0])
    b.ret_void()

    # i64 adj_par_stat(i64 k): 0 worker_chunks (chunks run by workers so far), 1 spawned,
    # 2 sleepers (workers asleep waiting for work now), 3 sleeps (times a worker fell asleep)
    f = ir.Function(m, ir.FunctionType(I64, [I64]), name="adj_par_stat")
    b = ir.IRBuilder(f.append_basic_block())
    sw_exit = f.append_basic_block("exit")
    bb = b.block
    vals = []
    b.position_at_end(bb)
    sw = b.switch(f.args[0], sw_exit)
    for k, n in enumerate(("worker_chunks", "spawned", "sleepers", "sleeps")):
        blk = f.append_basic_block(n)
        sw.add_case(i64(k), blk)
        b.position_at_end(blk)
        vals.append((get(b, n, "seq_cst"), blk))
        b.branch(sw_exit)
    b.position_at_end(sw_exit)
    phi = b.phi(I64)
    phi.add_incoming(i64(-1), bb)
    for v, blk in vals:
        phi.add_incoming(v, blk)
    b.ret(phi)

    # i8* worker(i8* id): wait for a new generation (spin, then sleep), take chunks, repeat
    worker = ir.Function(m, worker_ty, name="adj_par_worker")
    worker.linkage = "internal"
    b = ir.IRBuilder(worker.append_basic_block("entry"))
    wid = b.ptrtoint(worker.args[0], I64)
    seen, w_slot, k_slot, budget, claimed = (b.alloca(I64) for _ in range(5))
    b.store(get(b, "spin"), budget)
    b.store(gen_of(b, get(b, "task", "acquire")), seen)
    loop, idle, ready = (worker.append_basic_block(s) for s in ("loop", "idle", "ready"))
    b.branch(loop)
    b.position_at_end(loop)

    def takes_part(b):       # workers 0 .. threads-2 (the caller is the last thread)
        return b.icmp_signed("<", b.add(wid, i64(1)), get(b, "threads"))

    def unchanged(b, order="monotonic"):
        return b.icmp_unsigned("==", gen_of(b, get(b, "task", order)), b.load(seen))
    b.cbranch(takes_part(b), ready, idle)
    # idle (beyond the thread count): wait for a change of it, skip the regions meanwhile
    b.position_at_end(idle)
    b.call(p_lock, [sp(b, mu)])
    while_loop(b, lambda b: b.not_(takes_part(b)),
               lambda b: b.call(c_wait, [sp(b, cv_idle), sp(b, mu)]), "off")
    b.call(p_unlock, [sp(b, mu)])
    b.store(gen_of(b, get(b, "task", "acquire")), seen)
    b.branch(loop)
    b.position_at_end(ready)
    # spin for this worker's budget: SPIN, a quarter of it after each region in which it found
    # no chunk left (it came too late: no free core), back up as it takes chunks again
    cap = get(b, "spin")
    limit = b.select(b.icmp_signed("<", b.load(budget), cap), b.load(budget), cap)
    spin_while(b, unchanged, "spin", k_slot, limit)
    asleep, woke = worker.append_basic_block("asleep"), worker.append_basic_block("woke")
    b.cbranch(unchanged(b), asleep, woke)
    b.position_at_end(asleep)
    b.call(p_lock, [sp(b, mu)])
    add(b, "sleepers", 1, "seq_cst")

    def sleep(b):
        add(b, "sleeps", 1)
        b.call(c_wait, [sp(b, cv_work), sp(b, mu)])
    while_loop(b, lambda b: unchanged(b, "seq_cst"), sleep, "sleep")
    add(b, "sleepers", -1, "seq_cst")
    b.call(p_unlock, [sp(b, mu)])
    b.branch(woke)
    b.position_at_end(woke)
    gen = gen_of(b, get(b, "task", "acquire"))
    b.store(gen, seen)
    b.store(i64(0), claimed)
    take_chunks(b, gen, w_slot, claimed)
    old, cap = b.load(budget), get(b, "spin")
    grown = b.add(b.add(old, old), i64(64))
    grown = b.select(b.icmp_signed("<", grown, cap), grown, cap)
    b.store(b.select(b.icmp_signed(">", b.load(claimed), i64(0)), grown, b.lshr(old, i64(2))),
            budget)
    b.branch(loop)

    # i32 adj_par_start(i64 nworkers): start workers until `nworkers` exist (0 or an errno)
    f = ir.Function(m, ir.FunctionType(I32, [I64]), name="adj_par_start")
    b = ir.IRBuilder(f.append_basic_block("entry"))
    tid = b.alloca(I64)
    status = b.alloca(I32)
    b.store(ir.Constant(I32, 0), status)

    def more(b):
        ok = b.icmp_signed("==", b.load(status), ir.Constant(I32, 0))
        return b.and_(ok, b.icmp_signed("<", get(b, "spawned"), f.args[0]))

    def spawn(b):
        k = get(b, "spawned")
        rc = b.call(p_create, [b.bitcast(tid, I8P), null, worker, b.inttoptr(k, I8P)])
        b.store(rc, status)
        ok = f.append_basic_block("ok")
        after = f.append_basic_block("after")
        b.cbranch(b.icmp_signed("==", rc, ir.Constant(I32, 0)), ok, after)
        b.position_at_end(ok)
        b.call(p_detach, [b.load(tid)])
        put(b, "spawned", b.add(k, i64(1)))
        b.branch(after)
        b.position_at_end(after)
    b.call(p_lock, [sp(b, mu)])
    while_loop(b, more, spawn, "spawn")
    b.call(p_unlock, [sp(b, mu)])
    b.ret(b.load(status))

    # void adj_parallel_for(chunk_fn, env, n)
    f = ir.Function(m, ir.FunctionType(VOID, [chunk_ty.as_pointer(), I8P, I64]),
                    name=RUNTIME_SYMBOL)
    fn, envp, n = f.args
    b = ir.IRBuilder(f.append_basic_block("entry"))
    i, w_slot, k_slot = (b.alloca(I64) for _ in range(3))
    serial = f.append_basic_block("serial")
    try_pool = f.append_basic_block("try_pool")
    pooled = f.append_basic_block("pooled")
    # (a racy read is fine: threads/spawned only gate whether to try the pool at all)
    one = b.or_(b.icmp_signed("<=", get(b, "threads"), i64(1)),
                b.icmp_signed("==", get(b, "spawned"), i64(0)))
    one = b.or_(one, b.icmp_unsigned(">", n, i64(MAX_TASK_CHUNKS)))
    b.cbranch(one, serial, try_pool)
    b.position_at_end(try_pool)
    busy = b.call(p_trylock, [sp(b, region)])
    b.cbranch(b.icmp_signed("!=", busy, ir.Constant(I32, 0)), serial, pooled)
    b.position_at_end(serial)
    b.store(i64(0), i)

    def step(b):
        cidx = b.load(i)
        b.call(fn, [envp, cidx])
        b.store(b.add(cidx, i64(1)), i)
    while_loop(b, lambda b: b.icmp_signed("<", b.load(i), n), step, "ser")
    b.ret_void()
    b.position_at_end(pooled)
    # the previous region's chunks have all finished (its caller waited): the task is ours
    b.store(fn, task_fn)
    b.store(envp, task_env)
    put(b, "done", i64(0))
    gen = b.add(gen_of(b, get(b, "task")), i64(1))
    word = b.or_(b.shl(gen, i64(32)), b.shl(n, i64(16)))
    put(b, "task", word, "seq_cst")
    gen = b.and_(gen, i64(0xFFFFFFFF))
    wake, claim = f.append_basic_block("wake"), f.append_basic_block("claim")
    b.cbranch(b.icmp_signed(">", get(b, "sleepers", "seq_cst"), i64(0)), wake, claim)
    b.position_at_end(wake)
    b.call(p_lock, [sp(b, mu)])
    b.call(c_bcast, [sp(b, cv_work)])
    b.call(p_unlock, [sp(b, mu)])
    b.branch(claim)
    b.position_at_end(claim)
    take_chunks(b, gen, w_slot)

    # the last chunks run on workers: spin, then yield the core until they are done
    def running(b):
        return b.icmp_signed("<", get(b, "done", "acquire"), n)
    # (shorter than a worker's spin: the chunk is running, or its thread waits for a core)
    spin_while(b, running, "finish", k_slot, b.lshr(get(b, "spin"), i64(3)))
    while_loop(b, running, lambda b: b.call(s_yield, []), "yield")
    b.call(p_unlock, [sp(b, region)])
    b.ret_void()
    return str(m)


_lock = threading.RLock()
_state: dict = {}


# what decides build_runtime_module's text besides the package sources (support-code cache key)
RUNTIME_RECIPE = f"parallel-runtime sync={_SYNC_BYTES} spin={SPIN}"


def _runtime(compile_support=None):
    """The pool's entry points (compiled on first use: through `compile_support(recipe,
    build, names) -> addrs`, the disk cache's support compiler, if given); None while being
    compiled."""
    if _state.get("fns"):
        return _state["fns"]
    with _lock:
        if _state.get("fns") or _state.get("busy"):
            return _state.get("fns")
        _state["busy"] = True
        try:
            names = ["adj_par_init", "adj_par_set_threads", "adj_par_set_spin", "adj_par_start",
                     "adj_par_stat", RUNTIME_SYMBOL]
            if compile_support is None:
                mod, addrs = engine.compile_module(build_runtime_module(), names)
            else:
                mod, addrs = None, compile_support(RUNTIME_RECIPE, build_runtime_module, names)
            fns = {
                "init": ctypes.CFUNCTYPE(None)(addrs["adj_par_init"]),
                "set": ctypes.CFUNCTYPE(None, ctypes.c_int64)(addrs["adj_par_set_threads"]),
                "spin": ctypes.CFUNCTYPE(None, ctypes.c_int64)(addrs["adj_par_set_spin"]),
                "start": ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int64)(addrs["adj_par_start"]),
                "stat": ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(addrs["adj_par_stat"]),
            }
            fns["init"]()
            engine.add_symbol(RUNTIME_SYMBOL, addrs[RUNTIME_SYMBOL])
            _state.update(module=mod, fns=fns)
            _apply(fns)
        finally:
            _state["busy"] = False
    return _state["fns"]


def _apply(fns):
    n = num_threads()
    fns["set"](n)
    if n > 1:
        rc = fns["start"](n - 1)
        if rc:
            import warnings
            warnings.warn(f"autodiff_jit: could not start worker threads (pthread_create "
                          f"error {rc}); compiled loops run with fewer threads",
                          RuntimeWarning, stacklevel=3)


def ensure_runtime(compile_support=None) -> None:
    """Compile the pool before code that declares adj_parallel_for is compiled or loaded
    (compiled.py passes the disk cache's support compiler, as for mathlib's huge-argument
    module: ~60-100 ms of LLVM a process otherwise, a disk hit of a split loop included).
    Also the engine's prelude, which compiles it directly if nothing did first."""
    _runtime(compile_support)


engine.register_prelude(RUNTIME_SYMBOL, ensure_runtime)   # lowered.PRELUDE_MODULES names it


def num_threads() -> int:
    """Threads compiled loops use now (the caller included): ad.config.num_threads."""
    return config.num_threads


def stats() -> dict:
    """The pool's counters: workers started, chunks run by workers (not the caller) so far,
    workers asleep now, times a worker fell asleep so far; None before the pool exists (no
    split loop compiled yet)."""
    fns = _state.get("fns")
    if not fns:
        return None
    return {"threads": num_threads(), "workers": int(fns["stat"](1)),
            "worker_chunks": int(fns["stat"](0)), "sleeping": int(fns["stat"](2)),
            "sleeps": int(fns["stat"](3))}


def set_spin(rounds: int) -> None:
    """Pause rounds a waiting thread spins before it sleeps (or yields); default SPIN. For
    tests and experiments: it changes timing, never results."""
    fns = _runtime()
    fns["spin"](int(rounds))


def _on_threads_change(n: int, explicit: bool) -> None:
    with _lock:
        fns = _state.get("fns")
        if fns:
            _apply(fns)


config._thread_listeners.append(_on_threads_change)


def _after_fork_in_child():
    fns = _state.get("fns")
    if fns:
        fns["init"]()      # the parent's workers do not exist here: spawned = 0, fresh locks
        _apply(fns)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
