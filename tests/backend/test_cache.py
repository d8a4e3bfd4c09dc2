"""On-disk compile cache (backend/cache.py): hits in-process and across processes, key
contents, corrupt entries, unusable directories."""
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.backend import cache

ROOT = Path(__file__).resolve().parents[2]
C = np.linspace(-1.0, 2.0, 30).copy()   # (owns its memory: see the read-only line below)
W = np.linspace(0.0, 1.0, 30 * 200).reshape(30, 200)   # matmul big enough for BLAS
C.flags.writeable = False   # read-only arrays owning their memory are compiled in as constants


def f(x):
    # a constant array (relocated to a symbol), a BLAS dot, elementwise math
    return np.sum(np.sin(x) * C) + np.sum(np.tanh(x @ W))


def g(a, b):
    return np.sum(a * a * b) + np.sum(np.exp(b))


X = np.linspace(0.1, 1.0, 30)


def _exe(t):
    (spec,) = t._cache.values()
    return spec.executable


def test_same_process_hit(tmp_path):
    cache.reset_stats()
    g1 = ad.grad(f, cache=tmp_path)
    r1 = g1(X)
    assert cache.stats()["misses"] == 1 and cache.stats()["stores"] == 1
    assert len(list(tmp_path.glob("*" + cache.SUFFIX))) >= 1
    g2 = ad.grad(f, cache=str(tmp_path))        # a new transformed function, same IR
    r2 = g2(X)
    st = cache.stats()
    assert st["hits"] == 1 and st["misses"] == 1 and st["corrupt"] == 0
    assert np.array_equal(r1, r2)
    np.testing.assert_allclose(r2, ad.grad(f, cache=False)(X), rtol=1e-12)
    e1, e2 = _exe(g1), _exe(g2)
    assert (e1.cache_status, e2.cache_status) == ("miss", "hit")
    assert e2.method == e1.method == "capi"
    # loaded into the same engine: its symbols got a fresh generation, no clash
    assert e1.lowered.entry != e2.lowered.entry and e1.address != e2.address
    assert "external global" in e2.llvm_ir()
    assert "define" in e2.llvm_ir(optimized=True) and e2.asm()
    # many arguments, several results, 0-d inputs
    vg = ad.value_and_grad(g, argnums=(0, 1), cache=tmp_path)
    a, b = np.arange(5.0), np.float64(0.5)
    ref = vg(a, b)
    got = ad.value_and_grad(g, argnums=(0, 1), cache=tmp_path)(a, b)
    assert cache.stats()["hits"] == 2
    assert float(ref[0]) == float(got[0])
    assert all(np.array_equal(p, q) for p, q in zip(ref[1], got[1]))


def test_ctypes_call_path_hit(tmp_path):
    h = lambda i: i * 3 + 1  # noqa: E731 - integer arrays: ctypes call path
    i = np.arange(7, dtype=np.int64)
    ref = ad.jit(h, cache=tmp_path)(i)
    cache.reset_stats()
    j = ad.jit(h, cache=tmp_path)
    got = j(i)
    assert cache.stats()["hits"] == 1 and _exe(j).method == "ctypes"
    assert np.array_equal(ref, got) and got.dtype == np.int64


CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    sys.path.insert(0, {tests!r})
    import autodiff_jit as ad
    from autodiff_jit.backend import cache
    from test_cache import f, X
    t = time.perf_counter()
    r = ad.grad(f, cache={d!r})(X)
    t = time.perf_counter() - t
    st = cache.stats()
    print(st["hits"], st["misses"], st["corrupt"], r.tobytes().hex(), f"{{t:.4f}}")
""")


def _child(d):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", CHILD.format(tests=str(Path(__file__).parent),
                                                             d=str(d))],
                         capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=120)
    assert out.returncode == 0, out.stderr
    hits, misses, corrupt, data, t = out.stdout.split()
    return int(hits), int(misses), int(corrupt), data, float(t)


def test_second_process_hits(tmp_path):
    first = _child(tmp_path)
    second = _child(tmp_path)
    assert first[:3] == (0, 1, 0)
    assert second[:3] == (1, 0, 0)
    assert first[3] == second[3]                 # bit-identical gradients
    here = ad.grad(f, cache=False)(X)
    np.testing.assert_allclose(np.frombuffer(bytes.fromhex(second[3])), here, rtol=1e-12)


def test_key_depends_on_host_and_versions():
    gr = ad.grad(f)
    gr(X)
    fn = next(iter(gr._cache.values())).optimized
    base = cache.key(fn)
    assert base == cache.key(fn)
    env = cache.environment()
    variants = [dict(cpu=env["cpu"] + "x"), dict(features=env["features"] + ",+fake"),
                dict(llvmlite="0.0.1"), dict(autodiff_jit="9.9"),
                dict(format=cache.FORMAT_VERSION + 1), dict(llvm="1.0.0"),
                dict(sources="0" * 64)]
    keys = {cache.key(fn, **v) for v in variants}
    assert base not in keys and len(keys) == len(variants)
    assert cache.key(fn, method="ctypes") != base
    gr2 = ad.grad(lambda x: f(x) * 2.0)
    gr2(X)
    assert cache.key(next(iter(gr2._cache.values())).optimized) != base


def test_corrupt_entry_is_recompiled(tmp_path):
    t = ad.grad(f, cache=tmp_path)
    ref = t(X)
    entry = tmp_path / (_exe(t).cache_key + cache.SUFFIX)
    data = bytearray(entry.read_bytes())
    for bad in (bytes(data[:len(data) // 2]),                          # truncated
                bytes(data[:100]) + bytes([data[100] ^ 0xFF]) + bytes(data[101:]),  # flipped
                b"garbage"):
        entry.write_bytes(bad)
        cache.reset_stats()
        r = ad.grad(f, cache=tmp_path)(X)
        st = cache.stats()
        assert (st["corrupt"], st["misses"], st["stores"]) == (1, 1, 1)
        assert np.array_equal(r, ref)
        cache.reset_stats()
        ad.grad(f, cache=tmp_path)(X)                # the rewritten entry is good again
        assert cache.stats()["hits"] == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_unwritable_directory_warns_and_works(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    d = blocker / "cache"                        # cannot be created, even by root
    cache.reset_stats()
    with pytest.warns(RuntimeWarning, match="not usable"):
        r = ad.grad(f, cache=d)(X)
    np.testing.assert_allclose(r, ad.grad(f, cache=False)(X), rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # warned once per directory
        ad.grad(f, cache=d)(X)
    st = cache.stats()
    assert st["write_errors"] == 2 and st["hits"] == 0 and st["stores"] == 0


def test_default_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTODIFF_JIT_CACHE_DIR", str(tmp_path / "env"))
    assert cache.resolve_dir(True) == tmp_path / "env"
    monkeypatch.delenv("AUTODIFF_JIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.default_dir() == tmp_path / "xdg" / "autodiff_jit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.default_dir() == Path.home() / ".cache" / "autodiff_jit"
    monkeypatch.setenv("AUTODIFF_JIT_CACHE_DIR", str(tmp_path / "env"))
    ad.grad(f, cache=True)(X)
    assert list((tmp_path / "env").glob("*" + cache.SUFFIX))
    assert cache.clear(True) >= 1
    assert not list((tmp_path / "env").glob("*" + cache.SUFFIX))
    with pytest.raises(TypeError):
        cache.resolve_dir(3)


def _status(fn, x, d):
    t = ad.grad(fn, cache=d)
    out = t(x)
    return _exe(t).cache_status, out


def test_what_the_code_computes_is_in_the_key(tmp_path):
    """A changed body, closure value, global, dtype or shape is a miss, never a stale hit."""
    global SCALE
    x = np.linspace(0.5, 1.5, 4)

    def make(c):
        return lambda v: np.sum(np.sin(v) * c * SCALE)
    SCALE = 2.0
    assert _status(make(3.0), x, tmp_path)[0] == "miss"
    assert _status(make(3.0), x, tmp_path)[0] == "hit"          # same code, new closure cell
    st, out = _status(make(4.0), x, tmp_path)                   # closure value
    assert st == "miss" and np.allclose(out, np.cos(x) * 4.0 * 2.0)
    SCALE = 5.0                                                  # global it reads
    st, out = _status(make(3.0), x, tmp_path)
    assert st == "miss" and np.allclose(out, np.cos(x) * 3.0 * 5.0)
    st, out = _status(lambda v: np.sum(np.cos(v) * 3.0 * SCALE), x, tmp_path)  # body
    assert st == "miss" and np.allclose(out, -np.sin(x) * 15.0)
    st, out = _status(make(3.0), x.astype(np.float32), tmp_path)  # dtype
    assert st == "miss" and out.dtype == np.float32
    st, out = _status(make(3.0), np.linspace(0.5, 1.5, 5), tmp_path)   # shape
    assert st == "miss" and out.shape == (5,)
    assert _status(make(3.0), x, tmp_path)[0] == "hit"


SCALE = 1.0


def test_a_changed_backend_source_file_changes_the_key(monkeypatch):
    """The sources fingerprint follows each lowering file's size and modification time."""
    gr = ad.grad(f)
    gr(X)
    fn = next(iter(gr._cache.values())).optimized
    base = cache.key(fn)
    target = Path(cache.__file__).resolve().parents[1] / "passes" / "fuse.py"
    st = target.stat()
    monkeypatch.setattr(cache, "_fingerprint", {})
    try:
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        touched = cache.key(fn)
    finally:
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    monkeypatch.setattr(cache, "_fingerprint", {})
    assert touched != base and cache.key(fn) == base
