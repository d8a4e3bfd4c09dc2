"""The disk cache as a default (backend/cache.py, ad.config.cache): switching it on and off,
the size cap and its least-recently-used eviction, directories that cannot be used, and keys
that change with each thing the machine code depends on (a stale hit would be a wrong answer)."""
import errno
import json
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
from autodiff_jit.config import parse_bytes

ROOT = Path(__file__).resolve().parents[2]
X = np.linspace(0.1, 1.0, 6)


def _exe(t):
    (spec,) = t._cache.values()
    return spec.executable


def _make(k):
    """A distinct small gradient per k (a different literal: a different key)."""
    return lambda x: np.sum(np.sin(x) * x) * (k + 1.5)


def _expected(k, x=X):
    return (np.cos(x) * x + np.sin(x)) * (k + 1.5)


def _run(fn, d=None, x=X):
    t = ad.grad(fn) if d is None else ad.grad(fn, cache=d)
    out = t(x)
    return _exe(t).cache_status, out


def _entries(d):
    return sorted(Path(d).glob("*" + cache.SUFFIX))


# ---------------------------------------------------------------------------------------------
# on by default; off per function, in ad.config, by environment

def test_on_by_default_in_the_default_directory():
    d = cache.default_dir()          # this test's own directory (tests/conftest.py)
    assert "adcache" in str(d) and not str(d).startswith(str(Path.home() / ".cache"))
    assert ad.config.cache is True
    assert _run(_make(0))[0] == "miss"
    st, out = _run(_make(0))
    assert st == "hit" and np.allclose(out, _expected(0), rtol=1e-13)
    assert _entries(d)


def test_switched_off_per_function_and_in_config(monkeypatch, tmp_path):
    assert _run(_make(1))[0] == "miss"
    t = ad.grad(_make(1), cache=False)
    out = t(X)
    assert _exe(t).cache_status is None and np.allclose(out, _expected(1), rtol=1e-13)
    monkeypatch.setattr(ad.config, "cache", False)
    assert _run(_make(2))[0] is None
    assert _run(_make(2), d=True)[0] == "miss"                 # cache=True wins over config
    assert _run(_make(2), d=tmp_path)[0] == "miss" and _entries(tmp_path)
    ad.config.cache = str(tmp_path)                            # config: a directory
    assert _run(_make(2))[0] == "hit"


def test_bad_cache_options_are_refused():
    with pytest.raises(TypeError, match="cache must be True, False or a directory"):
        ad.grad(_make(0), cache=3)
    with pytest.raises(TypeError, match="empty string"):
        ad.jit(_make(0), cache="")
    with pytest.raises(TypeError, match="ad.config.cache"):
        ad.config.cache = 1.5
    with pytest.raises(ValueError, match="cache_max_bytes"):
        ad.config.cache_max_bytes = 0
    assert ad.config.cache is True


def test_byte_sizes():
    assert parse_bytes("512M") == 512 << 20 and parse_bytes("2GiB") == 2 << 30
    assert parse_bytes("10000") == 10000 and parse_bytes("1.5k") == 1536
    assert parse_bytes(" None ") is None
    for bad in ("", "-1", "0", "12Q", "lots"):
        with pytest.raises(ValueError, match="positive size"):
            parse_bytes(bad)


CONFIG_CHILD = "import json, autodiff_jit as ad; print(json.dumps([ad.config.cache, " \
               "ad.config.cache_max_bytes]))"


@pytest.mark.parametrize("env, expect", [
    ({}, [True, 256 << 20]),
    ({"AUTODIFF_JIT_CACHE": "0"}, [False, 256 << 20]),
    ({"AUTODIFF_JIT_CACHE": "off", "AUTODIFF_JIT_CACHE_MAX_BYTES": "64M"}, [False, 64 << 20]),
    ({"AUTODIFF_JIT_CACHE": "1", "AUTODIFF_JIT_CACHE_MAX_BYTES": "none"}, [True, None]),
    ({"AUTODIFF_JIT_CACHE_MAX_BYTES": "plenty"}, [True, 256 << 20]),   # warned, default kept
])
def test_environment_variables(env, expect):
    full = {k: v for k, v in os.environ.items()
            if k not in ("AUTODIFF_JIT_CACHE", "AUTODIFF_JIT_CACHE_MAX_BYTES")}
    full.update(env, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", CONFIG_CHILD], env=full, capture_output=True,
                         text=True, timeout=120, check=True)
    assert json.loads(out.stdout) == expect
    assert ("AUTODIFF_JIT_CACHE_MAX_BYTES" in out.stderr) == (env.get(
        "AUTODIFF_JIT_CACHE_MAX_BYTES") == "plenty")


# ---------------------------------------------------------------------------------------------
# size cap, least recently used first

def _fill(d, ks):
    for k in ks:
        assert _run(_make(k), d)[0] == "miss"
    return _entries(d)


def _age(paths, start=1_000_000):
    """Give entries increasing modification times (seconds since the epoch), oldest first."""
    for i, p in enumerate(paths):
        os.utime(p, (start + i, start + i))


def test_prune_deletes_least_recently_used_first(tmp_path):
    paths = _fill(tmp_path, range(6))
    by_k = {}
    for k in range(6):      # which file belongs to which function
        t = ad.grad(_make(k), cache=tmp_path)
        t(X)
        by_k[k] = cache.entry_path(tmp_path, _exe(t).cache_key)
    order = [by_k[k] for k in (3, 0, 5, 1, 4, 2)]   # 3 least recently used, 2 most
    _age(order)
    sizes = {p: p.stat().st_size for p in paths}
    total = sum(sizes.values())
    assert cache.size(tmp_path) == total
    assert cache.prune(tmp_path, max_bytes=total) == 0            # at the cap: nothing to do
    cap = total - 1
    n = cache.prune(tmp_path, max_bytes=cap)
    left = set(_entries(tmp_path))
    assert n >= 1 and left == set(order[n:])                      # the oldest n went
    assert cache.size(tmp_path) <= cache.LOW_WATER * cap
    assert cache.size(tmp_path) + sizes[order[n - 1]] > cache.LOW_WATER * cap   # no more
    # a hit touches its entry: the least recently *used*, not written, goes next
    oldest = order[n]
    k_oldest = next(k for k, p in by_k.items() if p == oldest)
    assert _run(_make(k_oldest), tmp_path)[0] == "hit"
    assert oldest.stat().st_mtime > order[-1].stat().st_mtime
    cache.prune(tmp_path, max_bytes=cache.size(tmp_path) - 1)
    assert oldest.exists()


def test_writes_keep_the_directory_under_its_cap(monkeypatch, tmp_path):
    paths = _fill(tmp_path, range(2))
    one = max(p.stat().st_size for p in paths)
    cache.clear(tmp_path)
    cap = 3 * one
    monkeypatch.setattr(ad.config, "cache_max_bytes", cap)   # every write checks (10n > cap)
    cache.reset_stats()
    for k in range(8):
        st, out = _run(_make(k), tmp_path)
        assert st == "miss" and np.allclose(out, _expected(k), rtol=1e-13)
        assert cache.size(tmp_path) <= cap
    assert cache.stats()["evicted"] >= 5
    assert _run(_make(7), tmp_path)[0] == "hit"                   # the newest stayed
    assert _run(_make(0), tmp_path)[0] == "miss"                  # the oldest went


def test_a_big_cap_checks_rarely(monkeypatch, tmp_path):
    monkeypatch.setattr(ad.config, "cache_max_bytes", 1 << 40)
    calls = []
    monkeypatch.setattr(cache, "prune", lambda *a, **k: calls.append(a))
    _fill(tmp_path, range(3))
    assert calls == []          # chance 10 * ~10 kB / 1 TiB per write


def test_prune_tolerates_files_vanishing_and_clears_stale_temporaries(monkeypatch, tmp_path):
    paths = _fill(tmp_path, range(3))
    _age(paths)
    stale, fresh = tmp_path / ".x.1.2.tmp", tmp_path / ".y.1.2.tmp"
    stale.write_bytes(b"crashed writer")
    fresh.write_bytes(b"writer at work")
    os.utime(stale, (1_000_000, 1_000_000))
    real_unlink = os.unlink

    def racing_unlink(p):   # another process deletes the file first
        real_unlink(p)
        raise FileNotFoundError(errno.ENOENT, "gone", str(p))
    monkeypatch.setattr(cache.os, "unlink", racing_unlink)
    cache.prune(tmp_path, max_bytes=1)
    monkeypatch.undo()
    assert not _entries(tmp_path) and not stale.exists() and fresh.exists()
    assert cache.prune(tmp_path / "missing", max_bytes=1) == 0
    assert cache.size(tmp_path / "missing") == 0


def test_a_failing_prune_warns_and_compiles(monkeypatch, tmp_path):
    monkeypatch.setattr(ad.config, "cache_max_bytes", 1)

    def refuse(*a, **k):
        raise PermissionError(errno.EACCES, "no listing here")
    monkeypatch.setattr(cache.os, "scandir", refuse)
    with pytest.warns(RuntimeWarning, match="pruning failed"):
        st, out = _run(_make(0), tmp_path)
    assert st == "miss" and np.allclose(out, _expected(0), rtol=1e-13)


CONCURRENT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import autodiff_jit as ad
    from autodiff_jit.backend import cache
    base, x = int(sys.argv[1]), np.linspace(0.1, 1.0, 6)
    outs = []
    for k in range(base, base + 4):
        g = ad.grad(lambda v: np.sum(np.sin(v) * v) * (k % 5 + 1.5), cache=sys.argv[2])
        outs.append(g(x).tolist())
    print(json.dumps({"outs": outs, "stats": cache.stats()}))
""")


def test_processes_sharing_a_small_directory(tmp_path):
    """Three processes write, hit, evict in one directory at once (cap: ~3 entries)."""
    d = tmp_path / "shared"
    env = dict(os.environ, PYTHONPATH=str(ROOT), AUTODIFF_JIT_CACHE_MAX_BYTES="40K")
    procs = [subprocess.Popen([sys.executable, "-W", "error::RuntimeWarning", "-c", CONCURRENT,
                               str(base), str(d)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for base in (0, 2, 4)]
    for base, p in zip((0, 2, 4), procs):
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        res = json.loads(out.strip().splitlines()[-1])
        for k, got in zip(range(base, base + 4), res["outs"]):
            np.testing.assert_allclose(got, _expected(k % 5), rtol=1e-13)
        assert res["stats"]["corrupt"] == 0 and res["stats"]["errors"] == 0
    assert cache.size(d) <= 40 << 10
    assert not list(d.glob("*.tmp"))


# ---------------------------------------------------------------------------------------------
# directories and entries that cannot be used: compile instead

def test_read_only_directory_still_serves_hits(monkeypatch, tmp_path):
    _fill(tmp_path, [0])

    def refuse(*a, **k):
        raise PermissionError(errno.EACCES, "read-only file system")
    monkeypatch.setattr(cache.os, "replace", refuse)
    monkeypatch.setattr(cache.os, "utime", refuse)
    cache.reset_stats()
    st, out = _run(_make(0), tmp_path)
    assert st == "hit" and np.allclose(out, _expected(0), rtol=1e-13)
    with pytest.warns(RuntimeWarning, match="not usable.*read-only"):
        st, out = _run(_make(1), tmp_path)
    assert st == "miss" and np.allclose(out, _expected(1), rtol=1e-13)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # once per directory
        assert _run(_make(2), tmp_path)[0] == "miss"
    assert cache.stats()["write_errors"] == 2 and not list(tmp_path.glob("*.tmp"))


class _FullDisk:
    """A file whose writes fail half-way with ENOSPC, as on a full disk."""

    def __init__(self, path, mode):
        self.f = open(path, mode)

    def write(self, data):
        self.f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_full_disk(monkeypatch, tmp_path):
    monkeypatch.setattr(cache, "open", _FullDisk, raising=False)
    cache.reset_stats()
    with pytest.warns(RuntimeWarning, match="No space left"):
        st, out = _run(_make(0), tmp_path)
    assert st == "miss" and np.allclose(out, _expected(0), rtol=1e-13)
    assert cache.stats()["write_errors"] == 1
    assert not list(tmp_path.iterdir())               # no partial entry, no temporary file
    monkeypatch.undo()
    assert _run(_make(0), tmp_path)[0] == "miss"      # space again: stored, then hit
    assert _run(_make(0), tmp_path)[0] == "hit"


def test_unusable_default_directory_warns_once_and_compiles(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("AUTODIFF_JIT_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(RuntimeWarning, match="AUTODIFF_JIT_CACHE=0"):
        st, out = _run(_make(0))
    assert st == "miss" and np.allclose(out, _expected(0), rtol=1e-13)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _run(_make(1))[0] == "miss"


def test_well_formed_entry_with_unloadable_code_is_a_miss(tmp_path):
    t = ad.grad(_make(0), cache=tmp_path)
    t(X)
    k = _exe(t).cache_key
    meta, blobs = cache.read(tmp_path, k)
    blobs[0] = b"\x7fELF" + b"\0" * 60                 # valid checksum, nonsense object code
    cache.write(tmp_path, k, {n: v for n, v in meta.items() if n != "blobs"}, blobs)
    cache.reset_stats()
    st, out = _run(_make(0), tmp_path)
    assert st == "miss" and np.allclose(out, _expected(0), rtol=1e-13)
    assert cache.stats()["corrupt"] == 1
    assert _run(_make(0), tmp_path)[0] == "hit"       # replaced by a good one


# ---------------------------------------------------------------------------------------------
# keys: each ingredient changed is a miss (and the right answer), never a stale hit

@pytest.mark.parametrize("item", ["cpu", "features", "triple", "llvm", "llvmlite", "numpy",
                                  "python", "autodiff_jit", "sources", "format"])
def test_each_environment_item_is_in_the_key(monkeypatch, tmp_path, item):
    """Another machine (CPU model, features), LLVM build, llvmlite / numpy / Python / package
    version, edited backend sources or entry format sharing the directory: a miss."""
    real = cache.environment()
    assert item in real
    assert _run(_make(0), tmp_path)[0] == "miss"
    monkeypatch.setitem(cache._fingerprint, "env", dict(real, **{item: f"other-{item}"}))
    st, out = _run(_make(0), tmp_path)
    assert st == "miss" and np.allclose(out, _expected(0), rtol=1e-13)
    assert len(_entries(tmp_path)) == 2                # both machines' entries side by side
    monkeypatch.setitem(cache._fingerprint, "env", real)
    assert _run(_make(0), tmp_path)[0] == "hit"


def test_an_edited_backend_file_is_a_miss(monkeypatch, tmp_path):
    assert _run(_make(0), tmp_path)[0] == "miss"
    target = Path(cache.__file__).resolve().parent / "emitters.py"
    st = target.stat()
    monkeypatch.setattr(cache, "_fingerprint", {})
    try:
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert _run(_make(0), tmp_path)[0] == "miss"
    finally:
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    monkeypatch.setattr(cache, "_fingerprint", {})
    assert _run(_make(0), tmp_path)[0] == "hit"


def _captured(w):
    w = np.array(w).reshape(6, -1).copy()   # (owning its memory)
    w.flags.writeable = False     # read-only, owning its memory: compiled in as a constant
    return lambda x: np.sum(np.tanh(x @ w)), w


def _captured_grad(w, x=X):
    return w @ (1.0 - np.tanh(x @ w) ** 2)


def test_every_element_of_a_captured_array_is_in_the_key(tmp_path):
    base = np.linspace(-1.0, 1.0, 120)
    assert _run(_captured(base)[0], tmp_path)[0] == "miss"
    assert _run(_captured(base.copy())[0], tmp_path)[0] == "hit"    # equal values: same key
    for i, v in [(3, 0.123), (57, 7.0), (119, -3.0)]:  # inside and past the printed summary
        w = base.copy()
        w[i] = v
        fn, w6 = _captured(w)
        st, out = _run(fn, tmp_path)
        assert st == "miss"
        np.testing.assert_allclose(out, _captured_grad(w6), rtol=1e-12)
    z = np.zeros(60)
    nz = z.copy()
    nz[30] = -0.0                                      # equal value, other bits
    assert _run(_captured(z)[0], tmp_path)[0] == "miss"
    assert _run(_captured(nz)[0], tmp_path)[0] == "miss"
    fn, w32 = _captured(base.astype(np.float32))       # dtype
    st, out = _run(fn, tmp_path, x=X.astype(np.float32))
    assert st == "miss" and out.dtype == np.float32


def test_key_hashes_arrays_in_parameters():
    """numpy abbreviates the repr of a large array: an array-valued parameter is hashed by
    its bytes, so two that differ past the abbreviation still give different keys."""
    import hashlib
    a, b = np.arange(5000.0), np.arange(5000.0)
    b[2500] = -1.0
    assert repr(a) == repr(b)
    digests = []
    for arr in (a, b, a.copy()):
        h = hashlib.blake2b(digest_size=32)
        for x in cache._arrays_in({"table": (1, arr)}):
            cache._hash_array(h, x)
        digests.append(h.digest())
    assert digests[0] != digests[1] and digests[0] == digests[2]


@pytest.mark.parametrize("shape", [(), (1,), (2, 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_constant_results_come_back_alike_from_a_hit(tmp_path, shape, dtype):
    """Results the code does not compute (a literal or constant gradient, an input passed
    through) are stored in the entry: a hit returns them with the same type, shape and dtype
    (a 0-d literal once came back with shape (1,))."""
    x = np.full(shape, 0.5, dtype)
    fns = [lambda v: np.sum(v * 1.5), lambda v: np.sum(v) * 2.0 + 1.0]
    for fn in fns:
        outs = []
        for c in (False, tmp_path, tmp_path):
            t = ad.value_and_grad(fn, cache=c)
            outs.append((t(x), _exe(t).cache_status))
        assert [s for _, s in outs] == [None, "miss", "hit"]
        (v0, g0), _ = outs[0]
        for (v, g), _ in outs[1:]:
            assert type(g) is type(g0) and np.shape(g) == np.shape(g0) == shape
            assert g.dtype == g0.dtype == dtype and np.array_equal(g, g0)
            assert type(v) is type(v0) and np.asarray(v).dtype == np.asarray(v0).dtype
            assert float(v) == float(v0)
    j = ad.jit(lambda v, w: (v, w * 2.0), cache=tmp_path)      # an input passed through
    j(x, x)
    jj = ad.jit(lambda v, w: (v, w * 2.0), cache=tmp_path)
    a, b = jj(x, x)
    assert _exe(jj).cache_status == "hit" and a.shape == shape and np.array_equal(a, x)
