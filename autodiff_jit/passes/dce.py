"""Dead-code elimination: drop equations whose outputs are never used (all primitives are
pure) and constants nobody reads. Region bodies are cleaned recursively. The function lives in
ir.py (control/'s rules use it too, and passes sit above control); this is its place in the
pass pipeline."""
from ..ir import dce

__all__ = ["dce"]
