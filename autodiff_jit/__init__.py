"""autodiff_jit: exact gradients of plain numpy functions, from compiled machine code.

    import numpy as np
    import autodiff_jit as ad

    @ad.grad
    def f(x):
        return np.sum(x ** 3)

    f(np.array([1.0, 2.0, 3.0]))   # array([ 3., 12., 27.])
"""
from .api import custom_vjp, grad, jit, make_ir, stop_gradient, value_and_grad
from .errors import BackendError, IRError, TracingError
from .jvp import hessian, jacfwd, jacrev, jvp, vjp
from .ir import Function as IRFunction, parse, verify

__version__ = "0.1.0"

__all__ = ["grad", "value_and_grad", "jit", "make_ir", "stop_gradient", "custom_vjp",
           "jvp", "vjp", "jacfwd", "jacrev", "hessian",
           "TracingError", "IRError", "BackendError", "IRFunction", "parse", "verify"]
