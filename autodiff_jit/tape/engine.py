"""The backward engine (torch.autograd's engine + `torch.autograd.grad`/`backward`).

`_run` propagates a cotangent from a root Tensor back through the recorded nodes, calling the
*shared* primitive VJP rules (`Primitive.vjp`): on plain numpy values normally, on Tensors with
`create_graph=True` (so the backward pass is itself recorded and can be differentiated again).
There are no derivative formulas here.
"""
from __future__ import annotations

import heapq
import sys

import numpy as np

from ..backend import buffers
from ..primitives.elementwise import fit_cotangent as _fit
from .grad_mode import _GRAD
from .graph import (_LAST_WRITE, _REWIRED, _RETAIN_MSG, TENSOR_TYPES, AccumulateGrad,
                    CompositeNode, FunctionNode, GraphTensor, PrimNode, inputs_at)

# numpy names bound at import: numpy has a module __getattr__, so Python 3.11 never
# specializes an `np.name` lookup (~40 ns each, several per tape node)
_ND = np.ndarray
_GENERIC = np.generic
_NP_ADD = np.add

# Primitives whose VJP reads no input value (only shapes, dtypes, params, index arrays): an
# in-place write to their inputs after recording leaves their backward correct, so the version
# check skips them, as PyTorch does for AddBackward0 (which saves nothing).
_VALUE_FREE = frozenset({"add", "sub", "neg", "reduce_sum", "reshape", "transpose",
                         "broadcast_to", "slice", "concatenate", "convert_element_type",
                         "cumsum", "scatter_slice", "take", "take_add", "select",
                         "stop_gradient", "sort", "partition", "unpermute"})
# Binary primitives whose partial for one input reads only the other input (d(a*b)/da = b,
# d(a/b)/da = 1/b): an input's own value is needed only when the other input requires grad.
_OWN_VALUE_FREE = frozenset({"mul", "div"})


def _modified_error(x, node):
    v = x._version[0]
    return RuntimeError(
        f"one of the variables needed for gradient computation has been modified by an "
        f"inplace operation: [{x._data.dtype} {list(np.shape(x._data))}], an input of "
        f"{node._name}, is at version {v}, newer than when it was saved. Hint: compute the new "
        f"value out of place (y = y + 1 instead of y += 1), or .clone() the tensor before "
        f"modifying it.")


def _check_versions(node):
    """Raise PyTorch's error when an input this node's backward reads was written in place
    after the node was recorded (its version counter moved past the node's seq)."""
    if type(node) is PrimNode and node.prim.name in _VALUE_FREE:
        return
    seq = node.seq
    ins = node.inputs
    for i, x in enumerate(ins):
        if isinstance(x, GraphTensor):
            v = x._version
            if v is not None and v[1] > seq:
                if type(node) is PrimNode and node.prim.name in _OWN_VALUE_FREE:
                    other = ins[1 - i]
                    if not (isinstance(other, GraphTensor) and other.requires_grad):
                        continue
                raise _modified_error(x, node)


def _maker(node):
    """A Tensor constructor (Tensor._make) reached through the node's inputs (this module sits
    below tensor.py, so it does not import the class)."""
    for x in node.inputs:
        if isinstance(x, GraphTensor):
            return x._make
    raise RuntimeError(f"{node._name}: no tensor input")  # pragma: no cover - nodes have one


def _apply(node, cts, create_graph):
    """Input cotangents of a non-fast-path node (any node with create_graph)."""
    tn = type(node)
    if tn is PrimNode:
        prim = node.prim
        if create_graph:
            ins = node.inputs
            mk = _maker(node)
            if prim.multiple_results:
                out = [mk(o, node, i) for i, o in enumerate(node.out)]
            else:
                out = mk(node.out, node, 0)
        else:
            ins, out = node.saved, node.out
        if prim.multiple_results:
            return prim.vjp(cts, out, *ins, **node.params)
        return prim.vjp(cts[0], out, *ins, **node.params)
    if tn is FunctionNode:
        return _apply_function(node, cts[0], create_graph)
    raise TypeError(f"cannot run backward through a {tn.__name__}")  # pragma: no cover


def _apply_function(node, g, create_graph):
    if not isinstance(g, GraphTensor):
        g = _maker(node)(np.asarray(g), None, 0)
    res = node.fn_cls.backward(node.ctx, g)
    if not isinstance(res, tuple):
        res = (res,)
    n_in = len(node.inputs)
    if len(res) < n_in:
        raise RuntimeError(f"function {node.fn_cls.__name__}.backward returned {len(res)} "
                           f"gradients, but forward had {n_in} inputs")
    out = []
    for r in res[:n_in]:
        if r is None:
            out.append(None)
        elif isinstance(r, GraphTensor):
            out.append(r if create_graph else r._data)
        else:
            out.append(np.asarray(r))
    return out


def _toposort(root_node):
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
        # the edges the walk takes: as recorded (inputs_at), not the inputs' current histories
        for x in (node.inner_out,) if type(node) is CompositeNode else \
                inputs_at(node.seq, node.inputs):
            if isinstance(x, GraphTensor):
                fn = x.grad_fn
                if fn is not None and id(fn) not in seen:
                    stack.append((fn, False))
    order.reverse()
    return order


def _add(a, b):
    return b if a is None else a + b


# In-place gradient accumulation. A pending cotangent that a rule has just computed (a fresh
# array) is referenced by the engine's pending entry alone; the next contribution is added
# into it instead of into a new array. Anything else holding the array (a hook's Tensor, a
# node's saved values, a user's Tensor, a view of it, the rule's other output) adds a
# reference, and then the sum goes to a new array as before. The count the engine's own
# references give is measured once here, in the code shape _accumulate uses, so it follows
# the interpreter's reference counting rather than assuming it.
_refcount = sys.getrefcount


def _accumulate(entry, i, ct):
    """entry[i] += ct, in place when entry[i] is an ndarray only `entry` holds, else into ct
    when ct is a rule's fresh result that only the engine's loop holds (a pending view, such
    as an einsum's transposed cotangent, then costs no new array)."""
    cur = entry[i]
    if type(cur) is _ND and type(ct) is _ND and cur.shape == ct.shape and \
            cur.dtype == ct.dtype:
        if _refcount(cur) <= _OWNED_RC and cur.base is None and cur.flags.writeable:
            _NP_ADD(cur, ct, out=cur)
            return
        if _refcount(ct) <= _OWNED_CT_RC and ct.base is None and ct.flags.writeable:
            entry[i] = _NP_ADD(ct, cur, out=ct)   # (a + b is b + a, to the bit)
            return
    entry[i] = cur + ct


def _owned_refcount():
    seen = []

    def probe(entry, i, ct):
        cur = entry[i]
        seen.append(_refcount(cur))
    probe([np.empty(2)], 0, None)
    return seen[0]


_OWNED_RC = _owned_refcount()


def _add_into(entry, i, add, g, node):
    """entry[i] += the VJP of node (its primitive's vjp_add) in place, when entry[i] is an
    ndarray only `entry` holds (as in _accumulate) and g a numpy value: 0 if not, else 1, or
    2 where the add asks for its vjp_add_done before entry[i] is used."""
    cur = entry[i]
    if type(cur) is _ND and _refcount(cur) <= _OWNED_ADD_RC and cur.base is None and \
            cur.flags.writeable and (type(g) is _ND or isinstance(g, _GENERIC)):
        return 2 if add(cur, g, node.out, *node.saved, **node.params) else 1
    return 0


def _finish_adds(entry, adds):
    """prim.vjp_add_done on each cotangent of `entry` that vjp_adds went into, with their
    params."""
    by_nr = {}
    for nr, prim, params in adds:
        by_nr.setdefault((nr, prim), []).append(params)
    for (nr, prim), params_list in by_nr.items():
        done = prim.vjp_add_done
        cur = entry[nr]
        if done is None or type(cur) is not _ND:
            continue
        # (the adds went into an array the engine owned, and every later sum into it is the
        # engine's own: still so here, but a view or a read-only array gets a copy)
        if cur.base is not None or not cur.flags.writeable:
            cur = entry[nr] = cur.copy()
        done(cur, params_list)


def _owned_add_refcount():
    seen = []

    def probe(entry, i, add, g, node):
        cur = entry[i]
        seen.append(_refcount(cur))
    probe([np.empty(2)], 0, None, None, None)
    return seen[0]


_OWNED_ADD_RC = _owned_add_refcount()


def _owned_ct_refcount():
    """The references a new cotangent has inside _accumulate when only the engine's loop
    holds it: the rule's result sequence, the loop's zip and variable, the argument."""
    seen = []

    def probe(entry, i, ct):
        seen.append(_refcount(ct))

    def loop(ins, in_cts):
        for x, ct in zip(ins, in_cts):
            probe([None], 0, ct)
    loop((None,), (np.empty(2),))
    return seen[0]


_OWNED_CT_RC = _owned_ct_refcount()


def _doubled(cts):
    """ct + ct for a rule's two identical cotangents (cts = (ct, ct)) of one input: in place
    when cts holds ct's only references (a rule's fresh result, such as g x for x * x, not the
    pass-through g of x + x), which saves a new array the size of x. Same values as adding the
    two contributions one after another."""
    ct = cts[0]
    if type(ct) is _ND and _refcount(ct) <= _DOUBLE_RC and ct.base is None and \
            ct.flags.writeable:
        return _NP_ADD(ct, ct, out=ct)
    return ct + ct


def _double_refcount():
    seen = []

    def probe(cts):
        ct = cts[0]
        seen.append(_refcount(ct))

    def rule():
        p = np.empty(2)
        return p, p
    probe(rule())
    return seen[0]


_DOUBLE_RC = _double_refcount()


def _run(root, root_grad, *, targets=None, retain_graph=False, create_graph=False):
    """Propagate `root_grad` from `root` back through the tape.

    targets=None: accumulate into the leaves' `.grad` (Tensor.backward). Otherwise return one
    gradient per target tensor (None where none flows) and leave `.grad` alone."""
    if root.grad_fn is None:
        root_grad = _leaf_hooks(root, root_grad, create_graph)
        if targets is None:
            _accumulate_leaf(root, root_grad, create_graph)
            return None
        return [root_grad if t is root else None for t in targets]
    prev_mode = _GRAD[0]
    _GRAD[0] = bool(create_graph)
    allocator = buffers.push()   # the backward pass's arrays from the buffer cache
    try:
        return _propagate(root, root_grad, targets, retain_graph, create_graph)
    finally:
        buffers.pop(allocator)
        _GRAD[0] = prev_mode


def _as_tensor_arg(owner, g, create_graph):
    return g if isinstance(g, GraphTensor) else owner._make(np.asarray(g), None, 0)


def _run_hooks(hooks, ent, create_graph):
    """Tensor hooks on a node's outputs: callables first (a returned value replaces the
    cotangent), then retain_grad (which sees the final value), as PyTorch orders them."""
    for nr, fn, t in hooks:
        if fn is not None and ent[nr + 1] is not None:
            r = fn(_as_tensor_arg(t, ent[nr + 1], create_graph))
            if r is not None:
                ent[nr + 1] = r if create_graph else getattr(r, "_data", r)
    for nr, fn, t in hooks:
        if fn is None and ent[nr + 1] is not None:
            _accumulate_leaf(t, ent[nr + 1], create_graph)


def _leaf_hooks(x, g, create_graph):
    acc = x._accum
    if acc is not None and acc.hooks:
        ent = [acc, g]
        _run_hooks(acc.hooks, ent, create_graph)
        return ent[1]
    return g


def _propagate(root, root_grad, targets, retain_graph, create_graph):
    """The backward walk. Nodes are numbered in creation order (`seq`), which is a topological
    order, so the walk is a max-heap on seq over the nodes a cotangent has reached: no separate
    graph sort, and nodes no cotangent reaches are never visited. (While an in-place op's node
    is alive, `_REWIRED`, the order comes from a DFS sort instead.)"""
    nonleaf_targets = None
    if targets is not None:
        nonleaf_targets = {}
        for t in targets:
            if t.grad_fn is not None:
                nonleaf_targets[(id(t.grad_fn), t._out_nr)] = None
    rfn = root.grad_fn
    rank = None
    if _REWIRED:
        rank = {id(n): i for i, n in enumerate(_toposort(rfn))}
        k = 0
    else:
        k = -rfn.seq
    ent = [rfn] + [None] * rfn.n_out
    ent[root._out_nr + 1] = root_grad
    pending = {k: ent}  # heap key -> [node, cotangent of output 0, of output 1, ...]
    heap = [k]
    pop, push = heapq.heappop, heapq.heappush
    leaf_acc = {}  # id(leaf) -> [leaf, gradient]
    # id(entry) -> [(nr, prim, params), ...]: the vjp_adds made into entry[nr], finished
    # (prim.vjp_add_done) before the entry is used
    added = None
    last_write = _LAST_WRITE[0]
    tensor_types = TENSOR_TYPES
    while heap:
        ent = pending.pop(pop(heap))
        if added is not None and id(ent) in added:
            _finish_adds(ent, added.pop(id(ent)))
        node = ent[0]
        if node.hooks:
            _run_hooks(node.hooks, ent, create_graph)
        if nonleaf_targets:
            for nr in range(node.n_out):
                key = (id(node), nr)
                if key in nonleaf_targets:
                    nonleaf_targets[key] = _add(nonleaf_targets[key], ent[nr + 1])
        stale = node.seq < last_write   # recorded before an in-place write
        if stale:
            _check_versions(node)
        ins = node.inputs
        tn = type(node)
        if tn is PrimNode and not create_graph:  # _apply, inlined for the hot case
            saved = node.saved
            if saved is None:
                raise RuntimeError(_RETAIN_MSG)
            prim = node.prim
            if prim.multiple_results:
                if node.n_out == 1 and ent[1] is None:
                    continue
                in_cts = prim.vjp(ent[1:], node.out, *saved, **node.params)
                dup = len(ins) == 2 and ins[0] is ins[1]
            else:
                g = ent[1]
                if g is None:
                    continue
                add = prim.vjp_add
                if add is not None and not stale:
                    # a slice's cotangent added straight into its input's pending one (no
                    # zeros array the input's size per slice: BA's six column slices of c)
                    x = ins[0]
                    if type(x) in tensor_types and x.requires_grad:
                        fn = x.grad_fn
                        if fn is None:
                            e, nr = leaf_acc.get(id(x)), 1
                        else:
                            e = pending.get(-fn.seq if rank is None else rank[id(fn)])
                            nr = x._out_nr + 1
                        done = 0 if e is None or e[nr] is None else \
                            _add_into(e, nr, add, g, node)
                        if done:
                            if done == 2:
                                if added is None:
                                    added = {}
                                added.setdefault(id(e), []).append((nr, prim, node.params))
                            if not retain_graph:
                                node.saved = node.out = None
                            continue
                fam = prim.family
                if len(saved) == 2 and (fam == "binary" or fam == "dot"):
                    # ask only for the cotangents of inputs that need one: the rule skips the
                    # partial of a constant (the 100.0 in 100.0 * t, the X in X @ w); binary
                    # rules have no params
                    x0, x1 = ins
                    dup = x0 is x1
                    n0 = type(x0) in tensor_types and x0.requires_grad
                    n1 = type(x1) in tensor_types and x1.requires_grad
                    if fam == "binary":
                        in_cts = prim.vjp(g, node.out, saved[0], saved[1]) if n0 and n1 else \
                            prim.vjp(g, node.out, saved[0], saved[1], needs=(n0, n1))
                    else:
                        in_cts = prim.vjp(g, node.out, saved[0], saved[1], needs=(n0, n1),
                                          **node.params)
                else:
                    in_cts = prim.vjp(g, node.out, *saved, **node.params)
                    dup = len(ins) == 2 and ins[0] is ins[1]
            if not retain_graph:
                node.saved = node.out = None
        elif tn is CompositeNode:
            # the inner tape was recorded after the composite's inputs and before the composite
            # (its seqs lie between), so its nodes join this walk: the cotangent goes to the
            # inner result and flows from there to the composite's inputs
            if node._freed:
                raise RuntimeError(_RETAIN_MSG)
            if not retain_graph:
                node._freed = True
            ins, in_cts = (node.inner_out,), (ent[1],)
            dup = False
        else:
            if node.released():
                raise RuntimeError(_RETAIN_MSG)
            if node.n_out == 1 and ent[1] is None:
                continue
            in_cts = _apply(node, ent[1:], create_graph)
            if not retain_graph:
                node.release()
            dup = len(ins) == 2 and ins[0] is ins[1]
        if stale:
            ins = inputs_at(node.seq, ins)
            dup = len(ins) == 2 and ins[0] is ins[1]
        if dup and in_cts[0] is in_cts[1] and in_cts[0] is not None:
            # x * x or x + x: one array for both inputs, which are one Tensor
            in_cts = (_doubled(in_cts), None)
        for x, ct in zip(ins, in_cts):
            if ct is None or type(x) not in tensor_types or not x.requires_grad:
                continue
            if create_graph:
                ct = _fit(ct, x, node._name)
            else:
                d = x._data
                tc = type(ct)
                if tc is _ND:
                    if ct.shape != d.shape or ct.dtype != d.dtype:
                        ct = np.asarray(_fit(ct, d, node._name))
                elif tc is not type(d):  # (a numpy scalar of d's type has d's shape and dtype)
                    if not isinstance(ct, _GENERIC):
                        ct = np.asarray(ct)
                    if ct.shape != d.shape or ct.dtype != d.dtype:
                        ct = np.asarray(_fit(ct, d, node._name))
            fn = x.grad_fn
            if fn is None:
                e = leaf_acc.get(id(x))
                if e is None:
                    leaf_acc[id(x)] = [x, ct]
                else:
                    _accumulate(e, 1, ct)
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
                    if e[nr] is None:
                        e[nr] = ct
                    else:
                        _accumulate(e, nr, ct)
    for e in leaf_acc.values():
        if added is not None and id(e) in added:
            _finish_adds(e, added.pop(id(e)))
        acc = e[0]._accum
        if acc is not None and acc.hooks:
            e[1] = _leaf_hooks(e[0], e[1], create_graph)
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
    mk = x._make
    if x.grad is None and not create_graph and (type(g) is _ND or
                                                isinstance(g, _GENERIC)):
        d = x._data
        if g.shape == d.shape:  # the common case: a first gradient of the leaf's shape
            x.grad = mk(np.array(g, dtype=d.dtype), None, 0)  # own copy: .grad is mutable
            return
    return _accumulate_more(x, g, create_graph, mk)


def _accumulate_more(x, g, create_graph, mk):
    if isinstance(g, GraphTensor):
        if not create_graph:
            g = g._data
        elif g.dtype != x.dtype:
            g = g.astype(x.dtype)
    if not isinstance(g, GraphTensor):
        g = np.asarray(g)
        if g.shape != x.shape:
            g = np.broadcast_to(g, x.shape)
        g = mk(np.array(g, dtype=x._data.dtype), None, 0)  # own copy: .grad is mutable
    if x.grad is None:
        x.grad = g
    elif create_graph or isinstance(x.grad, GraphTensor) and x.grad.requires_grad:
        x.grad = x.grad + g
    else:
        gd = x.grad._data
        if type(gd) is _ND and gd.flags.writeable and gd.shape == g._data.shape:
            _NP_ADD(gd, g._data, out=gd, casting="unsafe")  # in place, as torch accumulates
        else:
            x.grad._data = np.asarray(gd + g._data, dtype=gd.dtype)


def backward(root, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Tensor.backward: accumulate d(root)/d(leaf) into every leaf's `.grad`."""
    if not root.requires_grad:
        raise RuntimeError("element 0 of tensors does not require grad and does not have a "
                           "grad_fn")
    d = root._data
    if gradient is None:
        if d.size != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        gradient = d.dtype.type(1) if d.ndim == 0 else np.ones(d.shape, d.dtype)
    elif isinstance(gradient, GraphTensor) and not create_graph:
        gradient = gradient._data
    elif not isinstance(gradient, GraphTensor):
        gradient = np.asarray(gradient, d.dtype)
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, GraphTensor) else list(inputs)
        grads = _run(root, gradient, targets=inputs, retain_graph=retain_graph,
                     create_graph=create_graph)
        for t, g in zip(inputs, grads):
            if g is not None:
                _accumulate_leaf(t, g, create_graph)
        return
    _run(root, gradient, targets=None, retain_graph=retain_graph, create_graph=create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """torch.autograd.grad: gradients of `outputs` w.r.t. `inputs`, returned (not accumulated)."""
    single = isinstance(inputs, GraphTensor)
    inputs = [inputs] if single else list(inputs)
    outputs = [outputs] if isinstance(outputs, GraphTensor) else list(outputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, GraphTensor) or not isinstance(grad_outputs, (list, tuple)):
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
        elif isinstance(go, GraphTensor) and not create_graph:
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
        elif isinstance(g, GraphTensor):
            result.append(g)
        else:
            result.append(t._make(np.array(g, dtype=t.dtype), None, 0))
    return tuple(result)


__all__ = ["backward", "grad", "AccumulateGrad"]
