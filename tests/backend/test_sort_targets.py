"""The vector sort and scan kernels compiled for an AVX2-only CPU (AMD Zen 3: no AVX-512, as
on some CI machines) still match numpy. Runs on any x86 host with AVX2: a child process tells
llvmlite the host is a znver3 without AVX-512 features before anything is compiled."""
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent('''
    import llvmlite.binding as llvm
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    host = llvm.get_host_cpu_features()
    if not host.get("avx2"):
        print("SKIP: no AVX2")
        raise SystemExit(0)

    class Features(dict):
        def flatten(self):
            return ",".join(("+" if v else "-") + k for k, v in self.items())
    llvm.get_host_cpu_features = lambda: Features(
        (k, v and not k.startswith("avx512")) for k, v in host.items())
    llvm.get_host_cpu_name = lambda: "znver3"
    import numpy as np
    import autodiff_jit as ad
    r = np.random.default_rng(0)
    f = ad.jit(lambda a: np.argsort(a, axis=-1))
    assert "zmm" not in f.asm(np.zeros((16, 100))), "AVX-512 code for an AVX2 target"
    for shape in [(1000, 100), (9, 1024), (13, 5), (1, 100), (20, 300), (3, 5000), (1, 70000)]:
        x = r.standard_normal(shape)
        x[..., ::3] = np.round(x[..., ::3])
        x[0, ::5] = np.nan
        x[-1, ::4] = -0.0
        got = ad.jit(lambda a: np.argsort(a, axis=-1))(x)
        assert np.array_equal(got, np.argsort(x, axis=-1, kind="stable")), shape
        got = ad.jit(np.sort)(x)  # the values alone: keys alone
        want = np.take_along_axis(x, np.argsort(x, axis=-1, kind="stable"), axis=-1)
        assert np.array_equal(got.view(np.int64), want.view(np.int64)), shape  # signed zeros
        w = r.standard_normal(shape)
        got = ad.grad(lambda a: np.sum(np.sort(a, axis=-1) * w))(x)
        assert np.array_equal(got, np.take_along_axis(
            w, np.argsort(np.argsort(x, axis=-1, kind="stable"), axis=-1), axis=-1)), shape
        y = r.uniform(0.9, 1.1, shape)
        got = ad.jit(lambda a: np.cumprod(a, axis=-1))(y)
        np.testing.assert_allclose(got, np.cumprod(y, axis=-1), rtol=4 * shape[-1] * 2.3e-16)
    print("OK")
''')


@pytest.mark.slow
@pytest.mark.skipif(__import__("platform").machine() not in ("x86_64", "AMD64"),
                    reason="x86 targets only")
def test_sort_and_scan_kernels_on_an_avx2_only_target(tmp_path):
    env = dict(__import__("os").environ, AUTODIFF_JIT_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    if out.stdout.startswith("SKIP"):
        pytest.skip(out.stdout.strip())
    assert out.stdout.strip() == "OK"
