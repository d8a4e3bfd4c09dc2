"""The primitive registry: IR name -> Primitive record (primitives/core.py defines the record).

It sits below `ir` so the IR parser can look primitives up by name without importing the
primitive families. Every family module (primitives/*, control/*) registers its records here
when it is imported; importing `autodiff_jit` imports them all.
"""
from __future__ import annotations

from .errors import IRError

_REGISTRY: dict = {}


def register(prim):
    """Add a Primitive under its name (a name registered twice is a bug: ValueError)."""
    if prim.name in _REGISTRY:
        raise ValueError(f"primitive {prim.name!r} registered twice")
    _REGISTRY[prim.name] = prim
    return prim


def get_primitive(name: str):
    """The Primitive record named `name` (IRError if none is registered)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise IRError(f"unknown primitive {name!r}") from None


def all_primitives() -> dict:
    """A copy of the registry: name -> Primitive."""
    return dict(_REGISTRY)
