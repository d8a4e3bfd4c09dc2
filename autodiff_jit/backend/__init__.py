"""Native code generation. `compile_function(fn)` turns optimized IR into an executable:
a callable taking a list of numpy arrays (one per IR argument) and returning a list of arrays
(one per IR result). See docs/backend.md."""
from __future__ import annotations


def compile_function(fn, **options):
    from .compiled import compile_function as _compile
    return _compile(fn, **options)
