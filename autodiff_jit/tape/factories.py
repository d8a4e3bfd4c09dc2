"""Tensor factories (torch.tensor, torch.zeros, torch.randn, ...) and dtypes.
Python floats become float32 (torch's default dtype); `dtype=` takes numpy dtypes."""
from __future__ import annotations

import numpy as np

from .tensor import _DEFAULT_FLOAT, Tensor, _data_of, _wrap

__all__ = ["tensor", "as_tensor", "from_numpy", "randn", "rand", "zeros", "ones", "zeros_like",
           "ones_like", "full", "arange", "linspace", "eye", "manual_seed",
           "float16", "float32", "float64", "int32", "int64", "bool_"]

float16, float32, float64 = np.float16, np.float32, np.float64
int32, int64, bool_ = np.int32, np.int64, np.bool_


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """torch.tensor: a new leaf Tensor (Python floats become float32, as in torch)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(data, dtype=None) -> Tensor:
    if isinstance(data, Tensor) and (dtype is None or np.dtype(dtype) == data.dtype):
        return data
    return Tensor(data, dtype=dtype)


def from_numpy(arr: np.ndarray) -> Tensor:
    return _wrap(arr, None, 0)


_RNG = [None]   # numpy's Generator, made on first use (importing numpy.random costs ~10 ms)


def generator():
    """The generator behind randn/rand/nn init (seeded by manual_seed)."""
    if _RNG[0] is None:
        _RNG[0] = np.random.default_rng()
    return _RNG[0]


def manual_seed(seed: int):
    """Seed the generator behind randn/rand/nn init (numpy's PCG64: values differ from torch's)."""
    _RNG[0] = np.random.default_rng(seed)
    return _RNG[0]


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(int(s) for s in shape)


def _make(arr, dtype, requires_grad):
    arr = np.asarray(arr, dtype=dtype or _DEFAULT_FLOAT)
    t = _wrap(arr, None, 0)
    if requires_grad:
        t.requires_grad_(True)
    return t


def randn(*shape, dtype=None, requires_grad=False) -> Tensor:
    return _make(generator().standard_normal(_shape_arg(shape)), dtype, requires_grad)


def rand(*shape, dtype=None, requires_grad=False) -> Tensor:
    return _make(generator().random(_shape_arg(shape)), dtype, requires_grad)


def zeros(*shape, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.zeros(_shape_arg(shape)), dtype, requires_grad)


def ones(*shape, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.ones(_shape_arg(shape)), dtype, requires_grad)


def full(shape, fill_value, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.full(_shape_arg((shape,)), _data_of(fill_value)), dtype, requires_grad)


def zeros_like(t, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.zeros(np.shape(_data_of(t))), dtype or np.asarray(_data_of(t)).dtype,
                 requires_grad)


def ones_like(t, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.ones(np.shape(_data_of(t))), dtype or np.asarray(_data_of(t)).dtype,
                 requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.eye(n, m), dtype, requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False) -> Tensor:
    arr = np.arange(start, end, step) if end is not None else np.arange(start)
    if dtype is None and arr.dtype == np.float64:
        dtype = _DEFAULT_FLOAT
    return _make(arr, dtype or arr.dtype, requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False) -> Tensor:
    # torch computes in the target dtype: start + i * step (float32 by default)
    return _make(np.linspace(start, end, int(steps)), dtype, requires_grad)
