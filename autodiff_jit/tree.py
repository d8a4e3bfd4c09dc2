"""Minimal pytrees: nested tuples, lists and dicts of leaves (arrays and scalars).

`flatten(tree)` gives the leaves in a fixed order and a hashable `treedef`;
`unflatten(treedef, leaves)` rebuilds the structure. `None` is an empty subtree.
"""
from __future__ import annotations


def flatten(tree, is_leaf=None):
    leaves: list = []
    treedef = _flatten(tree, leaves, is_leaf)
    return leaves, treedef


def _flatten(tree, leaves, is_leaf):
    if is_leaf is not None and is_leaf(tree):
        leaves.append(tree)
        return "*"
    if tree is None:
        return ("none",)
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):  # namedtuple
        return ("namedtuple", type(tree), tuple(_flatten(t, leaves, is_leaf) for t in tree))
    if isinstance(tree, (tuple, list)):
        return (type(tree).__name__, tuple(_flatten(t, leaves, is_leaf) for t in tree))
    if isinstance(tree, dict):
        keys = sorted(tree, key=repr)
        return ("dict", tuple(keys), tuple(_flatten(tree[k], leaves, is_leaf) for k in keys))
    leaves.append(tree)
    return "*"


def unflatten(treedef, leaves):
    it = iter(leaves)
    out = _build(treedef, it)
    rest = list(it)
    if rest:
        raise ValueError(f"unflatten: {len(rest)} leaves left over")
    return out


def _build(td, it):
    if td == "*":
        return next(it)
    kind = td[0]
    if kind == "none":
        return None
    if kind == "namedtuple":
        return td[1](*[_build(c, it) for c in td[2]])
    if kind == "tuple":
        return tuple(_build(c, it) for c in td[1])
    if kind == "list":
        return [_build(c, it) for c in td[1]]
    if kind == "dict":
        return {k: _build(c, it) for k, c in zip(td[1], td[2])}
    raise ValueError(f"bad treedef {td!r}")


def unflattener(treedef):
    """`leaves -> tree` for one treedef: what unflatten(treedef, leaves) does, with the walk
    over the treedef done once (for call paths that rebuild the same structure every call)."""
    if treedef == "*":
        return lambda leaves: leaves[0]
    kind = treedef[0]
    if kind in ("dict", "tuple") and all(c == "*" for c in treedef[-1]):
        if kind == "tuple":   # the leaves are the whole tree: no slicing
            return tuple
        pairs = tuple(enumerate(treedef[1]))   # (a comprehension beats dict(zip()) 2x here)
        return lambda leaves: {k: leaves[i] for i, k in pairs}
    return _index_builder(treedef, [0])


def _index_builder(td, pos):
    """A function leaves -> subtree for the subtree `td` whose first leaf is leaves[pos[0]]."""
    if td == "*":
        i = pos[0]
        pos[0] += 1
        return lambda leaves: leaves[i]
    kind = td[0]
    if kind == "none":
        return lambda leaves: None
    children = td[2] if kind in ("dict", "namedtuple") else td[1]
    if all(c == "*" for c in children):   # a flat container: one slice of the leaves
        lo = pos[0]
        hi = pos[0] = lo + len(children)
        if kind == "tuple":
            return lambda leaves: tuple(leaves[lo:hi])
        if kind == "list":
            return lambda leaves: list(leaves[lo:hi])
        if kind == "dict":
            pairs = tuple((lo + i, k) for i, k in enumerate(td[1]))
            return lambda leaves: {k: leaves[i] for i, k in pairs}
        cls = td[1]
        return lambda leaves: cls(*leaves[lo:hi])
    parts = [_index_builder(c, pos) for c in children]
    if kind == "tuple":
        return lambda leaves: tuple([p(leaves) for p in parts])
    if kind == "list":
        return lambda leaves: [p(leaves) for p in parts]
    if kind == "dict":
        keys = td[1]
        return lambda leaves: {k: p(leaves) for k, p in zip(keys, parts)}
    if kind == "namedtuple":
        cls = td[1]
        return lambda leaves: cls(*[p(leaves) for p in parts])
    raise ValueError(f"bad treedef {td!r}")


def leaf_count(treedef) -> int:
    if treedef == "*":
        return 1
    kind = treedef[0]
    if kind == "none":
        return 0
    children = treedef[2] if kind in ("dict", "namedtuple") else treedef[1]
    return sum(leaf_count(c) for c in children)


def tree_map(fn, tree, *rest):
    leaves, td = flatten(tree)
    others = [flatten(r)[0] for r in rest]
    return unflatten(td, [fn(*xs) for xs in zip(leaves, *others)])
