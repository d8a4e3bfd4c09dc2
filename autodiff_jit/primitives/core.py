"""The Primitive record and `bind`, the single entry point through which every operation runs.

`bind(prim, *args, **params)` looks at its arguments: plain numpy values run the primitive's
numpy implementation; tracers record an equation into their trace; tape Tensors run the
implementation and record a tape node. VJP rules are written with `bind`-based helpers and
numpy operators, so the same rule builds adjoint IR (on tracers) and runs tape backward
passes (on arrays or Tensors).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..ir import AVal
from ..registry import all_primitives, get_primitive, register  # noqa: F401  (re-exported)

# numpy names bound at import: numpy has a module __getattr__, so Python 3.11 never
# specializes an `np.name` lookup (~40 ns each, several per tape node)
_ND = np.ndarray
_GENERIC = np.generic


class Primitive:
    """One operation: its name, shape/dtype rule, numpy implementation, VJP and JVP rules.

    shape_rule(*avals, **params) -> AVal (or list of AVal when multiple_results)
    impl(*arrays, **params)      -> ndarray (or list)
    vjp(cts, out, *ins, **params) -> one cotangent per input (None: no gradient flows there);
                                    cts is the output cotangent (a list when multiple_results)
    jvp(tangents, out, *ins, **params) -> output tangent (tangents: None where zero)
    batch(prim, axis_size, vals, dims, **params) -> (outputs, out_dims): the batching rule (vmap);
                                    `dims` holds, per input, the axis that carries the batch (None:
                                    not batched); without a rule, vmap loops over the
                                    batch (see primitives/batching.py)
    """

    def __init__(self, name: str, shape_rule: Callable, impl: Callable, *,
                 vjp: Callable | None = None, jvp: Callable | None = None,
                 batch: Callable | None = None,
                 multiple_results: bool = False, differentiable: bool = True,
                 torch_name: str | None = None, family: str = "other",
                 vjp_add: Callable | None = None, vjp_add_done: Callable | None = None):
        self.name = name
        self.shape_rule = shape_rule
        self.impl = impl
        self.vjp = vjp
        self.jvp = jvp
        self.batch = batch
        self.multiple_results = multiple_results
        # Non-differentiable primitives (comparisons, argmax, ...) have zero derivative a.e.
        self.differentiable = differentiable
        self.torch_name = torch_name or f"{name.capitalize()}Backward0"
        self.family = family
        # vjp_add(acc, g, out, *ins, **params): acc += the first input's VJP, in place, on
        # numpy values (tape backward into a cotangent the engine owns); None: not offered.
        # For rules whose cotangent is mostly zeros (a slice's), which then costs no new array.
        # vjp_add_done(acc, [params, ...]): called once on the accumulated cotangent, before it
        # is used, with the params of every vjp_add into it that returned True: what adding
        # the zeros would have changed (the signs of zeros), done once instead of per add.
        self.vjp_add = vjp_add
        self.vjp_add_done = vjp_add_done

    def abstract_eval(self, avals, params) -> list[AVal]:
        out = self.shape_rule(*avals, **params)
        return list(out) if self.multiple_results else [out]

    def __repr__(self):
        return f"<primitive {self.name}>"


# ---------------------------------------------------------------------------------------------
# dispatch

def _context_of(x):
    return getattr(x, "_adj_context", None)


_PLAIN = (_ND, np.float64, np.float32, float, int)  # values that never carry a context


def bind(prim: Primitive, *args, **params):
    """Apply `prim`: on numpy values now, or recorded by the innermost trace/tape among args."""
    top = None
    for a in args:
        if type(a) in _PLAIN:
            continue
        ctx = _context_of(a)
        if ctx is not None and (top is None or ctx.level > top.level):
            top = ctx
    if top is None:
        return prim.impl(*args, **params)
    return top.process(prim, args, params)


_AVALS: dict = {}  # (shape, dtype) -> AVal: tape mode asks for avals of arrays in every rule


def aval_of(x) -> AVal:
    """Shape and dtype of any value bind accepts (tracer, Tensor, array, numpy/Python scalar)."""
    if type(x) is not _ND:
        if isinstance(x, _GENERIC):  # numpy scalars (tape mode keeps 0-d values as these)
            key = ((), x.dtype)
            aval = _AVALS.get(key)
            if aval is None:
                aval = _AVALS[key] = AVal((), x.dtype)
            return aval
        aval = getattr(x, "aval", None)
        if isinstance(aval, AVal):
            return aval
        x = np.asarray(x)
    key = (x.shape, x.dtype)
    aval = _AVALS.get(key)
    if aval is None:
        if len(_AVALS) > 4096:  # bound the cache for programs with ever-new shapes
            _AVALS.clear()
        aval = _AVALS[key] = AVal(x.shape, x.dtype)
    return aval


def leaf_aval(leaf) -> AVal:
    """The abstract value of a user argument (array, Python or numpy scalar, tracer, Tensor);
    TypeError for complex and other unsupported dtypes."""
    if hasattr(leaf, "_adj_context"):
        return aval_of(leaf)
    if isinstance(leaf, bool):
        return AVal((), np.bool_)
    if isinstance(leaf, int):
        return AVal((), np.int64)
    if isinstance(leaf, float):
        return AVal((), np.float64)
    arr = np.asarray(leaf)
    if arr.dtype.kind == "c":
        raise TypeError("complex inputs are not supported; pass real float arrays")
    try:
        # byte-swapped data (">f8" read from a file) is converted to the native byte order
        return AVal(arr.shape, arr.dtype if arr.dtype.isnative else arr.dtype.newbyteorder("="))
    except TypeError as exc:
        raise TypeError(f"argument of dtype {arr.dtype} is not supported: {exc}") from None
