"""`compare(f, *args)`: the benchmark's measurement for your own numpy function.

    import autodiff_jit as ad
    r = ad.compare(loss, W, X, y, argnums=0)
    print(r)            # a table; in a notebook, `r` renders as HTML
    r.to_dict()         # the numbers

It times the plain numpy forward and `grad(f)` in each mode (first call separately, as compile
time), after checking that the gradients agree. Peers (JAX, PyTorch, autograd) cannot run an
arbitrary numpy function: pass your own implementations as `peers={"torch": grad_fn}` (each a
zero-argument callable returning the gradient, or a callable taking `*args`), or give the name
of a built-in objective instead of a function (`compare("rosenbrock", size="n=1e3")`) to run
the built-in peers.
"""
from __future__ import annotations

from dataclasses import asdict

import numpy as np

from . import report
from .runner import MODES, Timing, describe_backend, machine_info, measure_case


class CompareResult:
    """The measurements of one function. `str()` is a table, `_repr_html_()` the same as HTML,
    `to_dict()` plain data; `.case` is the `runner.CaseResult` with every number."""

    def __init__(self, case, timing, notes=()):
        self.case = case
        self.cases = [case]
        self.timing = asdict(timing)
        self.notes = list(notes)
        self.compiled_backend = describe_backend([case.executable]) \
            if "compiled" in case.measurements else ""
        self.machine = machine_info()

    @property
    def agreed(self) -> bool:
        return self.case.agreed

    def time(self, impl):
        """Median seconds per call of `impl` ("numpy", "compiled", "tape", ...), or None."""
        return self.case.time(impl)

    def ratio(self, num, den="compiled"):
        return self.case.ratio(num, den)

    def to_dict(self):
        return {"machine": self.machine, "timing": self.timing, "notes": self.notes,
                "compiled_backend": self.compiled_backend, "case": self.case.to_dict()}

    def __str__(self):
        return report.format_text(self)

    def _repr_html_(self):
        return report.to_html(self)

    def __repr__(self):
        m = self.case.measurements
        parts = [f"{k}={report.fmt_time(v.median)}" for k, v in m.items() if v.median]
        return f"<CompareResult {self.case.name}: {', '.join(parts)}>"


def _peer_prepare(impl, args):
    """A user peer: a zero-argument callable, or one taking the same arguments as f."""
    import inspect
    try:
        n = len([p for p in inspect.signature(impl).parameters.values()
                 if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY,
                                                        p.POSITIONAL_OR_KEYWORD)])
    except (TypeError, ValueError):
        n = len(args)
    call = impl if n == 0 else (lambda: impl(*args))

    def to_numpy(out):
        if hasattr(out, "detach"):
            out = out.detach().numpy()
        if isinstance(out, (list, tuple)):
            return [np.asarray(o.detach().numpy() if hasattr(o, "detach") else o) for o in out]
        return out
    return lambda: (call, to_numpy)


def compare(f, *args, modes=MODES, peers=("jax", "torch", "autograd"), argnums=0,
            size="default", quick=False, timing: Timing | None = None, progress=False,
            name=None) -> CompareResult:
    """Time `grad(f, argnums)(*args)` in each of `modes` against the numpy forward `f(*args)`.

    f: your numpy function (scalar output), or the name of a built-in objective
       ("rosenbrock", "gmm", ... with `size`, no args needed), which also runs its peers.
    peers: names of peer libraries (used for built-in objectives; for your own function they
       are listed as skipped, with a note), or a dict {name: gradient implementation}.
    quick: shorter timing (Timing.quick()); timing: a runner.Timing for full control.
    progress: show a progress bar (stderr).
    """
    from . import peers as peer_mod
    timing = timing or (Timing.quick() if quick else Timing())
    modes = tuple(modes)
    notes = []
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ValueError(f"unknown mode(s) {bad}; modes are {MODES}")
    if isinstance(f, str):
        from .objectives import OBJECTIVES
        if f not in OBJECTIVES:
            raise ValueError(f"unknown built-in objective {f!r}; known: {', '.join(OBJECTIVES)}")
        obj = OBJECTIVES[f]
        sizes = [s for s in obj.sizes if s.label == size or size in s.tags]
        sz = sizes[0] if sizes else obj.size(size)
        if not args:
            args = obj.make_args(sz.params, np.random.default_rng(0))
        fn, argnums, label, size_label = obj.make_fn(sz.params), obj.argnums, obj.name, sz.label
        builtin = obj.name
    else:
        if not callable(f):
            raise TypeError(f"compare expects a function or a built-in objective name, "
                            f"got {type(f).__name__}")
        fn, label, size_label, builtin = f, name or getattr(f, "__name__", "f"), "", None
        shapes = []
        for a in args:
            shp = np.shape(a) if not isinstance(a, (tuple, list, dict)) else "pytree"
            shapes.append("scalar" if shp == () else str(shp))
        size_label = ", ".join(shapes)

    case_peers = {}
    if isinstance(peers, dict):
        for pname, impl in peers.items():
            case_peers[pname] = _peer_prepare(impl, args)
    else:
        for pname in peers:
            ok, info = peer_mod.available(pname)
            if builtin is None:
                case_peers[pname] = "user function: pass peers={'%s': your_grad_fn}" % pname
            elif not ok:
                case_peers[pname] = info
            else:
                case_peers[pname] = (lambda p=pname: peer_mod.prepare(
                    p, builtin, sz.params, args, argnums))
        if builtin is None and peers:
            notes.append("peers (" + ", ".join(peers) + ") only run built-in objectives; for "
                         "your own function pass peers={name: gradient_function}")

    bar = report.make_progress() if progress else None
    if bar is not None:
        from .runner import count_steps
        bar.start(count_steps(len(modes), case_peers))
    try:
        case = measure_case(label, size_label, fn, args, argnums, modes=modes, peers=case_peers,
                            timing=timing, progress=bar.advance if bar else None)
    finally:
        if bar is not None:
            bar.close()
    return CompareResult(case, timing, notes)
