"""numpy's special functions (numpy/lib/_function_base_impl): np.i0, the modified Bessel
function of order 0, as numpy computes it, a composite of primitives, so its derivative
(i1) comes out of reverse and forward mode exactly as the derivative of the approximation."""
from __future__ import annotations

import numpy as np

from ._base import UFUNCS, implements
from .mathematical import _float, _where
from .ufuncs import add, divide, multiply, subtract

_u = UFUNCS

# Clenshaw's Chebyshev coefficients (Cephes i0.c, the ones numpy uses): exp(-x) I0(x) on
# [0, 8] in the variable x/2 - 2, and exp(-x) sqrt(x) I0(x) on (8, inf) in 32/x - 2.
_I0_A = (
    -4.4153416464793395e-18, 3.3307945188222384e-17, -2.431279846547955e-16,
    1.715391285555133e-15, -1.1685332877993451e-14, 7.676185498604936e-14,
    -4.856446783111929e-13, 2.95505266312964e-12, -1.726826291441556e-11, 9.675809035373237e-11,
    -5.189795601635263e-10, 2.6598237246823866e-09, -1.300025009986248e-08,
    6.046995022541919e-08, -2.670793853940612e-07, 1.1173875391201037e-06,
    -4.4167383584587505e-06, 1.6448448070728896e-05, -5.754195010082104e-05,
    0.00018850288509584165, -0.0005763755745385824, 0.0016394756169413357,
    -0.004324309995050576, 0.010546460394594998, -0.02373741480589947, 0.04930528423967071,
    -0.09490109704804764, 0.17162090152220877, -0.3046826723431984, 0.6767952744094761,
)

_I0_B = (
    -7.233180487874754e-18, -4.830504485944182e-18, 4.46562142029676e-17, 3.461222867697461e-17,
    -2.8276239805165836e-16, -3.425485619677219e-16, 1.7725601330565263e-15,
    3.8116806693526224e-15, -9.554846698828307e-15, -4.150569347287222e-14,
    1.54008621752141e-14, 3.8527783827421426e-13, 7.180124451383666e-13,
    -1.7941785315068062e-12, -1.3215811840447713e-11, -3.1499165279632416e-11,
    1.1889147107846439e-11, 4.94060238822497e-10, 3.3962320257083865e-09, 2.266668990498178e-08,
    2.0489185894690638e-07, 2.8913705208347567e-06, 6.889758346916825e-05,
    0.0033691164782556943, 0.8044904110141088,
)


def _chbevl(x, coeffs):
    """Clenshaw's recurrence for sum c_i T_i(x/2), numpy's _chbevl step for step."""
    b0, b1, b2 = coeffs[0], 0.0, 0.0
    for c in coeffs[1:]:
        b2, b1 = b1, b0
        b0 = add(subtract(multiply(x, b1), b2), c)
    return multiply(0.5, subtract(b0, b2))


@implements(np.i0)
def i0(x):
    """numpy's piecewise |x| <= 8 / |x| > 8 split. Each branch is fed a clamped input (the
    other branch's points replaced by a harmless one), so the branch not taken cannot turn a
    zero cotangent into NaN. I0 is even: its derivative I1 is odd, 0 at 0, and the gradient
    of |x| at 0 does not matter."""
    x = _float(x)
    a = _u[np.absolute](x)
    small = _u[np.less_equal](a, 8.0)
    a1 = _where(small, a, 0.0)
    a2 = _where(small, 9.0, a)   # NaN stays in this branch, as in numpy's piecewise
    r1 = multiply(_u[np.exp](a1), _chbevl(subtract(divide(a1, 2.0), 2.0), _I0_A))
    r2 = divide(multiply(_u[np.exp](a2), _chbevl(subtract(divide(32.0, a2), 2.0), _I0_B)),
                _u[np.sqrt](a2))
    return _where(small, r1, r2)
