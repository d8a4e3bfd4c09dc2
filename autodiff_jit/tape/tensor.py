"""Tensor (torch.Tensor): a numpy array that records the operations done on it.

A `Tensor` plugs into `bind` like a tracer does (`_adj_context` is the module-level `TAPE`
context, level 0): every numpy operation on a Tensor runs the primitive's numpy implementation
and, when grad mode is on and an input requires grad, records a `PrimNode` (primitive, params,
inputs, saved values). Composite numpy functions (np.mean = reduce_sum then div, sigmoid, ...)
are recorded as ONE node with a PyTorch name by `graph.record_as`.

Both conventions work on a Tensor: numpy's (`x.size`, `x.ndim`, `x.shape`, `x.copy()`,
`x.sum(axis=, keepdims=)`) so plain numpy functions run unchanged, and PyTorch's (`t.size()`,
`t.size(0)`, `t.dim()`, `t.numel()`, `t.sum(dim=, keepdim=)`): `x.size` is an int that can
also be called.
"""
from __future__ import annotations

import functools
import operator
import weakref
import warnings

import numpy as np

from .. import tree
from ..errors import TensorArrayConversionError
from ..ir import AVal, is_float
from ..numpy import FUNCTIONS, ArrayOps, UFUNCS, setitem as _np_setitem, setitem_positions
from ..numpy import matmul as _np_matmul
from ..numpy.ufuncs import power_operator, stop_gradient as _stop_gradient
from ..numpy._base import call as _np_call, check_args
from ..numpy.reductions import sum_ as _np_sum, mean as _np_mean, var as _np_var, \
    std as _np_std
from . import engine
from .operands import keep as _keep
from ._format import _format_data
from .grad_mode import _GRAD
from .graph import (_LAST_WRITE, _NODE_COUNT, _REWIRED, CompositeNode, GraphTensor, PrimNode,
                    _add_hook, _next_seq, record_as)

_new = object.__new__
# numpy's names the hot paths use, bound at import: while a grad runs, numpy's module attributes
# are routed (numpy/lists.py), so `np.add` there is a Python wrapper and `np.ndarray` a slower,
# unspecialized lookup
_ND, _GENERIC = np.ndarray, np.generic
_UF_ADD, _UF_SUB, _UF_MUL, _UF_DIV = np.add, np.subtract, np.multiply, np.true_divide
_UF_MAXIMUM, _UF_ISFINITE, _UF_EXP, _NP_WHERE = np.maximum, np.isfinite, np.exp, np.where
_DEFAULT_FLOAT = np.dtype(np.float32)

# Inside `grad(f, mode="tape")` (depth > 0) an implicit conversion of a grad-requiring Tensor to a
# Python number (float(t), math.exp(t), t.tolist()) would silently cut the gradient, so it
# raises, as compiled mode does; outside, these follow PyTorch (they return the value).
_STRICT = [0]
# numpy's own functions (while a trace runs, the numpy module's attributes are wrappers)
_NP_SUM, _NP_MEAN, _NP_COPY, _NP_CLIP, _NP_CONCATENATE = (np.sum, np.mean, np.copy, np.clip,
                                                    np.concatenate)


# ---------------------------------------------------------------------------------------------
# the tape context (plugs Tensor into bind)

class TapeContext:
    """What `bind` calls for operations whose innermost value is a tape Tensor."""
    level = 0

    def process(self, prim, args, params):
        vals = []
        rg = False
        arrays = False   # a numpy operand (the node keeps it: operands.keep)
        for a in args:
            if isinstance(a, Tensor):
                vals.append(a._data)
                if a.requires_grad:
                    rg = True
            else:
                vals.append(a)
                if type(a) is _ND:
                    arrays = True
        out = prim.impl(*vals, **params)
        # values stay as numpy returns them: arrays, or numpy scalars for 0-d results (numpy
        # arithmetic on scalars is ~10x cheaper than on 0-d arrays); see `_arr`
        if prim.multiple_results:
            out = [o if type(o) is _ND or isinstance(o, _GENERIC) else np.asarray(o)
                   for o in out]
        elif type(out) is not _ND and not isinstance(out, _GENERIC):
            out = np.asarray(out)
        node = None
        if rg and _GRAD[0] and prim.differentiable:
            if arrays:
                vals = [_keep(v) if type(a) is _ND else v for a, v in zip(args, vals)]
            node = PrimNode(prim, params, args, vals, out)
        if prim.multiple_results:
            return [_wrap(o, node, i) for i, o in enumerate(out)]
        return _wrap(out, node, 0)

    def __repr__(self):
        return "<tape context>"


TAPE = TapeContext()


def _wrap(data, node, nr):
    t = _new(Tensor)
    t._data = data
    t.grad_fn = node
    t.requires_grad = node is not None
    t._out_nr = nr
    t.grad = None
    t._accum = None
    t._version = None
    t._views = None   # (set here: a getattr default on an unset slot costs an exception)
    return t


_AVALS: dict = {}


def _aval(arr) -> AVal:
    key = (arr.shape, arr.dtype)
    av = _AVALS.get(key)
    if av is None:
        av = _AVALS[key] = AVal(arr.shape, arr.dtype)
    return av


def _to_array(data, dtype=None) -> np.ndarray:
    if isinstance(data, Tensor):
        arr = data._data
        return np.array(arr, dtype=dtype)
    if isinstance(data, (list, tuple)) and any(isinstance(v, Tensor) for v in tree.flatten(data)[0]):
        data = tree.tree_map(lambda v: v.item() if isinstance(v, Tensor) else v, data)
    if dtype is not None:
        return np.array(data, dtype=dtype)
    if isinstance(data, _ND) or isinstance(data, _GENERIC):
        return np.array(data)
    arr = np.array(data)
    if arr.dtype == np.float64:  # Python floats: torch's default float32
        arr = arr.astype(_DEFAULT_FLOAT)
    return arr


def _grad_check(t, what):
    # (a tape-mode grad's own argument, marked by `_past = ()`, may be written: numpy code
    # does so; tape_call then differentiates with respect to its value before the write)
    if t.requires_grad and t.grad_fn is None and _GRAD[0] and getattr(t, "_past", None) is None:
        raise RuntimeError(f"a leaf Variable that requires grad is being used in an in-place "
                           f"operation ({what}); wrap it in `with no_grad():`")


def _refresh_views(t, written, layout, base):
    """Every live view taken of `t` (and of those views) shows t's new value again, as numpy's
    shared memory does; `written` (already right) is skipped, its own views are not. `layout`:
    t's flat positions in the root (`base`, an arange): a result numpy would have copied (a
    gather, a reshape of a transposed view) is not a view and keeps its value. A refresh
    is not a write: versions stay, so nodes that saved the old values keep them (they are not
    mutated), and nodes recorded before it route to the old history (`_past`)."""
    views = getattr(t, "_views", None)
    if not views:
        return
    live = []
    for ref in list(views):   # (re-taking a view below registers a temporary: not kept)
        c = ref()
        if c is None or getattr(c, "_view", (None,))[0] is not t:
            continue
        try:
            sub = c._view[1](layout)
        except Exception:  # noqa: BLE001 - an index holding Tensors: a copy
            continue
        if not (isinstance(sub, _ND) and np.may_share_memory(sub, base)):
            continue       # a copy in numpy: not a view
        live.append(ref)
        if c is not written:
            new = c._view[1](t)
            if isinstance(new, Tensor):
                if c.requires_grad or new.requires_grad:
                    old = c._history()
                    c._hist = None
                    seq = _next_seq()
                    _LAST_WRITE[0] = seq
                    past = getattr(c, "_past", None)
                    c._past = [(seq, old)] if not past else past + [(seq, old)]
                c._data, c.grad_fn, c._out_nr = new._data, new.grad_fn, new._out_nr
                c.requires_grad = new.requires_grad
        _refresh_views(c, written, sub, base)
    t._views = live


def _check_cast(op, got, want):
    """numpy's in-place ufuncs cast their result with casting='same_kind' (`int_array += 1.5`
    raises); copy_ (not a ufunc) casts freely, as torch's."""
    if isinstance(op, np.ufunc) and not np.can_cast(got, want, "same_kind"):
        raise TypeError(f"Cannot cast ufunc '{op.__name__}' output from {np.dtype(got)!r} to "
                        f"{np.dtype(want)!r} with casting rule 'same_kind'")


def _data_of(x):
    return x._data if isinstance(x, Tensor) else x


def _arr(t) -> np.ndarray:
    """t's storage as an ndarray. A Tensor holds an ndarray, or a numpy scalar for a 0-d result
    of an operation (numpy computes on scalars ~10x faster than on 0-d arrays); user-facing
    views (.numpy(), __array__, .data, detach) and in-place writes turn it into a 0-d array
    first, so they share storage with the tensor as in PyTorch."""
    d = t._data
    if type(d) is _ND:
        return d
    d = t._data = np.array(d)
    return d


def _writable(t) -> np.ndarray:
    d = t._data
    if type(d) is not _ND or not d.flags.writeable:
        d = t._data = np.array(d)
    return d


_FLOAT_WARNING = ("Converting a tensor with requires_grad=True to a scalar may lead to unexpected "
                  "behavior.\nConsider using tensor.detach() first.")
_NUMPY_MSG = "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."


def _no_numpy(what):
    return RuntimeError(
        f"{_NUMPY_MSG} ({what} turns the Tensor into a numpy array, which would drop its "
        f"gradient. To build an array from Tensors use np.stack([a, b]) or np.concatenate; to "
        f"fill an array, x * np.ones(n); for a value to print or branch on, x.item().)")


def _strict_number(t, what):
    if t.requires_grad and _STRICT[0]:
        raise TensorArrayConversionError(
            f"{what} of a Tensor that requires grad inside grad(f, mode=\"tape\") would drop its "
            f"gradient (compiled mode refuses it too). Use numpy functions on the Tensor "
            f"(np.exp(x), not math.exp(x)), or x.item() / x.detach() where a plain number is "
            f"wanted.")


class _Size(int):
    """`x.size`: numpy's element count (an int), and callable as PyTorch's `t.size()` (the
    shape) / `t.size(dim)`. numpy code (`x * x.size`, `range(x.size)`) sees an int."""
    def __call__(self, dim=None):
        return self._shape if dim is None else self._shape[dim]


def _size_of(shape):
    n = 1
    for d in shape:
        n *= d
    s = _Size(n)
    s._shape = shape
    return s


def _torch_axis(axis, dim, what):
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{what}: give axis= (numpy) or dim= (PyTorch), not both")
        return dim
    return axis


class Tensor(GraphTensor, ArrayOps):
    """A numpy array that records the operations done on it (PyTorch-style eager autograd).

        x = Tensor(np.array(2.0), requires_grad=True)   # or autodiff_jit.tensor(2.0, ...)
        y = x ** 2 + 3 * x
        y.backward(); x.grad   # tensor(7.)
    """
    __slots__ = ()
    _adj_context = TAPE
    _make = staticmethod(_wrap)  # how graph/engine build result Tensors without importing this

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
        self._version = None

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
        """A Tensor sharing this one's storage and version counter, outside the graph."""
        t = _wrap(_arr(self), None, 0)
        t._version = self._shared_version()
        return t

    @data.setter
    def data(self, value):
        self._data = np.asarray(_data_of(value))

    # --- conversion ----------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        if self.requires_grad:
            raise TensorArrayConversionError(*_no_numpy("np.asarray / np.array of it").args)
        if dtype is not None and np.dtype(dtype) != self._data.dtype:
            if copy is False:
                raise ValueError("Unable to avoid copy while creating an array as requested.")
            return np.asarray(self._data.astype(dtype))
        # numpy passes copy=True for np.array(t) and trusts the answer to be a copy: handing
        # back the Tensor's own memory would let writes into the array change the Tensor
        return np.array(_arr(self)) if copy else _arr(self)

    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError(_NUMPY_MSG)
        return _arr(self)

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted "
                               f"to Scalar")
        return self._data.item()

    def tolist(self):
        _strict_number(self, ".tolist()")
        return self._data.tolist()

    def __float__(self):
        _strict_number(self, "float()")
        if self.requires_grad:  # torch's warning: float() (and numpy's `y[0] = t`) detaches
            warnings.warn(_FLOAT_WARNING, UserWarning, stacklevel=2)
        return float(self.item())

    def __int__(self):
        _strict_number(self, "int()")
        return int(self.item())

    def __complex__(self):
        _strict_number(self, "complex()")
        return complex(self.item())

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

    # --- numpy and torch-style info ------------------------------------------------------
    @property
    def size(self):
        """numpy's `x.size` (element count) that is also PyTorch's `t.size()` / `t.size(d)`."""
        return _size_of(self._data.shape)

    @property
    def ndim(self):
        return self._data.ndim

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
        engine.backward(self, gradient, retain_graph, create_graph, inputs)

    def retain_grad(self):
        """Keep `.grad` on this non-leaf tensor after backward (a no-op on leaves)."""
        if self.grad_fn is None:
            if not self.requires_grad:
                raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
            return
        hooks = self.grad_fn.hooks or ()
        if not any(fn is None and t is self for _, fn, t in hooks):
            _add_hook(self.grad_fn, self._out_nr, None, self)

    @property
    def retains_grad(self) -> bool:
        return self.grad_fn is not None and any(
            fn is None and t is self for _, fn, t in (self.grad_fn.hooks or ()))

    def register_hook(self, hook):
        """hook(grad) runs when this tensor's gradient is computed; a returned Tensor replaces
        the gradient (as torch.Tensor.register_hook). Returns a handle with .remove()."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is None:
            return _add_hook(self._accumulate_node(), 0, hook, self)
        return _add_hook(self.grad_fn, self._out_nr, hook, self)

    def detach(self) -> "Tensor":
        t = _wrap(_arr(self), None, 0)
        t._version = self._shared_version()  # a view: writes to either are seen by both
        return t

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
        if self.requires_grad and _GRAD[0]:
            return record_as("CloneBackward0", lambda x: x * 1, self)
        return _wrap(np.array(self._data), None, 0)

    def copy(self, order="C"):
        """numpy's x.copy(): a new Tensor (a CloneBackward0 node when x is on the graph)."""
        return self.clone()

    def _alias(self) -> "Tensor":
        """What numpy's copying operations (+x, astype to the same dtype, flatten,
        concatenate([x]), ...) return when the value is unchanged: a new Tensor, so a later
        in-place write into it leaves x alone (numpy/array_ops.py `_fresh`)."""
        return self.clone()

    # --- in-place ------------------------------------------------------------------------
    def _rewire(self, res):
        """This tensor takes over `res`'s value and history (an in-place op on the graph)."""
        self._bump_version()
        old = getattr(self, "_hist", None)
        if old is not None:   # nodes recorded before this write keep seeing the old history
            self._hist = None
            past = getattr(self, "_past", None)
            entry = (self._version[1], old)
            self._past = [entry] if not past else past + [entry]
        self._data, self.grad_fn, self._out_nr = res._data, res.grad_fn, res._out_nr
        self.requires_grad = res.requires_grad
        if res.grad_fn is not None:
            _REWIRED.add(weakref.ref(res.grad_fn, _REWIRED.discard))
        return self

    def _history(self):
        """A Tensor standing for this one's value and history before an in-place op."""
        old = _wrap(self._data, self.grad_fn, self._out_nr)
        old.requires_grad = self.requires_grad
        self._hist = old
        return old

    def _is_numpy_scalar(self) -> bool:
        """A 0-d value numpy would hold as a scalar, not as a 0-d array viewing another
        (`x[0]` is a scalar; `x[..., 0]` of a vector a 0-d view)."""
        view = getattr(self, "_view", None)
        if view is None:
            return True
        try:
            return not isinstance(view[1](np.empty(np.shape(view[0]._data))), _ND)
        except Exception:  # noqa: BLE001 - numpy copies here: a new value
            return True

    def _inplace(self, op, other, what):
        if _STRICT[0] and self._data.ndim == 0 and self._is_numpy_scalar():
            # a plain numpy function run by grad(f, mode="tape"): x[0], np.sum(x) are numpy
            # scalars there, which are immutable, so `s += v` rebinds s (other names keep it)
            return op(self, other)
        _grad_check(self, what)
        self._check_writeable()
        o = _data_of(other)
        if _GRAD[0] and (self.requires_grad or (isinstance(other, Tensor) and other.requires_grad)):
            # out-of-place on the graph, then this tensor takes over the result's history
            res = op(self._history(), other)
            if res.dtype != self._data.dtype:
                _check_cast(op, res.dtype, self._data.dtype)
                res = res.astype(self._data.dtype)
            self._rewire(res)
            self._write_back()
            return self
        data = _writable(self)
        new = op(data, o)
        if np.result_type(new) != data.dtype:
            _check_cast(op, np.result_type(new), data.dtype)
        if data.ndim == 0:
            data[...] = new
        else:
            np.copyto(data, new, casting="unsafe")
        self._bump_version()
        self._write_back()
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
        self._bump_version()
        return self

    def fill_(self, value):
        _grad_check(self, "fill_")
        _writable(self)[...] = _data_of(value)
        self._bump_version()
        return self

    def __setitem__(self, key, value):
        """t[key] = v. On the graph (t or v requires grad) this records CopySlices: t's new
        value is v scattered into t's old value, and gradients flow to both, as in PyTorch."""
        _grad_check(self, "__setitem__")
        self._check_writeable()
        key = tree.tree_map(_index_data, key) if isinstance(key, tuple) else _index_data(key)
        if _GRAD[0] and (self.requires_grad or (isinstance(value, Tensor) and value.requires_grad)):
            res = record_as("CopySlices", _np_setitem, self._history(), key, value)
            if not isinstance(res, Tensor):  # pragma: no cover - setitem returns a Tensor here
                res = _wrap(np.asarray(res), None, 0)
            self._rewire(res)
            self._write_back()
            return
        _writable(self)[key] = _data_of(value)
        self._bump_version()
        self._write_back()

    # --- numpy protocols: composites recorded as one PyTorch-named node ------------------
    def __array_function__(self, func, types, args, kwargs):
        if args and args[0] is self:
            if not kwargs and len(args) == 1:
                if func is _NP_SUM:
                    return _sum_all(self)
                if func is _NP_MEAN:
                    return _mean_all(self)
            prim = _AXIS_REDUCTIONS.get(func)
            if prim is not None:
                res = _reduce_axis(prim, self, args, kwargs)
                if res is not None:
                    return res
        if func is _NP_CONCATENATE:
            res = _concat(args, kwargs)
            if res is not None:
                return res
        name = _COMPOSITE_NAMES.get(func)
        if name is not None:
            check_args(FUNCTIONS[func], f"np.{func.__name__}", args, kwargs)
            return record_as(name, FUNCTIONS[func], *args, **kwargs)
        if func in _LIKE:
            # np.zeros_like(t) and friends: a new Tensor (no history), so that t2[0] = x[1]
            # afterwards records CopySlices instead of writing into a numpy array
            res = ArrayOps.__array_function__(self, func, types, args, kwargs)
            return _wrap(res, None, 0) if isinstance(res, _ND) else res
        if func is _NP_COPY:
            check_args(FUNCTIONS[func], "np.copy", args, kwargs)
            a = args[0] if args else kwargs.get("a")
            return a.clone() if isinstance(a, Tensor) else np.copy(a)
        return ArrayOps.__array_function__(self, func, types, args, kwargs)

    # --- fast paths for the hot operators ------------------------------------------------
    # Same semantics as the numpy layer (numpy/ufuncs.py add etc.): when both operands are float
    # tape Tensors of one dtype, or a float Tensor meets a Python scalar (weak, NEP 50),
    # numpy's promotion is the identity, so the primitive is applied directly, its forward
    # computed by the numpy operator (on numpy scalars ~8x cheaper than calling the ufunc).
    def __add__(self, o):
        return _fast2(_P_ADD, self, o, operator.add, _UF_ADD)

    def __radd__(self, o):
        return _fast2r(_P_ADD, o, self, operator.add, _UF_ADD)

    def __sub__(self, o):
        return _fast2(_P_SUB, self, o, operator.sub, _UF_SUB)

    def __rsub__(self, o):
        return _fast2r(_P_SUB, o, self, operator.sub, _UF_SUB)

    def __mul__(self, o):
        return _fast2(_P_MUL, self, o, operator.mul, _UF_MUL)

    def __rmul__(self, o):
        return _fast2r(_P_MUL, o, self, operator.mul, _UF_MUL)

    def __truediv__(self, o):
        return _fast2(_P_DIV, self, o, operator.truediv, _UF_DIV)

    def __rtruediv__(self, o):
        return _fast2r(_P_DIV, o, self, operator.truediv, _UF_DIV)

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
        return power_operator(self, o)

    # bool operators with the Tensor on the right (`True & (x > 0)`), as numpy's reflected ones
    def __rand__(self, o): return UFUNCS[np.logical_and](o, self)
    def __ror__(self, o): return UFUNCS[np.logical_or](o, self)
    def __xor__(self, o): return UFUNCS[np.logical_xor](self, o)
    def __rxor__(self, o): return UFUNCS[np.logical_xor](o, self)

    def __getitem__(self, key):
        d = self._data
        if type(key) is slice and type(d) is _ND and d.ndim and d.dtype in _FLOATS:
            # x[a:b:c] (numpy/indexing.py getitem's fast case): a strided slice of the first axis
            shape = d.shape
            s, e, st = key.indices(shape[0])
            n = len(range(s, e, st))
            if n == shape[0] and st == 1:
                return self
            rest = len(shape) - 1
            params = {"start": (s if n else 0,) + (0,) * rest, "step": (st,) + (1,) * rest,
                      "shape": (n,) + shape[1:]}
            return self._track_view(_record1(_P_SLICE, d[key], self, d, params),
                                    lambda a, k=key: a[k])
        if type(key) is tuple and type(d) is _ND and d.dtype in _FLOATS:
            res = _basic_getitem(self, d, key)
            if res is not None:
                return self._track_view(res, lambda a, k=key: a[k])
            res = _take_getitem(self, d, key)
            if res is not None:   # a gather: a copy in numpy, so not a view
                return res
        return ArrayOps.__getitem__(self, _bool_masks_as_arrays(key))

    def flatten(self, order="C"):
        """numpy's flatten returns a copy; ravel's data may share self's memory, where a later
        in-place write into the result would reach self."""
        out = ArrayOps.flatten(self, order)
        if isinstance(out, Tensor) and np.may_share_memory(out._data, self._data):
            out._data = np.array(out._data)
        return out

    def _track_view(self, result, np_op):
        """`result` = np_op(self) where numpy may answer with a view: remember how, so that a
        write into result reaches self (numpy/array_ops.py; `_write_back`)."""
        if isinstance(result, Tensor):
            if result is self:
                result = self._alias()
            result._view = (self, np_op)
            views = getattr(self, "_views", None)
            if views is None:
                self._views = [weakref.ref(result)]
            else:
                views.append(weakref.ref(result))
        return result

    def _check_writeable(self):
        """numpy refuses a write into a read-only view (np.broadcast_to's, np.diagonal's):
        follow the view chain from its root on an arange stand-in, as _write_back does."""
        chain, t = [], self
        while getattr(t, "_view", None) is not None:
            chain.append(t)
            t = t._view[0]
        if not chain:
            return
        base = layout = np.arange(t._data.size, dtype=np.int64).reshape(np.shape(t._data))
        for c in reversed(chain):
            try:
                lay = c._view[1](layout)
                ok = isinstance(lay, _ND) and np.may_share_memory(lay, base)
            except Exception:  # noqa: BLE001 - numpy copies here: the copy is writeable
                ok = False
            if not ok:
                base = layout = np.arange(c._data.size, dtype=np.int64).reshape(c._data.shape)
            elif not lay.flags.writeable:
                raise ValueError("assignment destination is read-only")
            else:
                layout = lay

    def _write_back(self):
        """After an in-place write into this Tensor: if it is a numpy view of another, write its
        new value into the root array at the positions it views (as numpy's shared memory)."""
        # the Tensor whose memory this one shares in numpy: follow the view chain from its top
        # with an arange stand-in; a step numpy would copy (a gather, a reshape of a transposed
        # view) starts new memory
        chain, t = [], self
        while getattr(t, "_view", None) is not None:
            chain.append(t)
            t = t._view[0]
        if not chain:   # self owns its memory: only the views taken of it need the new value
            if getattr(self, "_views", None):
                base = np.arange(self._data.size, dtype=np.int64).reshape(self._data.shape)
                _refresh_views(self, self, base, base)
            return
        root = t
        base = layout = np.arange(root._data.size, dtype=np.int64).reshape(np.shape(root._data))
        for c in reversed(chain):
            try:
                lay = c._view[1](layout)
                ok = isinstance(lay, _ND) and np.may_share_memory(lay, base)
            except Exception:  # noqa: BLE001 - e.g. an index holding Tensors: numpy copies
                ok = False
            if ok:
                layout = lay
            else:
                root = c
                base = layout = np.arange(c._data.size, dtype=np.int64).reshape(np.shape(c._data))
        if root is self:   # every step copies in numpy: self's memory is its own
            _refresh_views(self, self, base, base)
            return
        pos = layout
        if _GRAD[0] and (root.requires_grad or self.requires_grad):
            from_root = setitem_positions(root._history(), pos, self)
            root._rewire(from_root)
        else:
            np.put(_writable(root), pos.ravel(), np.ravel(_data_of(self)))
            root._bump_version()
        _refresh_views(root, self, base, base)

    def __array_ufunc__(self, uf, method, *inputs, **kwargs):
        if method == "__call__" and not kwargs:
            n = len(inputs)
            if n == 1:
                prim = _UNARY.get(uf)
                d = self._data
                if prim is not None and d.dtype in _FLOATS:
                    # float in, float out: the numpy layer would bind prim on x as it is
                    return _record1(prim, prim.impl(d), self, d, _NO_PARAMS)
            elif n == 2:
                if uf is _MATMUL:
                    return _matmul(*inputs)
                if uf is _LOGADDEXP:
                    res = _logaddexp(*inputs)
                    if res is not None:
                        return res
                prim = _BINARY.get(uf)
                if prim is not None:
                    res = _fast_pair(prim, inputs[0], inputs[1])
                    if res is not None:
                        return res
        return ArrayOps.__array_ufunc__(self, uf, method, *inputs, **kwargs)

    def __matmul__(self, o):
        return _matmul(self, o)

    def __rmatmul__(self, o):
        return _matmul(o, self)

    # --- reductions: numpy's signature plus PyTorch's dim=/keepdim= ------------------------
    # Anything else goes through the numpy layer's declared arguments, so a numpy keyword it
    # does not handle (t.sum(where=m)) raises NotImplementedError naming it. Tensor.var/std use
    # numpy's default ddof=0 (torch.var's default is unbiased): pass correction=1 for torch's.
    def sum(self, *args, dim=None, keepdim=None, **kwargs):
        if not args and not kwargs and dim is None and not keepdim:
            return _sum_all(self)
        return _np_call(_np_sum, "Tensor.sum", (self,) + args, _torch_kw(kwargs, dim, keepdim))

    def mean(self, *args, dim=None, keepdim=None, **kwargs):
        kw = _torch_kw(kwargs, dim, keepdim)
        full = not args and kw.get("axis") is None
        return record_as("MeanBackward0" if full else "MeanBackward1", _np_call, _np_mean,
                         "Tensor.mean", (self,) + args, kw)

    def var(self, *args, dim=None, keepdim=None, unbiased=None, **kwargs):
        kw = _torch_kw(kwargs, dim, keepdim, unbiased)
        return record_as("VarBackward0", _np_call, _np_var, "Tensor.var", (self,) + args, kw)

    def std(self, *args, dim=None, keepdim=None, unbiased=None, **kwargs):
        kw = _torch_kw(kwargs, dim, keepdim, unbiased)
        return record_as("StdBackward0", _np_call, _np_std, "Tensor.std", (self,) + args, kw)

    # --- torch-style methods -------------------------------------------------------------
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
    def view(self, *shape, dtype=None):
        """PyTorch's t.view(*shape) (a reshape); with no shape, numpy's x.view() (the same
        values, sharing memory) or x.view(dtype) (refused, see ArrayOps.view)."""
        if not shape or len(shape) == 1 and not isinstance(shape[0], (int, tuple, list)):
            return ArrayOps.view(self, *shape, dtype=dtype)
        return self.reshape(*shape)
    def float(self): return self.astype(np.float32)
    def double(self): return self.astype(np.float64)

    def clamp(self, min=None, max=None):
        return clamp(self, min, max)

    def unsqueeze(self, dim):
        return np.expand_dims(self, dim)

    def to(self, *args, dtype=None, device=None, copy=False, non_blocking=False,
           memory_format=None):
        """PyTorch's t.to(dtype), t.to("cpu"), t.to(other) (other's dtype), t.to(device, dtype).
        Tensors here live on the CPU: another device is refused, not ignored."""
        for a in args:
            if isinstance(a, Tensor):
                dtype = a.dtype if dtype is None else dtype
            elif isinstance(a, str) and not _is_dtype_name(a) or a is None:
                device = a if device is None else device
            else:
                dtype = a if dtype is None else dtype
        if device is not None and str(device).split(":")[0] != "cpu":
            raise RuntimeError(f"Tensor.to({device!r}): tape Tensors live on the CPU (there is "
                               f"no other device); use .to('cpu') or leave the device out")
        if memory_format is not None:
            raise NotImplementedError("Tensor.to(memory_format=) is not supported: a Tensor's "
                                      "memory is a numpy array in C order")
        if dtype is None or np.dtype(dtype) == self.dtype:
            return self.clone() if copy else self
        return self.astype(dtype)   # non_blocking: nothing to wait for on the CPU


def _is_dtype_name(s):
    try:
        np.dtype(s)
    except TypeError:
        return False
    return True


def _bool_masks_as_arrays(key):
    """A boolean Tensor in a key is its array, as in PyTorch's t[t > 0]: it carries no gradient,
    and its values are known here (only the traced modes must refuse a mask's unknown count)."""
    if isinstance(key, Tensor):
        return key._data if key._data.dtype == np.bool_ else key
    if type(key) is tuple and any(isinstance(k, Tensor) for k in key):
        return tuple(_bool_masks_as_arrays(k) if isinstance(k, Tensor) else k for k in key)
    return key


def _index_data(k):
    """An index Tensor used in t[k] = v is read as its array (it cannot carry a gradient)."""
    return k._data if isinstance(k, Tensor) else k


def _torch_kw(kwargs, dim, keepdim, unbiased=None):
    """numpy keywords from a mix of numpy's and PyTorch's (dim=, keepdim=, unbiased=)."""
    kw = dict(kwargs)
    if dim is not None:
        if "axis" in kw:
            raise TypeError("give axis= (numpy) or dim= (PyTorch), not both")
        kw["axis"] = tuple(dim) if isinstance(dim, list) else dim
    if keepdim is not None:
        if "keepdims" in kw:
            raise TypeError("give keepdims= (numpy) or keepdim= (PyTorch), not both")
        kw["keepdims"] = keepdim
    if unbiased is not None:
        if "ddof" in kw or "correction" in kw:
            raise TypeError("give ddof=/correction= or unbiased=, not both")
        kw["ddof"] = 1 if unbiased else 0
    return kw


from ..primitives import elementwise as _E  # noqa: E402
from ..primitives import indexing as _I, linalg as _L, reductions as _R  # noqa: E402
from ..primitives import broadcast as _B  # noqa: E402
from ..primitives import shape as _S  # noqa: E402

_P_ADD, _P_SUB, _P_MUL, _P_DIV = _E.add, _E.sub, _E.mul, _E.div
_P_NEG, _P_IPOW = _E.neg, _E.integer_pow_p
_P_SLICE = _I.slice_p
_P_RESHAPE = _B.reshape_p
_P_SUM = _R.reduce_sum_p
_P_TAKE = _I.take_p
_P_CONCAT = _S.concatenate_p
# np.sum / np.max / np.min over given axes (_reduce_axis): the primitive each records
_AXIS_REDUCTIONS = {np.sum: _R.reduce_sum_p, np.max: _R.reduce_max_p, np.min: _R.reduce_min_p}
_P_DOT = _L.dot_general_p
_SUM_PARAMS = {n: {"axes": tuple(range(n))} for n in range(1, 9)}
_ADD_REDUCE = np.add.reduce
_NO_PARAMS: dict = {}
# float64 first: `dt in _FLOATS` compares by identity before ==, and a dtype == costs ~50 ns
_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))
# numpy's ufuncs captured at import (while a grad runs, numpy/lists.py routes the attributes)
_MATMUL, _LOGADDEXP = np.matmul, np.logaddexp
_LIKE = frozenset({np.zeros_like, np.ones_like, np.full_like, np.empty_like})


_IPOW_PARAMS = {y: {"y": y} for y in range(-64, 65)}  # shared, never mutated (as _NO_PARAMS)


def _record1(prim, out, a, ad, params):
    """The result Tensor of a unary fast path (what TapeContext.process does, inlined)."""
    t = _new(Tensor)
    t._data = out
    t.grad = t._accum = t._version = None
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
    t.grad = t._accum = t._version = None
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
    return FUNCTIONS[_NP_SUM](x)


def _reduce_axes(axis, nd):
    """`axis` (an int or a tuple of ints) as sorted non-negative axes; None when numpy's
    own argument handling must see it (bad or repeated axes, 0-d input, axis=())."""
    if type(axis) is int:
        axis = (axis,)
    elif type(axis) is not tuple or not axis:
        return None
    out = []
    for a in axis:
        if type(a) is not int:
            return None
        if a < 0:
            a += nd
        if not 0 <= a < nd:
            return None
        out.append(a)
    out.sort()
    if len(set(out)) != len(out):
        return None
    return tuple(out)


def _reduce_axis(prim, x, args, kwargs):
    """np.sum/max/min(x, axis[, keepdims]) of a float Tensor: the nodes numpy/reductions.py
    records (the reduction, then a reshape for keepdims), without its argument handling.
    None: not this simple case (the numpy layer handles it)."""
    d = x._data
    nd = d.ndim
    if not nd or d.dtype not in _FLOATS or len(args) > 2:
        return None
    axis = args[1] if len(args) == 2 else None
    keepdims = False
    for k, v in kwargs.items():
        if k == "axis" and len(args) == 1:
            axis = v
        elif k == "keepdims" and (v is True or v is False):
            keepdims = v
        else:
            return None
    axes = _SUM_PARAMS[nd]["axes"] if axis is None and nd <= 8 else _reduce_axes(axis, nd)
    if axes is None:
        return None
    shape = d.shape
    if prim is not _P_SUM and any(shape[a] == 0 for a in axes):
        return None   # the numpy layer raises numpy's error
    params = {"axes": axes}
    out = prim.impl(d, **params)
    t = _record1(prim, out, x, d, params)
    if keepdims:
        kept = tuple(1 if i in axes else n for i, n in enumerate(shape))
        t = _record1(_P_RESHAPE, np.reshape(out, kept), t, out, {"shape": kept})
    return t


def _mean_all(x):
    """np.mean(x) of a float Tensor: what numpy/reductions.py mean records (reduce_sum, then
    div by the count), shown as one MeanBackward0 node, without the numpy layer's argument
    handling and pytree walk."""
    d = x._data
    n = d.size
    if not (d.ndim and d.ndim <= 8 and d.dtype in _FLOATS and 0 < n < 2 ** 24):
        return record_as("MeanBackward0", FUNCTIONS[_NP_MEAN], x)
    s = _sum_all(x)
    m = _fast2(_P_DIV, s, n, operator.truediv, _UF_DIV)
    if m.grad_fn is None:
        return m
    return _wrap(m._data, CompositeNode("MeanBackward0", (x,), m), 0)


# ufuncs whose numpy-layer implementation (numpy/ufuncs.py) is exactly `bind(prim, ...)` on float
# operands of one dtype: their fast paths record the same primitive without the numpy layer
_UNARY = {np.exp: _E.exp, np.log: _E.log, np.log1p: _E.log1p, np.expm1: _E.expm1,
          np.sqrt: _E.sqrt, np.sin: _E.sin, np.cos: _E.cos, np.tan: _E.tan, np.tanh: _E.tanh,
          np.sinh: _E.sinh, np.cosh: _E.cosh, np.arcsin: _E.arcsin, np.arccos: _E.arccos,
          np.arctan: _E.arctan, np.negative: _E.neg, np.absolute: _E.abs_}
_BINARY = {np.add: _E.add, np.subtract: _E.sub, np.multiply: _E.mul, np.true_divide: _E.div,
           np.maximum: _E.maximum, np.minimum: _E.minimum}
_CONST_TYPES = (_ND, np.float64, np.float32)


def _fast_pair(prim, a, b):
    """A binary ufunc on a Tensor and a Tensor, an array or a numpy float of the same float
    dtype (no promotion, so the numpy layer would bind prim directly); None otherwise."""
    ta, tb = type(a), type(b)
    a_t, b_t = ta is Tensor or ta is Parameter, tb is Tensor or tb is Parameter
    if not (a_t or ta in _CONST_TYPES) or not (b_t or tb in _CONST_TYPES):
        return None
    ad = a._data if a_t else a
    bd = b._data if b_t else b
    dt = ad.dtype
    if dt not in _FLOATS or bd.dtype != dt:
        return None
    out = prim.impl(ad, bd) if ad.ndim < 3 else getattr(prim, "impl_nd", prim.impl)(ad, bd)
    rg = a_t and a.requires_grad or b_t and b.requires_grad
    if rg and not (a_t and b_t):   # the node keeps the numpy operand (operands.keep)
        ad, bd = (ad if a_t or ta is not _ND else _keep(ad),
                  bd if b_t or tb is not _ND else _keep(bd))
    return _record2(prim, out, a, b, ad, bd, rg)


def _basic_getitem(x, d, key):
    """x[key] for a tuple of slices, ints and None on a float Tensor: what numpy/indexing.py
    getitem records for basic indexing (a strided slice, then a reshape for the ints and
    Nones), without the numpy layer's key expansion. None: another key (arrays, Ellipsis,
    out-of-range ints), for the numpy layer to handle or refuse."""
    shape = d.shape
    start, step, sizes, out_shape = [], [], [], []
    axis = 0
    nd = len(shape)
    for k in key:
        tk = type(k)
        if k is None:
            out_shape.append(1)
            continue
        if axis == nd:
            return None
        dim = shape[axis]
        if tk is slice:
            s, e, st = k.indices(dim)
            n = len(range(s, e, st))
            start.append(s if n else 0)
            step.append(st)
            sizes.append(n)
            out_shape.append(n)
        elif tk is int and -dim <= k < dim:
            start.append(k % dim)
            step.append(1)
            sizes.append(1)
        else:
            return None
        axis += 1
    for dim in shape[axis:]:
        start.append(0)
        step.append(1)
        sizes.append(dim)
        out_shape.append(dim)
    t = x
    sizes = tuple(sizes)
    if sizes != shape or any(st != 1 for st in step) or any(start):
        params = {"start": tuple(start), "step": tuple(step), "shape": sizes}
        t = _record1(_P_SLICE, d[_I._slices(params["start"], params["step"], sizes)], x, d,
                     params)
    out_shape = tuple(out_shape)
    if out_shape != sizes:
        td = t._data
        t = _record1(_P_RESHAPE, td.reshape(out_shape), t, td, {"shape": out_shape})
    return t


def _concat(args, kwargs):
    """np.concatenate([...], axis) of float Tensors and arrays of one dtype and rank whose
    shapes agree off the axis: the one concatenate node the numpy layer records, without its
    dtype promotion. None: anything else (the numpy layer handles or refuses it)."""
    if not args or len(args) > 2 or type(args[0]) not in (list, tuple) or not args[0]:
        return None
    axis = args[1] if len(args) == 2 else 0
    for k, v in kwargs.items():
        if k != "axis" or len(args) == 2:
            return None
        axis = v
    vals = args[0]
    dt = shape = None
    for v in vals:
        tv = type(v)
        d = v._data if tv is Tensor or tv is Parameter else v if tv is _ND else None
        if type(d) is not _ND:
            return None
        if dt is None:
            dt, shape = d.dtype, d.shape
            if dt not in _FLOATS or type(axis) is not int or not -len(shape) <= axis < len(shape):
                return None
            axis %= len(shape)
        elif d.dtype != dt or len(d.shape) != len(shape) or \
                d.shape[:axis] != shape[:axis] or d.shape[axis + 1:] != shape[axis + 1:]:
            return None
    if len(vals) == 1:
        return None   # the numpy layer's copy (CloneBackward0)
    return TAPE.process(_P_CONCAT, tuple(vals), {"axis": axis})


def _take_getitem(x, d, key):
    """x[:, ..., idx] with one integer index array and full slices elsewhere (ADBench's
    `padded[:, idx]`): numpy's result is np.take(x, idx, axis), so one take node is recorded
    (the numpy layer's general advanced indexing records transpose, take and transpose
    back). None: any other key, or an index numpy would refuse (the numpy layer raises)."""
    if len(key) > d.ndim:
        return None
    axis = None
    for i, k in enumerate(key):
        if type(k) is _ND:
            if axis is not None:
                return None
            axis = i
        elif type(k) is not slice or k != _FULL_SLICE:
            return None
    if axis is None:
        return None
    idx = key[axis]
    if idx.dtype.kind not in "iu":
        return None
    dim = d.shape[axis]
    if idx.size:
        lo, hi = idx.min(), idx.max()
        if hi >= dim or lo < -dim:
            return None
        if lo < 0:
            idx = np.where(idx < 0, idx + dim, idx)
    # the node keeps its own int64 copy (a later write into the caller's index array must not
    # change the gradient), as the numpy layer's _index_array does
    return TAPE.process(_P_TAKE, (x, idx.astype(np.int64)), {"axis": axis})


_FULL_SLICE = slice(None)


def _logaddexp(a, b):
    """np.logaddexp on float Tensors (or a Tensor and a Python or numpy float / array of its
    dtype): the graph numpy/ufuncs.py logaddexp records, m + log(exp(a - m) + exp(b - m)),
    with its gradient-free shift m = max(a, b) (infinities replaced by 0) computed in numpy
    directly instead of as eight recorded ops (maximum, isfinite, select, stop_gradient).
    None: not such operands (the numpy layer handles them)."""
    vals = []
    dt = None
    for v in (a, b):
        tv = type(v)
        if tv is Tensor or tv is Parameter:
            d = v._data
            if dt is not None and d.dtype != dt:
                return None
            dt = d.dtype
            vals.append(d)
        elif tv is float or tv in _CONST_TYPES:
            vals.append(v)
        else:
            return None
    if dt not in _FLOATS or any(type(v) is not float and v.dtype != dt for v in vals):
        return None
    m = _UF_MAXIMUM(vals[0], vals[1])
    fin = _UF_ISFINITE(m)
    finite = fin.all()
    if not finite:
        m = _NP_WHERE(fin, m, dt.type(0))
    exp, log = _EXP_FN, _LOG_FN
    da, db = a - m, b - m
    if finite and type(m) is _ND and m.size >= 64 and dt == _F64 and not _SIMD_EXP_F64:
        # m is a or b elementwise (finite), so at each element one of a - m, b - m is exactly
        # 0 and the other is their sum: exp of the sum gives both exps' values bit for bit
        # with one exp pass instead of two (float64 exp is scalar libm without AVX-512: ~7 ns
        # an element, where the two np.where cost ~2 ns; with AVX-512, and for float32, exp
        # is vectorized, ~0.5 ns, and two exps are the cheaper way). The nodes recorded are
        # the same two exp nodes.
        xa, xb = _data_of(da), _data_of(db)
        e = _UF_EXP(xa + xb)
        one = dt.type(1)
        return m + log(_exp_valued(da, _NP_WHERE(xa == 0, one, e)) +
                       _exp_valued(db, _NP_WHERE(xb == 0, one, e)))
    return m + log(exp(da) + exp(db))


def _simd_exp_f64() -> bool:
    """Whether numpy's float64 exp runs vectorized here: its SIMD float64 exp and log are
    AVX-512F code (compiled in as the X86_V4 / AVX512_SKX target), scalar libm otherwise."""
    try:
        from numpy._core import _multiarray_umath as um
    except ImportError:                       # numpy 1.x
        from numpy.core import _multiarray_umath as um
    targets = set(getattr(um, "__cpu_dispatch__", ())) | set(getattr(um, "__cpu_baseline__", ()))
    avx512 = {"X86_V4", "AVX512_SKX", "AVX512F"}
    return bool(getattr(um, "__cpu_features__", {}).get("AVX512F")) and bool(targets & avx512)


_F64 = np.dtype(np.float64)
_EXP_FN, _LOG_FN = UFUNCS[np.exp], UFUNCS[np.log]   # the numpy layer's exp and log
_SIMD_EXP_F64 = _simd_exp_f64()


def _exp_valued(x, value):
    """exp(x) with its value already computed: the exp node the ufunc would record."""
    if type(x) is Tensor:
        return _record1(_E.exp, value, x, x._data, _NO_PARAMS)
    return value


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
    elif (tb is float or tb is int or tb is _Size) and ad.dtype in _FLOATS:
        bd = ad.dtype.type(b)
        return _record2(prim, op(ad, bd), a, bd, ad, bd, a.requires_grad)
    elif tb in _CONST_TYPES:
        res = _fast_pair(prim, a, b)
        if res is not None:
            return res
    return UFUNCS[ufunc](a, b)


def _fast2r(prim, a, b, op, ufunc):
    ta = type(a)
    bd = b._data
    if (ta is float or ta is int or ta is _Size) and bd.dtype in _FLOATS:
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


_COMPOSITE_NAMES = {np.mean: "MeanBackward0", np.var: "VarBackward0", np.std: "StdBackward0",
                    np.linalg.norm: "LinalgVectorNormBackward0", np.clip: "ClampBackward1"}


_MATMUL_NAMES = {(2, 2): "MmBackward0", (2, 1): "MvBackward0", (1, 1): "DotBackward0",
                 (1, 2): "MatmulBackward0"}
# dot_general params of a @ b for 1-D/2-D operands (numpy/products.py matmul's), shared
_MATMUL_PARAMS = {(na, nb): {"contract": ((na - 1,), (0,)), "batch": ((), ())}
                  for na in (1, 2) for nb in (1, 2)}


def _matmul(a, b):
    ta, tb = type(a), type(b)
    a_t, b_t = ta is Tensor or ta is Parameter, tb is Tensor or tb is Parameter
    if (a_t or ta is _ND) and (b_t or tb is _ND):
        # float Tensors (or a Tensor and an array) of one dtype, 1-D/2-D: the dot_general the
        # numpy layer would record, its value from the BLAS call np.matmul makes (mm2)
        ad = a._data if a_t else a
        bd = b._data if b_t else b
        key = (ad.ndim, bd.ndim)
        if key in _MATMUL_PARAMS and ad.dtype in _FLOATS and ad.dtype == bd.dtype and \
                type(ad) is _ND and type(bd) is _ND and \
                ad.shape[-1] == bd.shape[0]:
            # (1-D @ 1-D: a numpy scalar, as 0-d values are kept)
            out = _L.mm2(ad, bd) if key == (2, 2) else _MATMUL(ad, bd)
            rg = a_t and a.requires_grad or b_t and b.requires_grad
            if rg and not (a_t and b_t):   # the node keeps the numpy operand (operands.keep)
                ad, bd = ad if a_t else _keep(ad), bd if b_t else _keep(bd)
            t = _record2(_P_DOT, out, a, b, ad, bd, rg)
            if t.grad_fn is not None:
                t.grad_fn.params = _MATMUL_PARAMS[key]
                t.grad_fn._name = _MATMUL_NAMES[key]
            return t
    na = np.ndim(_data_of(a))
    nb = np.ndim(_data_of(b))
    name = "MmBackward0" if na == 2 and nb == 2 else "MvBackward0" if na == 2 and nb == 1 else \
        "DotBackward0" if na == 1 and nb == 1 else "BmmBackward0" if na == 3 and nb == 3 else \
        "MatmulBackward0"
    return record_as(name, _np_matmul, a, b)


# ---------------------------------------------------------------------------------------------
# torch-style functions that are numpy composites (torch.sigmoid, torch.mean, ...)

def _composite(name):
    """Decorator: a numpy-level function recorded as one `name` node on tape Tensors."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return record_as(name, fn, *args, **kwargs)
        return wrapper
    return deco


@_composite("SigmoidBackward0")
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@_composite("ReluBackward0")
def relu(x):
    # np.maximum(x, 0)'s values with torch's threshold_backward gradient: g where x > 0, so 0
    # at x == 0 (np.maximum's tie rule would give half) and at NaN
    return np.where(x > 0, x, _stop_gradient(np.maximum(x, 0.0)))


def mean(x, dim=None, keepdim=False, axis=None):
    return record_as("MeanBackward0" if dim is None and axis is None else "MeanBackward1",
                     FUNCTIONS[_NP_MEAN], x, dim if axis is None else axis, None,
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
    return record_as("ClampBackward1", _torch_clamp, x, min, max)


def _torch_clamp(x, lo, hi):
    """np.clip's values with torch.clamp's gradient: x gets g where lo <= x <= hi, bounds
    included (np.clip follows JAX: maximum/minimum, half the gradient at a bound); outside,
    the bound that is the result gets it (through np.clip)."""
    clipped = FUNCTIONS[_NP_CLIP](x, lo, hi)
    inside = None
    for bound, keeps in ((lo, np.greater_equal), (hi, np.less_equal)):
        if bound is not None:
            ok = keeps(x, bound)
            inside = ok if inside is None else ok & inside
    return clipped if inside is None else np.where(inside, x, clipped)


def maximum(a, b): return np.maximum(a, b)
def minimum(a, b): return np.minimum(a, b)
def where(c, a, b): return np.where(c, a, b)
