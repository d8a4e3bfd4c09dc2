"""Markers for a variable with no value at a point of converted code.

`Undefined(name)`: not bound yet on the path Python took (using it raises UnboundLocalError,
as Python would). `Undefined(name, why)`: bound on one path of a traced branch or only inside
a traced loop, so it has no value here that the compiled code could hold; using it raises
TracingError saying why and where. Any use (arithmetic, numpy, bool, attributes, indexing,
returning it from the traced function) raises.
"""
from __future__ import annotations

from ..errors import TracingError


class Undefined:
    __slots__ = ("name", "why")

    def __init__(self, name: str, why: str | None = None):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "why", why)

    def error(self):
        if self.why is None:
            return UnboundLocalError(f"cannot access local variable '{self.name}' where it is "
                                     f"not associated with a value")
        return TracingError(f"variable '{self.name}' {self.why}")

    def _fail(self, *args, **kwargs):
        raise self.error()

    def __getattr__(self, attr):
        raise self.error()

    def __setattr__(self, attr, value):
        raise self.error()

    def __repr__(self):
        return f"<undefined variable {self.name!r}>"

    __bool__ = __len__ = __iter__ = __getitem__ = __setitem__ = __call__ = _fail
    __int__ = __float__ = __index__ = __array__ = __array_ufunc__ = __array_function__ = _fail
    __neg__ = __pos__ = __abs__ = __invert__ = _fail
    __lt__ = __le__ = __gt__ = __ge__ = _fail
    for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and",
                "or", "xor", "lshift", "rshift"):
        locals()[f"__{_op}__"] = locals()[f"__r{_op}__"] = _fail
    del _op


NO_RETURN = Undefined("__ad_rv")  # a converted function's return value before any return

__all__ = ["Undefined", "NO_RETURN"]
