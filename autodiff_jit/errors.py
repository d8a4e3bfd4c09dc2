"""Exceptions raised by autodiff_jit. Each message says what went wrong and what to do instead."""


class TracingError(TypeError):
    """A Python control-flow decision (`if`, `while`, `bool()`, `int()`) was asked of a traced value."""


class IRError(ValueError):
    """The IR is malformed: raised by the verifier and the parser, with the offending text."""


class BackendError(RuntimeError):
    """LLVM rejected generated code; the message includes the module text."""


class ArrayConversion(Exception):
    """Raised by `__array__` of a value whose numbers are not available: a traced value, or a
    tape Tensor that requires grad. numpy's np.array / np.asarray (and every function that
    converts a list with them) calls `__array__` on each element; while grad/jit trace, the
    numpy module's attributes catch this exception and build the array from the values
    instead (numpy/lists.py)."""


class TracerArrayConversionError(TracingError, ArrayConversion):
    """np.array()/np.asarray() was asked for the run-time value of a traced value."""


class TensorArrayConversionError(RuntimeError, ArrayConversion):
    """np.array()/np.asarray() of a tape Tensor that requires grad (PyTorch's RuntimeError)."""
