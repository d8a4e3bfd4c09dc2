"""Cold start: what `import autodiff_jit` and a first plain gradient import (fresh processes),
and the on-demand emitter modules (backend/lower.py EMITTER_MODULES)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

import autodiff_jit as ad

CHILD = r"""
import json, sys
import numpy as np
import autodiff_jit as ad
after_import = sorted(m for m in sys.modules if m.startswith(("autodiff_jit", "llvmlite")))
g = ad.grad(lambda x: x[0] ** 2 * x[1] + x[2])
out = g(np.array([1.0, 2.0, 3.0])).tolist()
after_grad = sorted(m for m in sys.modules if m.startswith("autodiff_jit"))
print(json.dumps({"import": after_import, "grad": after_grad, "out": out}))
"""

TAPE_AND_FRIENDS = ("autodiff_jit.tape", "autodiff_jit.nn", "autodiff_jit.optim",
                    "autodiff_jit.viz")
OPTIONAL_BACKEND = ("autodiff_jit.backend.dot", "autodiff_jit.backend.sortlib",
                    "autodiff_jit.backend.selectlib", "autodiff_jit.backend.cumprod_kernels",
                    "autodiff_jit.backend.lapack", "autodiff_jit.backend.lapack_kernels",
                    "autodiff_jit.backend.lower_control")


def _fresh(code, tmp_path):
    env_code = f"import os; os.environ['AUTODIFF_JIT_CACHE_DIR'] = {str(tmp_path)!r}\n" + code
    out = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True,
                         check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_and_first_plain_gradient_skip_what_they_do_not_need(tmp_path):
    got = _fresh(CHILD, tmp_path)
    assert got["out"] == [4.0, 1.0, 1.0]
    loaded = set(got["import"])
    assert not loaded & set(TAPE_AND_FRIENDS), loaded & set(TAPE_AND_FRIENDS)
    assert not any(m.startswith(("llvmlite", "autodiff_jit.backend")) for m in loaded)
    after = set(got["grad"])
    assert "autodiff_jit.backend.lower" in after            # it was compiled
    assert not after & set(TAPE_AND_FRIENDS + OPTIONAL_BACKEND), \
        after & set(TAPE_AND_FRIENDS + OPTIONAL_BACKEND)


def test_lazy_top_level_names_are_the_tape_modules_objects():
    from autodiff_jit import nn, optim, tape, viz
    assert ad.autograd is tape and ad.nn is nn and ad.optim is optim and ad.viz is viz
    assert ad.Tensor is tape.Tensor and ad.no_grad is tape.no_grad and ad.sum is tape.sum
    assert {"Tensor", "nn", "autograd", "sum"} <= set(dir(ad))
    namespace: dict = {}
    exec("from autodiff_jit import *", namespace)   # noqa: S102
    assert namespace["Tensor"] is tape.Tensor and "sum" not in namespace


REGISTERED = r"""
import importlib, json
from autodiff_jit.backend import emitters, lower
out = {}
for module in sorted(set(lower.EMITTER_MODULES.values())):
    before = set(emitters.EMITTERS)
    importlib.import_module("autodiff_jit.backend." + module)
    out[module] = sorted(set(emitters.EMITTERS) - before)
print(json.dumps({"table": lower.EMITTER_MODULES, "registered": out}))
"""


def test_emitter_module_table_matches_what_the_modules_register(tmp_path):
    got = _fresh(REGISTERED, tmp_path)
    by_module = {}
    for prim, module in got["table"].items():
        by_module.setdefault(module, []).append(prim)
    assert {m: sorted(p) for m, p in by_module.items()} == got["registered"]


LAZY_LOWERING = r"""
import json, sys
import numpy as np
import autodiff_jit as ad
x = np.array([3.0, 1.0, 2.0])
a = ad.jit(lambda x: np.sort(x) * x)(x).tolist()
s1 = "autodiff_jit.backend.sortlib" in sys.modules
m = np.array([[2.0, 1.0], [1.0, 3.0]])
b = ad.grad(lambda m: np.sum(np.linalg.solve(m, np.ones(2))))(m).tolist()
print(json.dumps({"sort": a, "sortlib": s1, "solve": b,
                  "lapack": "autodiff_jit.backend.lapack_kernels" in sys.modules}))
"""


def test_first_function_using_an_optional_emitter_loads_it(tmp_path):
    got = _fresh(LAZY_LOWERING, tmp_path)
    x = np.array([3.0, 1.0, 2.0])
    np.testing.assert_array_equal(got["sort"], np.sort(x) * x)
    m = np.array([[2.0, 1.0], [1.0, 3.0]])
    inv = np.linalg.inv(m)
    # d/dm sum(m^-1 1) = -(m^-T 1)(m^-1 1)^T
    ref = -np.outer(inv.T @ np.ones(2), inv @ np.ones(2))
    np.testing.assert_allclose(got["solve"], ref, rtol=1e-12, atol=1e-12)
    assert got["sortlib"] and got["lapack"]


HIT = r"""
import json, sys
import numpy as np
import autodiff_jit as ad
from autodiff_jit.backend import cache
n = int(sys.argv[1])
x = np.linspace(-3.0, 3.0, n)
g = ad.grad(lambda v: np.sum(np.exp(np.sin(v)) * v), cache=sys.argv[2])
out = g(x)
print(json.dumps({"stats": cache.stats(), "digest": out.tobytes().hex()[:64],
                  "ok": bool(np.allclose(out, np.exp(np.sin(x)) * (np.cos(x) * x + 1.0))),
                  "modules": sorted(m for m in sys.modules if m.startswith("autodiff_jit")),
                  "llvm": "llvmlite.binding" in sys.modules}))
"""
LOWERERS = ("autodiff_jit.backend.lower", "autodiff_jit.backend.emitters",
            "autodiff_jit.passes.fuse")


def _hit_runs(tmp_path, n):
    code = HIT.replace("sys.argv[1]", str(n)).replace("sys.argv[2]", repr(str(tmp_path / "c")))
    return _fresh(code, tmp_path), _fresh(code, tmp_path)


def test_a_disk_cache_hit_imports_no_lowerer(tmp_path):
    first, second = _hit_runs(tmp_path, 5)
    assert first["stats"]["misses"] == 1 and second["stats"]["hits"] == 1
    assert first["ok"] and second["ok"] and first["digest"] == second["digest"]
    assert set(LOWERERS) <= set(first["modules"])
    assert not set(LOWERERS) & set(second["modules"]), set(LOWERERS) & set(second["modules"])
    from autodiff_jit.backend import objload
    assert first["llvm"] and second["llvm"] != objload.supported()   # objload: no LLVM at all


def test_a_disk_cache_hit_through_mcjit_computes_the_same(tmp_path):
    first, _ = _hit_runs(tmp_path, 5)
    code = "import os; os.environ['AUTODIFF_JIT_OBJLOAD'] = '0'\n" + HIT.replace(
        "sys.argv[1]", "5").replace("sys.argv[2]", repr(str(tmp_path / "c")))
    third = _fresh(code, tmp_path)
    assert third["stats"]["hits"] == 1 and third["llvm"]
    assert third["ok"] and third["digest"] == first["digest"]


def test_a_disk_cache_hit_of_split_code_loads_the_thread_pool(tmp_path):
    from autodiff_jit.backend import pool
    from autodiff_jit.backend.lowered import HUGE_MARKER, PRELUDE_MODULES
    assert PRELUDE_MODULES == {pool.RUNTIME_SYMBOL: "pool", HUGE_MARKER: "mathlib"}
    first, second = _hit_runs(tmp_path, 1 << 18)    # large enough to be split over threads
    assert first["stats"]["misses"] == 1 and second["stats"]["hits"] == 1
    assert second["ok"] and first["digest"] == second["digest"]
    assert "autodiff_jit.backend.pool" in second["modules"]
    # the pool without the split-loop emitters (parallel.py imports the lowering modules)
    assert "autodiff_jit.backend.parallel" not in second["modules"]
    # the pool's runtime is support code too: stored by the first process, mapped by the
    # second, which then needs no LLVM (it compiled the runtime in every process: ~0.1 s)
    assert first["stats"]["helper_stores"] >= 1
    assert second["stats"]["helper_misses"] == 0, second["stats"]
    from autodiff_jit.backend import objload
    assert second["llvm"] != objload.supported()
