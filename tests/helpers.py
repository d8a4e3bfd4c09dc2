"""Shared test helpers: central-difference gradient checks (in the spirit of HIPS autograd's
`check_grads`) and the catalogue of user-level test functions reused by several test files."""
from __future__ import annotations

import numpy as np

import autodiff_jit as ad
from autodiff_jit import tree
from autodiff_jit.ir import verify

MODES = ("interpret", "compiled")


def strip_locations(text: str) -> str:
    """IR text without the trailing `# file.py:12` source comments (golden texts that are
    about the IR's shape, not where it came from)."""
    import re
    return re.sub(r"  # [^\n]*", "", str(text))
EPS = 1e-6


# ---------------------------------------------------------------------------------------------
# finite differences

def numerical_grad(f, args, argnum, eps=EPS):
    """d f(*args) / d args[argnum] by central differences in float64 (f returns a scalar)."""
    args = [np.array(a, dtype=np.float64) if _is_float(a) else a for a in args]
    x = args[argnum]
    grad = np.zeros(np.shape(x), np.float64)
    flat = grad.reshape(-1)
    for i in range(flat.size):
        plus = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        minus = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        plus[argnum].reshape(-1)[i] += eps
        minus[argnum].reshape(-1)[i] -= eps
        flat[i] = (float(f(*plus)) - float(f(*minus))) / (2 * eps)
    return grad


def _is_float(a):
    return np.asarray(a).dtype.kind == "f"


def float_argnums(args):
    return tuple(i for i, a in enumerate(args) if _is_float(a))


def assert_close(actual, expected, rtol=1e-5, atol=1e-6, what=""):
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64),
                               rtol=rtol, atol=atol, err_msg=what)


# ---------------------------------------------------------------------------------------------
# float32 tolerances from error bounds (never from one machine's rounding: the summation order
# of reductions and BLAS kernels differs between CPUs, e.g. AVX2 and AVX-512 vector widths)

def rounding_bound(magnitude, terms, dtype=np.float32):
    """Elementwise bound on |computed - exact| for a result that accumulates `terms` rounded
    operations in `dtype`: (terms + 1) * eps * magnitude, where `magnitude` is the same
    computation on absolute values (|a| @ |b| for a dot, sum |x| for a sum, |result| for one
    elementwise operation). This is Higham's |fl(a.b) - a.b| <= gamma_n |a|.|b| with
    gamma_n = n u / (1 - n u) <= n eps (u = eps/2, n u <= 1/2; "Accuracy and Stability of
    Numerical Algorithms", 2nd ed., eq. 3.5), plus one rounding of the result; the smallest
    normal number is added for results that underflow."""
    fi = np.finfo(dtype)
    return (terms + 1) * float(fi.eps) * np.abs(np.asarray(magnitude, np.float64)) + float(fi.tiny)


def assert_within_rounding(got, ref64, magnitude, terms, dtype=np.float32, what=""):
    """`got` (computed in `dtype`) against a float64 reference computed from the same inputs:
    same shape, same NaN and infinity pattern, and |got - ref| <= rounding_bound elementwise."""
    got = np.asarray(got)
    ref = np.asarray(ref64, np.float64)
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    g = got.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(g), np.isnan(ref), err_msg=f"{what}: NaN pattern")
    inf = np.isinf(ref)
    np.testing.assert_array_equal(g[inf], ref[inf], err_msg=f"{what}: infinities")
    ok = ~(np.isnan(ref) | inf)
    bound = np.broadcast_to(rounding_bound(magnitude, terms, dtype), ref.shape)[ok]
    err = np.abs(g[ok] - ref[ok])
    assert np.all(err <= bound), \
        f"{what}: error {np.max(err / bound):.3g} x the bound ({terms} terms, {np.dtype(dtype)})"


def float64_twin(fn):
    """The IR Function `fn` with every float32 value (arguments, literals, constants, results)
    made float64: the float64 reference of the same computation. Params are kept as they are,
    so a function with dtype-valued params (casts) is not a twin of that kind: returns None."""
    from autodiff_jit.ir import AVal, Eqn, Function, Lit, Var
    if any(isinstance(v, (np.dtype, type)) for e in fn.eqns for v in e.params.values()):
        return None
    env = {}

    def twin(v):
        f32 = v.aval.dtype == np.float32
        if isinstance(v, Lit):
            return Lit(v.value, np.float64) if f32 else v
        if v not in env:
            env[v] = Var(AVal(v.aval.shape, np.float64), v.hint) if f32 else v
        return env[v]
    eqns = [Eqn(e.prim, [twin(i) for i in e.inputs], e.params, [twin(o) for o in e.outputs])
            for e in fn.eqns]
    consts = {twin(k): (c.astype(np.float64) if c.dtype == np.float32 else c)
              for k, c in fn.consts.items()}
    return Function(fn.name + "_f64", [twin(a) for a in fn.args], consts, eqns,
                    [twin(r) for r in fn.results])


def check_grads(f, args, modes=MODES, argnums=None, rtol=1e-5, atol=1e-6, order=1, seed=0):
    """Check ad.grad(f) against central differences for every float argument (or `argnums`),
    in every mode; check the value of value_and_grad; check that the adjoint IR verifies.
    With order=2, also check grad of the directional derivative <grad f(x), v> (grad of grad)
    against central differences of the first-order gradient."""
    args = [np.asarray(a, np.float64) if _is_float(a) else a for a in args]
    argnums = float_argnums(args) if argnums is None else tuple(argnums)
    expected = [numerical_grad(f, args, i) for i in argnums]
    for mode in modes:
        got = ad.grad(f, argnums=argnums, mode=mode)(*args)
        assert isinstance(got, tuple) and len(got) == len(argnums)
        for i, g, e in zip(argnums, got, expected):
            assert np.shape(g) == np.shape(args[i]), (mode, i, np.shape(g))
            assert_close(g, e, rtol, atol, what=f"mode={mode} argnum={i}")
        if mode == modes[0]:  # the value once (compiling value_and_grad per mode costs time)
            value, _ = ad.value_and_grad(f, argnums=argnums, mode=mode)(*args)
            assert_close(value, f(*args), 1e-12, 1e-12, what=f"value mode={mode}")
    verify(ad.make_ir(ad.grad(f, argnums=argnums))(*args))
    if order >= 2:
        rng = np.random.default_rng(seed)
        vs = [rng.standard_normal(np.shape(args[i])) for i in argnums]

        def directional(*a):
            gs = ad.grad(f, argnums=argnums, mode="interpret")(*a)
            return sum(np.sum(g * v) for g, v in zip(gs, vs))

        check_grads(directional, args, modes=modes, argnums=argnums, rtol=max(rtol, 1e-4),
                    atol=max(atol, 1e-5), order=1)


def tree_allclose(a, b, rtol=1e-7, atol=0.0):
    la, ta = tree.flatten(a)
    lb, tb = tree.flatten(b)
    assert ta == tb, (ta, tb)
    for x, y in zip(la, lb):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------------
# the catalogue of user-level functions: name -> (f, args). Points avoid kinks and ties.

_r = np.random.default_rng(1234)


def _n(*shape):
    return _r.standard_normal(shape)


def _pos(*shape):
    return _r.uniform(0.5, 2.0, shape)


def _unit(*shape):
    return _r.uniform(-0.8, 0.8, shape)


def _distinct(*shape):
    n = int(np.prod(shape))
    return (_r.permutation(n).astype(np.float64) * 0.37 - 1.1 + _r.uniform(0, 0.1, n)).reshape(shape)


MASK = np.array([[True, False, True, True], [False, True, False, True], [True, True, False, False]])
IDX = np.array([0, 2, 2, 1, 0, 2])
_A34 = _r.standard_normal((3, 4))


def _logsumexp(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


CASES = {
    # arithmetic with broadcasting
    "add_bcast": (lambda x, y: np.sum((x + y) ** 2), [_n(3, 4), _n(4)]),
    "sub_bcast": (lambda x, y: np.sum(np.sin(x - y)), [_n(3, 1), _n(1, 4)]),
    "mul_bcast": (lambda x, y: np.sum(x * y * x), [_n(2, 3, 4), _n(3, 1)]),
    "div_bcast": (lambda x, y: np.sum(x / y), [_n(3, 4), _pos(4)]),
    "scalar_ops": (lambda x, s: np.sum(2.0 * x - s / 3.0 + 1.0 - x * s), [_n(5), np.float64(0.7)]),
    "rsub_rdiv": (lambda x: np.sum(1.0 - 2.0 / x), [_pos(4)]),
    "neg": (lambda x: np.sum(-x * np.sin(x)), [_n(5)]),
    "pow_scalar_float": (lambda x: np.sum(x ** 2.5), [_pos(4)]),
    "pow_array_exponent": (lambda x, y: np.sum(x ** y), [_pos(3, 2), _n(3, 2)]),
    "pow_scalar_base": (lambda y: np.sum(2.0 ** y), [_n(4)]),
    "pow_int_negative_base": (lambda x: np.sum(x ** 3 + x ** 2 - x ** -1), [-_pos(5)]),
    "square_reciprocal": (lambda x: np.sum(np.square(x) + np.reciprocal(x)), [_pos(4)]),
    "exp": (lambda x: np.sum(np.exp(x)), [_n(2, 3)]),
    "log": (lambda x: np.sum(np.log(x)), [_pos(2, 3)]),
    "log1p": (lambda x: np.sum(np.log1p(x)), [_pos(4)]),
    "expm1": (lambda x: np.sum(np.expm1(x)), [_n(4)]),
    "sqrt": (lambda x: np.sum(np.sqrt(x)), [_pos(4)]),
    "sin": (lambda x: np.sum(np.sin(x)), [_n(4)]),
    "cos": (lambda x: np.sum(np.cos(x)), [_n(4)]),
    "tan": (lambda x: np.sum(np.tan(x)), [_unit(4)]),
    "tanh": (lambda x: np.sum(np.tanh(x)), [_n(4)]),
    "sinh": (lambda x: np.sum(np.sinh(x)), [_n(4)]),
    "cosh": (lambda x: np.sum(np.cosh(x)), [_n(4)]),
    "arcsin": (lambda x: np.sum(np.arcsin(x)), [_unit(4)]),
    "arccos": (lambda x: np.sum(np.arccos(x)), [_unit(4)]),
    "arctan": (lambda x: np.sum(np.arctan(x)), [_n(4)]),
    "abs": (lambda x: np.sum(np.abs(x) * x), [_distinct(5)]),
    "sign": (lambda x: np.sum(np.sign(x) * x ** 2), [_distinct(5)]),
    "maximum": (lambda x, y: np.sum(np.maximum(x, y) ** 2), [_distinct(3, 4), _distinct(4) + 0.05]),
    "minimum": (lambda x, y: np.sum(np.minimum(x, y) ** 2), [_distinct(3, 4), _distinct(4) + 0.05]),
    "maximum_scalar": (lambda x: np.sum(np.maximum(x, 0.0) * x), [_distinct(6)]),
    "where": (lambda x, y: np.sum(np.where(x > y, x * y, x - y) ** 2), [_distinct(3, 4), _distinct(4) + 0.05]),
    "comparisons": (lambda x: np.sum(x * ((x < 0.1) + (x <= 0.2) * 2.0 + (x > 0.3) * 3.0
                                          + (x >= 0.4) * 4.0 + (x == 0.5) + (x != 0.6))),
                    [_distinct(6)]),
    "clip": (lambda x: np.sum(np.clip(x, -0.5, 0.7) ** 2), [_distinct(8)]),
    "sum_axis": (lambda x: np.sum(np.sum(x, axis=1) ** 2), [_n(3, 4)]),
    "sum_keepdims": (lambda x: np.sum(x / np.sum(x ** 2, axis=0, keepdims=True)), [_n(3, 4)]),
    "sum_tuple_axis": (lambda x: np.sum(np.sum(x, axis=(0, 2)) ** 3), [_n(2, 3, 4)]),
    "mean": (lambda x: np.mean(x ** 2) + np.sum(np.mean(x, axis=-1) ** 2), [_n(3, 4)]),
    "mean_keepdims": (lambda x: np.sum((x - x.mean(axis=1, keepdims=True)) ** 2), [_n(3, 4)]),
    "max": (lambda x: np.max(x) + np.sum(np.max(x, axis=0) ** 2), [_distinct(3, 4)]),
    "max_keepdims": (lambda x: np.sum(x * np.max(x, axis=1, keepdims=True)), [_distinct(3, 4)]),
    "min": (lambda x: np.min(x) + np.sum(x.min(axis=1) ** 2), [_distinct(3, 4)]),
    "prod": (lambda x: np.prod(x) + np.sum(np.prod(x, axis=1, keepdims=True) * x), [_pos(3, 3)]),
    "var_std": (lambda x: np.var(x) + np.sum(np.std(x, axis=0)) + np.var(x, ddof=1), [_n(4, 3)]),
    "dot_1d": (lambda x, y: np.dot(x, y) ** 2, [_n(4), _n(4)]),
    "dot_2d": (lambda a, b: np.sum(np.dot(a, b) ** 2), [_n(3, 4), _n(4, 2)]),
    "matmul_mv": (lambda a, x: np.sum(np.tanh(a @ x)), [_n(3, 4), _n(4)]),
    "matmul_vm": (lambda x, a: np.sum(np.tanh(x @ a)), [_n(3), _n(3, 4)]),
    "matmul_batched": (lambda a, b: np.sum((a @ b) ** 2), [_n(2, 3, 4), _n(2, 4, 2)]),
    "matmul_batched_bcast": (lambda a, b: np.sum(np.sin(a @ b)), [_n(2, 3, 4), _n(4, 2)]),
    "matmul_2d_batched": (lambda a, b: np.sum(np.sin(a @ b)), [_n(3, 4), _n(2, 4, 2)]),
    "matmul_const_left": (lambda x: np.sum(np.sin(_A34 @ x)) + np.sum(np.matmul(_A34, x) ** 2), [_n(4, 2)]),
    "outer": (lambda x, y: np.sum(np.outer(x, y) ** 2), [_n(3), _n(4)]),
    "transpose": (lambda x: np.sum(x.T @ x * np.transpose(x)[:, :1]), [_n(3, 2)]),
    "transpose_axes": (lambda x: np.sum(np.transpose(x, (2, 0, 1)) * np.arange(24.0).reshape(4, 2, 3)), [_n(2, 3, 4)]),
    "reshape": (lambda x: np.sum((np.reshape(x, (3, 4)) @ np.arange(4.0)) ** 2) + np.sum(x.reshape(-1) ** 3) + np.sum(x.reshape(4, 3)[1:] ** 2), [_n(2, 6)]),
    "expand_squeeze": (lambda x: np.sum(np.squeeze(np.expand_dims(x, 0), axis=0) ** 3) + np.sum(np.expand_dims(x, -1) ** 2 * np.ones((1, 3)))
                       + np.sum(np.sin(np.squeeze(x[None, :, None])) + x.squeeze() * x[:, None].squeeze(1)), [_n(4)]),
    "broadcast_to": (lambda x: np.sum(np.broadcast_to(x, (3, 4)) * np.arange(12.0).reshape(3, 4)), [_n(4)]),
    "concatenate": (lambda x, y: np.sum(np.concatenate([x, y, x], axis=1) ** 2 * np.arange(8.0)), [_n(2, 3), _n(2, 2)]),
    "stack": (lambda x, y: np.sum(np.stack([x, y * x], axis=1) ** 3), [_n(3), _n(3)]),
    "astype": (lambda x: np.sum((x > 0).astype(np.float64) * x.astype(np.float64) ** 2 + x.astype(int)), [np.array([0.5, 1.5, -2.25])]),
    "index_int": (lambda x: x[1, 0] ** 2 + np.sum(x[-1] * x[0]) + x[2][-1] ** 3, [_n(3, 2)]),
    "index_slices": (lambda x: np.sum(x[1:, ::2] ** 2) + np.sum(x[:, -1]), [_n(3, 4)]),
    "index_negative_step": (lambda x: np.sum(x[::-1] * np.arange(5.0)) + np.sum(x[3:0:-2] ** 2), [_n(5)]),
    "index_int_array_repeated": (lambda x: np.sum(x[IDX] ** 2 * np.arange(6.0)), [_n(3)]),
    "index_int_array_2d": (lambda x: np.sum(x[IDX[:4], 1:] ** 2) + np.sum(x[:, [3, 3, 0]] ** 3), [_n(3, 4)]),
    "index_bool_mask": (lambda x: np.sum(x[MASK] ** 2 * np.arange(7.0)) + np.sum(x[:, MASK[0]] ** 3), [_n(3, 4)]),
    "cumsum": (lambda x: np.sum(np.cumsum(x) ** 2) + np.sum(np.cumsum(x.reshape(2, 3), axis=0) ** 3), [_n(6)]),
    "einsum_matmul": (lambda a, b: np.sum(np.einsum("ij,jk->ik", a, b) ** 2), [_n(3, 4), _n(4, 2)]),
    "einsum_batched": (lambda a, b: np.sum(np.sin(np.einsum("bij,bjk->bik", a, b))), [_n(2, 3, 4), _n(2, 4, 2)]),
    "einsum_dot_outer": (lambda x, y: np.einsum("i,i->", x, y) ** 2 + np.sum(np.einsum("i,j->ij", x, y) ** 2), [_n(3), _n(3)]),
    "einsum_transpose_out": (lambda a, b: np.sum(np.einsum("ij,kj->ki", a, b) * np.arange(6.0).reshape(2, 3)), [_n(3, 4), _n(2, 4)]),
    "norm": (lambda x: np.linalg.norm(x), [_n(5)]),
    "norm_axis": (lambda x: np.sum(np.linalg.norm(x, axis=1) ** 3), [_n(3, 4)]),
    "logsumexp": (_logsumexp, [_n(6)]),
    "softmax_xent": (lambda w, x: -np.sum(np.log(np.exp(x @ w) / np.sum(np.exp(x @ w), axis=1, keepdims=True))[:, 0]), [_n(3, 4), _n(5, 3)]),
    "mlp": (lambda w1, w2, x: np.mean((np.tanh(x @ w1) @ w2 - 1.0) ** 2), [_n(3, 4), _n(4, 1), _n(6, 3)]),
    "python_loop": (lambda x: sum(np.sum(x ** k) / k for k in range(1, 4)), [_n(4)]),
}


def import_programs(path, programs):
    """Write the functions `programs` ({name: source}) to the file `path` (with numpy imported)
    and import them, so that grad/jit can read their source: (functions, the file's text)."""
    import importlib.util
    path.write_text("import numpy as np\n\n\n" + "\n\n\n".join(programs.values()) + "\n")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [getattr(module, n) for n in programs], path.read_text()


def fresh_processes_with_cache(code: str, cache_dir, runs: int = 2) -> list:
    """Run `code` in `runs` new Python processes, one after another, sharing the disk cache in
    `cache_dir` (the support cache on, whatever this process has): the JSON object each
    printed last. For tests of support code compiled by the first process and mapped by the
    next."""
    import json
    import os
    import subprocess
    import sys
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path),
               AUTODIFF_JIT_CACHE_DIR=str(cache_dir))
    env.pop("AUTODIFF_JIT_SUPPORT_CACHE", None)
    out = []
    for _ in range(runs):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=300, env=env)
        assert r.returncode == 0, r.stderr
        out.append(json.loads(r.stdout.strip().splitlines()[-1]))
    return out
