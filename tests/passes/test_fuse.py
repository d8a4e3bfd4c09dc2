"""The fusion analysis (passes/fuse.py): which equations share a kernel."""
import numpy as np

import autodiff_jit as ad
from autodiff_jit.passes import fuse


def _plan(f, *args):
    fn = ad.jit(f, mode="interpret").ir(*args)
    return fn, fuse.plan(fn)


def _names(group):
    return [e.prim.name for e in group.eqns]


def test_elementwise_chain_and_reduction_is_one_group():
    x = np.ones(10)
    fn, p = _plan(lambda x, y: np.sum(np.exp(x) * y + 2.0), x, x)
    assert len(fn.eqns) == 4           # before: four equations
    assert len(p.groups) == 1          # after: one kernel
    assert p.groups[0].kind == "reduce"
    assert set(_names(p.groups[0])) == {"exp", "mul", "add", "reduce_sum"}


def test_value_used_twice_is_stored():
    x = np.ones(10)
    fn, p = _plan(lambda x: np.sum(np.exp(x)) + np.max(np.exp(x) * 2.0), x)
    # cse merges the two exp(x); it is then used twice, so it gets its own kernel
    exps = [e for e in fn.eqns if e.prim.name == "exp"]
    assert len(exps) == 1
    assert p.is_stored(exps[0].outputs[0])
    assert any(g.root is exps[0] for g in p.groups)


def test_views_are_never_stored_and_fuse_through():
    x = np.ones((4, 6))
    fn, p = _plan(lambda x: np.sum(np.transpose(np.sin(x))[1:, ::2] * 3.0), x)
    assert len(p.groups) == 1
    assert "transpose" in _names(p.groups[0]) and "sin" in _names(p.groups[0])


def test_broadcast_of_a_computed_vector_is_stored():
    x, y = np.ones(5), np.ones((7, 5))
    fn, p = _plan(lambda x, y: np.sum(np.exp(x) * y), x, y)
    exp = next(e for e in fn.eqns if e.prim.name == "exp")
    assert p.is_stored(exp.outputs[0])   # recomputing exp 7 times would be wasteful
    assert len(p.groups) == 2


def test_scalar_broadcast_is_inlined():
    x = np.ones(5)
    fn, p = _plan(lambda s, x: np.sum(np.exp(s) * x), 1.0, x)
    assert len(p.groups) == 1


def test_dot_operands_are_stored():
    a, b = np.ones((4, 20)), np.ones((20, 2))
    fn, p = _plan(lambda a, b: np.sum(np.tanh(a) @ b), a, b)
    tanh = next(e for e in fn.eqns if e.prim.name == "tanh")
    assert p.is_stored(tanh.outputs[0])
    kinds = [g.kind for g in p.groups]
    assert kinds == ["elementwise", "other", "reduce"]


def test_short_contraction_is_inlined_into_its_consumer():
    a, b = np.ones((4, 3)), np.ones((3, 2))
    fn, p = _plan(lambda a, b: np.sum(np.tanh(a) @ b), a, b)
    tanh = next(e for e in fn.eqns if e.prim.name == "tanh")
    dot = next(e for e in fn.eqns if e.prim.name == "dot_general")
    assert p.is_stored(tanh.outputs[0])          # read N times by the dot
    assert id(dot.outputs[0]) in p.inlined
    assert [g.kind for g in p.groups] == ["elementwise", "reduce"]


def test_short_contraction_used_twice_is_stored():
    a, b = np.ones((4, 3)), np.ones((3, 2))
    fn, p = _plan(lambda a, b: np.sum(a @ b) + np.max(a @ b), a, b)
    dot = next(e for e in fn.eqns if e.prim.name == "dot_general")
    assert p.is_stored(dot.outputs[0])


def test_dot_operand_needing_divmod_is_stored():
    # reshape of a transposed value: indexing it per element needs div/mod, and a dot reads
    # each element many times, so the view is materialized once
    a, x = np.ones((5, 6)), np.ones((100, 3, 5))
    fn, p = _plan(lambda a, x: np.sum(np.einsum("kij,nkj->nki", a.T.reshape(3, 2, 5), x)), a, x)
    rs = next(e for e in fn.eqns if e.prim.name == "reshape" and e.outputs[0].shape == (3, 2, 5))
    assert p.is_stored(rs.outputs[0])


def test_results_are_stored_and_dead_values_skipped():
    x = np.ones(3)
    fn, p = _plan(lambda x: (x * 2.0, np.sum(x * 2.0)), x)
    mul = next(e for e in fn.eqns if e.prim.name == "mul")
    assert p.is_stored(mul.outputs[0])
    assert len(p.groups) == 2


def test_gradient_groups_are_fewer_than_equations():
    x = np.ones(100)
    rosen = lambda x: np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)  # noqa
    fn = ad.grad(rosen, mode="interpret").ir(x)
    p = fuse.plan(fn)
    assert len(p.groups) < len(fn.eqns) / 2
    assert fuse.describe(fn).count("Group(") == len(p.groups)


def test_value_added_to_itself_is_inlined():
    x = np.ones(10)
    fn, p = _plan(lambda x: np.sum(np.exp(x) + np.exp(x)), x)   # cse: add(e, e)
    exp = next(e for e in fn.eqns if e.prim.name == "exp")
    add = next(e for e in fn.eqns if e.prim.name == "add")
    assert add.inputs[0] is add.inputs[1]
    assert id(exp.outputs[0]) in p.inlined
    assert len(p.groups) == 1


# ---------------------------------------------------------------------------------------------
# loop nests: groups sharing loops (plan.schedule)

def _nest_plan(f, *args, nests=True, monkeypatch=None):
    monkeypatch.setattr(fuse, "NESTS", nests)
    return _plan(f, *args)


def _flat(items):
    out = []
    for it in items:
        out.extend(_flat(it.items) if isinstance(it, fuse.Nest) else [it])
    return out


def test_row_reductions_share_one_loop_nest(monkeypatch):
    x = np.ones((50, 8))
    f = lambda x: np.sum(np.sum(np.exp(x), axis=1) * np.max(x, axis=1))  # noqa: E731
    fn, before = _nest_plan(f, x, nests=False, monkeypatch=monkeypatch)
    assert len(before.schedule) == 3                 # before: three kernels
    fn, p = _nest_plan(f, x, monkeypatch=monkeypatch)
    assert len(p.schedule) == 1                      # after: one loop over the 50 rows
    nest = p.schedule[0]
    assert isinstance(nest, fuse.Nest) and nest.extent == 50 and nest.depth == 1
    # the two row reductions (and the sum over rows, which accumulates across the loop)
    assert [g.root.prim.name for g in nest.groups()] == ["reduce_sum", "reduce_max",
                                                         "reduce_sum"]
    assert _flat(p.schedule) == p.groups


def test_producer_and_row_consumers_share_a_nest(monkeypatch):
    # softmax rows: max, exp(x - max) stored (used twice), sum, divide: all read row i only
    x = np.ones((30, 7))

    def f(x):
        e = np.exp(x - np.max(x, axis=1, keepdims=True))
        return e / np.sum(e, axis=1, keepdims=True)
    fn, before = _nest_plan(f, x, nests=False, monkeypatch=monkeypatch)
    assert len(before.schedule) == 4
    fn, p = _nest_plan(f, x, monkeypatch=monkeypatch)
    assert len(p.schedule) == 1 and p.schedule[0].extent == 30
    names = [g.root.prim.name for g in p.schedule[0].groups()]
    assert names == ["reduce_max", "exp", "reduce_sum", "div"]


def test_shifted_row_read_does_not_share_a_nest(monkeypatch):
    # z reads rows i and i+1 of the stored y: row i+1 is not computed yet in a shared loop
    x = np.ones((20, 4))

    def f(x):
        y = np.exp(x)
        return np.sum(y) + np.sum(y[1:] * y[:-1])
    fn, p = _nest_plan(f, x, monkeypatch=monkeypatch)
    exp = next(g for g in p.groups if g.root.prim.name == "exp")
    for it in p.schedule:
        if isinstance(it, fuse.Nest) and exp in list(it.groups()):
            assert all("slice" not in [e.prim.name for e in g.eqns] for g in it.groups())


def test_value_of_a_cross_reduction_is_read_after_the_nest(monkeypatch):
    # s = sum(x) accumulates over the whole loop: x / s cannot run in the same loop
    x = np.ones((20, 4))
    fn, p = _nest_plan(lambda x: x / np.sum(np.exp(x)) + np.exp(x), x, monkeypatch=monkeypatch)
    for it in p.schedule:
        if isinstance(it, fuse.Nest):
            names = [g.root.prim.name for g in it.groups()]
            assert not ("reduce_sum" in names and "div" in " ".join(
                e.prim.name for g in it.groups() for e in g.eqns))


def test_nests_in_the_gmm_gradient(monkeypatch):
    from autodiff_jit.bench.objectives import make_gmm
    from autodiff_jit.backend.lower import inline_calls
    r = np.random.default_rng(0)
    args = (r.normal(size=5), r.normal(size=(5, 3)), 0.1 * r.normal(size=(5, 6)),
            r.normal(size=(40, 3)))
    fn = inline_calls(ad.grad(make_gmm(3, 5), argnums=(0, 1, 2), mode="interpret").ir(*args))
    monkeypatch.setattr(fuse, "NESTS", False)
    before = fuse.plan(fn)
    monkeypatch.setattr(fuse, "NESTS", True)
    p = fuse.plan(fn)
    assert len(p.schedule) < len(before.schedule) * 2 // 3
    assert sorted(map(id, _flat(p.schedule))) == sorted(map(id, p.groups))


# ---------------------------------------------------------------------------------------------
# recompute: a cheap value read at a shifted index is recomputed at each use, not stored

def _rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _recompute_plans(f, x, monkeypatch, grad=False):
    fn = (ad.grad if grad else ad.jit)(f, mode="interpret").ir(x)
    monkeypatch.setattr(fuse, "RECOMPUTE", False)
    before = fuse.plan(fn)
    monkeypatch.setattr(fuse, "RECOMPUTE", True)
    return fn, before, fuse.plan(fn)


def test_rosenbrock_gradient_recomputes_the_shifted_value(monkeypatch):
    fn, before, p = _recompute_plans(_rosen, np.ones(100), monkeypatch, grad=True)
    # before: 200*(x[1:]-x[:-1]**2) is stored by a first loop, read at i and i-1 by the second
    assert len(before.groups) == 2
    v = before.groups[0].root.outputs[0]
    assert before.is_stored(v)
    # after: one loop, recomputed at both indices; only the result is stored
    assert len(p.groups) == 1
    assert not p.is_stored(v) and id(v) in p.inlined
    assert p.stored == {id(fn.results[0])}
    # its three pad views are in the loop's group (the store loop is split at their bounds)
    assert [e.prim.name for e in p.groups[0].eqns].count("scatter_slice") == 3


def test_cheap_value_read_shifted_is_recomputed(monkeypatch):
    def f(x):
        y = x * x + 1.0
        return y[1:] - y[:-1]
    fn, before, p = _recompute_plans(f, np.ones(10), monkeypatch)
    assert len(before.groups) == 2 and len(p.groups) == 1
    assert [e.prim.name for e in p.groups[0].eqns].count("mul") == 1   # one equation, two uses


def test_recompute_nested_within_budget(monkeypatch):
    def f(x):
        y = x * x
        z = y[1:] + y[:-1]            # recomputed: 3 operations per element of z
        return np.sum(z[2:] * z[:-2])
    fn, before, p = _recompute_plans(f, np.ones(20), monkeypatch)
    assert len(before.groups) == 3 and len(p.groups) == 1


def test_expensive_shifted_value_is_stored(monkeypatch):
    def f(x):
        y = np.exp(x)
        return y[1:] - y[:-1]
    fn, before, p = _recompute_plans(f, np.ones(10), monkeypatch)
    exp = next(e for e in fn.eqns if e.prim.name == "exp")
    assert p.is_stored(exp.outputs[0]) and len(p.groups) == 2


def test_recompute_flop_budget(monkeypatch):
    def f(x):
        y = x
        for _ in range(fuse.RECOMPUTE_MAX_FLOPS // 2 + 1):
            y = y * 3.0 + 1.0         # 2 operations per round: over the budget
        return y[1:] - y[:-1]
    fn, before, p = _recompute_plans(f, np.ones(10), monkeypatch)
    assert len(p.groups) == 2


def test_multi_use_at_the_same_index_is_still_stored(monkeypatch):
    fn, before, p = _recompute_plans(lambda x: np.sum(x * 2.0) * np.max(x * 2.0), np.ones(10),
                                     monkeypatch)
    mul = next(e for e in fn.eqns if e.prim.name == "mul")
    assert p.is_stored(mul.outputs[0])


def test_result_is_not_recomputed(monkeypatch):
    def f(x):
        y = x * 2.0
        return y, y[1:] - y[:-1]
    fn, before, p = _recompute_plans(f, np.ones(10), monkeypatch)
    assert len(p.groups) == len(before.groups) == 2
    assert all(p.is_stored(r) for r in fn.results)


def test_cheap_operand_of_convolutions_is_computed_inside_them():
    # the gradient of sum(convolve(a, v)**2): 2 * y is read by two convolutions (a short
    # kernel's and the few outputs of v's cotangent), each reading an element a bounded number
    # of times: computed inside both, never stored; still the interpreter's values
    r = np.random.default_rng(0)
    a, v = r.standard_normal(300), r.standard_normal(5)

    def f(a, v):
        return np.sum(np.convolve(a, v, "same") ** 2)
    fn = ad.grad(f, argnums=(0, 1), mode="interpret").ir(a, v)
    p = fuse.plan(fn)
    mul = [e for e in fn.eqns if e.prim.name == "mul"]
    assert len(mul) == 1 and id(mul[0].outputs[0]) in p.inlined
    assert sum(e.prim.name == "convolve" for e in fn.eqns) == 3
    got = ad.grad(f, argnums=(0, 1))(a, v)
    want = ad.grad(f, argnums=(0, 1), mode="interpret")(a, v)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    # an expensive operand (exp) is still stored
    fn = ad.grad(lambda a, v: np.sum(np.exp(np.convolve(a, v))), argnums=(0, 1),
                 mode="interpret").ir(a, v)
    p = fuse.plan(fn)
    assert all(p.is_stored(e.outputs[0]) for e in fn.eqns if e.prim.name == "exp")
