"""Native code generation. `compile_function(fn)` turns optimized IR into an executable:
a callable taking a list of numpy arrays (one per IR argument) and returning a list of arrays
(one per IR result)."""
from __future__ import annotations


def compile_function(fn):
    # Until the LLVM lowering lands, compiled mode runs the optimized IR in the interpreter;
    # the API and the caching around it are already those of compiled mode.
    from ..api import _Interpreted
    return _Interpreted(fn)
