"""Differential fuzzing of numpy semantics (issue #11): random programs built from what the
silent-wrong-answer bugs had in common -- aliasing under in-place assignment (copies vs views),
keyword arguments, dtype promotion of bool/int/float32/Python scalars, special values (+-inf,
nan, +-0, huge, tiny) -- and compositions of transforms (grad of grad, nested grads with
closures, jit inside grad, tape over compiled). Every program runs in compiled mode, in the
interpreter and in tape mode; values (and dtypes) are compared with numpy's, gradients with
each other and with central finite differences.

A few programs per test run by default; `pytest -m slow tests/test_fuzz_semantics.py` runs
thousands. A failure message holds the seed and the program, to replay it.
"""
import re

import numpy as np
import pytest

import autodiff_jit as ad

MODES = ("compiled", "interpret", "tape")
DTYPES = (np.float64, np.float32, np.int64, np.int32, np.bool_)
SPECIAL = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e300, -1e300, 1e-300, 5e-324, 1e154])
PY_SCALARS = (2, -3, 1.5, 0.5, True, 1e-3)
REFUSAL = re.compile(r"autodiff_jit does not support|not supported by autodiff_jit|"
                     r"no autodiff_jit rule")


# ---------------------------------------------------------------------------------------------
# the operations: each takes (v, other, p) where p is a dict of random choices made up front

def _mask(v):
    return np.greater(v, 0.25)


ELEMENTWISE = {
    "exp": lambda v, o, p: np.exp(np.minimum(v * 1.0, 50.0)),
    "log1p|v|": lambda v, o, p: np.log(np.abs(v) + 1.0),
    "sqrt": lambda v, o, p: np.sqrt(np.abs(v) + 0.5),
    "**0.5": lambda v, o, p: (v * v + 1.0) ** 0.5,
    "**-2": lambda v, o, p: (v * 1.0 + 3.0) ** -2,
    "**3": lambda v, o, p: v ** 3,
    "tanh": lambda v, o, p: np.tanh(v),
    "arctan": lambda v, o, p: np.arctan(v),
    "sin": lambda v, o, p: np.sin(v),
    "hypot": lambda v, o, p: np.hypot(v, o),
    "logaddexp": lambda v, o, p: np.logaddexp(v, o),
    "maximum": lambda v, o, p: np.maximum(v, o),
    "where": lambda v, o, p: np.where(v > o, v, o * 2.0),
    "div": lambda v, o, p: v / (1.5 + o * o),
    "clip": lambda v, o, p: np.clip(v, -0.5, 0.7),
    "abs": lambda v, o, p: np.abs(v),
    "mul": lambda v, o, p: v * o,
    "sub": lambda v, o, p: v - o,
    "pyscalar": lambda v, o, p: [np.add, np.multiply, np.subtract, np.maximum][p["k"] % 4](
        v, p["scalar"]),
}
VALUE_ONLY = {  # not differentiable (or integer-valued): in value programs only
    "sign": lambda v, o, p: np.sign(v),
    "cast": lambda v, o, p: v.astype(p["dtype"]) if np.ndim(v) else v * 1.0,
    "and": lambda v, o, p: (v > 0) & (o < 1),
    "ror": lambda v, o, p: True | (v > 0),
    "xor": lambda v, o, p: (v > 0) ^ (o > 0),
    "dot_pyfloat": lambda v, o, p: np.dot(v, 0.5),
    "cumsum": lambda v, o, p: np.cumsum(v),
}


def _axis(v, p):
    return None if np.ndim(v) == 0 or p["axis"] == 2 else p["axis"] % np.ndim(v)


REDUCTIONS = {
    "sum": lambda v, p: np.sum(v, axis=_axis(v, p), keepdims=p["keep"]),
    "mean_where": lambda v, p: np.mean(v, axis=_axis(v, p), where=_mask(v) | True),
    "var": lambda v, p: np.var(v, axis=_axis(v, p), ddof=p["ddof"] if np.size(v) > 2 else 0),
    "std_correction": lambda v, p: np.std(v, correction=1 if np.size(v) > 1 else 0),
    "var_where": lambda v, p: np.var(v, where=np.arange(np.size(v)).reshape(np.shape(v)) % 2
                                     == 0),
    "max": lambda v, p: np.max(v, axis=_axis(v, p)),
    "prod": lambda v, p: np.prod(np.tanh(v) + 1.5, axis=_axis(v, p)),
    "average": lambda v, p: np.average(v, axis=_axis(v, p) if np.ndim(v) else None,
                                       weights=None if p["keep"] else np.ones(np.shape(v)) *
                                       np.arange(1.0, 1.0 + np.size(v)).reshape(np.shape(v))),
    "norm": lambda v, p: np.linalg.norm(v + 0.1, ord=[None, 1, np.inf, -np.inf, "fro"][p["k"]]
                                        if np.ndim(v) == 2 else [None, 1, 2, 3, np.inf][p["k"]]
                                        if np.ndim(v) == 1 else None),
    "sum_sum": lambda v, p: np.sum(np.sum(v), axis=0),
}
INDEXING = {
    "slice": lambda v, p: v[1:] if np.shape(v)[0] > 1 else v,
    "reverse": lambda v, p: v[::-1],
    "gather": lambda v, p: v[np.array([0, np.shape(v)[0] - 1, 0])],
    "take_clip": lambda v, p: np.take(v, np.array([-3, 0, 7]), axis=0, mode="clip"),
    "take_wrap": lambda v, p: np.take(v, np.array([-3, 0, 7]), axis=0, mode="wrap"),
}
COPIES = {
    "copy": lambda v: v.copy(), "np.copy": np.copy, "astype": lambda v: v.astype(v.dtype),
    "flatten": lambda v: v.flatten().reshape(np.shape(v)), "pos": lambda v: +v,
    "positive": np.positive, "concat1": lambda v: np.concatenate([v]),
    "sum_axis_()": lambda v: np.sum(v, axis=()),
}
VIEWS = {
    "v[1:]": lambda v: v[1:], "v[::2]": lambda v: v[::2], "v[:]": lambda v: v[:],
    "v.T": lambda v: v.T, "reshape": lambda v: v.reshape(-1), "v[..., ::-1]": lambda v: v[..., ::-1],
}


def random_program(rng, *, values_only, aliasing=True):
    """A random list of operations; `values_only` adds non-differentiable ones, `aliasing`
    writes into copies and views (aliasing="only": at least one such write)."""
    elementwise = list(ELEMENTWISE) + (list(VALUE_ONLY) if values_only else [])
    kinds = ["elementwise", "elementwise", "reduce", "index"] + \
        (["copy", "view", "base"] if aliasing else [])
    ops = []
    n = int(rng.integers(2, 8))
    for i in range(n):
        kind = kinds[int(rng.integers(len(kinds)))]
        if aliasing == "only" and i == 0:
            kind = ["copy", "view", "base"][int(rng.integers(3))]
        names = {"elementwise": elementwise, "reduce": list(REDUCTIONS), "index": list(INDEXING),
                 "copy": list(COPIES), "view": list(VIEWS), "base": list(VIEWS)}[kind]
        p = dict(k=int(rng.integers(5)), axis=int(rng.integers(3)), keep=bool(rng.integers(2)),
                 ddof=int(rng.integers(2)), other=int(rng.integers(3)),
                 scalar=PY_SCALARS[int(rng.integers(len(PY_SCALARS)))],
                 dtype=DTYPES[int(rng.integers(len(DTYPES)))], where=int(rng.integers(4)))
        ops.append((kind, names[int(rng.integers(len(names)))], p))
    return ops


def build(ops):
    """The numpy function (x, y) -> scalar or array of a program."""
    def f(x, y):
        values = [x, y]
        v = x
        for kind, name, p in ops:
            other = values[p["other"] % len(values)]
            if np.shape(other) not in (np.shape(v), ()):
                other = np.sum(other)
            if kind == "elementwise":
                table = ELEMENTWISE if name in ELEMENTWISE else VALUE_ONLY
                v = table[name](v, other, p)
            elif kind == "reduce" and np.size(v) > 0:
                v = REDUCTIONS[name](v, p)
            elif kind == "index" and np.ndim(v) > 0 and np.shape(v)[0] > 0:
                v = INDEXING[name](v, p)
            elif kind == "copy" and np.ndim(v) > 0:
                # write into a copy: v itself must not change
                c = COPIES[name](v)
                # (.astype: numpy range-checks a numpy *scalar* written into an int array but
                # wraps a 0-d array; a traced value cannot tell the two apart)
                c[(0,) * np.ndim(c)] = (other if np.ndim(other) == 0 else
                                        np.sum(other)).astype(c.dtype)
                values.append(c)
            elif kind == "view" and np.ndim(v) > 0 and np.size(v) > 1:
                # write through a view into v (v must be a fresh array: views of the
                # function's arguments would write into the caller's arrays in numpy)
                v = v * 1.0 if v is x or v is y else v
                w = VIEWS[name](v)
                idx = (0,) * np.ndim(w)
                if p["k"] % 2:
                    w += 1.0  # in place through the view (an int view refuses, as numpy)
                elif np.size(w):
                    w[idx] = (w[idx] * 2.0 + 1.0).astype(w.dtype)  # .astype: as above
                values.append(w * 1.0)
            elif kind == "base" and np.ndim(v) > 0 and np.size(v) > 1:
                # write into v while a view of it is alive: the view sees the write
                v = v * 1.0 if v is x or v is y else v
                w = VIEWS[name](v)
                idx = (0,) * np.ndim(v)
                if p["k"] % 2:
                    v += other if np.ndim(other) == 0 else 1.0  # (int v refuses, as numpy)
                else:
                    v[idx] = (v[idx] * 2.0 + 1.0).astype(v.dtype)
                values.append(w * 1.0)
            values.append(v)
        out = v
        return out + np.sum(values[len(values) // 2] * 0.5) if np.ndim(out) == 0 else \
            out * 1.0 + np.sum(values[len(values) // 2]) * 0.5
    return f


def _inputs(rng, *, special, dtype=np.float64):
    shape = tuple(int(s) for s in rng.choice([1, 2, 3, 4, 7], size=int(rng.integers(0, 3))))
    x = rng.standard_normal(shape)
    y = rng.standard_normal(shape)
    if special and x.size:
        x.reshape(-1)[rng.integers(x.size, size=max(1, x.size // 2))] = \
            rng.choice(SPECIAL, size=max(1, x.size // 2))
    if dtype == np.bool_:
        x = x > 0
    elif np.dtype(dtype).kind == "i":  # huge values become INT_MIN on purpose
        with np.errstate(invalid="ignore"):
            x = (x * 3).astype(dtype) if np.all(np.isfinite(x)) else np.round(
                np.nan_to_num(x, posinf=5, neginf=-5)).astype(dtype)
    else:
        x = x.astype(dtype)
    return x, y


# ---------------------------------------------------------------------------------------------
# comparisons

def _run(f, mode, args):
    if mode != "tape":
        return ad.jit(f, mode=mode)(*args)
    out = f(*[ad.as_tensor(a) if isinstance(a, np.ndarray) else a for a in args])
    return out.numpy() if hasattr(out, "numpy") else out


def _close(got, want, tol, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, \
        f"{what}: shape/dtype {got.shape} {got.dtype}, numpy {want.shape} {want.dtype}"
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    finite = np.isfinite(want)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: nan")
    np.testing.assert_array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)],
                                  err_msg=f"{what}: inf")
    scale = float(np.max(np.abs(want[finite]), initial=0.0))
    assert np.all(np.abs(got[finite] - want[finite]) <= tol * scale + 1e-300), \
        f"{what}: {got} vs numpy {want}"


def check_values(seed, modes=MODES, aliasing=True):
    """A random program on special values and mixed dtypes: every mode gives numpy's value
    and dtype (or numpy's error)."""
    rng = np.random.default_rng(seed)
    ops = random_program(rng, values_only=True, aliasing=aliasing)
    dtype = DTYPES[int(rng.integers(len(DTYPES)))]
    x, y = _inputs(rng, special=bool(rng.integers(2)), dtype=dtype)
    f = build(ops)
    what = f"seed={seed} x={x!r} ops={[(k, n) for k, n, _ in ops]}"
    try:
        with np.errstate(all="ignore"):
            want = f(x.copy(), y.copy())
    except (TypeError, ValueError, IndexError, OverflowError) as e:  # numpy refuses: so must we
        base = next(t for t in (TypeError, ValueError, IndexError, OverflowError)
                    if isinstance(e, t))
        for mode in modes:
            with pytest.raises(base):
                _run(f, mode, (x, y))
        return
    # float32 programs: tolerances of float32 rounding; float64: of libm differences
    float32 = x.dtype == np.float32 or any(n == "cast" and p["dtype"] == np.float32
                                           for _, n, p in ops)
    tol = 1e-4 if float32 else 1e-9
    for mode in modes:
        try:
            with np.errstate(all="ignore"):
                got = _run(f, mode, (x.copy(), y.copy()))
        except (TypeError, NotImplementedError) as e:
            # a clear refusal (e.g. numpy's float16 result of np.sin(bool)) is allowed; a
            # crash is not
            if not REFUSAL.search(str(e)):
                raise
            continue
        _close(got, want, tol, f"{mode} {what}")


def _fd(f, x, y, eps):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.reshape(-1)[i] = eps
        g.reshape(-1)[i] = (f(x + e, y) - f(x - e, y)) / (2 * eps)
    return g


def _scalar(ops):
    f = build(ops)
    return lambda x, y: np.sum(f(x, y))


def _assert_grads(got, want, tol, what, vs_differences=False, noise=0.0):
    """got within tol * scale of want; NaN where want is NaN. Against finite differences
    (vs_differences) a NaN gradient is not compared: AD's NaN at a kink (sqrt'(0) of a
    zero std) is visible, not silent, and differences there are meaningless."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, what
    if not vs_differences:
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: nan")
    ok = ~np.isnan(want) & ~np.isnan(got)
    scale = max(float(np.max(np.abs(want[ok]), initial=0.0)), 1e-300)
    # central differences carry rounding noise ~|f| eps / step (`noise`) besides truncation
    floor = max(1e-6, noise) if vs_differences else 1e-10
    assert np.max(np.abs(got[ok] - want[ok]), initial=0.0) <= tol * scale + floor, \
        f"{what}: {got} vs {want}"


def _fd_noise(f, x, y):
    """The rounding noise of _fd's differences: |f| * eps / step, with a safety factor."""
    return 10.0 * abs(float(f(x, y))) * np.finfo(np.float64).eps / 1e-6


def _smooth_fd(f, x, y):
    """Central differences where two step sizes agree (no kink within a step), else None."""
    a, b = _fd(f, x, y, 1e-6), _fd(f, x, y, 1e-5)
    scale = max(float(np.max(np.abs(a), initial=0.0)), 1.0)
    return a if np.max(np.abs(a - b), initial=0.0) <= 1e-5 * scale else None


def check_gradients(seed, modes=MODES, aliasing=True):
    """A random differentiable program: gradients agree across modes and with finite
    differences; grad of grad agrees across modes and with differences of the gradient."""
    rng = np.random.default_rng(seed)
    ops = random_program(rng, values_only=False, aliasing=aliasing)
    x, y = _inputs(rng, special=False)
    f = _scalar(ops)
    what = f"seed={seed} shape={x.shape} ops={[(k, n) for k, n, _ in ops]}"
    with np.errstate(all="ignore"):
        if not np.isfinite(f(x, y)):
            return
    ref = ad.grad(f, mode="interpret")(x, y)
    for mode in set(modes) - {"interpret"}:
        _assert_grads(ad.grad(f, mode=mode)(x, y), ref, 1e-8, f"grad {mode} {what}")
    fd = _smooth_fd(f, x, y)
    if fd is not None:
        _assert_grads(ref, fd, 1e-4, f"grad vs finite differences {what}", True,
                      _fd_noise(f, x, y))
    # grad of grad: d/dx <grad f(x), v>
    if "compiled" not in modes:
        return
    v = rng.standard_normal(x.shape)
    hv = {}
    for mode in ("compiled", "interpret"):
        hv[mode] = ad.grad(lambda x, y: np.sum(ad.grad(f, mode=mode)(x, y) * v), mode=mode)(x, y)
    _assert_grads(hv["compiled"], hv["interpret"], 1e-7, f"grad of grad {what}")
    directional = lambda x, y: np.sum(ad.grad(f, mode="interpret")(x, y) * v)  # noqa: E731
    fd2 = _smooth_fd(directional, x, y)
    if fd2 is not None:
        _assert_grads(hv["interpret"], fd2, 1e-3, f"grad of grad vs differences {what}", True,
                      _fd_noise(directional, x, y))


def check_compositions(seed, mode, aliasing=True):
    """Nested grads with closures, and jit inside grad: d/dy sum(grad_x f(x, y) * w) where the
    inner grad closes over the outer argument y."""
    rng = np.random.default_rng(seed)
    ops = random_program(rng, values_only=False, aliasing=aliasing)
    x, y = _inputs(rng, special=False)
    f = _scalar(ops)
    w = rng.standard_normal(x.shape)
    with np.errstate(all="ignore"):
        if not np.isfinite(f(x, y)):
            return

    def outer(y):
        return np.sum(ad.grad(lambda x: f(x, y), mode=mode)(x) * w)

    def outer_ref(y):
        return np.sum(ad.grad(lambda x: f(x, y), mode="interpret")(x) * w)
    what = f"seed={seed} shape={x.shape} ops={[(k, n) for k, n, _ in ops]}"
    got = ad.grad(outer, mode=mode)(y)
    want = ad.grad(outer_ref, mode="interpret")(y)
    _assert_grads(got, want, 1e-7, f"nested closure grad {mode} {what}")
    fd = _smooth_fd(lambda y, _: outer_ref(y), y, None)
    if fd is not None:
        _assert_grads(want, fd, 1e-3, f"nested closure grad vs differences {what}", True,
                      _fd_noise(lambda y, _: outer_ref(y), y, None))
    # jit inside grad: the jitted (compiled) f differentiated by an outer grad of `mode`
    jf = ad.jit(f)
    _assert_grads(ad.grad(lambda x: jf(x, y), mode=mode)(x), ad.grad(f, mode="interpret")(x, y),
                  1e-8, f"grad of jit {mode} {what}")


# ---------------------------------------------------------------------------------------------
# the tests

N_CI, N_COMPOSE, N_SLOW, N_SLOW_GRAD = 10, 3, 2000, 600
TRACED = ("compiled", "interpret")


@pytest.mark.parametrize("seed", range(N_CI))
def test_values_agree_with_numpy(seed):
    check_values(seed, TRACED)
    check_values(seed, ("tape",), aliasing=False)


@pytest.mark.parametrize("seed", range(N_CI))
def test_gradients_agree(seed):
    check_gradients(10_000 + seed, TRACED)
    check_gradients(10_000 + seed, MODES, aliasing=False)


def test_tape_aliasing_agrees_with_numpy():
    for seed in range(N_CI):
        check_values(seed, ("tape",), aliasing="only")
        check_gradients(10_000 + seed, ("interpret", "tape"), aliasing="only")


@pytest.mark.parametrize("mode", ["compiled", "interpret", "tape"])
def test_compositions_agree(mode):
    for seed in range(N_COMPOSE):
        check_compositions(20_000 + seed, mode, aliasing=mode != "tape")


@pytest.mark.slow
@pytest.mark.parametrize("block", range(20))
def test_many_values_agree_with_numpy(block):
    for seed in range(N_CI + block * N_SLOW // 20, N_CI + (block + 1) * N_SLOW // 20):
        check_values(seed, TRACED)
        check_values(seed, ("tape",), aliasing=False)


@pytest.mark.slow
@pytest.mark.parametrize("block", range(20))
def test_many_gradients_agree(block):
    for seed in range(block * N_SLOW_GRAD // 20, (block + 1) * N_SLOW_GRAD // 20):
        check_gradients(10_000 + N_CI + seed, TRACED)
        check_gradients(10_000 + N_CI + seed, MODES, aliasing=False)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["compiled", "interpret"])
def test_many_compositions_agree(mode):
    for seed in range(N_COMPOSE, 150):
        check_compositions(20_000 + seed, mode)
