"""The buffer cache (backend/buffers.py): numpy's allocator inside tape-mode calls.

Checked here: it is numpy's allocator exactly inside tape-mode calls and backward passes;
blocks it hands out are never handed out twice while alive (values survive reuse, calloc
zeroes a dirty block, realloc keeps contents, threads allocate at once); the byte cap holds
and `empty_cache` frees everything; a tape-mode gradient's large arrays come from the cache
from the second call on; the process survives fork and exit with live arrays it allocated.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.backend import buffers

from numpy._core._multiarray_umath import get_handler_name

OURS = buffers.NAME.decode()
BIG = buffers.THRESHOLD // 8 * 4      # float64 elements of a cached block (4 x threshold)


def _available():
    token = buffers.push()
    buffers.pop(token)
    return token is not None


@pytest.fixture
def cache():
    """The handler pushed for the test's body (skipped where numpy has no handler API)."""
    token = buffers.push()
    if token is None:
        pytest.skip("numpy's allocator API is unavailable here")
    try:
        yield
    finally:
        buffers.pop(token)


def test_handler_is_numpys_allocator_only_inside_push():
    assert get_handler_name() == "default_allocator"
    token = buffers.push()
    if token is None:
        pytest.skip("numpy's allocator API is unavailable here")
    try:
        assert get_handler_name() == OURS
        inside = np.empty(BIG)
    finally:
        buffers.pop(token)
    assert get_handler_name() == "default_allocator"
    assert get_handler_name(inside) == OURS        # an array keeps the allocator it came from
    assert get_handler_name(np.empty(BIG)) == "default_allocator"


def test_tape_calls_and_backward_use_the_cache_and_restore_numpys():
    seen = []

    def f(x):
        y = np.sin(x) * 2.0
        seen.append(get_handler_name())
        return np.sum(y * y)

    if not _available():
        pytest.skip("numpy's allocator API is unavailable here")
    x = np.linspace(0.0, 1.0, BIG)
    g = ad.grad(f, mode="tape")(x)
    np.testing.assert_allclose(g, 4.0 * np.sin(2 * x), rtol=1e-12, atol=1e-12)
    assert seen == [OURS]
    assert get_handler_name() == "default_allocator"
    assert get_handler_name(g) == OURS
    # the torch-style API: the backward pass allocates through the cache
    t = ad.tensor(x, requires_grad=True)
    (np.sin(t) ** 2).sum().backward()
    assert get_handler_name(np.asarray(t.grad.detach().numpy())) == OURS
    assert get_handler_name() == "default_allocator"


def test_the_handler_is_restored_when_f_raises():
    def f(x):
        raise ValueError("boom")
    with pytest.raises(ValueError, match="boom"):
        ad.grad(f, mode="tape")(np.ones(BIG))
    assert get_handler_name() == "default_allocator"


def test_a_second_call_takes_its_large_arrays_from_the_cache():
    def f(x):
        return np.sum(np.tanh(x) * np.exp(-x))
    g = ad.grad(f, mode="tape")
    x = np.linspace(-1.0, 1.0, 4 * BIG)
    if not _available():
        pytest.skip("numpy's allocator API is unavailable here")
    first = g(x)
    g(x)       # (a block more than the first call freed: `first` is alive)
    before = buffers.stats()
    second = g(x)
    after = buffers.stats()
    np.testing.assert_array_equal(first, second)
    assert after["hits"] - before["hits"] >= 3
    assert after["misses"] == before["misses"]


def test_reused_blocks_keep_values_and_calloc_zeroes_a_dirty_block(cache):
    a = np.empty(BIG)
    a.fill(7.5)
    del a                               # cached, dirty
    z = np.zeros(BIG)                   # calloc of the same size: the dirty block, zeroed
    assert not z.any()
    assert buffers.stats()["hits"] > 0
    live = [np.full(BIG, float(i)) for i in range(20)]
    for i, arr in enumerate(live):      # blocks of live arrays are never shared
        assert (arr == float(i)).all()
    addrs = {arr.ctypes.data for arr in live} | {z.ctypes.data}
    assert len(addrs) == 21


def test_realloc_keeps_contents_across_the_threshold(cache):
    a = np.arange(100, dtype=np.float64)          # below the threshold
    a.resize(BIG, refcheck=False)                 # realloc up: a cached-size block
    assert (a[:100] == np.arange(100)).all() and not a[100:].any()
    a[:] = 3.0
    a.resize(50, refcheck=False)                  # and down again
    assert (a == 3.0).all()
    b = np.ones(BIG)
    b.resize(2 * BIG + 5, refcheck=False)
    assert (b[:BIG] == 1.0).all()
    del a, b
    c = np.full(2 * BIG + 5, 2.0)                 # the realloc'd block's size class
    assert (c == 2.0).all()


def test_cap_bounds_the_cache_and_empty_cache_frees_it(cache):
    old = ad.config.buffer_cache_bytes
    try:
        ad.config.buffer_cache_bytes = 8 * buffers.THRESHOLD
        blocks = [np.empty(BIG) for _ in range(10)]   # 10 x 4 thresholds, cap 8 thresholds
        del blocks
        st = buffers.stats()
        assert 0 < st["cached_bytes"] <= 8 * buffers.THRESHOLD
        ad.tape.empty_cache()
        assert buffers.stats()["cached_bytes"] == 0 and buffers.stats()["cached_blocks"] == 0
        ad.config.buffer_cache_bytes = 0              # off: push changes nothing
        assert buffers.push() is None
    finally:
        ad.config.buffer_cache_bytes = old


def test_config_validates_the_cap():
    for bad in (-1, 1.5, True, "lots", None):
        with pytest.raises(ValueError, match="buffer_cache_bytes"):
            ad.config.buffer_cache_bytes = bad
    old = ad.config.buffer_cache_bytes
    try:
        ad.config.buffer_cache_bytes = "64M"
        assert ad.config.buffer_cache_bytes == 64 << 20
        ad.config.buffer_cache_bytes = "off"
        assert ad.config.buffer_cache_bytes == 0
    finally:
        ad.config.buffer_cache_bytes = old


def test_threads_allocate_and_free_at_once():
    errors = []

    def work(seed):
        token = buffers.push()       # numpy's handler is per context: each thread sets its own
        try:
            rng = np.random.default_rng(seed)
            held = []
            for i in range(400):
                n = int(rng.integers(BIG // 4, 2 * BIG))
                arr = np.full(n, float(seed * 1000 + i))
                held.append(arr)
                if len(held) > 6:
                    old = held.pop(int(rng.integers(0, len(held))))
                    if not (old == old[0]).all():
                        errors.append("a live block was handed out twice")
            for arr in held:
                if not (arr == arr[0]).all():
                    errors.append("a live block was handed out twice")
        finally:
            buffers.pop(token)
    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


_CHILD = """
import os, numpy as np
import autodiff_jit as ad
from autodiff_jit.backend import buffers
KEEP = ad.grad(lambda x: np.sum(np.sin(x) ** 2), mode="tape")(np.linspace(0, 1, 1 << 16))
token = buffers.push()
MORE = [np.ones(1 << 15) for _ in range(4)]
buffers.pop(token)
if hasattr(os, "fork"):
    pid = os.fork()
    if pid == 0:   # the child allocates and frees through the cache, then exits with arrays alive
        g = ad.grad(lambda x: np.sum(x ** 3), mode="tape")(np.ones(1 << 16))
        os._exit(0 if g[0] == 3.0 else 3)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0, status
print("ok")
"""


def test_fork_and_interpreter_exit_with_arrays_from_the_cache_alive():
    # module-level arrays allocated by the cache are freed during interpreter shutdown: the
    # code and handler they are freed through must outlive everything
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


_COLD = """
import json, sys
import numpy as np
import autodiff_jit as ad
from autodiff_jit.backend import buffers, cache
g = ad.grad(lambda x: np.sum(x ** 2), mode="tape")(np.ones(1 << 14))
print(json.dumps({"ok": bool(g[0] == 2.0), "stats": cache.stats(),
                  "ours": buffers.stats()["stores"] > 0,
                  "llvm": "llvmlite.binding" in sys.modules}))
"""


def test_the_allocator_is_support_code_from_the_disk_cache(tmp_path):
    # the first process compiles the allocator into the cache; the next maps it (where
    # objload can, without loading LLVM: a tape-only program stays light)
    from autodiff_jit.backend import objload
    from tests.helpers import fresh_processes_with_cache
    first, second = fresh_processes_with_cache(_COLD, tmp_path)
    if not first["ours"]:
        pytest.skip("numpy's allocator API is unavailable here")
    assert first["ok"] and second["ok"] and second["ours"]
    assert first["stats"]["helper_misses"] == 1 and first["stats"]["helper_stores"] == 1
    assert second["stats"]["helper_hits"] == 1 and second["stats"]["helper_misses"] == 0
    assert second["llvm"] != objload.supported()


def test_module_forward_and_optimizer_step_use_the_cache():
    if not _available():
        pytest.skip("numpy's allocator API is unavailable here")
    seen = []

    class Net(ad.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = ad.nn.Linear(64, 256)

        def forward(self, x):
            seen.append(get_handler_name())
            return np.tanh(self.lin(x))

    net = Net()
    opt = ad.optim.SGD(net.parameters(), lr=0.1)
    x = np.random.default_rng(0).standard_normal((128, 64))
    w0 = net.lin.weight.detach().numpy().copy()
    out = net(x)
    assert seen == [OURS] and get_handler_name() == "default_allocator"
    assert get_handler_name(out.detach().numpy()) == OURS
    loss = (out ** 2).mean()
    loss.backward()
    g = net.lin.weight.grad.detach().numpy().copy()
    opt.step()
    assert get_handler_name() == "default_allocator"
    np.testing.assert_allclose(net.lin.weight.detach().numpy(), w0 - 0.1 * g, rtol=1e-13,
                               atol=1e-15)


def test_an_allocator_the_program_set_stays_in_place():
    if not _available():
        pytest.skip("numpy's allocator API is unavailable here")
    var, default = buffers._FAST[0], buffers._FAST[2]
    # stand-in for a program's own handler: a distinct capsule object numpy accepts (numpy's
    # default handler, re-wrapped)
    theirs = buffers.handler_capsule(buffers._capsule_pointer(default, b"mem_handler"))
    token = var.set(theirs)
    try:
        assert buffers.push() is None
        g = ad.grad(lambda x: np.sum(x * x), mode="tape")(np.ones(BIG))
        assert var.get() is theirs
        assert get_handler_name(g) == "default_allocator"    # not ours
    finally:
        var.reset(token)
