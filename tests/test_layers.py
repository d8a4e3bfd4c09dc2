"""The package's layers import only downward, and no modules import each other in a cycle.

Every `import` statement of every module counts, at module level or inside a function: a lazy
import hides a cycle from Python but not from a reader. The layer table below is the one drawn
in docs/architecture.md; a new module must be given a layer there and here.
"""
import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "autodiff_jit"

# module prefix (dotted, below autodiff_jit) -> layer; a module may import its own layer or lower
LAYERS = {
    "_version": 0, "errors": 0, "tree": 0, "config": 0, "source": 0,
    "registry": 1,
    "ir": 2,
    "primitives": 3,
    "interpret": 4, "numpy": 4,
    "trace": 5,
    "ad": 6, "jvp": 6, "vmap": 6,
    "control": 7, "convert": 7,
    "passes": 8,
    "backend": 9,
    "api": 10, "callsig": 10, "capture": 10, "vectorize": 10, "jacobians": 10, "tape": 10,
    "nn": 11, "optim": 11, "viz": 11,
    "bench": 12,
    "cli": 13, "__main__": 13,
    "": 14,   # the package itself (autodiff_jit/__init__.py): the facade, imported by no module
}


def _modules(pkg_dir: pathlib.Path) -> dict:
    """Dotted module name -> path, for every .py file of the package."""
    mods = {}
    for path in sorted(pkg_dir.rglob("*.py")):
        parts = list(path.relative_to(pkg_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _targets(module: str, is_package: bool, node, mods: dict, pkg: str) -> list:
    """The package modules an import statement names (`from . import x` names submodule x)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names if a.name.split(".")[0] == pkg]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[:len(base) - (node.level - 1)]
            if not base:
                raise AssertionError(f"{module}: relative import beyond the package")
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
            if target.split(".")[0] != pkg:
                return []
        names = [f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target
                 for a in node.names]
    out = []
    for name in names:
        while name and name not in mods:   # `import pkg.mod.attr` or a name inside a module
            name = name.rpartition(".")[0]
        if name:
            out.append(name)
    return out


def import_graph(pkg_dir: pathlib.Path = PKG) -> dict:
    """module -> {module: line of its first import} over all import statements, at any depth."""
    mods = _modules(pkg_dir)
    pkg = pkg_dir.name
    graph = {}
    for module, path in mods.items():
        deps = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for t in _targets(module, path.name == "__init__.py", node, mods, pkg):
                    if t != module:
                        deps.setdefault(t, node.lineno)
        graph[module] = deps
    return graph


def cycles(graph: dict) -> list:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def layer_of(module: str, pkg: str = "autodiff_jit"):
    """The layer of the longest LAYERS prefix of `module` (None if it has none)."""
    rel = module[len(pkg) + 1:] if module != pkg else ""
    parts = rel.split(".") if rel else []
    for k in range(len(parts), -1, -1):
        key = ".".join(parts[:k])
        if key in LAYERS and (k > 0 or not parts):
            return LAYERS[key]
    return None


def _describe(comp, graph):
    edges = [f"    {a} -> {b} (line {graph[a][b]})" for a in comp for b in sorted(graph[a])
             if b in comp]
    return "  " + " <-> ".join(comp) + "\n" + "\n".join(edges)


# ---------------------------------------------------------------------------------------------

def test_no_import_cycles():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles inside the package (module- and function-level imports):\n" \
        + "\n".join(_describe(c, graph) for c in found)


def test_every_module_has_a_layer():
    missing = [m for m in import_graph() if layer_of(m) is None]
    assert not missing, f"modules with no layer: {missing}; add them to LAYERS in " \
        f"tests/test_layers.py and to the table in docs/architecture.md"


def test_imports_go_downward():
    graph = import_graph()
    upward = [f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)}), line {line}"
              for a, deps in sorted(graph.items()) for b, line in sorted(deps.items())
              if layer_of(a) is not None and layer_of(b) is not None
              and layer_of(b) > layer_of(a)]
    assert not upward, "upward imports:\n  " + "\n  ".join(upward)


def test_architecture_doc_lists_the_same_layers():
    """docs/architecture.md's table rows `| N | `name` ... |` match LAYERS."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    doc = {}
    for rank, cell in re.findall(r"^\|\s*(\d+)\s*\|([^|]*)\|", text, re.M):
        for name in re.findall(r"`([\w.]*)/?`", cell):
            doc[name.removesuffix(".py").replace("/", ".")] = int(rank)
    table = {("autodiff_jit" if k == "" else k): v for k, v in LAYERS.items()}
    assert doc == table


# ---------------------------------------------------------------------------------------------
# the checker itself, on small synthetic packages

def _package(tmp_path, files: dict) -> pathlib.Path:
    pkg = tmp_path / "pkg"
    for rel, text in files.items():
        p = pkg / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return pkg


def test_checker_finds_function_level_and_submodule_cycles(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "def f():\n    from .sub import c\n",
        "sub/__init__.py": "",
        "sub/c.py": "def g():\n    from .. import a\n",
        "d.py": "import pkg.a\n",
    })
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.b": 1}
    assert graph["pkg.b"] == {"pkg.sub.c": 2}
    assert graph["pkg.sub.c"] == {"pkg.a": 2}
    assert graph["pkg.d"] == {"pkg.a": 1}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"]]


def test_checker_resolves_names_and_accepts_a_dag(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "from .top import run\n",
        "low.py": "import numpy as np\nX = 1\n",
        "top.py": "from .low import X\nfrom pkg import low\nimport pkg.low as L\n",
    })
    graph = import_graph(pkg)
    assert graph["pkg"] == {"pkg.top": 1}
    assert graph["pkg.top"] == {"pkg.low": 1}
    assert graph["pkg.low"] == {}
    assert cycles(graph) == []


@pytest.mark.parametrize("module,layer", [
    ("autodiff_jit", 14), ("autodiff_jit.ir", 2), ("autodiff_jit.primitives.shape", 3),
    ("autodiff_jit.backend.engine", 9), ("autodiff_jit.tape", 10), ("autodiff_jit.tape.engine", 10),
    ("autodiff_jit.irx", None)])
def test_layer_of(module, layer):
    assert layer_of(module) == layer
