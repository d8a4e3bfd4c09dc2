"""The `autodiff-jit` command line (also `python -m autodiff_jit`).

    autodiff-jit bench [--quick] [--cases rosenbrock,gmm] [--size quick|default|all|LABEL]
                       [--modes compiled,tape,interpret] [--peers jax,torch,autograd|none]
                       [--json FILE] [--markdown FILE] [--plot FILE.png] [--list]
    autodiff-jit ir FILE.py:FUNC --arg 3 --arg 4,3:f32 [--stage all] [--argnums 0] [--dot FILE]

See docs/cli.md.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import sys

import numpy as np

from ._version import __version__

STAGES = ("traced", "adjoint", "optimized", "llvm", "asm")
DTYPES = {"f64": np.float64, "float64": np.float64, "double": np.float64, "float": np.float64,
          "f32": np.float32, "float32": np.float32, "single": np.float32,
          "i64": np.int64, "int64": np.int64, "int": np.int64, "i32": np.int32,
          "int32": np.int32, "bool": np.bool_, "b1": np.bool_}


# ---------------------------------------------------------------------------------------------
# bench

def _csv(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else []


def cmd_bench(ns) -> int:
    from .bench import report
    from .bench.objectives import OBJECTIVES, select
    from .bench.runner import MODES, Timing, run

    if ns.list:
        for obj in OBJECTIVES.values():
            print(f"{obj.name:<12} {obj.description}")
            for s in obj.sizes:
                tags = ",".join(s.tags) or "-"
                print(f"    {s.label:<28} ({tags})")
        return 0
    size = "quick" if ns.quick and ns.size is None else (ns.size or "default")
    timing = Timing.quick() if ns.quick else Timing()
    if ns.repeats:
        timing.repeats = ns.repeats
    if ns.min_time:
        timing.min_time = ns.min_time
    modes = tuple(_csv(ns.modes)) if ns.modes else MODES
    bad = [m for m in modes if m not in MODES]
    if bad:
        print(f"autodiff-jit bench: unknown mode(s) {', '.join(bad)}; modes: "
              f"{', '.join(MODES)}", file=sys.stderr)
        return 2
    peers = () if ns.peers in ("none", "") else tuple(_csv(ns.peers)) if ns.peers else \
        ("jax", "torch", "autograd")
    try:
        select(_csv(ns.cases) or None, size)
    except (ValueError, KeyError) as exc:
        print(f"autodiff-jit bench: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    pinned = None
    if ns.cpus is not None:
        from .bench.runner import pin_to_cpus
        try:
            pinned = pin_to_cpus(ns.cpus)
        except ValueError as exc:
            print(f"autodiff-jit bench: {exc}", file=sys.stderr)
            return 2
    progress = report.make_progress(quiet=ns.no_progress)
    result = run(_csv(ns.cases) or None, size, modes=modes, peers=peers, timing=timing,
                 progress=progress, seed=ns.seed)
    if pinned is not None:
        result.notes = [f"process pinned to CPU(s) {pinned} (--cpus {ns.cpus}): autodiff_jit, "
                        f"numpy's BLAS and the peers share them"]
    report.print_result(result, use_rich=None if ns.color == "auto" else ns.color == "always")
    if ns.json:
        report.write_json(result, ns.json)
        print(f"wrote {ns.json}")
    if ns.markdown:
        report.write_markdown(result, ns.markdown)
        print(f"wrote {ns.markdown}")
    if ns.plot:
        if report.plot(result, ns.plot):
            print(f"wrote {ns.plot}")
        else:
            print("--plot: matplotlib is not installed; no figure written "
                  "(pip install matplotlib)", file=sys.stderr)
    if not result.agreed:
        bad = [f"{c.name} {c.size}: {', '.join(c.mismatches)}" for c in result.cases
               if not c.agreed]
        print("GRADIENTS DISAGREE: " + "; ".join(bad), file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------------------------
# ir

def parse_arg_spec(spec: str):
    """'3' -> ((3,), float64); '4,3:f32' -> ((4, 3), float32); '()' or 'scalar' -> ((), f64)."""
    text = spec.strip()
    shape_text, _, dtype_text = text.partition(":")
    dtype_text = dtype_text.strip().lower() or "f64"
    if dtype_text not in DTYPES:
        raise ValueError(f"unknown dtype {dtype_text!r} in --arg {spec!r}; use one of "
                         f"{', '.join(sorted(DTYPES))}")
    s = shape_text.strip().strip("()[]").replace("x", ",").replace(" ", "")
    if shape_text.strip().lower() in ("scalar", "", "()", "[]"):
        shape = ()
    else:
        try:
            shape = tuple(int(p) for p in s.split(",") if p != "")
        except ValueError:
            raise ValueError(f"cannot read the shape in --arg {spec!r}; write e.g. 3, 4,3, "
                             f"4,3:f32 or () for a scalar") from None
        if any(d < 0 for d in shape):
            raise ValueError(f"negative dimension in --arg {spec!r}")
    return shape, np.dtype(DTYPES[dtype_text])


def make_arg(shape, dtype, fill="ones", index=0):
    if fill == "zeros":
        a = np.zeros(shape, dtype)
    elif fill == "random":
        rng = np.random.default_rng(index)
        a = rng.standard_normal(shape).astype(dtype) if np.dtype(dtype).kind == "f" else \
            rng.integers(0, 3, size=shape).astype(dtype)
    else:
        a = np.ones(shape, dtype)
    if shape == () and np.dtype(dtype) == np.float64:
        return float(a)
    return a


def load_function(target: str):
    """'path/to/file.py:func' or 'package.module:func' -> the object (import-time output of the
    file goes to stderr, so that stdout holds only the IR)."""
    if ":" not in target:
        raise ValueError(f"expected FILE.py:FUNC, got {target!r}")
    where, _, name = target.rpartition(":")
    with contextlib.redirect_stdout(sys.stderr):
        if where.endswith(".py") or os.sep in where or os.path.exists(where):
            path = os.path.abspath(where)
            if not os.path.exists(path):
                raise FileNotFoundError(f"no such file: {where}")
            mod_name = "_autodiff_jit_cli_" + os.path.splitext(os.path.basename(path))[0]
            spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.path.insert(0, os.path.dirname(path))
            try:
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(os.path.dirname(path))
        else:
            module = importlib.import_module(where)
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(module) if not n.startswith("_") and
                     callable(getattr(module, n))]
            raise AttributeError(f"{where} has no {name!r}; callables there: "
                                 f"{', '.join(names) or '(none)'}")
        obj = getattr(obj, part)
    return obj


def _printer(color: str):
    use_rich = False
    if color != "never":
        try:
            import rich  # noqa: F401
            use_rich = color == "always" or sys.stdout.isatty()
        except ImportError:
            use_rich = False
    if not use_rich:
        def show(title, text, lexer=None):
            print(f"=== {title} ===")
            print(text.rstrip("\n"))
            print()

        def note(title, msg):
            print(f"=== {title} ===")
            print(f"(unavailable: {msg})")
            print()
        return show, note
    from rich.console import Console
    from rich.rule import Rule
    from rich.syntax import Syntax
    console = Console(force_terminal=color == "always" or None)

    def show(title, text, lexer=None):
        console.print(Rule(title, align="left"))
        console.print(Syntax(text.rstrip("\n"), lexer or "text", theme="ansi_dark",
                             background_color="default", word_wrap=False))
        console.print()

    def note(title, msg):
        console.print(Rule(title, align="left"))
        console.print(f"(unavailable: {msg})", style="yellow", markup=False, highlight=False)
        console.print()
    return show, note


def _short_error(exc) -> str:
    msg = str(exc).strip().splitlines()
    first = msg[0] if msg else ""
    return f"{type(exc).__name__}: {first}"


def cmd_ir(ns) -> int:
    from .api import Transformed, grad, jit, make_ir

    try:
        fun = load_function(ns.target)
    except Exception as exc:
        print(f"autodiff-jit ir: cannot load {ns.target}: {_short_error(exc)}", file=sys.stderr)
        return 2
    argnums = ns.argnums
    if isinstance(fun, Transformed):           # e.g. a function decorated with @ad.grad
        if ns.argnums is None and fun.kind != "jit":
            argnums = fun.argnums
        fun = fun.fun
    if not callable(fun):
        print(f"autodiff-jit ir: {ns.target} is not callable", file=sys.stderr)
        return 2
    if argnums is None:
        argnums = 0
    try:
        specs = [parse_arg_spec(s) for s in (ns.arg or [])]
    except ValueError as exc:
        print(f"autodiff-jit ir: {exc}", file=sys.stderr)
        return 2
    args = [make_arg(shape, dtype, ns.fill, i) for i, (shape, dtype) in enumerate(specs)]
    stages = STAGES[:-1] if ns.stage == "all" else STAGES if ns.stage == "every" else \
        tuple(_csv(ns.stage))
    bad = [s for s in stages if s not in STAGES]
    if bad:
        print(f"autodiff-jit ir: unknown stage(s) {', '.join(bad)}; stages: "
              f"{', '.join(STAGES)}, all (all but asm), every", file=sys.stderr)
        return 2
    show, note = _printer(ns.color)
    g = jit(fun) if ns.no_grad else grad(fun, argnums=argnums)
    what = "jit" if ns.no_grad else f"grad argnums={argnums}"
    status = 0
    dot_source = None
    for stage in stages:
        title = {"traced": "traced IR (forward)", "adjoint": f"adjoint IR ({what}, unoptimized)",
                 "optimized": f"optimized IR ({what}: what runs)", "llvm": "LLVM IR",
                 "asm": "assembly (host CPU)"}[stage]
        if ns.no_grad and stage == "adjoint":
            note(title, "--no-grad: there is no adjoint")
            continue
        try:
            with contextlib.redirect_stdout(sys.stderr):
                if stage == "traced":
                    out = make_ir(fun)(*args)
                elif stage == "adjoint":
                    out = make_ir(g)(*args)
                elif stage == "optimized":
                    out = g.ir(*args)
                elif stage == "llvm":
                    out = g.llvm_ir(*args)
                else:
                    out = g.asm(*args)
        except Exception as exc:  # an unavailable stage is a note, not a traceback
            msg = _short_error(exc)
            if "scalar float output" in msg and not ns.no_grad:
                msg += " (inspect jit(FUNC) instead with --no-grad)"
            note(title, msg)
            if stage in ("traced", "adjoint", "optimized"):
                status = 1
            continue
        if stage in ("traced", "adjoint", "optimized"):
            dot_source = out        # the DOT picture shows the last IR stage printed
        show(title, str(out), {"llvm": "llvm", "asm": "gas"}.get(stage))
    if ns.dot:
        try:
            from . import viz
        except ImportError:
            print("--dot: autodiff_jit.viz is not available; no DOT file written",
                  file=sys.stderr)
        else:
            fn = dot_source if dot_source is not None else make_ir(fun)(*args)
            with open(ns.dot, "w") as f:
                f.write(viz.to_dot(fn))
            print(f"wrote {ns.dot} (Graphviz DOT of {fn.name}; render with "
                  f"`dot -Tsvg {ns.dot} -o graph.svg`)")
    return status


# ---------------------------------------------------------------------------------------------

def build_parser():
    p = argparse.ArgumentParser(prog="autodiff-jit",
                                description="autodiff_jit: benchmarks and IR inspection.")
    p.add_argument("--version", action="version", version=f"autodiff-jit {__version__}")
    sub = p.add_subparsers(dest="command", metavar="{bench,ir}")

    b = sub.add_parser("bench", help="time gradients of built-in objectives in every mode",
                       description="Time gradients of the built-in objectives in compiled, "
                       "tape and interpreter mode against the numpy forward and (when "
                       "installed) JAX, PyTorch and autograd.")
    b.add_argument("--quick", action="store_true", help="small sizes, short timing (seconds)")
    b.add_argument("--cases", help="comma-separated objectives (see --list); default all")
    b.add_argument("--size", help="quick, default, all, or a size label (see --list)")
    b.add_argument("--modes", help="comma-separated modes (default compiled,tape,interpret)")
    b.add_argument("--peers", help="comma-separated peers (default jax,torch,autograd; "
                   "'none' for none); missing ones are listed as skipped")
    b.add_argument("--repeats", type=int, help="timed batches per measurement")
    b.add_argument("--min-time", type=float, help="minimum seconds per timed batch")
    b.add_argument("--seed", type=int, default=0, help="random seed of the arguments")
    b.add_argument("--cpus", type=int, metavar="N",
                   help="pin the whole process (autodiff_jit, numpy's BLAS and every peer's "
                   "thread pools) to N CPUs and run autodiff_jit on N threads (Linux)")
    b.add_argument("--json", metavar="FILE", help="write the results as JSON")
    b.add_argument("--markdown", metavar="FILE", help="write the tables as Markdown")
    b.add_argument("--plot", metavar="FILE.png", help="bar chart (needs matplotlib)")
    b.add_argument("--list", action="store_true", help="list objectives and sizes, then exit")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    b.set_defaults(func=cmd_bench)

    i = sub.add_parser("ir", help="print each compilation stage of a function",
                       description="Trace FILE.py:FUNC on arguments of the given shapes and "
                       "print the traced IR, the adjoint IR, the optimized IR, the LLVM IR "
                       "and the assembly.")
    i.add_argument("target", metavar="FILE.py:FUNC", help="function to inspect "
                   "(or package.module:FUNC)")
    i.add_argument("--arg", action="append", metavar="SHAPE[:DTYPE]",
                   help="one per argument: 3, 4,3, 4,3:f32, () or scalar (default dtype f64)")
    i.add_argument("--stage", default="all", help="traced, adjoint, optimized, llvm, asm "
                   "(comma-separated), all (= all but asm) or every")
    i.add_argument("--argnums", type=lambda s: int(s) if "," not in s else
                   tuple(int(x) for x in _csv(s)), help="argument(s) to differentiate: 0 or 0,1")
    i.add_argument("--no-grad", action="store_true", help="inspect jit(FUNC) (no gradient)")
    i.add_argument("--fill", choices=("ones", "zeros", "random"), default="ones",
                   help="argument values used to trace (shapes are what matter)")
    i.add_argument("--dot", metavar="FILE", help="write a Graphviz DOT picture of the IR")
    i.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    i.set_defaults(func=cmd_ir)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if not getattr(ns, "func", None):
        parser.print_help()
        return 0
    return ns.func(ns)


if __name__ == "__main__":
    raise SystemExit(main())
