"""Benchmarks: the built-in objectives (`objectives`), peer implementations (`peers`), the
timing runner (`runner`), reporting (`report`) and `compare` for a user's own function.

    autodiff-jit bench --quick          # the command line
    autodiff_jit.bench.compare(f, x)    # one function, in a notebook or a script
"""
from .compare import CompareResult, compare
from .runner import BenchResult, CaseResult, Measurement, Timing, run

__all__ = ["compare", "CompareResult", "run", "BenchResult", "CaseResult", "Measurement",
           "Timing"]
