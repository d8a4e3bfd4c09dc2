"""Graph pictures: Graphviz DOT text for a tape graph or an IR Function.

    print(viz.to_dot(loss))            # tape: one box per grad_fn (AddBackward0, ...), leaves
                                       # as ellipses showing their shape
    print(viz.to_dot(ad.make_ir(f)(x)))  # IR: one box per equation, arguments and results
    viz.render(loss, "graph.svg")      # needs the `graphviz` package and the `dot` binary
"""
from __future__ import annotations

import os
import shutil

from .ir import Function as IRFunction, Lit
from .tape import AccumulateGrad, Node, Tensor

__all__ = ["to_dot", "render"]


def _q(s) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _shape(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _tape_dot(root, name: str) -> str:
    lines = [f"digraph {_q(name)} {{", "  rankdir=BT;",
             '  node [fontname="Helvetica", fontsize=10];']
    ids: dict[int, str] = {}

    def nid(obj):
        key = id(obj)
        if key not in ids:
            ids[key] = f"n{len(ids)}"
        return ids[key]

    if isinstance(root, Tensor):
        top = root.grad_fn
        out = nid(root)
        lines.append(f"  {out} [label={_q('result ' + _shape(root.shape))}, shape=box, "
                     f"style=filled, fillcolor=darkolivegreen1];")
        if top is None:
            return "\n".join(lines + ["}"])
        lines.append(f"  {nid(top)} -> {out};")
    else:
        top = root
    seen = set()
    stack = [top]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, AccumulateGrad):
            v = node.variable
            lines.append(f"  {nid(node)} [label={_q(_shape(v.shape))}, shape=ellipse, "
                         f"style=filled, fillcolor=lightblue];")
            continue
        lines.append(f"  {nid(node)} [label={_q(node.name())}, shape=box];")
        for child, _ in node.next_functions:
            if child is None:
                continue
            lines.append(f"  {nid(child)} -> {nid(node)};")
            stack.append(child)
    lines.append("}")
    return "\n".join(lines)


def _atom_label(atom, names):
    if isinstance(atom, Lit):
        return repr(atom.value.item())
    return names.get(id(atom), "?")


def _ir_dot(fn: IRFunction) -> str:
    lines = [f"digraph {_q(fn.name)} {{", "  rankdir=TB;",
             '  node [fontname="Helvetica", fontsize=10];']
    producer: dict[int, str] = {}
    names: dict[int, str] = {}
    for i, v in enumerate(fn.args):
        n = f"a{i}"
        names[id(v)] = v.hint or n
        producer[id(v)] = n
        lines.append(f"  {n} [label={_q(f'{v.hint or n}: {v.aval}')}, shape=ellipse, "
                     f"style=filled, fillcolor=lightblue];")
    for i, (v, arr) in enumerate(fn.consts.items()):
        n = f"c{i}"
        producer[id(v)] = n
        lines.append(f"  {n} [label={_q(f'const {v.aval}')}, shape=ellipse, style=dashed];")
    for k, eqn in enumerate(fn.eqns):
        n = f"e{k}"
        params = ", ".join(f"{p}={val}" for p, val in eqn.params.items()
                           if not isinstance(val, IRFunction))
        label = eqn.prim.name + (f"\\n{{{params}}}" if params else "") + \
            "\\n" + ", ".join(str(o.aval) for o in eqn.outputs)
        lines.append(f"  {n} [label=\"{label}\", shape=box];")
        for j, a in enumerate(eqn.inputs):
            if isinstance(a, Lit):
                ln = f"l{k}_{j}"
                lines.append(f"  {ln} [label={_q(a.value.item())}, shape=plaintext];")
                lines.append(f"  {ln} -> {n};")
            elif id(a) in producer:
                lines.append(f"  {producer[id(a)]} -> {n};")
        for o in eqn.outputs:
            producer[id(o)] = n
    for i, r in enumerate(fn.results):
        n = f"r{i}"
        lines.append(f"  {n} [label={_q(f'result {i}: {r.aval}')}, shape=box, style=filled, "
                     f"fillcolor=darkolivegreen1];")
        if not isinstance(r, Lit) and id(r) in producer:
            lines.append(f"  {producer[id(r)]} -> {n};")
    lines.append("}")
    return "\n".join(lines)


def to_dot(obj, name: str | None = None) -> str:
    """DOT text for a tape Tensor's graph (or a grad_fn node), or an IR Function."""
    if isinstance(obj, IRFunction):
        return _ir_dot(obj)
    if isinstance(obj, (Tensor, Node)):
        return _tape_dot(obj, name or "tape")
    raise TypeError(f"to_dot takes a tape Tensor, a grad_fn node or an IR Function, got "
                    f"{type(obj).__name__}")


def render(obj, path: str, format: str | None = None) -> str:
    """Write a picture of `obj`'s graph to `path` (format from the suffix: svg, png, pdf).
    Needs the `graphviz` Python package and Graphviz's `dot` program."""
    try:
        import graphviz  # noqa: F401
    except ImportError:
        raise RuntimeError("viz.render needs the `graphviz` Python package (pip install "
                           "graphviz) and the Graphviz `dot` program (apt-get install graphviz "
                           "/ brew install graphviz); viz.to_dot(obj) gives the DOT text "
                           "without them") from None
    if shutil.which("dot") is None:
        raise RuntimeError("viz.render needs the Graphviz `dot` program on PATH (apt-get install "
                           "graphviz / brew install graphviz); viz.to_dot(obj) gives the DOT "
                           "text without it")
    root, ext = os.path.splitext(path)
    fmt = format or (ext[1:] if ext else "svg")
    src = graphviz.Source(to_dot(obj))
    return src.render(filename=os.path.basename(root), directory=os.path.dirname(path) or ".",
                      format=fmt, cleanup=True)
