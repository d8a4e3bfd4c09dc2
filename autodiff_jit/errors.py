"""Exceptions raised by autodiff_jit. Each message says what went wrong and what to do instead."""


class TracingError(TypeError):
    """A Python control-flow decision (`if`, `while`, `bool()`, `int()`) was asked of a traced value."""


class IRError(ValueError):
    """The IR is malformed: raised by the verifier and the parser, with the offending text."""


class BackendError(RuntimeError):
    """LLVM rejected generated code; the message includes the module text."""
