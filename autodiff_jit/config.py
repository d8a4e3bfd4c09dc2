"""Process-wide switches, read when a function is traced (not per call of compiled code).

    import autodiff_jit as ad
    ad.config.convert = False        # trace Python `if`/`while`/`for` as written (no rewrite)
    ad.config.debug_nans = True      # raise FloatingPointError at the first NaN/inf produced
    ad.config.max_loop_steps = 10**5 # reverse-mode capacity of converted data-dependent loops

Environment variables set the initial values: AUTODIFF_JIT_CONVERT=0,
AUTODIFF_JIT_DEBUG_NANS=1, AUTODIFF_JIT_MAX_LOOP_STEPS=N.
"""
from __future__ import annotations

import os


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("", "0", "false", "no", "off")


class Config:
    """convert: rewrite Python control flow on traced values into loop/branch ops (see
    docs/control-flow.md). debug_nans: check every value produced, forward and adjoint, and
    raise FloatingPointError naming the primitive and the user's source line. max_loop_steps:
    the `max_steps` of the while loops that converted `while` / traced-bound `for` loops become
    (None: while_loop's default)."""

    def __init__(self):
        self._listeners = []  # called when debug_nans changes (the api drops fast call paths)
        self.convert = _env_flag("AUTODIFF_JIT_CONVERT", True)
        self._debug_nans = _env_flag("AUTODIFF_JIT_DEBUG_NANS", False)
        steps = os.environ.get("AUTODIFF_JIT_MAX_LOOP_STEPS")
        self.max_loop_steps = int(steps) if steps else None

    @property
    def debug_nans(self) -> bool:
        return self._debug_nans

    @debug_nans.setter
    def debug_nans(self, value: bool):
        self._debug_nans = bool(value)
        for listener in self._listeners:
            listener(self._debug_nans)

    def __repr__(self):
        return (f"Config(convert={self.convert}, debug_nans={self.debug_nans}, "
                f"max_loop_steps={self.max_loop_steps})")


config = Config()

__all__ = ["config", "Config"]
