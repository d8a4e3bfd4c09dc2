"""Support code on disk (cache.support_compiler): the call path's generic wrapper and
sin/cos/tan's huge-argument module are compiled once per process, so each test runs fresh
processes: the first stores them, the next loads them; a damaged entry or an unusable directory
falls back to compiling, and the gradients are the same in every case."""
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from autodiff_jit.backend import cache, callpath

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import autodiff_jit as ad
    from autodiff_jit.backend import cache
    poly = ad.grad(lambda x: x[0] ** 2 * x[1] + x[2])        # AUTODIFF_JIT_CACHE=0: not cached
    x = np.array([1.5, -2.0, 0.25])
    strided = np.array([1.5, 9.0, -2.0, 9.0, 0.25])[::2]   # the wrapper's Python fallback
    out = {"poly": poly(x).tolist(), "poly_strided": poly(strided).tolist(),
           "stats": cache.stats()}
    if sys.argv[1] == "trig":   # also sin's huge-argument module
        out["trig"] = ad.grad(lambda x: np.sum(np.sin(x) * x))(np.array([0.5, 1e300])).tolist()
        out["stats"] = cache.stats()
    print(json.dumps(out))
""")


def _run(cache_dir, what="poly", **env_extra):
    env = {k: v for k, v in os.environ.items() if k != "AUTODIFF_JIT_SUPPORT_CACHE"}
    # the functions themselves not cached: what is on disk is support code only
    env.update(PYTHONPATH=str(ROOT), AUTODIFF_JIT_CACHE_DIR=str(cache_dir),
               AUTODIFF_JIT_CACHE="0", **env_extra)
    out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", CHILD, what],
                         capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _check_values(res):
    x0, x1 = 1.5, -2.0
    expect = [2 * x0 * x1, x0 ** 2, 1.0]          # d/dx of x0^2 x1 + x2
    assert res["poly"] == expect and res["poly_strided"] == expect
    if "trig" not in res:
        return
    t = np.array([0.5, 1e300])
    np.testing.assert_allclose(res["trig"], np.sin(t) + t * np.cos(t), rtol=1e-13)


def _helpers(res):
    st = res["stats"]
    return st["helper_hits"], st["helper_misses"], st["helper_stores"]


def test_stored_by_the_first_process_loaded_by_the_next(tmp_path):
    first = _run(tmp_path, "trig")
    assert _helpers(first) == (0, 2, 2)          # the wrapper and the huge-argument module
    assert len(list(tmp_path.glob("*" + cache.SUFFIX))) == 2
    second = _run(tmp_path, "trig")
    assert _helpers(second) == (2, 0, 0)
    assert second["stats"]["corrupt"] == 0
    _check_values(first)
    assert second["poly"] == first["poly"] and second["trig"] == first["trig"]


def test_damaged_entry_is_recompiled_and_replaced(tmp_path):
    _run(tmp_path)
    (entry,) = tmp_path.glob("*" + cache.SUFFIX)
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) // 2])                       # truncated
    res = _run(tmp_path)
    assert res["stats"]["corrupt"] == 1 and _helpers(res) == (0, 1, 1)
    _check_values(res)
    assert _helpers(_run(tmp_path)) == (1, 0, 0)                  # rewritten: usable again


def test_unusable_directory_compiles_without_a_warning(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    res = _run(blocker / "cache")             # cannot be created; the child fails on a warning
    assert _helpers(res) == (0, 1, 0) and res["stats"]["write_errors"] == 1
    _check_values(res)


def test_switched_off(tmp_path):
    res = _run(tmp_path, AUTODIFF_JIT_SUPPORT_CACHE="0")
    assert _helpers(res) == (0, 0, 0) and not list(tmp_path.iterdir())
    _check_values(res)


def test_support_modules_hold_no_address_of_this_process():
    # what makes them loadable elsewhere: Python objects and C-API functions are symbols
    from autodiff_jit.backend import mathlib
    for text in (callpath.generic_wrapper_ir(), mathlib.build_huge_module()):
        assert not re.search(r"inttoptr \(i64 -?\d", text)
        assert not re.search(r"inttoptr i64 -?\d", text)
    assert str(id(float)) not in callpath.generic_wrapper_ir()
    assert callpath.generic_wrapper_recipe() == callpath.generic_wrapper_recipe()


THREADS = textwrap.dedent("""
    import json, threading
    import numpy as np
    import autodiff_jit as ad
    from autodiff_jit.backend import cache
    out = {}
    def work(k):
        try:
            g = ad.grad(lambda x: np.sum(x ** 2) * (k + 1))
            out[k] = g(np.arange(3.0)).tolist()
        except BaseException:          # a thread's error would otherwise go to stderr only
            import traceback
            out[k] = traceback.format_exc()
    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    print(json.dumps({"out": out, "stats": cache.stats()}))
""")


def test_threads_compiling_their_first_functions_at_once(tmp_path):
    # the support code is compiled (or loaded) once, whichever thread gets there first
    env = {k: v for k, v in os.environ.items() if k != "AUTODIFF_JIT_SUPPORT_CACHE"}
    env.update(PYTHONPATH=str(ROOT), AUTODIFF_JIT_CACHE_DIR=str(tmp_path), AUTODIFF_JIT_CACHE="0")
    for expect in ((0, 1, 1), (1, 0, 0)):       # empty directory, then filled
        out = subprocess.run([sys.executable, "-c", THREADS], capture_output=True, text=True,
                             env=env, cwd=str(ROOT), timeout=300)
        assert out.returncode == 0, out.stderr
        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert _helpers(res) == expect
        assert res["out"] == {str(k): [0.0, 2.0 * (k + 1), 4.0 * (k + 1)] for k in range(4)}
