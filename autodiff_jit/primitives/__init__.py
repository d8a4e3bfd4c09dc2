"""The primitive registry. Each module defines a family of primitives; importing this package
registers them all. `get_primitive(name)` finds one by its IR name."""
from .core import Primitive, all_primitives, aval_of, bind, get_primitive, register
from . import broadcast, elementwise, reductions, shape, indexing, linalg, \
    cumulative, sorting, selection, convolution  # noqa: F401  (register)
from . import linalg_solve, decomp  # noqa: F401  (register: solves and decompositions)
from . import batch_rules  # noqa: F401  (batching rules that need every family)

__all__ = ["Primitive", "all_primitives", "aval_of", "bind", "get_primitive", "register"]
