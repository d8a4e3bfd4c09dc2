"""Graph nodes (torch.autograd.graph): what a recorded operation keeps for backward.

A `Node` is a Tensor's `grad_fn`. `PrimNode` is one primitive application (its backward is the
primitive's shared VJP rule), `CompositeNode` groups the primitives a numpy-level composite
recorded under one PyTorch name (MeanBackward0, CopySlices), `FunctionNode` is a user
`Function`, `AccumulateGrad` stands for a leaf in `next_functions`.

`GraphTensor` is the autograd part of a Tensor (PyTorch's AutogradMeta): the slots nodes and the
engine read. `tensor.Tensor` subclasses it; modules below tensor.py see Tensors only through it.
"""
from __future__ import annotations

import itertools

from .. import tree
from .grad_mode import _GRAD

_NODE_COUNT = [0]       # nodes recorded so far (record_as uses it to see what a call recorded)
_next_seq = itertools.count(1).__next__  # a node's `seq`: creation order, a topological order
                                         # (atomic under the GIL, so unique across threads)
# Nodes recorded by in-place ops (`y += 1` on a graph tensor): the tensor, perhaps already an
# input of older nodes, now points at a newer grad_fn, so creation order may no longer be a
# topological order. While any such node is alive, backward sorts the graph by a DFS instead.
_REWIRED: set = set()  # weak references to those nodes (a dead one removes itself)
# The `seq` drawn by the latest in-place write to any Tensor: a node created after it cannot
# have seen a saved input modified, so backward checks version counters only on older nodes.
_LAST_WRITE = [0]
# Every GraphTensor subclass (Tensor, Parameter, user subclasses): an exact-type set lookup is
# cheaper than isinstance through the class hierarchy, once per input per node in backward.
TENSOR_TYPES: set = set()

_RETAIN_MSG = ("Trying to backward through the graph a second time (or directly access saved "
               "tensors after they have already been freed). Saved intermediate values of the "
               "graph are freed when you call .backward() or autograd.grad(). Specify "
               "retain_graph=True if you need to backward through the graph a second time or if "
               "you need to access saved tensors after calling backward.")


class GraphTensor:
    """The autograd slots of a Tensor. `_version` is None (never written) or a list
    [count, seq of the last write] shared by every Tensor viewing the same storage (detach,
    .data), as PyTorch's version counter.
    `_past` (unset or a list of (seq of a write, Tensor holding the history before it)): an
    in-place op on the graph gives this object a new history, but nodes recorded before the
    write must still send their cotangent to the old one (the engine looks it up,
    `inputs_at`). `_hist`: the history Tensor of the write in progress. `_view` (unset or
    (parent, np_op)): this Tensor is np_op(parent) where numpy would return a view, so a write
    into it also lands in the root array (tensor.py `_write_back`). `_views` (unset or a list of
    weak references): the Tensors taken as views of this one, refreshed after a write."""
    __slots__ = ("_data", "requires_grad", "grad", "grad_fn", "_out_nr", "_accum", "_version",
                 "_past", "_hist", "_view", "_views", "__weakref__")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        TENSOR_TYPES.add(cls)  # the engine's hot loop tests `type(x) in TENSOR_TYPES`

    def _bump_version(self):
        """Record an in-place write to this Tensor's storage (or history)."""
        seq = _next_seq()
        v = self._version
        if v is None:
            self._version = [1, seq]
        else:
            v[0] += 1
            v[1] = seq
        _LAST_WRITE[0] = seq

    def _shared_version(self):
        v = self._version
        if v is None:
            v = self._version = [0, 0]
        return v

    @property
    def _version_count(self) -> int:
        return 0 if self._version is None else self._version[0]

    def _accumulate_node(self):
        if self._accum is None:
            self._accum = AccumulateGrad(self)
        return self._accum


def inputs_at(seq, ins):
    """A node's inputs as they were when it was recorded (number `seq`): a Tensor rewritten in
    place since then stands for its history before the first later write."""
    out = list(ins)
    for i, x in enumerate(out):
        past = getattr(x, "_past", None) if isinstance(x, GraphTensor) else None
        if past:
            for wseq, old in past:
                if seq < wseq:
                    out[i] = old
                    break
    return out


class Node:
    """A recorded operation (a `grad_fn`). Subclasses say how cotangents flow back.
    `seq` numbers nodes in creation order (0: never walked by backward, e.g. AccumulateGrad).
    `hooks`: None or a list of (output index, callable(grad) or None, Tensor): Tensor hooks and,
    with None, retain_grad on that Tensor."""
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
            if isinstance(x, GraphTensor) and x.requires_grad:
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


class RemovableHandle:
    """What register_hook returns: `.remove()` unregisters the hook."""

    def __init__(self, hooks, entry):
        self._hooks, self._entry = hooks, entry

    def remove(self):
        if self._entry in self._hooks:
            self._hooks.remove(self._entry)


def _add_hook(node, nr, fn, tensor):
    hooks = node.hooks
    if hooks is None:
        hooks = node.hooks = []
    entry = (nr, fn, tensor)
    hooks.append(entry)
    return RemovableHandle(hooks, entry)


class PrimNode(Node):
    """One primitive application; backward is the primitive's shared VJP rule.
    (Hot paths build it with `object.__new__` and set the slots inline; see tensor._record2.)"""
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

    @property
    def metadata(self):
        return {"primitive": self.prim.name, "params": self.params}


class AccumulateGrad(Node):
    """The node that stands for a leaf in `next_functions` (as in PyTorch); a leaf's hooks
    (Tensor.register_hook) live here."""
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
    Backward (engine) runs the inner tape from the composite's result back to its inputs."""
    __slots__ = ("inner_out", "_freed")

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


# ---------------------------------------------------------------------------------------------
# composites as one node

def _tensor_args(args, kwargs):
    leaves = tree.flatten((args, kwargs), is_leaf=lambda v: isinstance(v, GraphTensor))[0]
    out, seen = [], set()
    for v in leaves:
        if isinstance(v, GraphTensor) and v.requires_grad and id(v) not in seen:
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
    if not isinstance(out, GraphTensor) or out.grad_fn is None:
        return out
    n = _NODE_COUNT[0] - start
    if n == 0:
        return out
    if n == 1:
        out.grad_fn._name = name
        return out
    inputs = tuple(_tensor_args(args, kwargs))
    node = CompositeNode(name, inputs, out)
    return out._make(out._data, node, 0)
