"""Measuring gradients: first call (compile time) and steady-state median, per implementation.

For one function and its arguments, `measure_case` times
  - the plain numpy forward (`baseline`, the unit of the "x numpy" ratios),
  - autodiff_jit's gradient in each mode ("compiled", "tape", "interpret"), each with a fresh
    `grad` object so that its first call includes tracing, AD, optimization and compilation,
  - peers (JAX, PyTorch, autograd), when installed,
after checking that every gradient agrees with the reference (the interpreter when it runs,
else the first mode). Timing is timeit-style: the number of inner loops grows until one batch
takes at least `min_time`, then `repeats` batches are timed and the median per call is kept.
"""
from __future__ import annotations

import gc
import platform
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import tree

MODES = ("compiled", "tape", "interpret")


@dataclass
class Timing:
    """How long to measure. `min_time`: seconds per batch of inner loops; `repeats`: batches."""
    min_time: float = 0.1
    repeats: int = 5
    max_loops: int = 1_000_000

    @classmethod
    def quick(cls):
        return cls(min_time=0.002, repeats=3)


@dataclass
class Measurement:
    impl: str                       # numpy | compiled | tape | interpret | jax | torch | autograd
    kind: str                       # baseline | mode | peer
    status: str = "ok"              # ok | mismatch | skipped | error
    median: float | None = None     # seconds per call, steady state
    first_call: float | None = None  # seconds for the first call (trace + AD + compile)
    loops: int = 0
    repeats: int = 0
    max_rel_err: float | None = None
    note: str = ""


@dataclass
class CaseResult:
    name: str
    size: str
    value: float | None
    measurements: dict = field(default_factory=dict)   # impl -> Measurement
    reference: str | None = None
    executable: str = ""            # class of the compiled-mode executable

    def time(self, impl):
        m = self.measurements.get(impl)
        return m.median if m is not None and m.median and m.status in ("ok", "mismatch") else None

    def ratio(self, num, den):
        """time(num) / time(den), or None."""
        a, b = self.time(num), self.time(den)
        return a / b if a and b else None

    @property
    def agreed(self) -> bool:
        return all(m.status != "mismatch" for m in self.measurements.values())

    @property
    def mismatches(self) -> list[str]:
        return [k for k, m in self.measurements.items() if m.status == "mismatch"]

    def to_dict(self):
        d = asdict(self)
        d["measurements"] = {k: asdict(m) for k, m in self.measurements.items()}
        d["agreed"] = self.agreed
        d["ratios"] = ratios(self)
        return d


def ratios(case: CaseResult) -> dict:
    """The derived columns: gradient / numpy forward for each implementation, tape / compiled,
    each peer / compiled (above 1: autodiff_jit compiled is faster) and compiled / each peer
    (the peer table's ratio: below 1, autodiff_jit compiled is faster)."""
    out = {}
    for impl, m in case.measurements.items():
        if m.kind != "baseline":
            out[f"{impl}/numpy"] = case.ratio(impl, "numpy")
    if "compiled" in case.measurements:
        for impl, m in case.measurements.items():
            if impl != "compiled" and m.kind in ("mode", "peer"):
                out[f"{impl}/compiled"] = case.ratio(impl, "compiled")
            if m.kind == "peer":
                out[f"compiled/{impl}"] = case.ratio("compiled", impl)
    return out


# ---------------------------------------------------------------------------------------------
# timing

def autorange(call, min_time: float, max_loops: int = 1_000_000) -> int:
    """The number of inner loops for one batch to take at least `min_time` (1, 2, 5, 10, ...)."""
    n = 1
    while True:
        for k in (1, 2, 5):
            loops = n * k
            t0 = time.perf_counter()
            for _ in range(loops):
                call()
            if time.perf_counter() - t0 >= min_time or loops >= max_loops:
                return loops
        n *= 10


def time_call(call, timing: Timing) -> tuple[float, int]:
    """(median seconds per call, loops per batch). GC is off while timing, as in timeit."""
    was = gc.isenabled()
    gc.disable()
    try:
        loops = autorange(call, timing.min_time, timing.max_loops)
        samples = []
        for _ in range(timing.repeats):
            t0 = time.perf_counter()
            for _ in range(loops):
                call()
            samples.append((time.perf_counter() - t0) / loops)
    finally:
        if was:
            gc.enable()
    return float(np.median(samples)), loops


def first_call(call):
    t0 = time.perf_counter()
    out = call()
    return out, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# agreement

def flat_grads(g) -> list[np.ndarray]:
    leaves, _ = tree.flatten(g)
    return [np.asarray(x, dtype=np.float64) for x in leaves]


def rel_err(got, ref) -> float:
    """Largest |got - ref| over all leaves, relative to the largest |ref| of that leaf."""
    if len(got) != len(ref):
        return float("inf")
    worst = 0.0
    for a, b in zip(got, ref):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape:
            return float("inf")
        if a.size == 0:
            continue
        scale = max(float(np.max(np.abs(b))), 1e-300)
        diff = np.abs(a - b)
        if np.any(np.isnan(a) != np.isnan(b)):
            return float("inf")
        worst = max(worst, float(np.nanmax(diff)) / scale if diff.size else 0.0)
    return worst


def _tolerance(args, argnums) -> float:
    leaves = tree.flatten([args[i] for i in argnums])[0]
    single = any(np.asarray(x).dtype == np.float32 for x in leaves)
    return 1e-3 if single else 1e-6


# ---------------------------------------------------------------------------------------------
# one case

def measure_case(name, size, fn, args, argnums=0, *, modes=MODES, peers=None,
                 timing: Timing | None = None, progress=None, warn=None) -> CaseResult:
    """Measure `fn`'s gradient (w.r.t. `argnums`) on `args` in each mode and with each peer.

    peers: {name: prepare() -> (call, to_numpy)} for the peers to run, or
           {name: "reason"} for peers to list as skipped.
    progress: a callable(str) told before each measurement; warn: a callable(str) for loud
    messages (gradient mismatches), default print to stderr.
    """
    from ..api import grad

    timing = timing or Timing()
    peers = peers or {}
    tick = progress or (lambda desc: None)
    if warn is None:
        import sys

        def warn(msg):
            print(msg, file=sys.stderr)
    argnums_t = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    label = f"{name} {size}".strip()
    try:
        value = float(fn(*args))
    except Exception:
        value = None
    res = CaseResult(name, size, value)

    # results first (first call = compile time), then agreement, then steady-state timing
    calls = {}
    tick(f"{label}: numpy forward")
    base = Measurement("numpy", "baseline")
    _, base.first_call = first_call(lambda: fn(*args))
    res.measurements["numpy"] = base
    calls["numpy"] = lambda: fn(*args)
    grads = {}
    for mode in modes:
        tick(f"{label}: {mode} (first call)")
        m = Measurement(mode, "mode")
        res.measurements[mode] = m
        try:
            # cache=False: the first call is the compile time, not a load from the disk cache
            g = grad(fn, argnums=argnums, mode=mode, cache=False)
            out, m.first_call = first_call(lambda: g(*args))
            grads[mode] = flat_grads(out)
            calls[mode] = (lambda g=g: g(*args))
            if mode == "compiled":
                exe = g.specialize(*args).executable
                res.executable = type(exe).__name__
        except Exception as exc:
            m.status, m.note = "error", f"{type(exc).__name__}: {exc}"
    for peer, prep in peers.items():
        m = Measurement(peer, "peer")
        res.measurements[peer] = m
        if isinstance(prep, str):
            m.status, m.note = "skipped", prep
            continue
        tick(f"{label}: {peer} (first call)")
        try:
            call, to_numpy = prep()
            out, m.first_call = first_call(call)
            grads[peer] = flat_grads(to_numpy(out))
            calls[peer] = call
        except Exception as exc:
            m.status, m.note = "error", f"{type(exc).__name__}: {exc}"

    ref = next((k for k in ("interpret", "compiled", "tape", *peers) if k in grads), None)
    res.reference = ref
    tol = _tolerance(args, argnums_t)
    for impl, g in grads.items():
        m = res.measurements[impl]
        m.max_rel_err = rel_err(g, grads[ref])
        if not m.max_rel_err <= tol:
            m.status = "mismatch"
            m.note = f"gradient differs from {ref}'s: max relative error {m.max_rel_err:.3g}"
            warn(f"!!! GRADIENT MISMATCH in {label}: {impl} disagrees with {ref} "
                 f"(max relative error {m.max_rel_err:.3g} > {tol:g})")

    for impl, call in calls.items():
        tick(f"{label}: {impl}")
        m = res.measurements[impl]
        try:
            m.median, m.loops = time_call(call, timing)
            m.repeats = timing.repeats
        except Exception as exc:
            m.status, m.note = "error", f"{type(exc).__name__}: {exc}"
    return res


def count_steps(n_modes, peers) -> int:
    """Progress ticks measure_case makes for a case (for a progress bar's total)."""
    n_run = sum(1 for p in peers.values() if not isinstance(p, str))
    return 2 + 2 * n_modes + 2 * n_run + 1


# ---------------------------------------------------------------------------------------------
# the built-in suite

@dataclass
class BenchResult:
    cases: list
    modes: tuple
    peers: dict                     # name -> "version" or "skipped: reason"
    machine: dict
    timing: dict
    compiled_backend: str

    def to_dict(self):
        return {"machine": self.machine, "timing": self.timing, "modes": list(self.modes),
                "peers": self.peers, "compiled_backend": self.compiled_backend,
                "cases": [c.to_dict() for c in self.cases]}

    @property
    def agreed(self):
        return all(c.agreed for c in self.cases)


def pin_to_cpus(n: int) -> list[int]:
    """Restrict this process (its threads now and those it starts later: our pool, BLAS,
    JAX's and torch's pools) to the first `n` CPUs it may run on, and run autodiff_jit (pool and numpy's
    BLAS) on `n` threads, so that a one-CPU comparison gives every peer one core. Returns the
    CPUs kept. Raises ValueError where the platform cannot set an affinity or n is out of
    range."""
    import os

    from ..config import config
    if not hasattr(os, "sched_setaffinity"):
        raise ValueError("--cpus needs os.sched_setaffinity (Linux); run the bench under "
                         "`taskset` or set the thread variables instead")
    allowed = sorted(os.sched_getaffinity(0))
    if not 1 <= n <= len(allowed):
        raise ValueError(f"--cpus {n}: this process may run on {len(allowed)} CPU(s) "
                         f"({allowed}); pass 1..{len(allowed)}")
    keep = allowed[:n]
    # every thread already running too (numpy's OpenBLAS starts its workers at import, and a
    # peer may drive work through one of them): sched_setaffinity(0) pins the caller only
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, keep)
        except OSError:   # a thread that ended meanwhile
            pass
    config.num_threads = n
    return keep


def machine_info() -> dict:
    import os

    import llvmlite
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "llvmlite": llvmlite.__version__, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
    try:
        info["cpus_allowed"] = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    try:
        import llvmlite.binding as llvm
        info["cpu"] = llvm.get_host_cpu_name()
        from ..backend import blas
        info["blas_core"] = blas.core_name()
        info["blas_avx512_unused"] = blas.avx512_kernels_unused(
            dict(llvm.get_host_cpu_features()))
    except Exception:
        pass
    try:
        from .._version import __version__
        info["autodiff_jit"] = __version__
    except Exception:
        pass
    return info


def describe_backend(executables) -> str:
    names = {e for e in executables if e}
    if not names:
        return "unknown"
    if names <= {"Interpreted"}:
        return "interpreter (the LLVM backend has not landed; compiled mode runs the IR " \
               "interpreter)"
    return "llvm (" + ", ".join(sorted(names)) + ")"


def run(cases=None, size="default", modes=MODES, peers=("jax", "torch", "autograd"),
        timing: Timing | None = None, progress=None, warn=None, seed=0) -> BenchResult:
    """Run the built-in objectives. `progress` is an object with start(total), advance(desc)
    and close() (see report.make_progress), or None."""
    from . import peers as peer_mod
    from .objectives import select

    timing = timing or Timing()
    selected = select(cases, size)
    peer_status = {}
    for p in peers:
        ok, info = peer_mod.available(p)
        peer_status[p] = info if ok else f"skipped: {info}"
    total = sum(count_steps(len(modes), {p: None for p in peers
                                         if not peer_status[p].startswith("skipped")})
                for _ in selected)
    if progress is not None:
        progress.start(total)
    results = []
    try:
        for obj, sz in selected:
            rng = np.random.default_rng(seed)
            args = obj.make_args(sz.params, rng)
            fn = obj.make_fn(sz.params)
            case_peers = {}
            for p in peers:
                if peer_status[p].startswith("skipped"):
                    case_peers[p] = peer_status[p][len("skipped: "):]
                elif obj.name not in peer_mod.PEERS.get(p, {}):
                    case_peers[p] = f"no {p} implementation of {obj.name}"
                else:
                    case_peers[p] = (lambda p=p, obj=obj, sz=sz, args=args:
                                     peer_mod.prepare(p, obj.name, sz.params, args, obj.argnums))
            res = measure_case(obj.name, sz.label, fn, args, obj.argnums, modes=modes,
                               peers=case_peers, timing=timing,
                               progress=progress.advance if progress is not None else None,
                               warn=warn)
            results.append(res)
            if progress is not None:
                progress.advance(f"{obj.name} {sz.label}: done")
    finally:
        if progress is not None:
            progress.close()
    return BenchResult(results, tuple(modes), peer_status, machine_info(), asdict(timing),
                       describe_backend(c.executable for c in results))
