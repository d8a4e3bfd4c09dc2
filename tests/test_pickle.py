"""Transformed functions pickle by reference to the user's function (never compiled code)
and work in the receiving process: pickle round trips, closures through cloudpickle, a
process pool computing gradients."""
import concurrent.futures
import multiprocessing
import pickle
import sys

import numpy as np
import pytest

import autodiff_jit as ad

X = np.linspace(-1.0, 1.0, 5)


def loss(x, k):
    return np.sum(np.sin(x) * x) * k


def ref_grad(x, k):
    return (np.cos(x) * x + np.sin(x)) * k


def params_loss(p):
    return np.sum(p["w"] ** 2 * p["b"])


def cube(x):
    return x ** 3


@ad.grad
def decorated(x):
    return np.sum(x ** 3)


grad_loss = ad.grad(loss, static_argnums=1, cache_size=7)


def test_round_trip_module_level_function():
    grad_loss(X, 2.0)   # compiled here: nothing of that goes into the pickle
    data = pickle.dumps(grad_loss)
    assert len(data) < 500
    back = pickle.loads(data)
    assert back is not grad_loss and back.fun is loss
    assert (back.kind, back.static_argnums, back.cache_size) == ("grad", (1,), 7)
    assert back.cache_info()["size"] == 0
    np.testing.assert_allclose(back(X, 2.0), ref_grad(X, 2.0), rtol=1e-13)


def test_round_trip_options_and_kinds():
    cases = [ad.value_and_grad(params_loss, has_aux=False, mode="interpret"),
             ad.jit(loss, static_argnums=(1,), cache_size=None),
             ad.grad(ad.grad(cube)),          # a transformed function of a transformed one
             ad.grad(loss, argnums=(0,), static_argnums=1)]
    p = {"w": X, "b": X + 2}
    for t in cases:
        back = pickle.loads(pickle.dumps(t))
        assert back._options() == t._options() and back.kind == t.kind
    v, g = pickle.loads(pickle.dumps(cases[0]))(p)
    np.testing.assert_allclose(g["w"], 2 * X * (X + 2), rtol=1e-13)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(cases[2]))(0.3), 6 * 0.3, rtol=1e-14)


def test_decorated_module_level_function_pickles_by_name():
    data = pickle.dumps(decorated)
    assert b"decorated" in data
    assert pickle.loads(data) is decorated      # the receiver's own, found by name


def test_closure_needs_cloudpickle(monkeypatch):
    k = 3.0
    g = ad.grad(lambda x: np.sum(x * x) * k)
    monkeypatch.setitem(sys.modules, "cloudpickle", None)   # as if not installed
    with pytest.raises(pickle.PicklingError, match="module level.*cloudpickle"):
        pickle.dumps(g)


def test_closure_through_cloudpickle():
    pytest.importorskip("cloudpickle")
    k = 3.0
    g = ad.grad(lambda x: np.sum(x * x) * k)
    g(X)
    back = pickle.loads(pickle.dumps(g))     # plain pickle: the closure is inside, by value
    np.testing.assert_allclose(back(X), 2 * X * k, rtol=1e-13)


def _shard_grads(transformed, shards):
    """Worker side: call the unpickled transformed function on each shard."""
    return [transformed(x, 2.0) for x in shards]


def test_process_pool_computes_gradients():
    """A fresh (spawned) process unpickles the transformed function, compiles it there and
    computes gradients equal to this process's."""
    shards = [X, X * 2, np.linspace(0.0, 3.0, 7)]
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        got = pool.submit(_shard_grads, grad_loss, shards).result(timeout=120)
        direct = list(pool.map(grad_loss, shards, [2.0] * 3, timeout=120))
    for x, a, b in zip(shards, got, direct):
        np.testing.assert_allclose(a, ref_grad(x, 2.0), rtol=1e-13)
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow   # (examples/parallel_gradients.py runs joblib in the default suite)
def test_joblib_with_a_closure():
    joblib = pytest.importorskip("joblib")
    pytest.importorskip("cloudpickle")
    k = 0.5
    g = ad.grad(lambda p: params_loss(p) * k)
    ps = [{"w": X * i, "b": X + i} for i in range(3)]
    got = joblib.Parallel(n_jobs=2)(joblib.delayed(g)(p) for p in ps)
    for p, r in zip(ps, got):
        np.testing.assert_allclose(r["w"], 2 * p["w"] * p["b"] * k, rtol=1e-13)
        np.testing.assert_allclose(r["b"], p["w"] ** 2 * k, rtol=1e-13)
