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

from .astutil import (CARRIED_PREFIXES, PREFIX, RT, assigned_names, at_line, call_written_name,
                      call_written_names, check_supported, const, lambda_node, loaded_names,
                      name_node, rt, thunk_tuple, walk_scope)
from .jumps import lower_jumps

_NOT_WRAPPED_CALLS = {"super", "locals", "globals", "vars", "eval", "exec", "range"}


def _user_or_flag(names):
    """Drop generated helper names (branch/loop functions, loop items): never carried."""
    return {n for n in names if not n.startswith(PREFIX) or n.startswith(CARRIED_PREFIXES)}


class Writes(ast.NodeTransformer):
    """`y[key] = v` and `y[key] op= v` on a name the function binds itself become
    `y = __ad.setitem(v, y, key)` / `y = __ad.aug_setitem(y, key, "+=", lambda: v)`, and the
    statements `np.add.at(y, i, v)` (numpy's other writers into their first argument too),
    `y.fill(v)` / `y.put(i, v)` and `f(..., out=y)` become `y = __ad.write_call(np.add.at, y,
    __ad.call, i, v)`, `y = __ad.write_method("fill", y, __ad.call, v)` and `y =
    __ad.write_out(f, y, __ad.call, ...)`, so that a numpy array receiving a traced
    value (or a tape Tensor) can be replaced by a traced one (writes.py). Alone, this is the
    rewrite tape mode runs; ControlFlow adds the rest.
    """

    caller = "call_writes"  # how write_call calls a function that is not numpy's

    def __init__(self, bound: set[str], user_callee=lambda name: False,
                 library_module=lambda name: False):
        self.bound = set(bound)
        self.user_callee = user_callee
        self.library_module = library_module

    def visit_Call(self, node):
        """Alone (tape mode), a call of one of the user's own functions by name, `rhs(x)`,
        becomes `__ad.call_writes(rhs, x)`, so that its writes are rewritten too; a call of an
        attribute, `self.rhs(x)`, `obj.method(x)`, `module.fn(x)`, becomes
        `__ad.writes_target(self.rhs)(x)`, which rewrites it when it is the user's function
        or method (decided when it runs: the object is not known before). Library calls
        known as such (`np.sum(x)`, a module of a library) are left alone."""
        node = self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Name) and f.id not in self.bound and self.user_callee(f.id):
            return ast.copy_location(ast.Call(func=rt("call_writes"), args=[f] + node.args,
                                              keywords=node.keywords), node)
        if isinstance(f, ast.Attribute) and not self._library_attribute(f):
            target = ast.copy_location(ast.Call(func=rt("writes_target"), args=[f],
                                                keywords=[]), f)
            return ast.copy_location(ast.Call(func=target, args=node.args,
                                              keywords=node.keywords), node)
        return node

    def _library_attribute(self, f: ast.Attribute) -> bool:
        """Whether `a.b.c` is an attribute of a library module (np.linalg.norm) or of the
        runtime itself, by the name it starts from."""
        root = f.value
        while isinstance(root, ast.Attribute):
            root = root.value
        return isinstance(root, ast.Name) and root.id not in self.bound and \
            (root.id == RT or self.library_module(root.id))

    # nested scopes are converted when called
    def visit_FunctionDef(self, node):
        return node

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Lambda(self, node):
        return node

    def _writable_name(self, target):
        return (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and
                target.value.id in self.bound and
                not any(isinstance(n, ast.Starred) for n in ast.walk(target.slice)))

    def visit_Assign(self, node):
        node = self.generic_visit(node)
        if len(node.targets) != 1 or not self._writable_name(node.targets[0]):
            return node
        target = node.targets[0]
        call = ast.Call(func=rt("setitem"), args=[node.value, name_node(target.value.id),
                                                  _key_expr(target.slice)], keywords=[])
        return at_line(ast.Assign(targets=[name_node(target.value.id, True)], value=call), node)

    def visit_Expr(self, node):
        hit = call_written_name(node, self.bound)
        if hit is None:
            return self.generic_visit(node)
        name, kind = hit
        call = node.value
        func, args = self.visit(call.func), [self.visit(a) for a in call.args]
        keywords = [ast.keyword(arg=k.arg, value=self.visit(k.value)) for k in call.keywords]
        if kind == "first":
            args = [name_node(name)] + args[1:]
            runtime = "write_call"
        elif kind == "method":
            func = const(call.func.attr)
            args = [name_node(name)] + args
            runtime = "write_method"
        else:
            args = [name_node(name)] + args
            keywords = [k for k in keywords if k.arg != "out"]
            runtime = "write_out"
        new = ast.Call(func=rt(runtime), args=[func, args[0], rt(self.caller)] + args[1:],
                       keywords=keywords)
        return at_line(ast.Assign(targets=[name_node(name, True)], value=new), node)

    def visit_AugAssign(self, node):
        node = self.generic_visit(node)
        if not self._writable_name(node.target):
            return node
        target = node.target
        call = ast.Call(func=rt("aug_setitem"), args=[
            name_node(target.value.id), _key_expr(target.slice), const(_AUG_OPS[type(node.op)]),
            lambda_node([], node.value)], keywords=[])
        return at_line(ast.Assign(targets=[name_node(target.value.id, True)], value=call), node)


class ControlFlow(Writes):
    """Pass 2. `local_names`: every name local to the function (parameters and assigned
    names), which is what branches and loops may read or carry."""

    caller = "call"

    def __init__(self, filename: str, local_names: set[str], bound: set[str]):
        super().__init__(bound)
        self.filename = filename
        self.locals = set(local_names)
        self.count = 0

    def fresh(self, kind):
        self.count += 1
        return f"{PREFIX}{kind}{self.count}"

    def loc(self, node):
        return const(f"{os.path.basename(self.filename)}:{node.lineno}")

    def _def(self, name, params, body, returns, node):
        ret = ast.Return(value=ast.Tuple(elts=[name_node(n) for n in returns], ctx=ast.Load()))
        fn = ast.FunctionDef(
            name=name, args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=p) for p in params],
                                          vararg=None, kwonlyargs=[], kw_defaults=[],
                                          kwarg=None, defaults=[]),
            body=list(body) + [ret], decorator_list=[], returns=None, type_params=[])
        return ast.copy_location(fn, node)

    def _state(self, names):
        """`__ad.values((lambda: a, ...), ("a", ...))`: the current values, with a marker for
        a name not yet bound (thunks, so Python's scoping finds each name)."""
        return ast.Call(func=rt("values"), args=[thunk_tuple(names), self._names_tuple(names)],
                        keywords=[])

    def _unpack(self, names, call, node):
        target = ast.Tuple(elts=[name_node(n, True) for n in names], ctx=ast.Store())
        return at_line(ast.Assign(targets=[target], value=call), node)

    def _assigned(self, stmts):
        """The names a block binds or writes into, with those Writes.visit_Expr rebinds."""
        return assigned_names(stmts) | call_written_names(stmts, self.bound)

    def _names_tuple(self, names):
        return ast.Tuple(elts=[const(n) for n in names], ctx=ast.Load())

    def visit_If(self, node):
        # names from the source as written (before nested statements become functions)
        out = sorted(_user_or_flag(self._assigned(node.body) | self._assigned(node.orelse)))
        reads = loaded_names(node.body + node.orelse) & self.locals
        node = self.generic_visit(node)
        params = sorted(set(out) | reads)
        t, f = self.fresh("if_true"), self.fresh("if_false")
        defs = [self._def(t, params, node.body, out, node),
                self._def(f, params, node.orelse or [ast.Pass()], out, node)]
        call = ast.Call(func=rt("if_stmt"), args=[
            node.test, name_node(t), name_node(f), self._state(params), self._names_tuple(params),
            self._names_tuple(out), self.loc(node)], keywords=[])
        if not out:
            return defs + [at_line(ast.Expr(value=call), node)]
        return defs + [self._unpack(out, call, node)]

    def _read_only(self, nodes, state):
        """`read=__ad.values(...)`: the function's own variables a loop reads but does not
        assign (a numpy array among them changed in place while the body is traced, say by
        np.copyto, is caught: traced_while)."""
        reads = sorted((loaded_names(nodes) & self.locals) - set(state))
        return ast.keyword(arg="read", value=self._state(reads))

    def visit_While(self, node):
        state = sorted(_user_or_flag(self._assigned(node.body)))
        read = self._read_only(node.body + [node.test], state)
        node = self.generic_visit(node)
        test, body = self.fresh("while_test"), self.fresh("while_body")
        test_def = self._def(test, state, [], [], node)
        test_def.body = [ast.copy_location(ast.Return(value=node.test), node)]
        defs = [test_def, self._def(body, state, node.body, state, node)]
        call = ast.Call(func=rt("while_stmt"), args=[
            name_node(test), name_node(body), self._state(state), self._names_tuple(state),
            self.loc(node)], keywords=[read])
        if not state:
            return defs + [at_line(ast.Expr(value=call), node)]
        return defs + [self._unpack(state, call, node)]

    def visit_For(self, node):
        extra = getattr(node, "_ad_extra_test", None)
        target_names = assigned_names([ast.Assign(targets=[node.target], value=const(0))])
        state = sorted(_user_or_flag(self._assigned(node.body) | target_names))
        read = self._read_only(node.body, state)
        node = self.generic_visit(node)
        if extra is not None:
            extra = self.visit(extra)
        item = self.fresh("item")
        body_name = self.fresh("for_body")
        bind_target = ast.copy_location(ast.Assign(targets=[node.target], value=name_node(item)),
                                        node)
        defs = [self._def(body_name, [item] + state, [bind_target] + node.body, state, node)]
        if extra is not None:
            test = self.fresh("for_test")
            test_def = self._def(test, state, [], [], node)
            test_def.body = [ast.copy_location(ast.Return(value=extra), node)]
            defs.append(test_def)
            extra_arg = name_node(test)
        else:
            extra_arg = const(None)
        it = node.iter
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range":
            it = ast.Call(func=rt("range_"), args=[it.func] + it.args, keywords=it.keywords)
        call = ast.Call(func=rt("for_stmt"), args=[
            it, extra_arg, name_node(body_name), self._state(state), self._names_tuple(state),
            self.loc(node)], keywords=[read])
        return defs + [self._unpack(state, call, node)]

    def visit_AugAssign(self, node):
        """Also `y op= v` on a name the function binds: `y = __ad.aug_name(y, "+=", v)`, so
        that a numpy array from before a traced `if` is not changed in place by a branch."""
        if not (isinstance(node.target, ast.Name) and node.target.id in self.bound):
            return super().visit_AugAssign(node)
        node = self.generic_visit(node)
        name = node.target.id
        call = ast.Call(func=rt("aug_name"), args=[name_node(name), const(_AUG_OPS[type(node.op)]),
                                                   node.value], keywords=[])
        return at_line(ast.Assign(targets=[name_node(name, True)], value=call), node)

    def visit_IfExp(self, node):
        reads = sorted(loaded_names([node.body, node.orelse]) & self.locals)
        node = self.generic_visit(node)
        return at_line(ast.Call(func=rt("if_exp"), args=[
            node.test, lambda_node(reads, node.body), lambda_node(reads, node.orelse),
            self._state(reads),
            self._names_tuple(reads), self.loc(node)], keywords=[]), node)

    def visit_BoolOp(self, node):
        node = self.generic_visit(node)
        fn = "and_" if isinstance(node.op, ast.And) else "or_"
        thunks = [lambda_node([], v) for v in node.values[1:]]
        return ast.copy_location(ast.Call(func=rt(fn), args=[node.values[0]] + thunks,
                                          keywords=[]), node)

    def visit_UnaryOp(self, node):
        node = self.generic_visit(node)
        if isinstance(node.op, ast.Not):
            return ast.copy_location(ast.Call(func=rt("not_"), args=[node.operand],
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
        ops = ast.Tuple(elts=[const(self._CMP[type(o)]) for o in node.ops], ctx=ast.Load())
        return at_line(ast.Call(func=rt("compare_chain"), args=[
            node.left, ops] + [lambda_node([], c) for c in node.comparators], keywords=[]), node)

    def visit_Call(self, node):
        node = self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Name) and f.id in _NOT_WRAPPED_CALLS:
            return node
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == RT:
            return node
        return ast.copy_location(ast.Call(func=rt("call"), args=[f] + node.args,
                                          keywords=node.keywords), node)


_AUG_OPS = {ast.Add: "+=", ast.Sub: "-=", ast.Mult: "*=", ast.Div: "/=", ast.FloorDiv: "//=",
            ast.Mod: "%=", ast.Pow: "**=", ast.MatMult: "@=", ast.BitAnd: "&=",
            ast.BitOr: "|=", ast.BitXor: "^=", ast.LShift: "<<=", ast.RShift: ">>="}


def _key_expr(key):
    """A subscript's key as an expression: `a:b:c` parts become `__ad.slice(a, b, c)`."""
    if isinstance(key, ast.Slice):
        parts = [p if p is not None else const(None) for p in (key.lower, key.upper, key.step)]
        return ast.copy_location(ast.Call(func=rt("slice"), args=parts, keywords=[]), key)
    if isinstance(key, ast.Tuple):
        return ast.copy_location(ast.Tuple(elts=[_key_expr(e) for e in key.elts],
                                           ctx=ast.Load()), key)
    return key


def bound_names(fn: ast.FunctionDef) -> set[str]:
    """Parameters and names the function binds itself (not names it only writes into)."""
    a = fn.args
    names = {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
    names |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
    declared = set()
    for n in walk_scope(fn):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            names.add(n.id)
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            declared.update(n.names)
    return names - declared


def function_locals(fn: ast.FunctionDef) -> set[str]:
    a = fn.args
    params = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
    params += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
    return set(params) | assigned_names(fn.body)


def convert_writes_def(fn: ast.FunctionDef, user_callee,
                       library_module=lambda name: False) -> ast.FunctionDef:
    """Only the write rewrite (Writes), on a copy of `fn`: what tape mode runs.
    `user_callee(name)`: whether a global or closure name is one of the user's functions;
    `library_module(name)`: whether it is a library's module (numpy, math)."""
    fn = copy.deepcopy(fn)
    check_supported(fn)   # the same constructs as the full rewrite (super(), global, ...)
    fn.decorator_list = []
    fn.body = [Writes(bound_names(fn), user_callee, library_module).visit(s) for s in fn.body]
    return ast.fix_missing_locations(fn)


def convert_function_def(fn: ast.FunctionDef, filename: str) -> ast.FunctionDef:
    """Both passes on a copy of `fn` (decorators dropped: the caller applies none)."""
    fn = copy.deepcopy(fn)
    check_supported(fn)
    fn.decorator_list = []
    lower_jumps(fn)
    flow = ControlFlow(filename, function_locals(fn), bound_names(fn))
    fn.body = [flow.visit(s) for s in fn.body]
    flat = []
    for s in fn.body:
        flat.extend(s if isinstance(s, list) else [s])
    fn.body = flat
    return ast.fix_missing_locations(fn)


__all__ = ["convert_function_def", "convert_writes_def"]
