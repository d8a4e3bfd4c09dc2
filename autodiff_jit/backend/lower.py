"""Lowering of optimized IR to an LLVM module (llvmlite.ir).

Pipeline: `passes.inline.inline_calls` (custom_vjp_call regions become plain equations) ->
`passes.fuse.plan` (which values are stored, which are computed inline) -> one loop nest per
group, emitted by the per-primitive emitters of `EMITTERS` (emitters.py; dot.py,
lapack_kernels.py, lower_control.py, sortlib.py, selectlib.py, cumprod_kernels.py and
convolve_kernels.py add theirs when imported: by `load_emitters`, only when a function uses one of their primitives) -> entry function.

Entry ABI (callpath 'args'):
`void <name>(in_0*, ..., in_{n-1}*, [arena i8*], [status i64*], out_0*, ...)`
Every input, scalar or not, is passed as a pointer to C-contiguous data; outputs are buffers the
caller allocated (one per distinct computed result). A function that can report a run-time
error (status.py) takes the caller's status words (`Lowered.status_arg`). Intermediates live in one arena (planned
statically with liveness-based reuse): on the stack when small, otherwise a per-thread buffer
passed by the caller as one more input. 0-d intermediates are allocas (registers after mem2reg).
"""
from __future__ import annotations

import importlib

import numpy as np
from llvmlite import ir

from ..ir import Function, Lit, Var
from ..passes import fuse
from ..passes.inline import inline_calls
from . import engine, parallel
from . import status
from .emitters import EMITTERS, reduce_init
from .lowered import PROFILE_KERNELS, Lowered, LoweringError  # noqa: F401  (re-exported)
from .kernels import I1, I8, I8P, I64, VOID, Buffer, Index, const, for_range, i64, loop_nest, \
    mem_type

STACK_ARENA_LIMIT = 64 * 1024   # bytes of intermediates that may live on the stack
ALIGN = 64


# Primitives whose emitters live in modules of their own, imported by the first function that
# uses one (together they are a few ms of a process's first compile that a plain elementwise
# function never needs). tests/backend/test_coldstart.py checks this against what they register.
EMITTER_MODULES = {
    "dot_general": "dot",
    "argsort": "sortlib", "sort": "sortlib", "unpermute": "sortlib",
    "argselect": "selectlib", "argpartition": "selectlib", "partition": "selectlib",
    "partition_grad": "selectlib",
    "cumprod_grad": "cumprod_kernels",
    "convolve": "convolve_kernels",
    "cond": "lower_control", "scan": "lower_control", "while": "lower_control",
    **dict.fromkeys(("cholesky", "congruence_solve", "eigh", "lu_solve", "pinv", "qr", "slogdet",
                     "solve", "svd", "triangular_matmul", "triangular_solve"), "lapack_kernels"),
}


def load_emitters(names=None) -> None:
    """Import the emitter modules of the primitive names `names` (None: all of them)."""
    wanted = set(EMITTER_MODULES.values()) if names is None else \
        {EMITTER_MODULES[n] for n in names if n in EMITTER_MODULES and n not in EMITTERS}
    for module in sorted(wanted):
        importlib.import_module("." + module, __package__)


# ---------------------------------------------------------------------------------------------
# kernel profile (the result plan: Lowered, lowered.py)

def kernel_profile(low: "Lowered", top: int = 15) -> str:
    """Table of the most expensive kernels (needs AUTODIFF_JIT_PROFILE_KERNELS=1)."""
    if low.profile is None:
        return "(kernel profiling is off: set AUTODIFF_JIT_PROFILE_KERNELS=1)"
    prof = low.profile
    total = max(int(prof[:, 0].sum()), 1)
    order = np.argsort(-prof[:, 0])[:top]
    lines = [f"{'kernel':>6s} {'Mcycles/call':>12s} {'share':>6s}  group"]
    for gi in order:
        calls = max(int(prof[gi, 1]), 1)
        g = low.plan.schedule[gi]
        if isinstance(g, fuse.Nest):
            shape = f"nest {g.extent}"
        else:
            shape = "x".join(map(str, g.root.outputs[0].shape))
        lines.append(f"{gi:6d} {prof[gi, 0] / calls / 1e6:12.3f} {prof[gi, 0] / total:6.1%}  "
                     f"[{shape}] {g!r}")
    return "\n".join(lines)


def _arena_words(nbytes):
    return (nbytes + 7) // 8


# ---------------------------------------------------------------------------------------------
# the lowerer

def _read_vars(fn) -> set:
    """ids of the values read by fn's equations and results, nested regions included."""
    ids = {id(r) for r in fn.results if isinstance(r, Var)}
    for e in fn.eqns:
        ids.update(id(i) for i in e.inputs if isinstance(i, Var))
        for r in e.regions:
            ids |= _read_vars(r)
    return ids


class Lowerer:
    def __init__(self, fn: Function, name: str = "adj_entry"):
        self.emitters = EMITTERS
        self.fn = inline_calls(fn)
        self.name = name
        self.check_coverage()
        self.plan = fuse.plan(self.fn)
        self._read = _read_vars(self.fn)
        self.producer = {}
        for e in self.fn.eqns:
            for o in e.outputs:
                self.producer[id(o)] = e
        self.module = ir.Module(name=name)
        self.module.triple, self.module.data_layout = engine.triple_and_layout()
        self.buffers: dict[int, Buffer] = {}
        self.scalar_consts: dict[int, object] = {}
        self.const_arrays: dict[int, np.ndarray] = {}   # the constants' values, by id
        self.keepalive = []
        self._needs_dims: dict[int, bool] = {}
        # static value ranges [lo, hi) of i64 loop indices, by id of the LLVM value: lets the
        # padding views of a loop split at the pad boundaries skip their bounds checks
        self.ranges: dict[int, tuple] = {}
        self._range_keep = []
        self._group = None
        # loop indices of the enclosing nests (fuse.Nest): the leading axes of the current
        # kernel's iteration space are fixed to these
        self.prefix = []
        # (Split, lo, hi) while emitting a chunk function of a split loop (parallel.py)
        self.chunk = None
        self.chunk_loops = 0
        self.status = None            # the status-words argument of the body function
        self.status_used = False      # some emitter reports through it (status.py)
        self._index_flag = None       # i1 alloca: a traced index was out of bounds
        self._index_checked = False   # some gather ORs into it

    def check_coverage(self):
        load_emitters({e.prim.name for e in self.fn.all_eqns()})
        for e in self.fn.all_eqns():
            em = self.emitters.get(e.prim.name)
            if em is None:
                raise LoweringError(f"the LLVM backend has no emitter for primitive "
                                    f"'{e.prim.name}'")

    # -- helpers used by emitters ------------------------------------------------------------
    def is_read(self, var) -> bool:
        """Whether any equation (in any region) or result reads `var`: an output nobody reads
        need not be computed (sort's permutation, when only the values are used)."""
        return id(var) in self._read

    def alloca(self, ty, name=""):
        with self.builder.goto_block(self.entry_block):
            return self.builder.alloca(ty, name=name)

    def status_pointer(self):
        """The status words (status.py); using them makes the entry take them."""
        self.status_used = True
        return self.status

    def flag_index_error(self, bad):
        """OR the i1 `bad` into the function's out-of-bounds flag. The flag is an entry-block
        alloca (a register after mem2reg: an or-reduction, which does not stop vectorization)
        and is tested once, at the end of the function (`_report_index_errors`)."""
        b = self.builder
        flag = self._flag()
        self._index_checked = True
        b.store(b.or_(b.load(flag), bad), flag)

    def pending_error(self):
        """An i1: some traced index was out of bounds so far. Loops whose trip count depends on
        computed values stop on it (numpy would have raised; clamped values could spin)."""
        return self.builder.load(self._flag())

    def _flag(self):
        if self._index_flag is None:
            self._index_flag = self.alloca(I1, name="index_oob")
            with self.builder.goto_block(self.entry_block):
                self.builder.store(ir.Constant(I1, 0), self._index_flag)
        return self._index_flag

    def _report_index_errors(self):
        if self._index_checked:
            status.report_if(self, self.builder.load(self._index_flag),
                             status.INDEX_OUT_OF_BOUNDS, 0)

    def intrinsic(self, name, ty, nargs=1):
        fnty = ir.FunctionType(ty, [ty] * nargs)
        return self.module.declare_intrinsic(name, [ty], fnty)

    def is_stored(self, atom) -> bool:
        return isinstance(atom, Var) and id(atom) in self.buffers

    def buffer_of(self, atom):
        return self.buffers.get(id(atom)) if isinstance(atom, Var) else None

    def load(self, atom, index: Index):
        """Value of `atom` at `index` (index.shape == atom.shape), computing inlined producers."""
        if isinstance(atom, Lit):
            return const(atom.dtype, atom.value)
        key = id(atom)
        got = index.cache.get(key)
        if got is not None:
            return got
        buf = self.buffers.get(key)
        if buf is not None:
            v = self._uniform_const(key, index)
            if v is None:
                v = buf.load(self.builder, index)
        elif key in self.scalar_consts:
            v = self.scalar_consts[key]
        else:
            eqn = self.producer.get(key)
            if eqn is None:
                raise LoweringError(f"value {atom!r} has no storage and no producer")
            em = self.emitters[eqn.prim.name]
            if em.expr is None:
                raise LoweringError(f"'{eqn.prim.name}' must be stored but was not")
            v = em.expr(self, eqn, index)
        index.cache[key] = v
        return v

    def _uniform_const(self, key, index: Index):
        """A constant array read where every axis index has a static range (a padding segment,
        see iterate) over which the array holds one value: that value (no load; constant-mode
        np.pad's inside mask is such an array); else None."""
        arr = self.const_arrays.get(key)
        if arr is None or index._dims is None:
            return None
        box = []
        for d, v in zip(index.shape, index._dims):
            known = (0, 1) if d == 1 else self.ranges.get(id(v))
            if known is None:
                return None
            box.append(slice(*known))
        window = arr[tuple(box)]
        if window.size == 0 or not (window == window.flat[0]).all():
            return None
        return const(arr.dtype, window.flat[0])

    def needs_dims(self, atom) -> bool:
        """Whether computing `atom` per element needs per-axis indices (vs. a linear index)."""
        if not isinstance(atom, Var) or id(atom) in self.buffers or id(atom) in self.scalar_consts:
            return False
        key = id(atom)
        if key in self._needs_dims:
            return self._needs_dims[key]
        eqn = self.producer[key]
        k = fuse.kind_of(eqn)
        if eqn.prim.name == "reshape":
            r = self.needs_dims(eqn.inputs[0])
        elif k == "elementwise":
            r = any(isinstance(i, Var) and i.shape != atom.shape and i.aval.size > 1
                    for i in eqn.inputs) or any(self.needs_dims(i) for i in eqn.inputs)
        else:
            r = True
        self._needs_dims[key] = r
        return r

    def set_range(self, value, lo, hi):
        self.ranges[id(value)] = (lo, hi)
        self._range_keep.append(value)

    def _pad_breaks(self, shape, axis=0):
        """Boundaries along `axis` of the padding views (scatter_slice, step 1 along axis) in
        the current group whose output has the iteration shape."""
        if self._group is None or not shape:
            return []
        cuts = set()
        for e in self._group.eqns:
            if e.prim.name == "scatter_slice" and e.outputs[0].shape == tuple(shape) \
                    and e.params["step"][axis] == 1 and isinstance(e.inputs[0], Var):
                s0 = e.params["start"][axis]
                cuts.update((s0, s0 + e.inputs[0].shape[axis]))
        return sorted(c for c in cuts if 0 < c < shape[axis])

    def rest_nest(self, shape, i, body):
        """The loops over the axes after the first (i: the axis-0 index) of a loop split at
        padding boundaries, calling body(Index); the last axis is split at its own boundaries
        too, so that inside each piece every padding view is statically all-hit or all-zero
        along both (contiguous loads that vectorize, no clamp and select per element)."""
        b = self.builder
        rest = tuple(shape[1:])
        if not rest or int(np.prod(rest, dtype=np.int64)) == 1:
            body(Index(shape, dims=[i] + [i64(0)] * len(rest)))
            return
        cuts = self._pad_breaks(shape, len(shape) - 1)
        if not cuts:
            loop_nest(b, rest, lambda dims: body(Index(shape, dims=[i] + dims)))
            return
        bounds = [0] + cuts + [shape[-1]]

        def pieces(dims):
            for lo, hi in zip(bounds, bounds[1:]):
                def col(j, lo=lo, hi=hi):
                    self.set_range(j, lo, hi)
                    body(Index(shape, dims=[i] + dims + [j]))
                for_range(b, hi, col, start=lo, name="cseg")
        loop_nest(b, rest[:-1], pieces)

    def iterate(self, shape, body, flat: bool):
        """Loop over `shape` calling body(Index)."""
        b = self.builder
        size = int(np.prod(shape, dtype=np.int64))
        if size == 0:
            return
        if self.chunk is not None:
            parallel.iterate_chunk(self, shape, body)
            return
        if self.prefix:
            self._iterate_rest(shape, body, flat)
            return
        if len(shape) == 0 or size == 1:
            body(Index(shape))
            return
        cuts = self._pad_breaks(shape)
        if cuts or (len(shape) > 1 and self._pad_breaks(shape, len(shape) - 1)):
            # one loop per segment of axis 0 between pad boundaries (and of the last axis:
            # rest_nest): inside each, every pad view is statically all-hit or all-zero
            # (contiguous, vectorizable loads)
            bounds = [0] + cuts + [shape[0]]
            for lo, hi in zip(bounds, bounds[1:]):
                def seg(i, lo=lo, hi=hi):
                    self.set_range(i, lo, hi)
                    self.rest_nest(shape, i, body)
                for_range(b, hi, seg, start=lo, name="seg")
            return
        if flat or len(shape) == 1:
            for_range(b, size, lambda i: body(Index(shape, linear=i)))
        else:
            loop_nest(b, shape, lambda dims: body(Index(shape, dims=dims)))

    def prefix_linear(self, shape):
        """C-order linear index of the prefix within `shape`'s leading axes."""
        b = self.builder
        lin = None
        for d, v in zip(shape, self.prefix):
            lin = v if lin is None else b.add(b.mul(lin, i64(d), flags=["nuw", "nsw"]), v,
                                              flags=["nuw", "nsw"])
        return lin

    def _iterate_rest(self, shape, body, flat):
        """iterate() inside a nest: the leading axes are the nest indices, loop over the rest."""
        b = self.builder
        d = len(self.prefix)
        rest = tuple(shape[d:])
        n = int(np.prod(rest, dtype=np.int64))
        pre = list(self.prefix)
        if n == 1:
            body(Index(shape, dims=pre + [i64(0)] * len(rest)))
            return
        base = b.mul(self.prefix_linear(shape), i64(n), flags=["nuw", "nsw"])
        if len(rest) == 1:
            for_range(b, n, lambda r: body(Index(shape, dims=pre + [r],
                                                 linear=b.add(base, r, flags=["nuw", "nsw"]))))
        elif flat:
            for_range(b, n, lambda r: body(Index(shape, linear=b.add(base, r,
                                                                     flags=["nuw", "nsw"]))))
        else:
            loop_nest(b, rest, lambda dims: body(Index(shape, dims=pre + dims)))

    def emit_group(self, g, outs):
        self._group = g
        self.emitters[g.root.prim.name].kernel(self, g.root, outs)
        self._group = None
        for o, buf in zip(g.root.outputs, outs):
            self.buffers[id(o)] = buf

    def emit_nest(self, nest, outs_of):
        """One loop over the nest's axis; the members run inside it, in order."""
        b = self.builder
        ax = nest.depth - 1
        for g in nest.groups():
            axes = g.root.params.get("axes") if g.root.prim.name in fuse._NEST_PRIMS else None
            if axes and min(axes) == ax:
                reduce_init(self, g.root, outs_of[id(g)][0], ax)

        for_range(b, nest.extent, lambda i: self.emit_nest_row(nest, outs_of, i), name=f"n{ax}")

    def emit_nest_row(self, nest, outs_of, i):
        """The nest's members at row i of its axis (i: the loop's index value)."""
        self.prefix.append(i)
        for it in nest.items:
            if isinstance(it, fuse.Nest):
                self.emit_nest(it, outs_of)
            else:
                self.emit_group(it, outs_of[id(it)])
        self.prefix.pop()

    def store_kernel(self, var, out: Buffer):
        """out[...] = var[...] over var's shape, fused."""
        flat = not self.needs_dims(var)
        self.iterate(var.shape, lambda idx: out.store(self.builder, idx, self.load(var, idx)), flat)

    def fill(self, out: Buffer, value):
        self.iterate(out.shape, lambda idx: out.store(self.builder, idx, value), True)

    def temp_buffer(self, shape, dtype) -> Buffer:
        """Scratch memory live until the end of the current group."""
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        off = self._alloc(nbytes)
        self._group_temps.append(off)
        return Buffer(self._arena_ptr(off, dtype), shape, dtype)

    # -- arena -------------------------------------------------------------------------------
    def _alloc(self, nbytes) -> int:
        nbytes = max(ALIGN, (nbytes + ALIGN - 1) // ALIGN * ALIGN)
        off = 0
        for o, n in sorted(self._live.values()):
            if off + nbytes <= o:
                break
            off = max(off, o + n)
        key = len(self._live_keys)
        self._live_keys.append(key)
        self._live[key] = (off, nbytes)
        self.arena_bytes = max(self.arena_bytes, off + nbytes)
        return key

    def _free(self, key):
        self._live.pop(key, None)

    def _arena_ptr(self, key, dtype):
        off = self._live[key][0]
        b = self.builder
        with b.goto_block(self.entry_block):
            p = b.gep(self.arena, [i64(off)], inbounds=True) if off else self.arena
            p = b.bitcast(p, mem_type(dtype).as_pointer())
        return p

    # -- driver ------------------------------------------------------------------------------
    def lower(self) -> Lowered:
        fn = self.fn
        m = self.module
        arg_index = {id(a): i for i, a in enumerate(fn.args)}
        const_ids = {id(c) for c in fn.consts}
        # distinct computed results -> native outputs
        out_vars, out_pos, result_plan = [], {}, []
        for r in fn.results:
            if isinstance(r, Lit):
                result_plan.append(("lit", np.asarray(r.value, r.dtype)))
            elif id(r) in arg_index:
                result_plan.append(("arg", arg_index[id(r)]))
            elif id(r) in const_ids:
                result_plan.append(("const", np.array(fn.consts[r], dtype=r.dtype)))
            else:
                if id(r) not in out_pos:
                    out_pos[id(r)] = len(out_vars)
                    out_vars.append(r)
                result_plan.append(("out", out_pos[id(r)]))

        ptys = [mem_type(a.dtype).as_pointer() for a in fn.args] + [I8P, I64.as_pointer()] + \
            [mem_type(v.dtype).as_pointer() for v in out_vars]
        inner = ir.Function(m, ir.FunctionType(VOID, ptys), name=self.name + "_body")
        inner.linkage = "internal"
        inner.attributes.add("alwaysinline")
        inner.attributes.add("nounwind")
        for a in inner.args:
            a.add_attribute("noalias")
        self.entry_block = inner.append_basic_block("entry")
        body_block = inner.append_basic_block("body")
        self.builder = b = ir.IRBuilder(body_block)
        self.arena = inner.args[len(fn.args)]
        self.status = inner.args[len(fn.args) + 1]
        self.arena_bytes = 0
        self._live, self._live_keys = {}, []

        for a, p in zip(fn.args, inner.args):
            self.buffers[id(a)] = Buffer(p, a.shape, a.dtype)
        for c, value in fn.consts.items():
            arr = np.ascontiguousarray(value, dtype=c.dtype)
            if arr.ndim == 0 or arr.size == 1:
                self.scalar_consts[id(c)] = const(c.dtype, arr.reshape(-1)[0]) if arr.size else \
                    const(c.dtype, 0)
                if arr.ndim == 0:
                    continue
            self.keepalive.append(arr)
            self.const_arrays[id(c)] = arr
            addr = arr.ctypes.data
            ptr = ir.Constant(I64, addr).inttoptr(mem_type(c.dtype).as_pointer())
            self.buffers[id(c)] = Buffer(ptr, arr.shape, c.dtype)
            self.scalar_consts.pop(id(c), None)
        result_buffers = {id(v): Buffer(p, v.shape, v.dtype)
                          for v, p in zip(out_vars, inner.args[len(fn.args) + 2:])}

        # liveness of stored values, by schedule item (a group or a nest of groups)
        schedule = self.plan.schedule
        items = [list(it.groups()) if isinstance(it, fuse.Nest) else [it] for it in schedule]
        last_use: dict[int, int] = {}
        for gi, gs in enumerate(items):
            for g in gs:
                for e in g.eqns:
                    for i in e.inputs:
                        if isinstance(i, Var):
                            last_use[id(i)] = gi
        arena_key: dict[int, int] = {}
        profile = np.zeros((len(schedule), 2), np.int64) if PROFILE_KERNELS else None
        if profile is not None:
            self.keepalive.append(profile)
            rdtsc = m.declare_intrinsic("llvm.readcyclecounter", [], ir.FunctionType(I64, []))
        for gi, (item, gs) in enumerate(zip(schedule, items)):
            self._group_temps = []
            if profile is not None:
                t0 = b.call(rdtsc, [])
            outs_of = {}
            for g in gs:
                outs = []
                for o in g.root.outputs:
                    buf = result_buffers.get(id(o))
                    if buf is None:
                        if o.aval.ndim == 0 or o.aval.size == 1:
                            ptr = self.alloca(mem_type(o.dtype), name="s")
                        else:
                            key = self._alloc(o.aval.size * o.dtype.itemsize)
                            arena_key[id(o)] = key
                            ptr = self._arena_ptr(key, o.dtype)
                        buf = Buffer(ptr, o.shape, o.dtype)
                    outs.append(buf)
                outs_of[id(g)] = outs
            split = parallel.split_of_nest(self, item) if isinstance(item, fuse.Nest) else \
                parallel.split_of(self, item)
            if split is not None:
                parallel.emit_split(self, item, outs_of, split)
            elif isinstance(item, fuse.Nest):
                self.emit_nest(item, outs_of)
            else:
                self.emit_group(item, outs_of[id(item)])
            if profile is not None:
                slot = ir.Constant(I64, profile.ctypes.data + 16 * gi).inttoptr(I64.as_pointer())
                dt = b.sub(b.call(rdtsc, []), t0)
                b.store(b.add(b.load(slot), dt), slot)
                cnt = b.gep(slot, [i64(1)])
                b.store(b.add(b.load(cnt), i64(1)), cnt)
            for t in self._group_temps:
                self._free(t)
            for vid, key in list(arena_key.items()):
                if last_use.get(vid, -1) <= gi:
                    self._free(key)
                    del arena_key[vid]
        self._report_index_errors()
        b.ret_void()
        with b.goto_block(self.entry_block):
            b.branch(body_block)

        # the exported entry: supplies the arena
        arena_arg = self.arena_bytes > STACK_ARENA_LIMIT
        status_arg = self.status_used
        in_ptys = ptys[:len(fn.args)] + ([I8P] if arena_arg else []) + \
            ([I8P] if status_arg else [])
        out_ptys = ptys[len(fn.args) + 2:]
        entry = ir.Function(m, ir.FunctionType(VOID, in_ptys + out_ptys), name=self.name)
        entry.attributes.add("nounwind")
        # the packed entry (callpath) calls this one: not inlining the kernels into it as well
        # halves the machine code of small functions (Rosenbrock n=10: LLVM -1 ms)
        entry.attributes.add("noinline")
        eb = ir.IRBuilder(entry.append_basic_block("entry"))
        ins = list(entry.args[:len(in_ptys)])
        outs = list(entry.args[len(in_ptys):])
        words = eb.bitcast(ins.pop(), I64.as_pointer()) if status_arg else \
            ir.Constant(I64.as_pointer(), None)
        if arena_arg:
            arena = ins.pop()
        elif self.arena_bytes:
            arena = eb.alloca(I8, size=i64(self.arena_bytes), name="arena")
            arena.align = ALIGN
        else:
            arena = ir.Constant(I8P, None)
        eb.call(inner, ins + [arena, words] + outs)
        eb.ret_void()
        return Lowered(m, self.name, [a.aval for a in fn.args], [v.aval for v in out_vars],
                       result_plan, self.arena_bytes, arena_arg, self.keepalive, self.plan, fn,
                       profile, status_arg)


def lower_function(fn: Function, name: str = "adj_entry") -> Lowered:
    return Lowerer(fn, name).lower()
