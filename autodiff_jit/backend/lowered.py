"""What lowering hands to compiled.py (`Lowered`), kept apart from the lowerers so that a disk
cache hit, which rebuilds a `Lowered` from stored metadata, imports none of them (lower.py,
emitters, the fusion planner: ~8 ms of a new process's first call)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

# AUTODIFF_JIT_PROFILE_KERNELS=1: every kernel (group) accumulates its cycle count (rdtsc) and
# call count into `Lowered.profile` (an int64 array (n_groups, 2)); see `lower.kernel_profile`.
PROFILE_KERNELS = bool(os.environ.get("AUTODIFF_JIT_PROFILE_KERNELS"))

# In the name of every symbol of sin/cos/tan's huge-argument support module (mathlib.py), in
# IR text and object code: code containing it needs mathlib.ensure_huge_functions first.
HUGE_MARKER = ".huge.f64"

# Markers of support code that generated code may declare -> the module that provides it and
# registers its prelude (engine.register_prelude) when imported; a cache hit imports it for
# the code it maps (tests/backend/test_coldstart.py checks the names).
PRELUDE_MODULES = {"adj_parallel_for": "pool",    # pool.RUNTIME_SYMBOL: the thread pool's entry
                   HUGE_MARKER: "mathlib"}


class LoweringError(NotImplementedError):
    """A primitive (or a pattern of it) has no emitter."""


@dataclass
class Lowered:
    module: object               # the llvmlite ir.Module (None once compiled or when loaded)
    entry: str
    in_avals: list
    out_avals: list              # one per native output buffer
    result_plan: list            # ('out', j) | ('arg', i) | ('const', ndarray) | ('lit', ndarray)
    arena_bytes: int
    arena_arg: bool              # arena passed by the caller (True) or on the stack
    keepalive: list = field(default_factory=list)
    plan: object = None
    fn: object = None            # the IR Function lowered
    profile: object = None       # int64 (n_groups, 2): cycles, calls (PROFILE_KERNELS only)
    status_arg: bool = False     # takes the status words (status.py) after the arena
