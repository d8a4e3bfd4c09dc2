"""Shared pieces of the source rewrite: generated names, the constructs it refuses, name
analysis of statement blocks, and small ast builders."""
from __future__ import annotations

import ast

RT = "__ad"            # name of the runtime module inside converted code
PREFIX = "__ad_"       # generated names
RET_FLAG, RET_VALUE = "__ad_ret", "__ad_rv"
CARRIED_PREFIXES = ("__ad_brk", "__ad_cont", RET_FLAG, RET_VALUE)  # generated state


class Unsupported(Exception):
    """The function uses a construct the rewrite does not handle: (construct, lineno)."""

    def __init__(self, construct: str, lineno: int):
        super().__init__(construct, lineno)
        self.construct, self.lineno = construct, lineno


_UNSUPPORTED = {ast.Try: "try", ast.Yield: "yield", ast.YieldFrom: "yield from",
                ast.Await: "await", ast.AsyncFor: "async for", ast.AsyncWith: "async with",
                ast.Global: "global", ast.Nonlocal: "nonlocal", ast.Delete: "del",
                ast.Match: "match"}
if hasattr(ast, "TryStar"):
    _UNSUPPORTED[ast.TryStar] = "try"
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def walk_scope(node):
    """ast.walk that does not enter nested functions, lambdas, classes or comprehensions."""
    todo = list(ast.iter_child_nodes(node))
    while todo:
        n = todo.pop()
        yield n
        if not isinstance(n, _SCOPES + (ast.ListComp, ast.SetComp, ast.DictComp,
                                         ast.GeneratorExp)):
            todo.extend(ast.iter_child_nodes(n))


def walk_stmts(stmts):
    for s in stmts:
        yield s
        if not isinstance(s, _SCOPES):
            yield from walk_scope(s)


def assigned_names(stmts) -> set[str]:
    """Names a block (re)binds, plus names whose object it mutates (`a[i] = v`, `a.b = v`,
    `a[i] += v`): those must be carried out of a branch too."""
    names = set()
    for n in walk_stmts(stmts):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            names.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in n.names)
        elif isinstance(n, (ast.Subscript, ast.Attribute)) and isinstance(n.ctx, ast.Store):
            root = n.value
            while isinstance(root, (ast.Subscript, ast.Attribute)):
                root = root.value
            if isinstance(root, ast.Name):
                names.add(root.id)
    return names


# names of numpy's functions that write into their first argument (`at`: any ufunc's .at);
# the runtime checks that the function called is numpy's (writes.write_call)
_FIRST_ARG_WRITERS = {"at", "put", "put_along_axis", "putmask", "place", "copyto",
                      "fill_diagonal"}


_WRITING_METHODS = {"fill", "put"}      # ndarray methods that write a value into the array


def call_written_name(stmt, bound):
    """(y, "first") for a statement `f(y, ...)` whose f is named as one of numpy's functions
    that write into their first argument (`np.add.at(y, i, v)`, `np.put(y, i, v)`), (y,
    "method") for `y.fill(v)` / `y.put(i, v)`, (y, "out") for `f(..., out=y)`; y a name in
    `bound` (the function's own variables). None for anything else."""
    call = stmt.value if isinstance(stmt, ast.Expr) else None
    if not isinstance(call, ast.Call):
        return None
    f = call.func
    if isinstance(f, ast.Attribute) and f.attr in _WRITING_METHODS and \
            isinstance(f.value, ast.Name) and f.value.id in bound:
        return f.value.id, "method"
    fname = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
    first = call.args[0] if call.args else None
    if fname in _FIRST_ARG_WRITERS and isinstance(first, ast.Name) and first.id in bound:
        return first.id, "first"
    for k in call.keywords:
        if k.arg == "out" and isinstance(k.value, ast.Name) and k.value.id in bound:
            return k.value.id, "out"
    return None


def call_written_names(stmts, bound) -> set[str]:
    """The names call_written_name finds in a block (nested scopes left out)."""
    found = (call_written_name(n, bound) for n in walk_stmts(stmts))
    return {hit[0] for hit in found if hit is not None}


def loaded_names(nodes) -> set[str]:
    names = set()
    for node in nodes:
        for n in ([node] if isinstance(node, ast.Name) else []) + list(walk_scope(node)):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                names.add(n.id)
    return names


def name_node(id_, store=False):
    return ast.Name(id=id_, ctx=ast.Store() if store else ast.Load())


def rt(attr):
    return ast.Attribute(value=name_node(RT), attr=attr, ctx=ast.Load())


def assign(name, value):
    return ast.Assign(targets=[name_node(name, True)], value=value)


def const(v):
    return ast.Constant(value=v)


def not_any(flags):
    test = name_node(flags[0]) if len(flags) == 1 else \
        ast.BoolOp(op=ast.Or(), values=[name_node(f) for f in flags])
    return ast.UnaryOp(op=ast.Not(), operand=test)


def at_line(new, node):
    """Give generated nodes (those without a location) `node`'s first line only, so that the
    runtime call of a statement reports the statement's own line (not its last one)."""
    for n in ast.walk(new):
        if "lineno" in n._attributes and getattr(n, "lineno", None) is None:
            n.lineno, n.col_offset = node.lineno, node.col_offset
            n.end_lineno, n.end_col_offset = node.lineno, node.col_offset
    return new


def lambda_node(params, body):
    return ast.Lambda(args=ast.arguments(
        posonlyargs=[], args=[ast.arg(arg=p) for p in params], vararg=None, kwonlyargs=[],
        kw_defaults=[], kwarg=None, defaults=[]), body=body)


def thunk_tuple(names):
    return ast.Tuple(elts=[lambda_node([], name_node(n)) for n in names], ctx=ast.Load())


def check_supported(fn: ast.FunctionDef):
    for n in walk_scope(fn):
        for kind, what in _UNSUPPORTED.items():
            if isinstance(n, kind):
                raise Unsupported(what, n.lineno)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "super":
            raise Unsupported("super()", n.lineno)
        if isinstance(n, ast.Name) and n.id.startswith(PREFIX):
            raise Unsupported(f"a name starting with {PREFIX}", n.lineno)
