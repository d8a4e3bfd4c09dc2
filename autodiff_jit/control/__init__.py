"""Higher-order primitives and their user API: loops and branches (scan, while, cond) and
custom_vjp_call. Their rules call the transforms (ad, jvp, interpret, trace), so they sit above
them and register into the same primitive registry.
"""
from . import custom, loops  # noqa: F401  (register custom_vjp_call, scan, while, cond)
from . import batching  # noqa: F401  (their vmap rules)
from .flow import DEFAULT_MAX_STEPS, cond, fori_loop, while_loop

__all__ = ["DEFAULT_MAX_STEPS", "cond", "fori_loop", "while_loop"]
