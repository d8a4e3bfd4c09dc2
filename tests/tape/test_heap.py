"""tape/heap.py: glibc's trim/mmap thresholds are raised once, on the first backward pass,
and not at all when AUTODIFF_JIT_KEEP_HEAP=0 or the user set glibc's own variables."""
import os
import subprocess
import sys

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.tape import heap

_PROBE = ("import numpy as np, autodiff_jit as ad\n"
          "from autodiff_jit.tape import heap\n"
          "assert not heap._STATE['done']\n"
          "g = ad.grad(lambda x: np.sum(np.tanh(x) ** 2), mode='tape')(np.ones(3))\n"
          "print(heap._STATE['done'], heap._STATE['applied'])\n")


def _probe(**env):
    full = {**os.environ, **env}
    for k in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):
        if k not in env:
            full.pop(k, None)
    out = subprocess.run([sys.executable, "-c", _PROBE], env=full, capture_output=True,
                         text=True, check=True)
    return out.stdout.split()


def test_applied_once_on_first_backward():
    ad.grad(lambda x: np.sum(x * x), mode="tape")(np.ones(2))
    assert heap._STATE["done"]
    first = heap._STATE["applied"]
    assert heap.keep_heap() is first   # a second call changes nothing


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_env_switches():
    done, applied = _probe(AUTODIFF_JIT_KEEP_HEAP="1")
    assert done == "True" and applied in ("True", "False")   # False on a non-glibc Linux
    assert _probe(AUTODIFF_JIT_KEEP_HEAP="0") == ["True", "False"]
    assert _probe(MALLOC_TRIM_THRESHOLD_="1000000") == ["True", "False"]
