"""autodiff_jit: exact gradients of plain numpy functions, from compiled machine code.

    import numpy as np
    import autodiff_jit as ad

    @ad.grad
    def f(x):
        return np.sum(x ** 3)

    f(np.array([1.0, 2.0, 3.0]))   # array([ 3., 12., 27.])
"""
from .api import custom_vjp, grad, jit, make_ir, stop_gradient, value_and_grad
from .config import config
from .errors import BackendError, IRError, TracingError
from .jacobians import hessian, jacfwd, jacrev, jvp, vjp
from .vectorize import vectorize, vmap
from .vmap import BatchingFallbackWarning
from .control import cond, fori_loop, while_loop
from .ir import Function as IRFunction, parse, verify
from .numpy.linalg import cho_solve, solve_triangular

# Tape mode, with PyTorch's names (ad.tensor, ad.no_grad, ad.Function, ad.autograd.grad, ...),
# and nn / optim / viz: imported on first use (see __getattr__), so that `import autodiff_jit`
# for grad/jit does not pay for them (~10 ms, with shutil's bz2/lzma).
_TAPE_NAMES = ("Tensor", "Parameter", "Function", "FunctionCtx", "tensor", "as_tensor",
               "from_numpy", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
               "randn", "rand", "zeros", "ones", "zeros_like", "ones_like", "full", "arange",
               "linspace", "eye", "manual_seed", "float16", "float32", "float64", "int32",
               "int64", "bool_", "sigmoid", "relu", "mean", "sum", "matmul", "mm", "exp", "log",
               "tanh", "sqrt", "sin", "cos", "abs", "pow", "clamp", "maximum", "minimum", "where")
_LAZY_MODULES = {"nn": "nn", "optim": "optim", "viz": "viz", "autograd": "tape"}

from ._version import __version__

from .primitives import host as _host


def _host_lapack():
    # numpy's LAPACK/BLAS for the linear-algebra impls (interpret and tape mode), imported on
    # their first call: the backend costs tens of milliseconds to import. Without it (no
    # llvmlite, no library found) the impls use numpy.linalg alone.
    try:
        from .backend import host_lapack
        return host_lapack.kernels()
    except (ImportError, OSError):
        return None


_host.install(_host_lapack)


def _host_scatter():
    # the compiled row scatter-add for take_add (interpret and tape mode), through the disk
    # cache's default directory; imported on take_add's first large call
    try:
        from .backend import cache as _disk, scatter
    except (ImportError, OSError):
        return None
    scatter.SUPPORT_COMPILER[0] = lambda: _disk.support_compiler(_disk.support_dir(None),
                                                                 warn=False)
    return scatter.take_add_rows


_host.install_scatter(_host_scatter)

__all__ = ["grad", "value_and_grad", "jit", "make_ir", "stop_gradient", "custom_vjp",
           "jvp", "vjp", "jacfwd", "jacrev", "hessian", "vmap", "vectorize",
           "BatchingFallbackWarning", "compare",
           "fori_loop", "while_loop", "cond", "solve_triangular", "cho_solve", "config",
           "TracingError", "IRError", "BackendError", "IRFunction", "parse", "verify",
           # tape mode (sum, abs and pow stay out of __all__: they would shadow builtins)
           "nn", "optim", "viz", "autograd", "Tensor", "Parameter", "Function", "FunctionCtx",
           "tensor", "as_tensor", "from_numpy", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "randn", "rand", "zeros", "ones", "zeros_like", "ones_like",
           "full", "arange", "linspace", "eye", "manual_seed", "float16", "float32", "float64",
           "int32", "int64", "bool_", "sigmoid", "relu", "mean", "matmul", "mm", "exp", "log",
           "tanh", "sqrt", "sin", "cos", "clamp", "maximum", "minimum", "where"]


def __getattr__(name):
    # ad.compare (the benchmark harness) is imported on first use: computing gradients never
    # needs it, and importing it costs ~15 ms of every `import autodiff_jit`
    if name == "compare":
        from .bench.compare import compare
        return compare
    if name in _LAZY_MODULES or name in _TAPE_NAMES:
        import importlib
        module = importlib.import_module("." + _LAZY_MODULES.get(name, "tape"), __name__)
        value = module if name in _LAZY_MODULES else getattr(module, name)
        globals()[name] = value   # later lookups are plain attribute reads
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"compare"} | set(_LAZY_MODULES) | set(_TAPE_NAMES))
