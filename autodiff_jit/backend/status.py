"""One channel for the errors generated code finds while it runs.

Generated code cannot raise. Where numpy (and the interpreter) would raise -- a LAPACK routine
reports failure, a traced index is out of bounds, a differentiated while_loop runs past
`max_steps` -- it stores a status record (int64 kind, int64 info) and carries on with safe
values (an out-of-range index is clamped, so memory outside an array is never read). The call
path (compiled.py) then raises:

  LAPACK kinds                the numpy.linalg.LinAlgError numpy raises (`MESSAGES`);
  INDEX_OUT_OF_BOUNDS,        the exception the reference interpreter raises on the same inputs
  WHILE_MAX_STEPS             ("index 5 is out of bounds for axis 0 with size 3", the
                              while_loop RuntimeError): the function is run again by the
                              interpreter, on the error path only, so every mode raises the same
                              exception with the same message.

Where the record lives: a per-call buffer, not a global. A function whose code can report gets
one more input pointer (`Lowered.status_arg`); the call path passes a two-word buffer owned by the
calling thread (`thread_words`), so concurrent calls from several threads never see each other's
errors. (An LLVM `thread_local` global would need no extra argument, but MCJIT cannot allocate
TLS: "LLVM ERROR: allocation of TLS not implemented".) Kernels running on worker threads of one
call write into that call's buffer: see docs/design/runtime-errors.md.

Cost on the hot path: a traced gather only ORs an out-of-range bit into a register
(`Lowerer.flag_index_error`; a vectorizable or-reduction), tested once at the end of the
function; nothing is stored unless an error happened.
"""
from __future__ import annotations

import threading

import numpy as np

# status kinds (0: no error). 1-4 are LAPACK failures.
SINGULAR, NOT_POSITIVE_DEFINITE, EIG_NO_CONVERGENCE, SVD_NO_CONVERGENCE = 1, 2, 3, 4
INDEX_OUT_OF_BOUNDS, WHILE_MAX_STEPS = 5, 6
MESSAGES = {SINGULAR: "Singular matrix", NOT_POSITIVE_DEFINITE: "Matrix is not positive definite",
            EIG_NO_CONVERGENCE: "Eigenvalues did not converge",
            SVD_NO_CONVERGENCE: "SVD did not converge"}

WORDS = 2   # kind, info

_local = threading.local()


def report_if(L, cond, kind: int, info) -> None:
    """Emit: status = (kind, info) where the i1 `cond` holds. `L` is the Lowerer; its function
    then takes the status pointer (Lowered.status_arg)."""
    from llvmlite import ir   # here: the run-time half (a cache hit) builds no IR
    i64 = ir.IntType(64)
    b = L.builder
    ptr = L.status_pointer()
    if not isinstance(info, ir.Value):
        info = ir.Constant(i64, int(info))
    with b.if_then(cond, likely=False):
        b.store(ir.Constant(i64, kind), ptr)
        b.store(info if info.type == i64 else b.sext(info, i64), b.gep(ptr, [ir.Constant(i64, 1)]))


def thread_words():
    """This thread's status buffer: (float64[2] passed to the code -- the call path passes float
    arrays --, its int64 view that the code writes). All zeros between calls."""
    w = getattr(_local, "words", None)
    if w is None:
        f = np.zeros(WORDS, np.float64)
        w = _local.words = (f, f.view(np.int64))
    return w


def raise_reported(words: np.ndarray, replay) -> None:
    """Raise the error the int64 status `words` hold (and clear them). `replay()` runs the
    reference interpreter on the same inputs: for the kinds whose message it owns, it raises."""
    kind, info = int(words[0]), int(words[1])
    words[:] = 0
    if not kind:
        return
    if kind in MESSAGES:
        raise np.linalg.LinAlgError(MESSAGES[kind])
    if kind == INDEX_OUT_OF_BOUNDS:
        replay()   # raises numpy's IndexError naming the index, axis and size
        raise IndexError("an index is out of bounds (compiled code reported it; the "
                         "interpreter did not reproduce it)")
    if kind == WHILE_MAX_STEPS:
        replay()   # raises the while_loop RuntimeError naming max_steps
        raise RuntimeError(f"while_loop ran more than max_steps={info} iterations while being "
                           f"differentiated; pass a larger max_steps=... to "
                           f"autodiff_jit.while_loop")
    raise RuntimeError(f"compiled code reported an unknown error (status {kind}, {info})")
