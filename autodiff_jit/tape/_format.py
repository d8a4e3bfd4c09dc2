"""How a Tensor prints (torch's repr: 4 decimals, scientific for wide ranges)."""
from __future__ import annotations

import numpy as np


def _fmt_float_array(arr):
    finite = arr[np.isfinite(arr)]
    absf = np.abs(finite)
    ints = finite.size == 0 or np.all(finite == np.round(finite))
    big = absf.size and (absf.max() >= 1e8 or (absf[absf > 0].size and absf[absf > 0].min() < 1e-4
                                                  and not ints))
    def one(v):
        if not np.isfinite(v):
            return "nan" if np.isnan(v) else ("inf" if v > 0 else "-inf")
        if big:
            return f"{v:.4e}"
        if ints:
            return f"{v:.0f}."
        return f"{v:.4f}"
    return one


def _format_data(arr: np.ndarray) -> str:
    if arr.dtype.kind == "f":
        one = _fmt_float_array(arr.astype(np.float64))
    elif arr.dtype == np.bool_:
        def one(v): return "True" if v else "False"
    else:
        def one(v): return str(int(v))
    if arr.ndim == 0:
        return one(arr.item())
    flat = [one(v) for v in arr.ravel().tolist()]
    width = max((len(s) for s in flat), default=0)
    flat = [s.rjust(width) for s in flat]
    it = iter(flat)

    def build(shape, depth):
        if len(shape) == 1:
            return "[" + ", ".join(next(it) for _ in range(shape[0])) + "]"
        sep = "," + "\n" * (len(shape) - 1) + " " * (depth + 8)
        return "[" + sep.join(build(shape[1:], depth + 1) for _ in range(shape[0])) + "]"

    if arr.size == 0:
        return "[]"
    return build(arr.shape, 0)
