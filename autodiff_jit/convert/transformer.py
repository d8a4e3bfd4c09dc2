"""The source rewrite: a function's `ast` -> an `ast` whose control flow calls the runtime.

Two passes over one FunctionDef (nested defs, lambdas and classes are left to be converted
when they are called):

1. `lower_jumps`: statements after an `if` whose one side returns move into its other side;
   then `break`, `continue` and a `return` inside a branch or loop become
   assignments to flag variables (`__ad_brk1 = True`, `__ad_ret = True; __ad_rv = value`);
   the statements a jump skips are guarded by `if not flag:`, and loop tests gain
   `not flag and ...`. Afterwards the only jumps left are a function's final `return`.
2. `ControlFlow`: `if`/`while`/`for` statements become nested functions over the variables
   they assign (passed in and returned: the carried state) and a call of `__ad.if_stmt`,
   `__ad.while_stmt` or `__ad.for_stmt`; `a if c else b`, `and`, `or`, `not` become
   `__ad.if_exp`, `__ad.and_`, `__ad.or_`, `__ad.not_` (comparison chains `a < b < c`:
   `__ad.compare_chain`); every other call `f(...)` becomes
   `__ad.call(f, ...)`, which converts the user's own helper functions on the fly.

The runtime (runtime.py) decides at trace time: plain Python values follow Python semantics,
traced values build `cond` / `while` ops. Line numbers are kept, so errors and tracebacks
point at the user's file and line.
"""
from __future__ import annotations

import ast
import copy
import os

RT = "__ad"            # name of the runtime module inside converted code
PREFIX = "__ad_"       # generated names
RET_FLAG, RET_VALUE = "__ad_ret", "__ad_rv"
_CARRIED_PREFIXES = ("__ad_brk", "__ad_cont", RET_FLAG, RET_VALUE)  # generated state


def _user_or_flag(names):
    """Drop generated helper names (branch/loop functions, loop items): never carried."""
    return {n for n in names if not n.startswith(PREFIX) or n.startswith(_CARRIED_PREFIXES)}


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
_NOT_WRAPPED_CALLS = {"super", "locals", "globals", "vars", "eval", "exec", "range"}
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


# ---------------------------------------------------------------------------------------------
# helpers

def _walk_scope(node):
    """ast.walk that does not enter nested functions, lambdas, classes or comprehensions."""
    todo = list(ast.iter_child_nodes(node))
    while todo:
        n = todo.pop()
        yield n
        if not isinstance(n, _SCOPES + (ast.ListComp, ast.SetComp, ast.DictComp,
                                         ast.GeneratorExp)):
            todo.extend(ast.iter_child_nodes(n))


def _walk_stmts(stmts):
    for s in stmts:
        yield s
        if not isinstance(s, _SCOPES):
            yield from _walk_scope(s)


def assigned_names(stmts) -> set[str]:
    """Names a block (re)binds, plus names whose object it mutates (`a[i] = v`, `a.b = v`,
    `a[i] += v`): those must be carried out of a branch too."""
    names = set()
    for n in _walk_stmts(stmts):
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


def loaded_names(nodes) -> set[str]:
    names = set()
    for node in nodes:
        for n in ([node] if isinstance(node, ast.Name) else []) + list(_walk_scope(node)):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                names.add(n.id)
    return names


def _name(id_, store=False):
    return ast.Name(id=id_, ctx=ast.Store() if store else ast.Load())


def _rt(attr):
    return ast.Attribute(value=_name(RT), attr=attr, ctx=ast.Load())


def _assign(name, value):
    return ast.Assign(targets=[_name(name, True)], value=value)


def _const(v):
    return ast.Constant(value=v)


def _not_any(flags):
    test = _name(flags[0]) if len(flags) == 1 else \
        ast.BoolOp(op=ast.Or(), values=[_name(f) for f in flags])
    return ast.UnaryOp(op=ast.Not(), operand=test)


def _at_line(new, node):
    """Give generated nodes (those without a location) `node`'s first line only, so that the
    runtime call of a statement reports the statement's own line (not its last one)."""
    for n in ast.walk(new):
        if "lineno" in n._attributes and getattr(n, "lineno", None) is None:
            n.lineno, n.col_offset = node.lineno, node.col_offset
            n.end_lineno, n.end_col_offset = node.lineno, node.col_offset
    return new


def _lambda(params, body):
    return ast.Lambda(args=ast.arguments(
        posonlyargs=[], args=[ast.arg(arg=p) for p in params], vararg=None, kwonlyargs=[],
        kw_defaults=[], kwarg=None, defaults=[]), body=body)


def _thunks(names):
    return ast.Tuple(elts=[_lambda([], _name(n)) for n in names], ctx=ast.Load())


def check_supported(fn: ast.FunctionDef):
    for n in _walk_scope(fn):
        for kind, what in _UNSUPPORTED.items():
            if isinstance(n, kind):
                raise Unsupported(what, n.lineno)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "super":
            raise Unsupported("super()", n.lineno)
        if isinstance(n, ast.Name) and n.id.startswith(PREFIX):
            raise Unsupported(f"a name starting with {PREFIX}", n.lineno)


# ---------------------------------------------------------------------------------------------
# pass 1: jumps -> flags

class _Jumps:
    """Rewrites one function body. `loop` is (break_flag, continue_flag) of the innermost
    loop, created on first use."""

    def __init__(self, lower_returns: bool):
        self.lower_returns = lower_returns
        self.count = 0

    def fresh(self, kind):
        self.count += 1
        return f"{PREFIX}{kind}{self.count}"

    def block(self, stmts, loop):
        out = []
        for k, s in enumerate(stmts):
            new, flags = self.stmt(s, loop)
            out.extend(new)
            rest = stmts[k + 1:]
            if flags and rest:
                guarded = self.block(rest, loop)
                if guarded:
                    out.append(ast.copy_location(
                        ast.If(test=_not_any(sorted(flags)), body=guarded, orelse=[]), rest[0]))
                break
        return out

    def stmt(self, s, loop):
        """(replacement statements, flags they may set that skip what follows)."""
        if isinstance(s, ast.Return) and self.lower_returns:
            value = s.value if s.value is not None else _const(None)
            new = [_assign(RET_VALUE, value), _assign(RET_FLAG, _const(True))]
            return [ast.copy_location(n, s) for n in new], {RET_FLAG}
        if isinstance(s, (ast.Break, ast.Continue)):
            if loop is None:
                raise Unsupported(type(s).__name__.lower() + " outside a loop", s.lineno)
            flag = loop["brk" if isinstance(s, ast.Break) else "cont"]
            loop["used"].add(flag)
            return [ast.copy_location(_assign(flag, _const(True)), s)], {flag}
        if isinstance(s, ast.If):
            body, f1 = self.block_flags(s.body, loop)
            orelse, f2 = self.block_flags(s.orelse, loop)
            s.body, s.orelse = body or [ast.Pass()], orelse
            return [s], f1 | f2
        if isinstance(s, ast.With):
            body, f = self.block_flags(s.body, loop)
            s.body = body or [ast.Pass()]
            return [s], f
        if isinstance(s, (ast.While, ast.For)):
            return self.loop(s)
        return [s], set()

    def block_flags(self, stmts, loop):
        new = self.block(stmts, loop)
        return new, self.flags_set(new, loop)

    def flags_set(self, stmts, loop):
        names = assigned_names(stmts)
        flags = {RET_FLAG} & names
        if loop is not None:
            flags |= {loop["brk"], loop["cont"]} & names
        return flags

    def loop(self, s):
        info = {"brk": self.fresh("brk"), "cont": self.fresh("cont"), "used": set()}
        body = self.block(s.body, info)
        brk, cont = info["brk"], info["cont"]
        has_ret = RET_FLAG in assigned_names(body)
        before, stop_flags = [], []
        if brk in info["used"]:
            before.append(ast.copy_location(_assign(brk, _const(False)), s))
            stop_flags.append(brk)
        if has_ret:
            stop_flags.append(RET_FLAG)
        if cont in info["used"]:
            body.insert(0, ast.copy_location(_assign(cont, _const(False)), s))
        s.body = body or [ast.Pass()]
        if stop_flags:
            stop = _not_any(stop_flags)
            if isinstance(s, ast.While):
                s.test = ast.BoolOp(op=ast.And(), values=[stop, s.test])
            else:
                s._ad_extra_test = stop
        after = []
        if s.orelse:  # runs when the loop was not left by break (nor return)
            orelse = self.block(s.orelse, None)
            after = [ast.copy_location(ast.If(test=_not_any(stop_flags), body=orelse,
                                              orelse=[]), s)] if stop_flags else orelse
            s.orelse = []
        flags = {RET_FLAG} if has_ret else set()
        if RET_FLAG in assigned_names(after):
            flags.add(RET_FLAG)
        return before + [s] + after, flags


def _always_returns(stmts) -> bool:
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, ast.Return):
        return True
    return isinstance(last, ast.If) and _always_returns(last.body) and \
        _always_returns(last.orelse)


def _fold_returns(stmts):
    """`if c: ...; return a` followed by more statements: the statements move into the
    `else` (or the `if` body, when the `else` is the returning side), so both paths end in a
    return and a traced `if` becomes one cond without return flags."""
    out = []
    for k, s in enumerate(stmts):
        if isinstance(s, ast.If):
            s.body, s.orelse = _fold_returns(s.body), _fold_returns(s.orelse)
            rest = stmts[k + 1:]
            if rest and _always_returns(s.body) and not _always_returns(s.orelse):
                s.orelse = _fold_returns(s.orelse + rest)
                out.append(s)
                return out
            if rest and _always_returns(s.orelse) and not _always_returns(s.body):
                s.body = _fold_returns(s.body + rest)
                out.append(s)
                return out
        out.append(s)
    return out


def lower_jumps(fn: ast.FunctionDef) -> ast.FunctionDef:
    """Pass 1 on a FunctionDef (in place); see the module docstring."""
    fn.body = _fold_returns(fn.body)
    nested_return = any(isinstance(n, ast.Return) for s in fn.body
                        if not isinstance(s, ast.Return) for n in _walk_stmts([s]))
    jumps = _Jumps(lower_returns=nested_return)
    body = jumps.block(fn.body, None)
    if nested_return:
        body = [ast.copy_location(_assign(RET_FLAG, _const(False)), fn.body[0]),
                ast.copy_location(_assign(RET_VALUE, _rt("NO_RETURN")), fn.body[0])] + body
        body.append(ast.copy_location(ast.Return(value=ast.Call(
            func=_rt("return_value"), args=[_name(RET_VALUE)], keywords=[])), fn.body[-1]))
    fn.body = body
    return fn


# ---------------------------------------------------------------------------------------------
# pass 2: control flow -> runtime calls

class ControlFlow(ast.NodeTransformer):
    """Pass 2. `local_names`: every name local to the function (parameters and assigned
    names), which is what branches and loops may read or carry."""

    def __init__(self, filename: str, local_names: set[str]):
        self.filename = filename
        self.locals = set(local_names)
        self.count = 0

    def fresh(self, kind):
        self.count += 1
        return f"{PREFIX}{kind}{self.count}"

    def loc(self, node):
        return _const(f"{os.path.basename(self.filename)}:{node.lineno}")

    # nested scopes are converted when called
    def visit_FunctionDef(self, node):
        return node

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Lambda(self, node):
        return node

    def _def(self, name, params, body, returns, node):
        ret = ast.Return(value=ast.Tuple(elts=[_name(n) for n in returns], ctx=ast.Load()))
        fn = ast.FunctionDef(
            name=name, args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=p) for p in params],
                                          vararg=None, kwonlyargs=[], kw_defaults=[],
                                          kwarg=None, defaults=[]),
            body=list(body) + [ret], decorator_list=[], returns=None, type_params=[])
        return ast.copy_location(fn, node)

    def _state(self, names):
        """`__ad.values((lambda: a, ...), ("a", ...))`: the current values, with a marker for
        a name not yet bound (thunks, so Python's scoping finds each name)."""
        return ast.Call(func=_rt("values"), args=[_thunks(names), self._names_tuple(names)],
                        keywords=[])

    def _unpack(self, names, call, node):
        target = ast.Tuple(elts=[_name(n, True) for n in names], ctx=ast.Store())
        return _at_line(ast.Assign(targets=[target], value=call), node)

    def _names_tuple(self, names):
        return ast.Tuple(elts=[_const(n) for n in names], ctx=ast.Load())

    def visit_If(self, node):
        # names from the source as written (before nested statements become functions)
        out = sorted(_user_or_flag(assigned_names(node.body) | assigned_names(node.orelse)))
        reads = loaded_names(node.body + node.orelse) & self.locals
        node = self.generic_visit(node)
        params = sorted(set(out) | reads)
        t, f = self.fresh("if_true"), self.fresh("if_false")
        defs = [self._def(t, params, node.body, out, node),
                self._def(f, params, node.orelse or [ast.Pass()], out, node)]
        call = ast.Call(func=_rt("if_stmt"), args=[
            node.test, _name(t), _name(f), self._state(params), self._names_tuple(params),
            self._names_tuple(out), self.loc(node)], keywords=[])
        if not out:
            return defs + [_at_line(ast.Expr(value=call), node)]
        return defs + [self._unpack(out, call, node)]

    def visit_While(self, node):
        state = sorted(_user_or_flag(assigned_names(node.body)))
        node = self.generic_visit(node)
        test, body = self.fresh("while_test"), self.fresh("while_body")
        test_def = self._def(test, state, [], [], node)
        test_def.body = [ast.copy_location(ast.Return(value=node.test), node)]
        defs = [test_def, self._def(body, state, node.body, state, node)]
        call = ast.Call(func=_rt("while_stmt"), args=[
            _name(test), _name(body), self._state(state), self._names_tuple(state),
            self.loc(node)], keywords=[])
        if not state:
            return defs + [_at_line(ast.Expr(value=call), node)]
        return defs + [self._unpack(state, call, node)]

    def visit_For(self, node):
        extra = getattr(node, "_ad_extra_test", None)
        target_names = assigned_names([ast.Assign(targets=[node.target], value=_const(0))])
        state = sorted(_user_or_flag(assigned_names(node.body) | target_names))
        node = self.generic_visit(node)
        if extra is not None:
            extra = self.visit(extra)
        item = self.fresh("item")
        body_name = self.fresh("for_body")
        bind_target = ast.copy_location(ast.Assign(targets=[node.target], value=_name(item)),
                                        node)
        defs = [self._def(body_name, [item] + state, [bind_target] + node.body, state, node)]
        if extra is not None:
            test = self.fresh("for_test")
            test_def = self._def(test, state, [], [], node)
            test_def.body = [ast.copy_location(ast.Return(value=extra), node)]
            defs.append(test_def)
            extra_arg = _name(test)
        else:
            extra_arg = _const(None)
        it = node.iter
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range":
            it = ast.Call(func=_rt("range_"), args=[it.func] + it.args, keywords=it.keywords)
        call = ast.Call(func=_rt("for_stmt"), args=[
            it, extra_arg, _name(body_name), self._state(state), self._names_tuple(state),
            self.loc(node)], keywords=[])
        return defs + [self._unpack(state, call, node)]

    def visit_IfExp(self, node):
        reads = sorted(loaded_names([node.body, node.orelse]) & self.locals)
        node = self.generic_visit(node)
        return _at_line(ast.Call(func=_rt("if_exp"), args=[
            node.test, _lambda(reads, node.body), _lambda(reads, node.orelse), self._state(reads),
            self._names_tuple(reads), self.loc(node)], keywords=[]), node)

    def visit_BoolOp(self, node):
        node = self.generic_visit(node)
        fn = "and_" if isinstance(node.op, ast.And) else "or_"
        thunks = [_lambda([], v) for v in node.values[1:]]
        return ast.copy_location(ast.Call(func=_rt(fn), args=[node.values[0]] + thunks,
                                          keywords=[]), node)

    def visit_UnaryOp(self, node):
        node = self.generic_visit(node)
        if isinstance(node.op, ast.Not):
            return ast.copy_location(ast.Call(func=_rt("not_"), args=[node.operand],
                                              keywords=[]), node)
        return node

    _CMP = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
            ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is not", ast.In: "in",
            ast.NotIn: "not in"}

    def visit_Compare(self, node):
        """`a < b < c` -> `__ad.compare_chain(a, ("<", "<"), lambda: b, lambda: c)`: each
        operand evaluated once and lazily, the links combined like `and`."""
        node = self.generic_visit(node)
        if len(node.ops) < 2:
            return node
        ops = ast.Tuple(elts=[_const(self._CMP[type(o)]) for o in node.ops], ctx=ast.Load())
        return _at_line(ast.Call(func=_rt("compare_chain"), args=[
            node.left, ops] + [_lambda([], c) for c in node.comparators], keywords=[]), node)

    def visit_Call(self, node):
        node = self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Name) and f.id in _NOT_WRAPPED_CALLS:
            return node
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == RT:
            return node
        return ast.copy_location(ast.Call(func=_rt("call"), args=[f] + node.args,
                                          keywords=node.keywords), node)


def function_locals(fn: ast.FunctionDef) -> set[str]:
    a = fn.args
    params = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
    params += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
    return set(params) | assigned_names(fn.body)


def convert_function_def(fn: ast.FunctionDef, filename: str) -> ast.FunctionDef:
    """Both passes on a copy of `fn` (decorators dropped: the caller applies none)."""
    fn = copy.deepcopy(fn)
    check_supported(fn)
    fn.decorator_list = []
    lower_jumps(fn)
    fn.body = [ControlFlow(filename, function_locals(fn)).visit(s) for s in fn.body]
    flat = []
    for s in fn.body:
        flat.extend(s if isinstance(s, list) else [s])
    fn.body = flat
    return ast.fix_missing_locations(fn)


__all__ = ["convert_function_def", "Unsupported", "RT", "assigned_names"]
