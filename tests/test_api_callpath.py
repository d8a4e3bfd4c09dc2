"""The call path of transformed functions: every call style (positional, pytrees, keywords,
static arguments) gives the general path's results from its fast entry; the specialization
cache is a bounded LRU whose evicted entries, and whose garbage-collected functions, free
their compiled code."""
import collections
import gc
import weakref

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.backend import engine

W = np.linspace(0.1, 1.0, 4)
B = np.linspace(1.0, 2.0, 4)


def loss(w, b):
    return np.sum(w * w * b) + np.sum(np.sin(b))


def ref_grads(w, b):
    return 2 * w * b, w * w + np.cos(b)


Pair = collections.namedtuple("Pair", ["w", "b"])


def _no_general_path(t, monkeypatch):
    """Make the general path fail: what still works went through a fast entry."""
    def refuse(*a, **k):
        raise AssertionError("general call path taken for a signature seen before")
    monkeypatch.setattr(t, "_call", refuse)


@pytest.mark.parametrize("mode", ["compiled", "interpret"])
@pytest.mark.parametrize("style", ["tuple", "list", "dict", "nested", "namedtuple"])
def test_pytree_argument_fast_entry_matches_reference(style, mode, monkeypatch):
    build = {
        "tuple": lambda w, b: (w, b),
        "list": lambda w, b: [w, b],
        "dict": lambda w, b: {"w": w, "b": b},      # insertion order differs from sorted
        "nested": lambda w, b: {"layer": [{"w": w}, (b,)]},
        "namedtuple": lambda w, b: Pair(w, b),
    }[style]
    read = {
        "tuple": lambda p: (p[0], p[1]),
        "list": lambda p: (p[0], p[1]),
        "dict": lambda p: (p["w"], p["b"]),
        "nested": lambda p: (p["layer"][0]["w"], p["layer"][1][0]),
        "namedtuple": lambda p: (p.w, p.b),
    }[style]
    g = ad.grad(lambda p: loss(*read(p)), mode=mode)
    g(build(W, B))                         # general path: specializes, registers the entry
    _no_general_path(g, monkeypatch)
    for k in range(3):                     # new values, same signature: fresh results
        w, b = W + k, B * (k + 1)
        got = read(g(build(w, b)))
        for x, r in zip(got, ref_grads(w, b)):
            np.testing.assert_allclose(x, r, rtol=1e-13)
    assert type(g(build(W, B))) is type(build(W, B))


@pytest.mark.parametrize("mode", ["compiled", "interpret"])
def test_keyword_and_static_arguments(mode, monkeypatch):
    def scaled(w, b, k, *, act="sin"):
        return k * (np.sum(w * w * b) + np.sum(np.sin(b) if act == "sin" else np.cos(b)))

    g = ad.grad(scaled, argnums=(0, 1), static_argnums=2, mode=mode)
    first = g(W, B, 3, act="sin")
    second = g(W, B, 3, act="cos")          # a different static keyword: a new specialization
    g(W, B, 2), g(W, B, 3)
    assert g.cache_info()["size"] == 4      # (no keyword is another signature than act="sin")
    _no_general_path(g, monkeypatch)
    for k in (3, 2):
        got = g(W * 2, B, k)
        gw, gb = ref_grads(W * 2, B)
        np.testing.assert_allclose(got[0], k * gw, rtol=1e-13)
        np.testing.assert_allclose(got[1], k * gb, rtol=1e-13)
    np.testing.assert_allclose(first[1], 3 * ref_grads(W, B)[1], rtol=1e-13)
    np.testing.assert_allclose(second[1], 3 * (W * W - np.sin(B)), rtol=1e-13)
    np.testing.assert_allclose(g(W, B, 3, act="cos")[1], second[1], rtol=0)


def test_keyword_dynamic_argument_and_argument_order():
    g = ad.value_and_grad(loss)
    v1, g1 = g(W, b=B)
    v2, g2 = g(W, b=B * 2)                 # fast entry
    v3, g3 = g(W, B * 2)
    assert v2 == v3 and np.array_equal(g2, g3)
    np.testing.assert_allclose(g1, ref_grads(W, B)[0], rtol=1e-13)
    np.testing.assert_allclose(v1, loss(W, B), rtol=1e-13)


def test_same_array_twice_and_scalar_leaves():
    def f(p):
        return np.sum(p["a"] * p["b"]) * p["s"] + p["n"]

    g = ad.grad(f)
    for _ in range(2):
        x = np.linspace(0, 1, 3)
        got = g({"a": x, "b": x, "s": 2.0, "n": 1.0})     # one object as two leaves
        np.testing.assert_allclose(got["a"], 2.0 * x, rtol=1e-13)
        np.testing.assert_allclose(got["b"], 2.0 * x, rtol=1e-13)
        np.testing.assert_allclose(got["s"], np.sum(x * x), rtol=1e-13)
        assert got["n"] == 1.0


@pytest.mark.parametrize("mode", ["compiled", "interpret"])
def test_one_object_in_two_places_then_two_objects(mode):
    """The first call passes one object as two leaves (one array in two dict slots, the small
    int 1 twice); later calls of the same signature pass different values there, which the
    fast entry must not take from the first slot."""
    h = ad.jit(lambda p: p["a"] + 2.0 * p["b"], mode=mode)
    x = np.ones(2)
    np.testing.assert_array_equal(h({"a": x, "b": x}), [3.0, 3.0])
    np.testing.assert_array_equal(h({"a": x, "b": np.zeros(2)}), [1.0, 1.0])
    np.testing.assert_array_equal(h({"b": np.zeros(2), "a": x}), [1.0, 1.0])
    j = ad.jit(lambda p: p[0] * 1.0 + 10.0 * p[1], mode=mode)
    assert j((1, 1)) == 11.0 and j((1, 2)) == 21.0 and j((2, 1)) == 12.0
    g = ad.grad(lambda p: np.sum(p["w"] * p["b"] ** 2), mode=mode)
    g({"w": x, "b": x})
    got = g({"w": x, "b": 3.0 * x})
    np.testing.assert_array_equal(got["w"], [9.0, 9.0])
    np.testing.assert_array_equal(got["b"], [6.0, 6.0])


def test_matcher_routes_only_calls_of_its_structure():
    """The generated matcher of the last pytree signature (callsig.matcher): calls of the same
    structure in any dict key order take it; anything else falls through to the signature
    path or the general path, with the results those give."""
    def f(p, scale=1.0):
        return scale * sum(np.sum(np.sin(v)) for v in p.values())

    def ref(p, scale=1.0):
        return {k: scale * np.cos(v) for k, v in p.items()}

    g = ad.grad(f)
    g({"w": W, "b": B})
    assert g._match is not None
    calls = [
        ({"b": B, "w": W}, {}),                                  # other key order: matched
        ({"w": W, "b": B, "c": W}, {}),                          # extra key
        ({"w": W, "c": B}, {}),                                  # other key
        ({"w": W[:3], "b": B}, {}),                              # other shape
        ({"w": W.astype(np.float32), "b": B}, {}),               # other dtype
        ({"w": W.astype(">f8"), "b": B}, {}),                    # byte-swapped
        ({"w": W.view(type("Sub", (np.ndarray,), {})), "b": B}, {}),   # ndarray subclass
        ({"w": 0.5, "b": B}, {}),                                # scalar for an array
        (collections.OrderedDict(w=W, b=B), {}),                 # dict subclass
        ({"w": W, "b": B}, {"scale": 2.0}),                      # a keyword more
    ]
    for p, kw in calls:
        got, want = g(p, **kw), ref(p, **kw)
        assert set(got) == set(want)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-6 if np.asarray(p[k]).dtype
                                       == np.float32 else 1e-13)
            assert np.asarray(got[k]).shape == np.shape(p[k])


def test_matcher_of_keyword_calls():
    g = ad.grad(loss)
    g(W, b=B)
    assert g._match is not None
    for k in range(3):
        np.testing.assert_allclose(g(W + k, b=B * k), ref_grads(W + k, B * k)[0], rtol=1e-13)
    np.testing.assert_allclose(g(W, B), ref_grads(W, B)[0], rtol=1e-13)   # positional: no


def test_matcher_follows_eviction_clear_cache_and_debug_nans():
    g = ad.grad(lambda p: np.sum(np.sqrt(p["x"])), cache_size=1)
    g({"x": np.ones(3)})
    first = g._match
    g({"x": np.ones(4)})                    # evicts the first specialization
    assert g._match is not None and g._match is not first
    np.testing.assert_array_equal(g({"x": np.full(3, 4.0)})["x"], [0.25] * 3)
    g.clear_cache()
    assert g._match is None
    g({"x": np.ones(3)})
    ad.config.debug_nans = True
    try:
        assert g._match is None             # with debug_nans every call takes the checked path
        with pytest.raises(FloatingPointError, match="sqrt"):
            g({"x": np.array([-1.0, 1.0, 2.0])})
    finally:
        ad.config.debug_nans = False


def test_jit_pytree_results():
    f = ad.jit(lambda p, scale: {"y": p["x"] * scale, "s": (np.sum(p["x"]),)})
    for k in range(2):
        out = f({"x": W + k}, 2.0)
        np.testing.assert_allclose(out["y"], (W + k) * 2.0, rtol=1e-13)
        np.testing.assert_allclose(out["s"][0], np.sum(W + k), rtol=1e-13)


def test_dtype_or_shape_change_respecializes():
    g = ad.grad(lambda p: np.sum(p["x"] ** 2))
    a = g({"x": np.ones(3)})
    b = g({"x": np.ones(3, np.float32)})
    c = g({"x": np.ones(4)})
    assert a["x"].dtype == np.float64 and b["x"].dtype == np.float32 and c["x"].shape == (4,)
    assert g.cache_info()["size"] == 3


def test_unhashable_static_value_is_a_clear_error():
    g = ad.grad(lambda x, opts: np.sum(x) * len(opts), static_argnums=1)
    with pytest.raises(TypeError, match="hashable"):
        g(W, [1, 2])


# ---------------------------------------------------------------------------------------------
# the specialization cache

def test_cache_size_bounds_and_evicts_least_recently_used():
    g = ad.grad(lambda x: np.sum(x * x), cache_size=2)
    x3, x4, x5 = np.ones(3), np.ones(4), np.ones(5)
    g(x3), g(x4)
    g(x3)                          # fast entry: x3 becomes the most recently used
    g(x5)                          # evicts x4
    shapes = sorted(k[1][0].shape for k in g._cache)
    assert shapes == [(3,), (5,)]
    assert {k: g.cache_info()[k] for k in ("size", "max_size", "fast_signatures")} == \
        {"size": 2, "max_size": 2, "fast_signatures": 2}
    np.testing.assert_allclose(g(x4), 2 * x4)       # rebuilt on demand
    assert sorted(k[1][0].shape for k in g._cache) == [(4,), (5,)]


def test_clear_cache():
    g = ad.grad(lambda p: np.sum(p["x"] ** 3))
    g({"x": W}), g({"x": B[:2]})
    g.clear_cache()
    assert g.cache_info()["size"] == 0 and g.cache_info()["fast_signatures"] == 0
    np.testing.assert_allclose(g({"x": W})["x"], 3 * W ** 2, rtol=1e-13)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "64", True])
def test_bad_cache_size(bad):
    with pytest.raises(ValueError, match="cache_size"):
        ad.grad(loss, cache_size=bad)


def test_unbounded_cache():
    g = ad.jit(lambda x: x + 1.0, cache_size=None, mode="interpret")
    for n in range(1, 6):
        g(np.ones(n))
    assert {k: g.cache_info()[k] for k in ("size", "max_size", "fast_signatures")} == \
        {"size": 5, "max_size": None, "fast_signatures": 5}


def test_evicted_code_is_freed_at_once(monkeypatch):
    """Reference counting alone (no gc pass) frees an evicted entry's executable and, once
    all its functions are gone, its code unit (MCJIT engine with the machine code)."""
    monkeypatch.setattr(engine, "FUNCTIONS_PER_UNIT", 1)
    g = ad.grad(lambda x: np.sum(np.sin(x) * x), cache_size=2)
    g(np.ones(3)), g({"x": np.ones(3)}["x"])
    exe = weakref.ref(next(iter(g._cache.values())).executable)
    unit = weakref.ref(exe()._unit)
    gc.disable()
    try:
        before = engine.live_units()
        for n in range(4, 12):
            g(np.ones(n))
        assert exe() is None and unit() is None
        # 8 compiled, the cache keeps 2 of 9: without freeing this would be before + 8
        assert engine.live_units() <= before + 1
    finally:
        gc.enable()


def test_garbage_collected_function_frees_its_code(monkeypatch):
    monkeypatch.setattr(engine, "FUNCTIONS_PER_UNIT", 1)
    gc.collect()
    before = engine.live_units()
    g = ad.grad(lambda p: np.sum(p["w"] * p["b"]))
    for n in range(2, 6):
        g({"w": np.ones(n), "b": np.ones(n)})
    assert engine.live_units() == before + 4
    del g
    assert engine.live_units() == before      # no cycles: freed by reference counting


def test_units_are_shared_and_freed_when_all_their_functions_are(monkeypatch):
    monkeypatch.setattr(engine, "FUNCTIONS_PER_UNIT", 3)
    monkeypatch.setattr(engine, "_open_unit", {})
    gc.collect()
    before = engine.live_units()
    g = ad.jit(lambda x: x * 2.0, cache_size=None)
    for n in range(1, 7):
        g(np.ones(n))
    assert engine.live_units() == before + 2       # 6 functions, 3 per unit
    g.clear_cache()
    assert engine.live_units() == before


def test_respecialization_from_the_disk_cache(tmp_path):
    from autodiff_jit.backend import cache
    g = ad.grad(lambda p: np.sum(np.tanh(p["x"]) * p["y"]), cache=tmp_path, cache_size=1)
    p = {"x": W, "y": B}
    want = g(p)
    g({"x": np.ones(2), "y": np.ones(2)})          # evicts the first
    cache.reset_stats()
    again = g(p)
    assert cache.stats()["hits"] == 1 and cache.stats()["misses"] == 0
    np.testing.assert_array_equal(again["x"], want["x"])


def test_deepcopy_and_copy_give_a_fresh_working_function(capfd):
    import copy
    g = ad.grad(loss, argnums=(0, 1), cache_size=8)
    g(W, B)
    for c in (copy.deepcopy(g), copy.copy(g)):
        assert c is not g and c.cache_info()["size"] == 0 and c.cache_info()["max_size"] == 8 \
            and c.cache_info()["fast_signatures"] == 0
        np.testing.assert_allclose(c(W, B)[1], ref_grads(W, B)[1], rtol=1e-13)
    spec = g.specialize(W, B)
    with pytest.raises(TypeError, match="cannot be pickled or copied"):
        copy.deepcopy(spec.executable)
    gc.collect()
    err = capfd.readouterr().err
    assert "Exception ignored" not in err and "__del__" not in err


@pytest.mark.parametrize("t", [
    1.0, (1.0, 2.0), [1.0, 2.0], {"b": 1.0, "a": 2.0}, {"a": [1.0, (2.0, None)], "b": {"c": 3.0}},
    Pair(1.0, [2.0, 3.0]), Pair(1.0, 2.0), (), {"x": ()}, [None, {"k": 1.0}],
])
def test_unflattener_matches_unflatten(t):
    from autodiff_jit import tree
    leaves, td = tree.flatten(t)
    marks = [object() for _ in leaves]
    got, want = tree.unflattener(td)(marks), tree.unflatten(td, marks)
    assert got == want and type(got) is type(want)
    assert tree.flatten(got)[0] == marks    # same leaves, in the same places


@pytest.mark.slow
def test_memory_is_flat_once_the_cache_is_full():
    """RSS past the cache bound: each new shape evicts one specialization and frees its code.
    Before the optimizer freed its pipeline this grew by ~122 kB per shape (36 MB here); now
    by a few kB. The bound (40 kB per shape) leaves room for allocator noise."""
    import os
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("reads RSS from /proc")

    def rss_bytes():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    g = ad.grad(lambda x: np.sum(np.sin(x) * x + np.exp(-x * x)), cache_size=8)
    for n in range(1, 101):                 # fill the cache, warm up allocator and LLVM
        g(np.ones(n))
    gc.collect()
    before = rss_bytes()
    shapes = 300
    for n in range(101, 101 + shapes):
        g(np.ones(n))
    gc.collect()
    per_shape = (rss_bytes() - before) / shapes
    assert g.cache_info()["size"] == 8
    assert per_shape < 40_000, f"RSS grew {per_shape / 1e3:.1f} kB per new shape"
