"""Source locations: the user's `file.py:line` that an IR equation or an error comes from.

`here()` walks the Python stack to the innermost frame outside autodiff_jit and the libraries
(numpy, the standard library, installed packages): while tracing, that is the user's line that
called the numpy function. Transforms that re-record equations (the adjoint, inlining) pass
each equation's location on with `at(loc)`, so adjoint equations point at the forward line
they differentiate (marked " (adjoint)"). `locate(exc)` appends the location to an error
raised while tracing.
"""
from __future__ import annotations

import os
import sys
import sysconfig
import threading
from contextlib import contextmanager

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_LIBRARY_DIRS = tuple(sorted({os.path.realpath(sysconfig.get_paths()[k]) + os.sep
                              for k in ("stdlib", "platstdlib", "purelib", "platlib")}))
_internal_codes: dict = {}  # code object -> whether its frames are not the user's
_state = threading.local()

ADJOINT = " (adjoint)"


def _is_internal(code) -> bool:
    hit = _internal_codes.get(code)
    if hit is None:
        name = code.co_filename
        path = os.path.realpath(name) if not name.startswith("<") else name
        hit = path.startswith(_PACKAGE_DIR) or (not name.startswith("<") and
                                                path.startswith(_LIBRARY_DIRS)) or \
            name.startswith("<frozen")
        _internal_codes[code] = hit
    return hit


def _format(code, lineno) -> str:
    return f"{os.path.basename(code.co_filename)}:{lineno}"


def here() -> str | None:
    """The location new equations get: the one set by `at`, else the user's frame."""
    loc = getattr(_state, "loc", None)
    if loc is not None:
        return loc or None
    frame = sys._getframe(1)
    while frame is not None and _is_internal(frame.f_code):
        frame = frame.f_back
    return None if frame is None else _format(frame.f_code, frame.f_lineno)


@contextmanager
def at(loc: str | None, adjoint: bool = False):
    """Equations recorded inside get `loc` (marked as adjoint code when `adjoint`)."""
    if loc and adjoint and not loc.endswith(ADJOINT):
        loc += ADJOINT
    prev = getattr(_state, "loc", None)
    _state.loc = loc or ""
    try:
        yield
    finally:
        _state.loc = prev


def traceback_location(tb) -> str | None:
    """The innermost user frame of a traceback."""
    loc = None
    while tb is not None:
        if not _is_internal(tb.tb_frame.f_code):
            loc = _format(tb.tb_frame.f_code, tb.tb_lineno)
        tb = tb.tb_next
    return loc


def locate(exc: BaseException) -> BaseException:
    """Append ` (at file.py:12)` naming the user's line to a tracing-time error, once."""
    if getattr(exc, "_ad_located", False):
        return exc
    loc = traceback_location(exc.__traceback__)
    if loc and exc.args and isinstance(exc.args[0], str) and f"at {loc}" not in exc.args[0]:
        exc.args = (f"{exc.args[0]} (at {loc})",) + exc.args[1:]
    try:
        exc._ad_located = True
    except AttributeError:
        pass
    return exc


__all__ = ["here", "at", "locate", "traceback_location", "ADJOINT"]
