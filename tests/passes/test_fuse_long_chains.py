"""Long unrolled chains (a Python loop of thousands of steps) keep fusion's walks and loop
bodies bounded: a value is stored every MAX_INLINE_DEPTH inlined steps and a loop nest takes
at most MAX_NEST_MEMBERS kernels, so planning never reaches Python's recursion limit."""
import numpy as np

import autodiff_jit as ad
from autodiff_jit.ir import Var
from autodiff_jit.passes import fuse
from autodiff_jit.passes.pipeline import optimize


def _chain(n):
    def f(x):
        y = x
        for _ in range(n):
            y = np.tanh(y) * 1.01
        return np.sum(y)
    return f


def _nest_sizes(items):
    for it in items:
        if isinstance(it, fuse.Nest):
            yield len(it.items)
            yield from _nest_sizes(it.items)


def _inline_depth(plan, fn):
    depth = {}
    for e in fn.eqns:
        d = 1 + max((depth.get(id(a), 0) for a in e.inputs if isinstance(a, Var)), default=0)
        for o in e.outputs:
            depth[id(o)] = d if id(o) in plan.inlined else 0
    return max(depth.values())


def test_a_long_chain_is_stored_every_max_inline_depth_steps():
    fn = optimize(ad.make_ir(_chain(1500))(np.array([0.1, 0.2, 0.3])))
    plan = fuse.plan(fn)   # a body walk per inlined step used to raise RecursionError
    assert _inline_depth(plan, fn) <= fuse.MAX_INLINE_DEPTH


def test_a_long_gradient_chain_is_split_into_bounded_nests():
    # each tanh is saved for its derivative: one kernel per step, all over the same axis
    fn = optimize(ad.make_ir(ad.grad(_chain(150)))(np.array([0.1, 0.2, 0.3])))
    sizes = list(_nest_sizes(fuse.plan(fn).schedule))
    assert max(sizes) == fuse.MAX_NEST_MEMBERS


def test_a_short_chain_still_fuses_into_one_kernel():
    fn = optimize(ad.make_ir(_chain(20))(np.array([0.1, 0.2, 0.3])))
    assert len(fuse.plan(fn).groups) == 1


def test_a_long_chain_compiles_to_numpys_value():
    f = _chain(210)   # just over MAX_INLINE_DEPTH: two kernels
    x = np.array([0.1, -0.2, 0.3])
    np.testing.assert_allclose(ad.jit(f)(x), f(x), rtol=1e-12)
