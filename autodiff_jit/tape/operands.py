"""numpy arrays that recorded tape operations keep for the backward pass.

A Tensor written in place bumps its version counter, and backward refuses a stale input (as
PyTorch does). A plain numpy array has no counter: numpy lets the caller write into it after
an operation used it (`y = np.sin(x) * m; m[1] = 5.0`), and a node holding it by reference
would differentiate with the new value. So a recorded node keeps:

- a writeable array of at most COPY_MAX elements: a copy (what numpy's answer needs; cheap);
- a larger one, inside grad(f, mode="tape"): the array itself, made read-only (with the
  arrays it is a view of) until that call's backward pass has run, so a write into it while f
  runs raises a ValueError saying what to do, instead of giving a wrong gradient -- never an
  O(n) copy per call (the 8 MB data matrix of a regression is used by a matmul every call).
  Not seen: a write through another view of the same memory made before the call.
- outside such a call (the torch-style Tensor API), a larger array is shared, as
  torch.from_numpy shares its memory.
"""
from __future__ import annotations

import numpy as np

# numpy names bound at import: numpy has a module __getattr__, so Python 3.11 never
# specializes an `np.name` lookup (~40 ns each, several per tape node)
_ND = np.ndarray

COPY_MAX = 1024   # elements: a copy costs well under a microsecond

_PROTECTED: list = []   # arrays made read-only during the running tape-mode call (in order)
_DEPTH = [0]            # tape-mode calls running (the outermost one restores)

_READ_ONLY_MESSAGES = ("assignment destination is read-only", "output array is read-only")


def keep(arr: _ND) -> _ND:
    """What a node saves of the numpy operand `arr` (see the module docstring)."""
    if not arr.flags.writeable and arr.base is None:
        return arr   # nothing can write into it
    if arr.size <= COPY_MAX:
        return arr.copy()
    if _DEPTH[0]:
        a = arr
        while isinstance(a, _ND):
            if a.flags.writeable:
                a.flags.writeable = False
                _PROTECTED.append(a)
            a = a.base
    return arr


def enter():
    _DEPTH[0] += 1


def leave():
    """The end of a tape-mode call: the outermost one makes the arrays writeable again (bases
    first: numpy allows a view to be writeable only over a writeable base)."""
    _DEPTH[0] -= 1
    if not _DEPTH[0] and _PROTECTED:
        for a in reversed(_PROTECTED):
            a.flags.writeable = True
        _PROTECTED.clear()


def explain(exc: ValueError):
    """A clearer error for a write into a protected array (None: not that error)."""
    if not _PROTECTED or str(exc) not in _READ_ONLY_MESSAGES:
        return None
    return ValueError(
        f"{exc}: in grad(f, mode='tape'), a numpy array of more than {COPY_MAX} elements that "
        f"a recorded operation used is read-only until the backward pass has run (its gradient "
        f"needs the value it had, and copying it on every call would cost as much as the "
        f"operation). If f writes into such an array after using it, write into a copy "
        f"(m = m.copy() before the first use) or pass the array as an argument.")
