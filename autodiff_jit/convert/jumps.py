"""Pass 1 of the rewrite: jumps -> flags.

Statements after an `if` whose one side returns move into its other side; then `break`,
`continue` and a `return` inside a branch or loop become assignments to flag variables
(`__ad_brk1 = True`, `__ad_ret = True; __ad_rv = value`); the statements a jump skips are
guarded by `if not flag:`, and loop tests gain `not flag and ...`. Afterwards the only
jump left is a function's final `return`.
"""
from __future__ import annotations

import ast

from .astutil import (PREFIX, RET_FLAG, RET_VALUE, Unsupported, assign, assigned_names, const,
                      name_node, not_any, rt, walk_stmts)


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
                        ast.If(test=not_any(sorted(flags)), body=guarded, orelse=[]), rest[0]))
                break
        return out

    def stmt(self, s, loop):
        """(replacement statements, flags they may set that skip what follows)."""
        if isinstance(s, ast.Return) and self.lower_returns:
            value = s.value if s.value is not None else const(None)
            new = [assign(RET_VALUE, value), assign(RET_FLAG, const(True))]
            return [ast.copy_location(n, s) for n in new], {RET_FLAG}
        if isinstance(s, (ast.Break, ast.Continue)):
            if loop is None:
                raise Unsupported(type(s).__name__.lower() + " outside a loop", s.lineno)
            flag = loop["brk" if isinstance(s, ast.Break) else "cont"]
            loop["used"].add(flag)
            return [ast.copy_location(assign(flag, const(True)), s)], {flag}
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
            before.append(ast.copy_location(assign(brk, const(False)), s))
            stop_flags.append(brk)
        if has_ret:
            stop_flags.append(RET_FLAG)
        if cont in info["used"]:
            body.insert(0, ast.copy_location(assign(cont, const(False)), s))
        s.body = body or [ast.Pass()]
        if stop_flags:
            stop = not_any(stop_flags)
            if isinstance(s, ast.While):
                s.test = ast.BoolOp(op=ast.And(), values=[stop, s.test])
            else:
                s._ad_extra_test = stop
        after = []
        if s.orelse:  # runs when the loop was not left by break (nor return)
            orelse = self.block(s.orelse, None)
            after = [ast.copy_location(ast.If(test=not_any(stop_flags), body=orelse,
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
                        if not isinstance(s, ast.Return) for n in walk_stmts([s]))
    jumps = _Jumps(lower_returns=nested_return)
    body = jumps.block(fn.body, None)
    if nested_return:
        body = [ast.copy_location(assign(RET_FLAG, const(False)), fn.body[0]),
                ast.copy_location(assign(RET_VALUE, rt("NO_RETURN")), fn.body[0])] + body
        body.append(ast.copy_location(ast.Return(value=ast.Call(
            func=rt("return_value"), args=[name_node(RET_VALUE)], keywords=[])), fn.body[-1]))
    fn.body = body
    return fn


__all__ = ["lower_jumps"]
