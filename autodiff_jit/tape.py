"""Tape mode: a PyTorch-style `Tensor` that records a run-time tape of primitives.

A `Tensor` wraps a numpy array. It plugs into `bind` like a tracer does (`_adj_context` is the
module-level `TAPE` context, level 0): every numpy operation on a Tensor runs the primitive's
numpy implementation and, when grad mode is on and an input requires grad, records a `Node`
(primitive, params, inputs, saved values). `Tensor.backward()` walks the recorded nodes in
reverse topological order and calls the *shared* primitive VJP rules (`Primitive.vjp`): on
plain numpy arrays normally, on Tensors with `create_graph=True` (so the backward pass is
itself recorded and can be differentiated again). There are no derivative formulas here.

Composite numpy functions (np.mean = reduce_sum then div, MSE loss, sigmoid, ...) are recorded
as ONE node with a PyTorch name (`MeanBackward0`) by `record_as`: its backward runs the tape of
primitives the composite recorded.

`tape_call` implements `grad(f, mode="tape")` / `value_and_grad(f, mode="tape")`.
"""
from __future__ import annotations

import functools
import heapq
import itertools
import numbers
import operator
import weakref

import numpy as np

from . import tree
from .ir import AVal, dtype_name, is_float
from .numpy import FUNCTIONS, ArrayOps, UFUNCS
from .numpy._base import check_args
from .numpy import matmul as _np_matmul
from .primitives.core import leaf_aval as _leaf_aval
from .primitives.elementwise import fit_cotangent as _fit

__all__ = ["Tensor", "Parameter", "tensor", "as_tensor", "from_numpy", "no_grad", "enable_grad",
           "set_grad_enabled", "is_grad_enabled", "Function", "FunctionCtx", "record_as",
           "grad", "randn", "rand", "zeros", "ones", "zeros_like", "ones_like", "full", "arange",
           "linspace", "eye", "manual_seed", "tape_call"]

# ---------------------------------------------------------------------------------------------
# grad mode

_GRAD = [True]          # grad mode (a list: one global lookup + index, cheapest to read)
_NODE_COUNT = [0]       # nodes recorded so far (record_as uses it to see what a call recorded)
_next_seq = itertools.count(1).__next__  # a node's `seq`: creation order, a topological order
                                         # (atomic under the GIL, so unique across threads)
# Nodes recorded by in-place ops (`y += 1` on a graph tensor): the tensor, perhaps already an
# input of older nodes, now points at a newer grad_fn, so creation order may no longer be a
# topological order. While any such node is alive, backward sorts the graph by a DFS instead.
_REWIRED: set = set()  # weak references to those nodes (a dead one removes itself)


def is_grad_enabled() -> bool:
    return _GRAD[0]


class set_grad_enabled:
    """Context manager / decorator setting grad mode (as torch.set_grad_enabled)."""

    def __init__(self, mode: bool = True):
        self.mode = bool(mode)
        self.prev = []

    def __enter__(self):
        self.prev.append(_GRAD[0])
        _GRAD[0] = self.mode
        return self

    def __exit__(self, *exc):
        _GRAD[0] = self.prev.pop()
        return False

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)
        return wrapper


class no_grad(set_grad_enabled):
    """`with no_grad():` (or `@no_grad()`): operations inside record nothing."""

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """`with enable_grad():` re-enables recording inside a no_grad block."""

    def __init__(self):
        super().__init__(True)


# ---------------------------------------------------------------------------------------------
# dtypes and aval cache

float16, float32, float64 = np.float16, np.float32, np.float64
int32, int64, bool_ = np.int32, np.int64, np.bool_


_AVALS: dict = {}


def _aval(arr) -> AVal:
    key = (arr.shape, arr.dtype)
    av = _AVALS.get(key)
    if av is None:
        av = _AVALS[key] = AVal(arr.shape, arr.dtype)
    return av


_RETAIN_MSG = ("Trying to backward through the graph a second time (or directly access saved "
               "tensors after they have already been freed). Saved intermediate values of the "
               "graph are freed when you call .backward() or autograd.grad(). Specify "
               "retain_graph=True if you need to backward through the graph a second time or if "
               "you need to access saved tensors after calling backward.")


# ---------------------------------------------------------------------------------------------
# graph nodes

class Node:
    """A recorded operation (a `grad_fn`). Subclasses say how cotangents flow back.
    `seq` numbers nodes in creation order (0: never walked by backward, e.g. AccumulateGrad)."""
    __slots__ = ("inputs", "_name", "n_out", "hooks", "seq", "__weakref__")

    def name(self) -> str:
        return self._name

    def __repr__(self):
        return f"<{self._name} object at {hex(id(self))}>"

    @property
    def next_functions(self):
        """((grad_fn of each input or AccumulateGrad for leaves or None, output index), ...)."""
        out = []
        for x in self.inputs:
            if isinstance(x, Tensor) and x.requires_grad:
                if x.grad_fn is not None:
                    out.append((x.grad_fn, x._out_nr))
                else:
                    out.append((x._accumulate_node(), 0))
            else:
                out.append((None, 0))
        return tuple(out)

    # engine interface
    def released(self) -> bool:
        return False

    def release(self):
        pass

    def apply(self, cts, create_graph):  # pragma: no cover - abstract
        raise NotImplementedError


class PrimNode(Node):
    """One primitive application; backward is the primitive's shared VJP rule.
    (Hot paths build it with `_new(PrimNode)` and set the slots inline; see `_fast2`.)"""
    __slots__ = ("prim", "params", "saved", "out")

    def __init__(self, prim, params, inputs, saved, out):
        self.prim = prim
        self.params = params
        self.inputs = inputs
        self.saved = saved
        self.out = out
        self._name = prim.torch_name
        self.n_out = len(out) if prim.multiple_results else 1
        self.hooks = None
        _NODE_COUNT[0] += 1
        self.seq = _next_seq()

    def released(self):
        return self.saved is None

    def release(self):
        self.saved = self.out = None

    def apply(self, cts, create_graph):
        prim = self.prim
        if create_graph:
            ins = self.inputs
            if prim.multiple_results:
                out = [_wrap(o, self, i) for i, o in enumerate(self.out)]
            else:
                out = _wrap(self.out, self, 0)
        else:
            ins, out = self.saved, self.out
        if prim.multiple_results:
            return prim.vjp(cts, out, *ins, **self.params)
        return prim.vjp(cts[0], out, *ins, **self.params)

    @property
    def metadata(self):
        return {"primitive": self.prim.name, "params": self.params}


class AccumulateGrad(Node):
    """The node that stands for a leaf in `next_functions` (as in PyTorch)."""
    __slots__ = ("variable",)

    def __init__(self, variable):
        self.variable = variable
        self.inputs = ()
        self._name = "AccumulateGrad"
        self.n_out = 1
        self.hooks = None
        self.seq = 0

    @property
    def next_functions(self):
        return ()


class CompositeNode(Node):
    """Several recorded primitives shown as one node (e.g. MeanBackward0 = reduce_sum + div).
    Backward runs the inner tape from the composite's result back to its inputs."""
    __slots__ = ("inner_fn", "inner_nr", "inner_out", "_freed")

    def __init__(self, name, inputs, inner_out):
        self._name = name
        self.inputs = inputs
        self.inner_out = inner_out  # the inner result tensor (its grad_fn is the inner tape)
        self.n_out = 1
        self.hooks = None
        self._freed = False
        self.seq = _next_seq()

    def released(self):
        return self._freed

    def release(self):
        self._freed = True

    def apply(self, cts, create_graph):
        # the inner tape stays alive as long as this node does; this node's own release flag
        # gives the retain_graph error
        return _run(self.inner_out, cts[0], targets=self.inputs, retain_graph=True,
                    create_graph=create_graph, stop_at_targets=True)


class FunctionNode(Node):
    """A user `Function` (custom forward/backward), named like PyTorch: <Class>Backward."""
    __slots__ = ("fn_cls", "ctx", "_freed")

    def __init__(self, fn_cls, ctx, inputs):
        self.fn_cls = fn_cls
        self.ctx = ctx
        self.inputs = inputs
        self._name = f"{fn_cls.__name__}Backward"
        self.n_out = 1
        self.hooks = None
        self._freed = False
        _NODE_COUNT[0] += 1
        self.seq = _next_seq()

    def released(self):
        return self._freed

    def release(self):
        self._freed = True
        self.ctx.saved_tensors_ = None

    def apply(self, cts, create_graph):
        g = cts[0]
        if not isinstance(g, Tensor):
            g = _wrap(np.asarray(g), None, 0)
        res = self.fn_cls.backward(self.ctx, g)
        if not isinstance(res, tuple):
            res = (res,)
        tensor_inputs = [x for x in self.inputs]
        if len(res) < len(tensor_inputs):
            raise RuntimeError(f"function {self.fn_cls.__name__}.backward returned {len(res)} "
                               f"gradients, but forward had {len(tensor_inputs)} inputs")
        out = []
        for r in res[:len(tensor_inputs)]:
            if r is None:
                out.append(None)
            elif isinstance(r, Tensor):
                out.append(r if create_graph else r._data)
            else:
                out.append(np.asarray(r))
        return out


# ---------------------------------------------------------------------------------------------
# the tape context (plugs Tensor into bind)

class TapeContext:
    """What `bind` calls for operations whose innermost value is a tape Tensor."""
    level = 0

    def process(self, prim, args, params):
        vals = []
        rg = False
        for a in args:
            if isinstance(a, Tensor):
                vals.append(a._data)
                if a.requires_grad:
                    rg = True
            else:
                vals.append(a)
        out = prim.impl(*vals, **params)
        # values stay as numpy returns them: arrays, or numpy scalars for 0-d results (numpy
        # arithmetic on scalars is ~10x cheaper than on 0-d arrays); see `_arr`
        if prim.multiple_results:
            out = [o if type(o) is np.ndarray or isinstance(o, np.generic) else np.asarray(o)
                   for o in out]
        elif type(out) is not np.ndarray and not isinstance(out, np.generic):
            out = np.asarray(out)
        node = None
        if rg and _GRAD[0] and prim.differentiable:
            node = PrimNode(prim, params, args, vals, out)
        if prim.multiple_results:
            return [_wrap(o, node, i) for i, o in enumerate(out)]
        return _wrap(out, node, 0)

    def __repr__(self):
        return "<tape context>"


TAPE = TapeContext()


# ---------------------------------------------------------------------------------------------
# Tensor

def _wrap(data, node, nr):
    t = _new(Tensor)
    t._data = data
    t.grad_fn = node
    t.requires_grad = node is not None
    t._out_nr = nr
    t.grad = None
    t._accum = None
    return t


_new = object.__new__

_DEFAULT_FLOAT = np.dtype(np.float32)


def _to_array(data, dtype=None) -> np.ndarray:
    if isinstance(data, Tensor):
        arr = data._data
        return np.array(arr, dtype=dtype)
    if isinstance(data, (list, tuple)) and any(isinstance(v, Tensor) for v in tree.flatten(data)[0]):
        data = tree.tree_map(lambda v: v.item() if isinstance(v, Tensor) else v, data)
    if dtype is not None:
        return np.array(data, dtype=dtype)
    if isinstance(data, np.ndarray) or isinstance(data, np.generic):
        return np.array(data)
    arr = np.array(data)
    if arr.dtype == np.float64:  # Python floats: torch's default float32
        arr = arr.astype(_DEFAULT_FLOAT)
    return arr


def _fmt_float_array(arr):
    finite = arr[np.isfinite(arr)]
    absf = np.abs(finite)
    ints = finite.size == 0 or np.all(finite == np.round(finite))
    big = absf.size and (absf.max() >= 1e8 or (absf[absf > 0].size and absf[absf > 0].min() < 1e-4
                                                  and not ints))
    def one(v):
        if not np.isfinite(v):
            return "nan" if np.isnan(v) else ("inf" if v > 0 else "-inf")
        if big:
            return f"{v:.4e}"
        if ints:
            return f"{v:.0f}."
        return f"{v:.4f}"
    return one


def _format_data(arr: np.ndarray) -> str:
    if arr.dtype.kind == "f":
        one = _fmt_float_array(arr.astype(np.float64))
    elif arr.dtype == np.bool_:
        def one(v): return "True" if v else "False"
    else:
        def one(v): return str(int(v))
    if arr.ndim == 0:
        return one(arr.item())
    flat = [one(v) for v in arr.ravel().tolist()]
    width = max((len(s) for s in flat), default=0)
    flat = [s.rjust(width) for s in flat]
    it = iter(flat)

    def build(shape, depth):
        if len(shape) == 1:
            return "[" + ", ".join(next(it) for _ in range(shape[0])) + "]"
        sep = "," + "\n" * (len(shape) - 1) + " " * (depth + 8)
        return "[" + sep.join(build(shape[1:], depth + 1) for _ in range(shape[0])) + "]"

    if arr.size == 0:
        return "[]"
    return build(arr.shape, 0)


def _grad_check(t, what):
    if t.requires_grad and t.grad_fn is None and _GRAD[0]:
        raise RuntimeError(f"a leaf Variable that requires grad is being used in an in-place "
                           f"operation ({what}); wrap it in `with no_grad():`")


def _data_of(x):
    return x._data if isinstance(x, Tensor) else x


def _arr(t) -> np.ndarray:
    """t's storage as an ndarray. A Tensor holds an ndarray, or a numpy scalar for a 0-d result
    of an operation (numpy computes on scalars ~10x faster than on 0-d arrays); user-facing
    views (.numpy(), __array__, .data, detach) and in-place writes turn it into a 0-d array
    first, so they share storage with the tensor as in PyTorch."""
    d = t._data
    if type(d) is np.ndarray:
        return d
    d = t._data = np.array(d)
    return d


def _writable(t) -> np.ndarray:
    d = t._data
    if type(d) is not np.ndarray or not d.flags.writeable:
        d = t._data = np.array(d)
    return d


class Tensor(ArrayOps):
    """A numpy array that records the operations done on it (PyTorch-style eager autograd).

        x = Tensor(np.array(2.0), requires_grad=True)   # or autodiff_jit.tensor(2.0, ...)
        y = x ** 2 + 3 * x
        y.backward(); x.grad   # tensor(7.)
    """
    __slots__ = ("_data", "requires_grad", "grad", "grad_fn", "_out_nr", "_accum")
    _adj_context = TAPE

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        arr = _to_array(data, dtype)
        if requires_grad and not is_float(arr.dtype):
            raise RuntimeError(f"Only Tensors of floating point dtype can require gradients "
                               f"(got {arr.dtype})")
        self._data = arr if arr.ndim else arr[()]  # 0-d: a numpy scalar (see _arr)
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self.grad_fn = None
        self._out_nr = 0
        self._accum = None

    # --- what bind / aval_of need ---------------------------------------------------------
    @property
    def aval(self) -> AVal:
        return _aval(self._data)

    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def data(self) -> "Tensor":
        """A Tensor sharing this one's storage, outside the graph (as torch's .data)."""
        return _wrap(_arr(self), None, 0)

    @data.setter
    def data(self, value):
        self._data = np.asarray(_data_of(value))

    def _accumulate_node(self):
        if self._accum is None:
            self._accum = AccumulateGrad(self)
        return self._accum

    # --- conversion ----------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        if dtype is not None and np.dtype(dtype) != self._data.dtype:
            return np.asarray(self._data.astype(dtype))
        return _arr(self)

    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        return _arr(self)

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted "
                               f"to Scalar")
        return self._data.item()

    def tolist(self):
        return self._data.tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iu":
            raise TypeError("only integer tensors can be converted to an index")
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self._data.item())

    def __format__(self, spec):
        if self._data.ndim == 0 and spec:
            return format(self._data.item(), spec)
        return format(str(self), spec)

    def __repr__(self):
        parts = [_format_data(np.asarray(self._data))]
        dt = self._data.dtype
        if dt not in (np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_)) or \
                (self._data.size == 0 and dt != np.float32):
            parts.append(f"dtype={dt.name}")
        if self.grad_fn is not None:
            parts.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self.requires_grad:
            parts.append("requires_grad=True")
        return "tensor(" + ", ".join(parts) + ")"

    __str__ = __repr__

    # --- torch-style info ----------------------------------------------------------------
    def size(self, dim=None):
        return self._data.shape if dim is None else self._data.shape[dim]

    def dim(self):
        return self._data.ndim

    def numel(self):
        return self._data.size

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    # --- autograd ------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (PyTorch semantics)."""
        if not self.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a "
                               "grad_fn")
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            d = self._data
            gradient = d.dtype.type(1) if d.ndim == 0 else np.ones(d.shape, d.dtype)
        elif isinstance(gradient, Tensor) and not create_graph:
            gradient = gradient._data
        else:
            gradient = gradient if isinstance(gradient, Tensor) else \
                np.asarray(gradient, self._data.dtype)
        if retain_graph is None:
            retain_graph = create_graph
        if inputs is not None:
            inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
            grads = _run(self, gradient, targets=inputs, retain_graph=retain_graph,
                         create_graph=create_graph)
            for t, g in zip(inputs, grads):
                if g is not None:
                    _accumulate_leaf(t, g, create_graph)
            return
        _run(self, gradient, targets=None, retain_graph=retain_graph, create_graph=create_graph)

    def retain_grad(self):
        """Keep `.grad` on this non-leaf tensor after backward."""
        if self.grad_fn is None:
            return
        hooks = self.grad_fn.hooks
        if hooks is None:
            hooks = self.grad_fn.hooks = []
        if not any(t is self for _, t in hooks):
            hooks.append((self._out_nr, self))

    def detach(self) -> "Tensor":
        return _wrap(_arr(self), None, 0)

    def detach_(self) -> "Tensor":
        self.grad_fn = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError("you can only change requires_grad flags of leaf variables.")
        if requires_grad and not is_float(self._data.dtype):
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        self.requires_grad = bool(requires_grad)
        return self

    def clone(self) -> "Tensor":
        return record_as("CloneBackward0", lambda x: x * 1, self) if self.requires_grad and \
            _GRAD[0] else _wrap(np.array(self._data), None, 0)

    # --- in-place ------------------------------------------------------------------------
    def _inplace(self, op, other, what):
        _grad_check(self, what)
        o = _data_of(other)
        if _GRAD[0] and (self.requires_grad or (isinstance(other, Tensor) and other.requires_grad)):
            # out-of-place on the graph, then this tensor takes over the result's history
            old = _wrap(self._data, self.grad_fn, self._out_nr)  # the history before the op
            old.requires_grad = self.requires_grad
            res = op(old, other)
            res = res.astype(self._data.dtype) if res.dtype != self._data.dtype else res
            self._data, self.grad_fn, self._out_nr = res._data, res.grad_fn, res._out_nr
            self.requires_grad = res.requires_grad
            if res.grad_fn is not None:
                _REWIRED.add(weakref.ref(res.grad_fn, _REWIRED.discard))
            return self
        data = _writable(self)
        new = op(data, o)
        if data.ndim == 0:
            data[...] = new
        else:
            np.copyto(data, new, casting="unsafe")
        return self

    def __iadd__(self, o): return self._inplace(np.add, o, "+=")
    def __isub__(self, o): return self._inplace(np.subtract, o, "-=")
    def __imul__(self, o): return self._inplace(np.multiply, o, "*=")
    def __itruediv__(self, o): return self._inplace(np.true_divide, o, "/=")

    def add_(self, other, alpha=1):
        return self._inplace(np.add, other if alpha == 1 else other * alpha, "add_")

    def sub_(self, other, alpha=1):
        return self._inplace(np.subtract, other if alpha == 1 else other * alpha, "sub_")

    def mul_(self, other):
        return self._inplace(np.multiply, other, "mul_")

    def div_(self, other):
        return self._inplace(np.true_divide, other, "div_")

    def copy_(self, src):
        return self._inplace(lambda a, b: b + 0 * a if isinstance(a, Tensor) else b, src, "copy_")

    def zero_(self):
        _grad_check(self, "zero_")
        _writable(self)[...] = 0
        return self

    def fill_(self, value):
        _grad_check(self, "fill_")
        _writable(self)[...] = _data_of(value)
        return self

    def __setitem__(self, key, value):
        _grad_check(self, "__setitem__")
        if self.requires_grad and _GRAD[0]:
            raise NotImplementedError("item assignment on a tensor in the graph is not "
                                      "supported; build it with np.where / np.concatenate")
        _writable(self)[key] = _data_of(value)

    # --- numpy protocols: composites recorded as one PyTorch-named node ------------------
    def __array_function__(self, func, types, args, kwargs):
        if func is np.sum and not kwargs and len(args) == 1 and args[0] is self:
            return _sum_all(self)
        name = _COMPOSITE_NAMES.get(func)
        if name is not None:
            check_args(FUNCTIONS[func], f"np.{func.__name__}", args, kwargs)
            return record_as(name, FUNCTIONS[func], *args, **kwargs)
        return ArrayOps.__array_function__(self, func, types, args, kwargs)

    # --- fast paths for the hot operators ------------------------------------------------
    # Same semantics as the numpy layer (numpy/ufuncs.py add etc.): when both operands are float
    # tape Tensors of one dtype, or a float Tensor meets a Python scalar (weak, NEP 50),
    # numpy's promotion is the identity, so the primitive is applied directly, its forward
    # computed by the numpy operator (on numpy scalars ~8x cheaper than calling the ufunc).
    def __add__(self, o):
        return _fast2(_P_ADD, self, o, operator.add, np.add)

    def __radd__(self, o):
        return _fast2r(_P_ADD, o, self, operator.add, np.add)

    def __sub__(self, o):
        return _fast2(_P_SUB, self, o, operator.sub, np.subtract)

    def __rsub__(self, o):
        return _fast2r(_P_SUB, o, self, operator.sub, np.subtract)

    def __mul__(self, o):
        return _fast2(_P_MUL, self, o, operator.mul, np.multiply)

    def __rmul__(self, o):
        return _fast2r(_P_MUL, o, self, operator.mul, np.multiply)

    def __truediv__(self, o):
        return _fast2(_P_DIV, self, o, operator.truediv, np.true_divide)

    def __rtruediv__(self, o):
        return _fast2r(_P_DIV, o, self, operator.truediv, np.true_divide)

    def __neg__(self):
        d = self._data
        if d.dtype in _FLOATS:
            return _record1(_P_NEG, -d, self, d, _NO_PARAMS)
        return TAPE.process(_P_NEG, (self,), _NO_PARAMS)

    def __pow__(self, o):
        t = type(o)
        if (t is int or t is float and o.is_integer()) and -64 <= o <= 64:
            d = self._data
            if d.dtype in _FLOATS:
                y = int(o)
                params = _IPOW_PARAMS[y]
                return _record1(_P_IPOW, d ** y if y >= 0 else _P_IPOW.impl(d, **params), self,
                                d, params)
        return UFUNCS[np.power](self, o)

    def __getitem__(self, key):
        d = self._data
        if type(key) is slice and type(d) is np.ndarray and d.ndim and d.dtype in _FLOATS:
            # x[a:b:c] (numpy/indexing.py getitem's fast case): a strided slice of the first axis
            shape = d.shape
            s, e, st = key.indices(shape[0])
            n = len(range(s, e, st))
            if n == shape[0] and st == 1:
                return self
            rest = len(shape) - 1
            params = {"start": (s if n else 0,) + (0,) * rest, "step": (st,) + (1,) * rest,
                      "shape": (n,) + shape[1:]}
            return _record1(_P_SLICE, d[key], self, d, params)
        return ArrayOps.__getitem__(self, key)

    def __array_ufunc__(self, uf, method, *inputs, **kwargs):
        if uf is np.matmul and method == "__call__" and not kwargs and len(inputs) == 2:
            return _matmul(*inputs)
        return ArrayOps.__array_ufunc__(self, uf, method, *inputs, **kwargs)

    def __matmul__(self, o):
        return _matmul(self, o)

    def __rmatmul__(self, o):
        return _matmul(o, self)

    # --- torch-style methods -------------------------------------------------------------
    def mean(self, axis=None, dtype=None, keepdims=False, dim=None, keepdim=None):
        return record_as("MeanBackward0" if axis is None and dim is None else "MeanBackward1",
                         FUNCTIONS[np.mean], self, axis if dim is None else dim, dtype,
                         keepdims=keepdims if keepdim is None else keepdim)

    def sum(self, axis=None, dtype=None, keepdims=False, dim=None, keepdim=None):
        if axis is None and dim is None and dtype is None and not keepdims and not keepdim:
            return _sum_all(self)
        return ArrayOps.sum(self, axis if dim is None else dim, dtype,
                            keepdims=keepdims if keepdim is None else keepdim)

    def var(self, axis=None, ddof=0, keepdims=False):
        return record_as("VarBackward0", FUNCTIONS[np.var], self, axis, ddof=ddof,
                         keepdims=keepdims)

    def std(self, axis=None, ddof=0, keepdims=False):
        return record_as("StdBackward0", FUNCTIONS[np.std], self, axis, ddof=ddof,
                         keepdims=keepdims)

    def exp(self): return UFUNCS[np.exp](self)
    def log(self): return UFUNCS[np.log](self)
    def sqrt(self): return UFUNCS[np.sqrt](self)
    def sin(self): return UFUNCS[np.sin](self)
    def cos(self): return UFUNCS[np.cos](self)
    def tanh(self): return UFUNCS[np.tanh](self)
    def abs(self): return UFUNCS[np.absolute](self)
    def neg(self): return UFUNCS[np.negative](self)
    def pow(self, e): return self ** e
    def sigmoid(self): return sigmoid(self)
    def relu(self): return relu(self)
    def t(self): return self.T
    def matmul(self, o): return _matmul(self, o)
    def mm(self, o): return _matmul(self, o)
    def view(self, *shape): return self.reshape(*shape)
    def float(self): return self.astype(np.float32)
    def double(self): return self.astype(np.float64)

    def clamp(self, min=None, max=None):
        return record_as("ClampBackward1", FUNCTIONS[np.clip], self, min, max)

    def unsqueeze(self, dim):
        return np.expand_dims(self, dim)

    def to(self, dtype=None, *args, **kwargs):
        if dtype is None or isinstance(dtype, str) and dtype in ("cpu",):
            return self
        return self.astype(dtype)

    def backward_hook_names(self):  # pragma: no cover - debugging aid
        return self.grad_fn.name() if self.grad_fn else None


from .primitives import elementwise as _E  # noqa: E402
from .primitives import indexing as _I, reductions as _R  # noqa: E402

_P_ADD, _P_SUB, _P_MUL, _P_DIV = _E.add, _E.sub, _E.mul, _E.div
_P_NEG, _P_IPOW = _E.neg, _E.integer_pow_p
_P_SLICE = _I.slice_p
_P_SUM = _R.reduce_sum_p
_SUM_PARAMS = {n: {"axes": tuple(range(n))} for n in range(1, 9)}
_ADD_REDUCE = np.add.reduce
_NO_PARAMS: dict = {}
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


_IPOW_PARAMS = {y: {"y": y} for y in range(-64, 65)}  # shared, never mutated (as _NO_PARAMS)


def _record1(prim, out, a, ad, params):
    """The result Tensor of a unary fast path (what TapeContext.process does, inlined)."""
    t = _new(Tensor)
    t._data = out
    t.grad = t._accum = None
    t._out_nr = 0
    if a.requires_grad and _GRAD[0]:
        node = t.grad_fn = _new(PrimNode)
        node.prim = prim
        node.params = params
        node.inputs = (a,)
        node.saved = (ad,)
        node.out = out
        node._name = prim.torch_name
        node.n_out = 1
        node.hooks = None
        _NODE_COUNT[0] += 1
        node.seq = _next_seq()
        t.requires_grad = True
    else:
        t.grad_fn = None
        t.requires_grad = False
    return t


def _record2(prim, out, a, b, ad, bd, rg):
    """The result Tensor of a binary fast path (what TapeContext.process does, inlined)."""
    t = _new(Tensor)
    t._data = out
    t.grad = t._accum = None
    t._out_nr = 0
    if rg and _GRAD[0]:
        node = t.grad_fn = _new(PrimNode)
        node.prim = prim
        node.params = _NO_PARAMS
        node.inputs = (a, b)
        node.saved = (ad, bd)
        node.out = out
        node._name = prim.torch_name
        node.n_out = 1
        node.hooks = None
        _NODE_COUNT[0] += 1
        node.seq = _next_seq()
        t.requires_grad = True
    else:
        t.grad_fn = None
        t.requires_grad = False
    return t


def _sum_all(x):
    """np.sum(x) / x.sum() of a float Tensor (numpy/reductions.py sum_ without the argument handling)."""
    d = x._data
    nd = d.ndim
    if nd and nd <= 8 and d.dtype in _FLOATS:
        params = _SUM_PARAMS[nd]
        # reduce_sum's impl is np.sum(d, axis=axes), i.e. this call minus np.sum's Python layer
        return _record1(_P_SUM, _ADD_REDUCE(d, params["axes"]), x, d, params)
    return FUNCTIONS[np.sum](x)


def _fast2(prim, a, b, op, ufunc):
    tb = type(b)
    ad = a._data
    if tb is Tensor or tb is Parameter:
        bd = b._data
        dt = ad.dtype
        if dt is bd.dtype or dt == bd.dtype:
            if dt in _FLOATS:
                return _record2(prim, op(ad, bd), a, b, ad, bd,
                                a.requires_grad or b.requires_grad)
            if prim is not _P_DIV:
                return TAPE.process(prim, (a, b), _NO_PARAMS)
    elif (tb is float or tb is int) and ad.dtype in _FLOATS:
        bd = ad.dtype.type(b)
        return _record2(prim, op(ad, bd), a, bd, ad, bd, a.requires_grad)
    return UFUNCS[ufunc](a, b)


def _fast2r(prim, a, b, op, ufunc):
    ta = type(a)
    bd = b._data
    if (ta is float or ta is int) and bd.dtype in _FLOATS:
        ad = bd.dtype.type(a)
        return _record2(prim, op(ad, bd), ad, b, ad, bd, b.requires_grad)
    return UFUNCS[ufunc](a, b)


class Parameter(Tensor):
    """A Tensor that is a module parameter (requires_grad=True by default)."""
    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        arr = data._data if isinstance(data, Tensor) else _to_array(data)
        Tensor.__init__(self, arr, requires_grad=requires_grad, dtype=arr.dtype)

    def __repr__(self):
        return "Parameter containing:\n" + Tensor.__repr__(self)


# ---------------------------------------------------------------------------------------------
# composites as one node

def _tensor_args(args, kwargs):
    leaves = tree.flatten((args, kwargs), is_leaf=lambda v: isinstance(v, Tensor))[0]
    out, seen = [], set()
    for v in leaves:
        if isinstance(v, Tensor) and v.requires_grad and id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def record_as(name: str, fn, *args, **kwargs):
    """Call `fn(*args, **kwargs)` and show what it recorded as ONE node named `name`.

    A call that records a single primitive just gets that node renamed; several primitives are
    grouped under a `CompositeNode` whose backward runs their rules. (Use it for numpy-level
    composites: MeanBackward0, MseLossBackward0, SigmoidBackward0, ...)"""
    if not _GRAD[0]:
        return fn(*args, **kwargs)
    start = _NODE_COUNT[0]
    out = fn(*args, **kwargs)
    if not isinstance(out, Tensor) or out.grad_fn is None:
        return out
    n = _NODE_COUNT[0] - start
    if n == 0:
        return out
    if n == 1:
        out.grad_fn._name = name
        return out
    inputs = tuple(_tensor_args(args, kwargs))
    node = CompositeNode(name, inputs, out)
    return _wrap(out._data, node, 0)


def _composite(name):
    """Decorator: a numpy-level function recorded as one `name` node on tape Tensors."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return record_as(name, fn, *args, **kwargs)
        return wrapper
    return deco


_COMPOSITE_NAMES = {np.mean: "MeanBackward0", np.var: "VarBackward0", np.std: "StdBackward0",
                    np.linalg.norm: "LinalgVectorNormBackward0", np.clip: "ClampBackward1"}


def _matmul(a, b):
    na = np.ndim(_data_of(a))
    nb = np.ndim(_data_of(b))
    name = "MmBackward0" if na == 2 and nb == 2 else "MvBackward0" if na == 2 and nb == 1 else \
        "DotBackward0" if na == 1 and nb == 1 else "BmmBackward0" if na == 3 and nb == 3 else \
        "MatmulBackward0"
    return record_as(name, _np_matmul, a, b)


# ---------------------------------------------------------------------------------------------
# the backward engine

def _toposort(root_node, stop):
    order, seen = [], set()
    stack = [(root_node, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        if stop is not None and id(node) in stop:
            continue
        for x in node.inputs:
            if isinstance(x, Tensor):
                fn = x.grad_fn
                if fn is not None and id(fn) not in seen:
                    stack.append((fn, False))
    order.reverse()
    return order


def _add(a, b):
    return b if a is None else a + b


def _run(root, root_grad, *, targets=None, retain_graph=False, create_graph=False,
         stop_at_targets=False):
    """Propagate `root_grad` from `root` back through the tape.

    targets=None: accumulate into the leaves' `.grad` (Tensor.backward). Otherwise return one
    gradient per target tensor (None where none flows) and leave `.grad` alone."""
    if root.grad_fn is None:
        if targets is None:
            _accumulate_leaf(root, root_grad, create_graph)
            return None
        return [root_grad if t is root else None for t in targets]
    prev_mode = _GRAD[0]
    _GRAD[0] = bool(create_graph)
    try:
        return _propagate(root, root_grad, targets, retain_graph, create_graph, stop_at_targets)
    finally:
        _GRAD[0] = prev_mode


def _propagate(root, root_grad, targets, retain_graph, create_graph, stop_at_targets):
    """The backward walk. Nodes are numbered in creation order (`seq`), which is a topological
    order, so the walk is a max-heap on seq over the nodes a cotangent has reached: no separate
    graph sort, and nodes no cotangent reaches are never visited. (While an in-place op's node
    is alive, `_REWIRED`, the order comes from a DFS sort instead.)"""
    nonleaf_targets = stop = None
    if targets is not None:
        nonleaf_targets = {}
        for t in targets:
            if t.grad_fn is not None:
                nonleaf_targets[(id(t.grad_fn), t._out_nr)] = None
        if stop_at_targets:
            stop = {id(t.grad_fn) for t in targets if t.grad_fn is not None}
    rfn = root.grad_fn
    rank = None
    if _REWIRED:
        rank = {id(n): i for i, n in enumerate(_toposort(rfn, stop))}
        k = 0
    else:
        k = -rfn.seq
    ent = [rfn] + [None] * rfn.n_out
    ent[root._out_nr + 1] = root_grad
    pending = {k: ent}  # heap key -> [node, cotangent of output 0, of output 1, ...]
    heap = [k]
    pop, push = heapq.heappop, heapq.heappush
    leaf_acc = {}  # id(leaf) -> [leaf, gradient]
    while heap:
        ent = pending.pop(pop(heap))
        node = ent[0]
        if node.hooks:
            for nr, t in node.hooks:
                if ent[nr + 1] is not None:
                    _accumulate_leaf(t, ent[nr + 1], create_graph)
        if nonleaf_targets:
            hit = False
            for nr in range(node.n_out):
                key = (id(node), nr)
                if key in nonleaf_targets:
                    nonleaf_targets[key] = _add(nonleaf_targets[key], ent[nr + 1])
                    hit = True
            if hit and stop is not None:
                continue
        if not create_graph and type(node) is PrimNode:  # PrimNode.apply, inlined
            saved = node.saved
            if saved is None:
                raise RuntimeError(_RETAIN_MSG)
            prim = node.prim
            if prim.multiple_results:
                if node.n_out == 1 and ent[1] is None:
                    continue
                in_cts = prim.vjp(ent[1:], node.out, *saved, **node.params)
            else:
                g = ent[1]
                if g is None:
                    continue
                if len(saved) == 2 and prim.family == "binary":
                    # ask only for the cotangents of inputs that need one: a binary rule
                    # skips the partial of a constant (the 100.0 in 100.0 * t)
                    x0, x1 = node.inputs
                    if type(x0) is Tensor and type(x1) is Tensor and x0.requires_grad and \
                            x1.requires_grad:
                        in_cts = prim.vjp(g, node.out, saved[0], saved[1])
                    else:
                        in_cts = prim.vjp(g, node.out, saved[0], saved[1], needs=(
                            isinstance(x0, Tensor) and x0.requires_grad,
                            isinstance(x1, Tensor) and x1.requires_grad))
                else:
                    in_cts = prim.vjp(g, node.out, *saved, **node.params)
            if not retain_graph:
                node.saved = node.out = None
        else:
            if node.released():
                raise RuntimeError(_RETAIN_MSG)
            if node.n_out == 1 and ent[1] is None:
                continue
            in_cts = node.apply(ent[1:], create_graph)
            if not retain_graph:
                node.release()
        for x, ct in zip(node.inputs, in_cts):
            if ct is None or not (type(x) is Tensor or isinstance(x, Tensor)) or \
                    not x.requires_grad:
                continue
            if create_graph:
                ct = _fit(ct, x, node._name)
            else:
                d = x._data
                tc = type(ct)
                if tc is np.ndarray:
                    if ct.shape != d.shape or ct.dtype != d.dtype:
                        ct = np.asarray(_fit(ct, d, node._name))
                elif tc is not type(d):  # (a numpy scalar of d's type has d's shape and dtype)
                    if not isinstance(ct, np.generic):
                        ct = np.asarray(ct)
                    if ct.shape != d.shape or ct.dtype != d.dtype:
                        ct = np.asarray(_fit(ct, d, node._name))
            fn = x.grad_fn
            if fn is None:
                e = leaf_acc.get(id(x))
                if e is None:
                    leaf_acc[id(x)] = [x, ct]
                else:
                    e[1] = e[1] + ct
            else:
                k = -fn.seq if rank is None else rank[id(fn)]
                e = pending.get(k)
                if e is None:
                    if fn.n_out == 1:
                        pending[k] = [fn, ct]
                    else:
                        e = pending[k] = [fn] + [None] * fn.n_out
                        e[x._out_nr + 1] = ct
                    push(heap, k)
                else:
                    nr = x._out_nr + 1
                    e[nr] = ct if e[nr] is None else e[nr] + ct
    if targets is None:
        for x, g in leaf_acc.values():
            _accumulate_leaf(x, g, create_graph)
        return None
    out = []
    for t in targets:
        if t.grad_fn is None:
            e = leaf_acc.get(id(t))
            out.append(None if e is None else e[1])
        else:
            out.append(nonleaf_targets[(id(t.grad_fn), t._out_nr)])
    return out


def _accumulate_leaf(x, g, create_graph):
    if x.grad is None and not create_graph and (type(g) is np.ndarray or
                                                isinstance(g, np.generic)):
        d = x._data
        if g.shape == d.shape:  # the common case: a first gradient of the leaf's shape
            x.grad = _wrap(np.array(g, dtype=d.dtype), None, 0)  # own copy: .grad is mutable
            return
    if isinstance(g, Tensor):
        if not create_graph:
            g = g._data
        elif g.dtype != x.dtype:
            g = g.astype(x.dtype)
    if not isinstance(g, Tensor):
        g = np.asarray(g)
        if g.shape != x.shape:
            g = np.broadcast_to(g, x.shape)
        g = _wrap(np.array(g, dtype=x._data.dtype), None, 0)  # own copy: .grad is mutable
    if x.grad is None:
        x.grad = g
    elif create_graph or isinstance(x.grad, Tensor) and x.grad.requires_grad:
        x.grad = x.grad + g
    else:
        gd = x.grad._data
        if gd.flags.writeable and gd.shape == g._data.shape:
            np.add(gd, g._data, out=gd, casting="unsafe")  # in place, as torch accumulates
        else:
            x.grad._data = np.asarray(gd + g._data, dtype=gd.dtype)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """torch.autograd.grad: gradients of `outputs` w.r.t. `inputs`, returned (not accumulated)."""
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor) or not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    if retain_graph is None:
        retain_graph = create_graph
    total = [None] * len(inputs)
    for out, go in zip(outputs, grad_outputs):
        if not out.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a "
                               "grad_fn")
        if go is None:
            if out._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            go = np.ones(out.shape, out.dtype)
        elif isinstance(go, Tensor) and not create_graph:
            go = go._data
        res = _run(out, go, targets=inputs, retain_graph=retain_graph, create_graph=create_graph)
        total = [_add(a, b) for a, b in zip(total, res)]
    result = []
    for t, g in zip(inputs, total):
        if g is None:
            if not allow_unused:
                raise RuntimeError("One of the differentiated Tensors appears to not have been "
                                   "used in the graph. Set allow_unused=True if this is the "
                                   "desired behavior.")
            result.append(None)
        elif isinstance(g, Tensor):
            result.append(g)
        else:
            result.append(_wrap(np.array(g, dtype=t.dtype), None, 0))
    return tuple(result)


# ---------------------------------------------------------------------------------------------
# custom functions (torch.autograd.Function)

class FunctionCtx:
    """The `ctx` of a custom Function: save_for_backward / saved_tensors / attributes."""

    def __init__(self):
        self.saved_tensors_ = ()
        self.needs_input_grad = ()

    def save_for_backward(self, *tensors):
        self.saved_tensors_ = tensors

    @property
    def saved_tensors(self):
        if self.saved_tensors_ is None:
            raise RuntimeError(_RETAIN_MSG)
        return self.saved_tensors_

    def mark_non_differentiable(self, *args):
        pass


class Function:
    """A tape operation with user-written forward and backward (torch.autograd.Function):

        class MultiplyByTwo(Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * 2
            @staticmethod
            def backward(ctx, grad_output):
                return grad_output * 2

        y = MultiplyByTwo.apply(x)
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("Function subclasses define a static forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("Function subclasses define a static backward(ctx, grad)")

    @classmethod
    def apply(cls, *args):
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with no_grad():
            out = cls.forward(ctx, *args)
        if not isinstance(out, Tensor):
            out = _wrap(np.asarray(out), None, 0)
        if _GRAD[0] and any(ctx.needs_input_grad):
            node = FunctionNode(cls, ctx, tuple(args))
            return _wrap(out._data, node, 0)
        return _wrap(out._data, None, 0)


# ---------------------------------------------------------------------------------------------
# constructors (torch.tensor, torch.randn, ...)

def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """torch.tensor: a new leaf Tensor (Python floats become float32, as in torch)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(data, dtype=None) -> Tensor:
    if isinstance(data, Tensor) and (dtype is None or np.dtype(dtype) == data.dtype):
        return data
    return Tensor(data, dtype=dtype)


def from_numpy(arr: np.ndarray) -> Tensor:
    t = _wrap(arr, None, 0)
    return t


_RNG = [np.random.default_rng()]


def manual_seed(seed: int):
    """Seed the generator behind randn/rand/nn init (numpy's PCG64: values differ from torch's)."""
    _RNG[0] = np.random.default_rng(seed)
    return _RNG[0]


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(int(s) for s in shape)


def _make(arr, dtype, requires_grad):
    arr = np.asarray(arr, dtype=dtype or _DEFAULT_FLOAT)
    t = _wrap(arr, None, 0)
    if requires_grad:
        t.requires_grad_(True)
    return t


def randn(*shape, dtype=None, requires_grad=False) -> Tensor:
    return _make(_RNG[0].standard_normal(_shape_arg(shape)), dtype, requires_grad)


def rand(*shape, dtype=None, requires_grad=False) -> Tensor:
    return _make(_RNG[0].random(_shape_arg(shape)), dtype, requires_grad)


def zeros(*shape, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.zeros(_shape_arg(shape)), dtype, requires_grad)


def ones(*shape, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.ones(_shape_arg(shape)), dtype, requires_grad)


def full(shape, fill_value, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.full(_shape_arg((shape,)), fill_value), dtype, requires_grad)


def zeros_like(t, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.zeros(np.shape(_data_of(t))), dtype or np.asarray(_data_of(t)).dtype,
                 requires_grad)


def ones_like(t, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.ones(np.shape(_data_of(t))), dtype or np.asarray(_data_of(t)).dtype,
                 requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.eye(n, m), dtype, requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False) -> Tensor:
    arr = np.arange(start, end, step) if end is not None else np.arange(start)
    if dtype is None and arr.dtype == np.float64:
        dtype = _DEFAULT_FLOAT
    return _make(arr, dtype or arr.dtype, requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False) -> Tensor:
    # torch computes in the target dtype: start + i * step (float32 by default)
    return _make(np.linspace(start, end, int(steps)), dtype, requires_grad)


# ---------------------------------------------------------------------------------------------
# torch-style functions that are numpy composites

@_composite("SigmoidBackward0")
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@_composite("ReluBackward0")
def relu(x):
    return np.maximum(x, 0.0)


def mean(x, dim=None, keepdim=False, axis=None):
    return record_as("MeanBackward0" if dim is None and axis is None else "MeanBackward1",
                     FUNCTIONS[np.mean], x, dim if axis is None else axis, None,
                     keepdims=keepdim)


def sum(x, dim=None, keepdim=False, axis=None):  # noqa: A001 - torch name
    return np.sum(x, axis=dim if axis is None else axis, keepdims=keepdim)


def matmul(a, b):
    return _matmul(a, b)


mm = matmul


def exp(x): return np.exp(x)
def log(x): return np.log(x)
def tanh(x): return np.tanh(x)
def sqrt(x): return np.sqrt(x)
def sin(x): return np.sin(x)
def cos(x): return np.cos(x)
def abs(x): return np.abs(x)  # noqa: A001


def pow(x, e):  # noqa: A001
    return x ** e


def clamp(x, min=None, max=None):  # noqa: A002
    return record_as("ClampBackward1", FUNCTIONS[np.clip], x, min, max)


def maximum(a, b): return np.maximum(a, b)
def minimum(a, b): return np.minimum(a, b)
def where(c, a, b): return np.where(c, a, b)


# ---------------------------------------------------------------------------------------------
# grad(f, mode="tape")

def _out(x):
    """Tensor/array results as compiled mode gives them: arrays, 0-d results as numpy scalars."""
    if isinstance(x, Tensor):
        x = x._data
    if isinstance(x, np.ndarray) and x.ndim == 0:
        return x[()]
    return x


def tape_call(transformed, args, kwargs):
    """Run `grad`/`value_and_grad(f, mode="tape")`: f on Tensors, then one backward pass."""
    t = transformed
    t._check_argnums(args)
    args = list(args)
    groups = []
    # Called on Tensors of an enclosing tape (grad of a tape-mode grad): differentiate with
    # respect to those Tensors themselves and keep the backward pass on the tape.
    nested = False
    for a in t.argnums_tuple:
        arg = args[a]
        if type(arg) is float or type(arg) is np.ndarray:  # a single leaf: skip pytree work
            leaves, td = [arg], "*"
        else:
            leaves, td = tree.flatten(arg)
        tens = []
        for leaf in leaves:
            tl = type(leaf)
            if tl is float:
                arr = np.float64(leaf)  # 0-d values live as numpy scalars (see _arr)
            elif tl is np.ndarray:
                arr = leaf if leaf.ndim else leaf[()]
            elif isinstance(leaf, Tensor):
                if leaf.requires_grad and _GRAD[0]:
                    nested = True
                arr = leaf._data
            else:
                if not (isinstance(leaf, (np.ndarray, np.generic, numbers.Number))
                        or hasattr(leaf, "__array_interface__")):
                    raise TypeError(f"{t.kind}: argument {a} of {t._fun_name} is not an array or a "
                                    f"pytree of arrays")
                aval = _leaf_aval(leaf)
                arr = np.asarray(leaf, dtype=aval.dtype)
            if arr.dtype not in _FLOATS:
                raise TypeError(
                    f"{t.kind} requires real floating-point inputs to differentiate, but an "
                    f"argument in argnums={t.argnums!r} of {t._fun_name} has dtype "
                    f"{dtype_name(arr.dtype)}; pass floats (e.g. 3.0 rather than 3, or "
                    f"x.astype(float)), or leave it out of argnums")
            if isinstance(leaf, Tensor) and leaf.requires_grad and _GRAD[0]:
                x = leaf
            else:
                x = _wrap(arr, None, 0)
                x.requires_grad = True
            tens.append(x)
        args[a] = tens[0] if td == "*" else tree.unflatten(td, tens)
        groups.append((tens, td))
    prev = _GRAD[0]
    _GRAD[0] = True
    try:
        out = t.fun(*args, **kwargs)
    finally:
        _GRAD[0] = prev
    aux = None
    if t.has_aux:
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(f"{t._fun_name} was transformed with has_aux=True, so it must return a "
                            f"pair (value, aux); got {type(out).__name__}")
        out, aux = out
        aux = _map_out(aux)
    if isinstance(out, Tensor):
        od = out._data
    elif isinstance(out, (np.ndarray, np.generic, numbers.Number)):
        od = np.asarray(out)
    else:
        od = None
    if od is None or od.shape != () or od.dtype not in _FLOATS and not is_float(od.dtype):
        what = f"shape {od.shape} and dtype {dtype_name(od.dtype)}" if od is not None else \
            f"a {type(out).__name__}"
        raise TypeError(f"{t.kind} requires a function with a scalar float output, but {t._fun_name} "
                        f"returned {what}; reduce it to a scalar (e.g. np.sum) before "
                        f"differentiating")
    flat_targets = [x for tens, _ in groups for x in tens]
    if nested:
        return _nested_result(t, out, od, aux, groups, flat_targets)
    if isinstance(out, Tensor) and out.requires_grad:
        gs = _run(out, od.dtype.type(1), targets=flat_targets)
    else:
        gs = [None] * len(flat_targets)
    grads, pos = [], 0
    for tens, td in groups:
        vals = []
        for x, g in zip(tens, gs[pos:pos + len(tens)]):
            dt = x._data.dtype
            if type(g) is np.ndarray:
                if g.dtype != dt:
                    g = g.astype(dt)
                vals.append(g[()] if g.ndim == 0 else g)
            elif g is None:
                vals.append(np.zeros(x._data.shape, dt)[()])
            else:  # a numpy scalar (0-d values are kept as scalars)
                vals.append(g if type(g) is dt.type else np.asarray(g, dt)[()])
        pos += len(tens)
        grads.append(vals[0] if td == "*" else tree.unflatten(td, vals))
    g = grads[0] if type(t.argnums) is int or isinstance(t.argnums, numbers.Integral) else \
        tuple(grads)
    if t.kind == "grad":
        return (g, aux) if t.has_aux else g
    value = _out(od)
    return ((value, aux) if t.has_aux else value), g


def _nested_result(t, out, od, aux, groups, flat_targets):
    """Gradients as Tensors recorded on the enclosing tape (create_graph), so that an outer
    tape-mode grad differentiates through them."""
    if isinstance(out, Tensor) and out.requires_grad:
        gs = _run(out, od.dtype.type(1), targets=flat_targets, create_graph=True,
                  retain_graph=True)
    else:
        gs = [None] * len(flat_targets)
    grads, pos = [], 0
    for tens, td in groups:
        vals = [g if isinstance(g, Tensor) else
                _wrap(np.zeros(x._data.shape, x._data.dtype) if g is None else np.asarray(g), None, 0)
                for x, g in zip(tens, gs[pos:pos + len(tens)])]
        pos += len(tens)
        grads.append(vals[0] if td == "*" else tree.unflatten(td, vals))
    g = grads[0] if isinstance(t.argnums, numbers.Integral) else tuple(grads)
    if t.kind == "grad":
        return (g, aux) if t.has_aux else g
    return ((out, aux) if t.has_aux else out), g


def _map_out(tree_):
    leaves, td = tree.flatten(tree_, is_leaf=lambda v: isinstance(v, Tensor))
    return tree.unflatten(td, [_out(v) if isinstance(v, (Tensor, np.ndarray)) else v
                               for v in leaves])
