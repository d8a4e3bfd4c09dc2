import atexit
import os
import shutil
import tempfile

import numpy as np
import pytest

# The suite never writes to the user's disk cache (~/.cache/autodiff_jit) and never depends on
# what an earlier run left there: the cache is on (the default, as users run it), in a fresh
# directory per test (autouse fixture below; this one for whatever runs at collection). Child
# processes that tests start inherit the variable.
_SESSION_CACHE = tempfile.mkdtemp(prefix="adj_test_cache_")
os.environ["AUTODIFF_JIT_CACHE_DIR"] = _SESSION_CACHE
atexit.register(shutil.rmtree, _SESSION_CACHE, ignore_errors=True)
for _var in ("AUTODIFF_JIT_CACHE", "AUTODIFF_JIT_CACHE_MAX_BYTES"):
    os.environ.pop(_var, None)


@pytest.fixture(autouse=True)
def _isolated_disk_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AUTODIFF_JIT_CACHE_DIR", str(tmp_path_factory.mktemp("adcache")))


@pytest.fixture
def rng():
    return np.random.default_rng(0)
