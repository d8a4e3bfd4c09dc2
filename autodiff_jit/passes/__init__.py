"""IR -> IR passes. `pipeline.optimize` runs them in their fixed order."""
from .cse import cse
from .dce import dce
from .pipeline import PIPELINE, optimize
from .simplify import simplify

__all__ = ["cse", "dce", "simplify", "optimize", "PIPELINE"]
