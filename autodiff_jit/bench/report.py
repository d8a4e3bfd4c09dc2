"""Reporting benchmark results: progress bar, tables (rich when installed, else aligned text),
Markdown, JSON and a bar chart (matplotlib, optional).

Everything here reads an object with `.cases` (a list of `runner.CaseResult`) and, optionally,
`.peers`, `.compiled_backend`, `.machine`, `.timing` (a `runner.BenchResult` or a
`compare.CompareResult`).
"""
from __future__ import annotations

import json
import sys

PEER_NAMES = ("jax", "torch", "autograd")


def have_rich() -> bool:
    try:
        import rich  # noqa: F401
        return True
    except ImportError:
        return False


# ---------------------------------------------------------------------------------------------
# formatting

def fmt_time(t) -> str:
    if t is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"


def fmt_ratio(r) -> str:
    return "-" if r is None else f"{r:.3g}x"


def _impls(result):
    """Implementations in column order: modes, then peers that ran in at least one case."""
    order = ["compiled", "tape", "interpret"]
    seen = []
    for c in result.cases:
        for k, m in c.measurements.items():
            if k != "numpy" and k not in seen:
                seen.append(k)
    modes = [k for k in order if k in seen] + \
        [k for k in seen if k not in order and k not in PEER_NAMES and
         all(c.measurements.get(k) is None or c.measurements[k].kind == "mode"
             for c in result.cases)]
    peers = [k for k in seen if k not in modes and any(
        c.measurements.get(k) is not None and c.measurements[k].status != "skipped"
        for c in result.cases)]
    return modes, peers


def _cell_time(case, impl):
    m = case.measurements.get(impl)
    if m is None:
        return "-"
    if m.status == "skipped":
        return "skipped"
    if m.status == "error":
        return "error"
    s = fmt_time(m.median)
    return s + " !" if m.status == "mismatch" else s


def skipped_peers(result) -> dict:
    """peer -> reason, for peers that ran in no case."""
    out = {}
    for c in result.cases:
        for k, m in c.measurements.items():
            if m.kind == "peer" and m.status == "skipped":
                out.setdefault(k, m.note)
    _, ran = _impls(result)
    return {k: v for k, v in out.items() if k not in ran}


def tables(result):
    """[(title, headers, rows)] — the report, as plain strings, for every output format.
    Peers (when any ran) get a table of their own: each peer's time and autodiff_jit's ratio
    to it side by side, and every first-call time; the other two tables are autodiff_jit's."""
    modes, peers = _impls(result)
    ours = "compiled" if "compiled" in modes else (modes[0] if modes else None)
    own = modes if peers and ours else modes + peers
    t_head = ["case", "size", "numpy fwd"] + own + ["grads"]
    t_rows = []
    for c in result.cases:
        agree = "agree" if c.agreed else "MISMATCH: " + ", ".join(c.mismatches)
        errors = [k for k, m in c.measurements.items() if m.status == "error"]
        if errors:
            agree += " (error: " + ", ".join(errors) + ")"
        t_rows.append([c.name, c.size, _cell_time(c, "numpy")] +
                      [_cell_time(c, i) for i in own] + [agree])
    r_head = ["case", "size"] + [f"{i}/numpy" for i in own]
    others = [i for i in own if i != "compiled"] if "compiled" in own else []
    r_head += [f"{i}/compiled" for i in others]
    first = [i for i in own if i in ("compiled", *peers)] or own[:1]
    r_head += [f"1st call {i}" for i in first]
    r_rows = []
    for c in result.cases:
        row = [c.name, c.size] + [fmt_ratio(c.ratio(i, "numpy")) for i in own]
        row += [fmt_ratio(c.ratio(i, "compiled")) for i in others]
        row += [_first_call(c, i) for i in first]
        r_rows.append(row)
    out = [("Gradient time (median per call; numpy fwd = the plain numpy forward)",
            t_head, t_rows),
           ("Ratios (gradient time / numpy forward; X/compiled above 1 = compiled is faster) "
            "and first-call (compile) time", r_head, r_rows)]
    if peers and ours:
        out.append(peer_table(result, ours, peers))
    return out


def peer_table(result, ours, peers):
    """(title, headers, rows): per case, `ours`' steady-state time, then each peer's time and
    ours / peer (below 1: autodiff_jit is faster), then the first-call time of ours and of each
    peer (for jax.jit: its trace and XLA compile)."""
    head = ["case", "size", ours]
    for p in peers:
        head += [p, f"{ours}/{p}"]
    head += [f"1st call {i}" for i in (ours, *peers)]
    rows = []
    for c in result.cases:
        row = [c.name, c.size, _cell_time(c, ours)]
        for p in peers:
            row += [_cell_time(c, p), fmt_ratio(c.ratio(ours, p))]
        row += [_first_call(c, i) for i in (ours, *peers)]
        rows.append(row)
    title = (f"Against peers, in the same run (median per call; {ours}/peer below 1 = "
             f"autodiff_jit is faster) and first-call (compile) time")
    return title, head, rows


def _first_call(case, impl):
    m = case.measurements.get(impl)
    if m is None or m.first_call is None:
        return "-"
    return fmt_time(m.first_call)


def notes(result) -> list[str]:
    out = []
    backend = getattr(result, "compiled_backend", None)
    if backend:
        out.append(f"compiled mode: {backend}")
    for peer, why in skipped_peers(result).items():
        out.append(f"peer {peer}: skipped ({why})")
    for c in result.cases:
        for k, m in c.measurements.items():
            if m.status in ("mismatch", "error"):
                out.append(f"{c.name} {c.size}: {k}: {m.status}: {m.note}")
    machine = getattr(result, "machine", None) or {}
    if machine.get("blas_avx512_unused"):
        out.append(f"numpy's OpenBLAS runs its {machine.get('blas_core')} kernels on this "
                   f"AVX-512 CPU (matrix products, and ours through it, are slower than they "
                   f"could be): OPENBLAS_CORETYPE=SkylakeX in the environment selects its "
                   f"AVX-512 ones (docs/performance.md)")
    extra = getattr(result, "notes", None)
    if extra:
        out.extend(extra)
    timing = getattr(result, "timing", None)
    if timing:
        out.append(f"timing: median of {timing['repeats']} batches, each at least "
                   f"{timing['min_time']:g} s of inner loops; first call timed separately")
    return out


def _align(headers, rows) -> str:
    cols = list(zip(headers, *rows))
    widths = [max(len(str(x)) for x in col) for col in cols]
    line = lambda r: "  ".join(str(x).ljust(w) if i < 2 else str(x).rjust(w)  # noqa: E731
                                for i, (x, w) in enumerate(zip(r, widths))).rstrip()
    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


def format_text(result) -> str:
    parts = []
    for title, head, rows in tables(result):
        parts.append(title)
        parts.append(_align(head, rows))
        parts.append("")
    parts.extend(notes(result))
    return "\n".join(parts).rstrip() + "\n"


def to_markdown(result) -> str:
    parts = []
    for title, head, rows in tables(result):
        parts.append(f"**{title}**\n")
        parts.append("| " + " | ".join(head) + " |")
        parts.append("|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|")
        parts.extend("| " + " | ".join(str(x) for x in r) + " |" for r in rows)
        parts.append("")
    for n in notes(result):
        parts.append(f"- {n}")
    return "\n".join(parts).rstrip() + "\n"


def to_html(result) -> str:
    import html
    parts = []
    for title, head, rows in tables(result):
        parts.append(f"<p><b>{html.escape(title)}</b></p><table>")
        parts.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>")
        for r in rows:
            cells = "".join(
                f"<td style='text-align:{'left' if i < 2 else 'right'}'>{html.escape(str(x))}</td>"
                for i, x in enumerate(r))
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</table>")
    ns = notes(result)
    if ns:
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in ns) + "</ul>")
    return "\n".join(parts)


def print_result(result, file=None, use_rich=None):
    """Print the tables: rich when installed and writing to a terminal, else aligned text."""
    file = file or sys.stdout
    if use_rich is None:
        use_rich = have_rich() and getattr(file, "isatty", lambda: False)()
    if not use_rich:
        file.write(format_text(result))
        return
    from rich.console import Console
    from rich.table import Table
    console = Console(file=file)
    for title, head, rows in tables(result):
        t = Table(title=title, title_justify="left")
        for i, h in enumerate(head):
            t.add_column(h, justify="left" if i < 2 else "right", no_wrap=i < 2)
        for r in rows:
            style = "bold red" if any("MISMATCH" in str(x) for x in r) else None
            t.add_row(*[str(x) for x in r], style=style)
        console.print(t)
    for n in notes(result):
        console.print(n, style="red" if "mismatch" in n or "error" in n else "dim",
                      markup=False, highlight=False)


def write_json(result, path):
    with open(path, "w") as f:
        json.dump(result.to_dict(), f, indent=2, default=str)
        f.write("\n")


def write_markdown(result, path):
    with open(path, "w") as f:
        f.write(to_markdown(result))


def plot(result, path) -> bool:
    """A grouped bar chart of gradient time / numpy forward per case (log scale).
    Returns False (and draws nothing) when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    modes, peers = _impls(result)
    impls = modes + peers
    cases = result.cases
    labels = [f"{c.name}\n{c.size}" for c in cases]
    width = 0.8 / max(len(impls), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(cases) + 2), 4.8))
    for j, impl in enumerate(impls):
        xs, ys = [], []
        for i, c in enumerate(cases):
            r = c.ratio(impl, "numpy")
            if r is not None:
                xs.append(i - 0.4 + width * (j + 0.5))
                ys.append(r)
        ax.bar(xs, ys, width, label=impl)
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label="numpy forward")
    ax.set_yscale("log")
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("gradient time / numpy forward time (log)")
    backend = getattr(result, "compiled_backend", "") or ""
    ax.set_title("autodiff_jit gradient cost" +
                 (" (compiled mode = interpreter)" if backend.startswith("interpreter") else ""))
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------------------------
# progress

class PlainProgress:
    """A text progress bar on a terminal; one line per finished case otherwise."""

    def __init__(self, file=None):
        self.file = file or sys.stderr
        self.tty = getattr(self.file, "isatty", lambda: False)()
        self.total, self.done = 1, 0

    def start(self, total):
        self.total, self.done = max(total, 1), 0

    def advance(self, desc):
        self.done += 1
        if self.tty:
            n = int(30 * self.done / self.total)
            self.file.write(f"\r[{'#' * n}{'.' * (30 - n)}] {self.done}/{self.total} "
                            f"{desc[:60]:<60}")
            self.file.flush()
        elif desc.endswith(": done"):
            self.file.write(f"[{self.done}/{self.total}] {desc}\n")
            self.file.flush()

    def close(self):
        if self.tty:
            self.file.write("\n")
            self.file.flush()


class RichProgress:
    def __init__(self, file=None):
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn)
        self.progress = Progress(TextColumn("{task.description:<48}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=Console(file=file or sys.stderr), transient=False)
        self.task = None

    def start(self, total):
        self.progress.start()
        self.task = self.progress.add_task("benchmark", total=total)

    def advance(self, desc):
        self.progress.update(self.task, advance=1, description=desc[:48])

    def close(self):
        self.progress.update(self.task, description="done")
        self.progress.stop()


def make_progress(file=None, quiet=False):
    """A progress bar: rich when installed and on a terminal, else plain; None when quiet."""
    if quiet:
        return None
    file = file or sys.stderr
    if have_rich() and getattr(file, "isatty", lambda: False)():
        return RichProgress(file)
    return PlainProgress(file)
