"""Python control flow on traced values, compiled: a source rewrite in AutoGraph's manner.

`converted(f)` rewrites f's `if`/`elif`/`else`, conditional expressions, `and`/`or`/`not`,
`while`, `for`, `break`, `continue` and early `return` into calls (transformer.py) that decide
at trace time (runtime.py): plain values keep Python's semantics, traced values build `cond`
and `while` ops (regions.py). grad/jit/value_and_grad apply it when they trace a function,
unless `autodiff_jit.config.convert` is False.
"""
from .core import call, converted, unsupported_reason
from .undefined import Undefined

__all__ = ["converted", "call", "unsupported_reason", "Undefined"]
